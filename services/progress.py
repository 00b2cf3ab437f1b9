"""A generation's or a backtest's progress as an async stream of events, for progress bars.

The services report progress through plain callbacks on the event loop: `Generator.generate`
its stages, `StrategyRunner.backtest` the bars done (relayed from the sandboxed child). Here
the work runs as a task, its reports are queued and read back in order, and the last event
carries the work's outcome. Errors raised before the work reports anything (bad input, rate
limits, an unknown strategy) are raised by `watch_*` itself, so the API can refuse the
subscription outright instead of starting a stream.

A generation outlives its watcher: a client that leaves does not cancel it, so it is stored
and logged all the same. A backtest nobody watches any more is stopped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from models import User
from services.errors import ServiceError
from services.execution import BacktestOutcome, BacktestRequest, StrategyRunner
from services.generation import (
    SHUTDOWN_MESSAGE,
    GenerationOutcome,
    GenerationRequest,
    GenerationStage,
    Generator,
)
from services.providers.base import CodeProvider

log = logging.getLogger(__name__)

E = TypeVar("E")
R = TypeVar("R")

# Backtest progress reaches the client at most this often and in steps of at least this much.
MIN_INTERVAL_SECONDS = 0.05
MIN_STEP_FRACTION = 0.01

# asyncio keeps only weak references to tasks: generations whose watchers left live here.
_generations: set[asyncio.Task[Any]] = set()


def _stopwatch() -> Callable[[], float]:
    started = time.perf_counter()
    return lambda: time.perf_counter() - started


class _Feed(Generic[E, R]):
    """The reports of one task's work, in order, followed by the end of the task."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[E | None] = asyncio.Queue()

    def put(self, event: E) -> None:
        self._queue.put_nowait(event)

    def start(self, work: Coroutine[Any, Any, R]) -> asyncio.Task[R]:
        task = asyncio.ensure_future(work)
        # Done callbacks run after the task's last report, so the end is always last.
        task.add_done_callback(lambda _: self._queue.put_nowait(None))
        return task

    async def next(self) -> E | None:
        """The next report; None once the task is done."""
        return await self._queue.get()


def _log_unexpected(task: asyncio.Task[Any]) -> None:
    """For a task nobody will ask for its result: domain errors are expected, bugs are logged."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, ServiceError):
        log.error("a generation without a watcher failed", exc_info=error)


# --- generation -------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationEvent:
    stage: GenerationStage
    elapsed_seconds: float
    message: str
    outcome: GenerationOutcome | None = None  # on the last event (STORED) only


def _stage_message(stage: GenerationStage, provider: CodeProvider) -> str:
    return {
        GenerationStage.SENT: f"Prompt sent to {provider.name} ({provider.model})",
        GenerationStage.RECEIVED: "The model call finished",
        GenerationStage.EXTRACTED: "Searched the answer for code",
        GenerationStage.VALIDATED: "Checked the code",
    }.get(stage, stage.value)


def _stored_message(outcome: GenerationOutcome) -> str:
    status = outcome.log.status.value.upper()
    if outcome.log.error_message:
        return f"{status}: {outcome.log.error_message}"
    return f"{status}: strategy stored"


async def watch_generation(
    generator: Generator, user: User, request: GenerationRequest
) -> AsyncGenerator[GenerationEvent, None]:
    """Start a generation and return its events: each stage, then STORED with the outcome."""
    clock = _stopwatch()
    feed: _Feed[GenerationStage, GenerationOutcome] = _Feed()
    task = feed.start(generator.generate(user, request, on_stage=feed.put))
    _generations.add(task)
    task.add_done_callback(_generations.discard)
    try:
        first = await feed.next()
    except BaseException:  # the watcher left before the first stage: the work goes on
        task.add_done_callback(_log_unexpected)
        raise
    if first is None:
        task.result()  # ended before being sent: bad input or rate limit, raised here
    provider = generator.providers.select(request.model)  # known good: the prompt was sent
    return _generation_events(provider, feed, task, first, clock)


async def _generation_events(
    provider: CodeProvider,
    feed: _Feed[GenerationStage, GenerationOutcome],
    task: asyncio.Task[GenerationOutcome],
    first: GenerationStage | None,
    clock: Callable[[], float],
) -> AsyncGenerator[GenerationEvent, None]:
    try:
        stage = first
        while stage is not None:
            if stage is not GenerationStage.STORED:  # reported below, with the outcome
                yield GenerationEvent(stage, clock(), _stage_message(stage, provider))
            stage = await feed.next()
    finally:
        if not task.done():
            await _finish_unwatched(task)
    if task.cancelled():
        raise ServiceError(SHUTDOWN_MESSAGE)
    outcome = task.result()
    yield GenerationEvent(GenerationStage.STORED, clock(), _stored_message(outcome), outcome)


async def _finish_unwatched(task: asyncio.Task[GenerationOutcome]) -> None:
    """The watcher left (its operation was cancelled or closed): the generation finishes anyway
    and is stored and logged. Cancelled once more while waiting here, by the server giving up at
    the end of its shutdown grace period, it is cancelled as an HTTP request's generation would
    be: it then logs itself as FAILURE (`Generator.drain` waits for that)."""
    task.add_done_callback(_log_unexpected)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        raise
    except Exception:  # reported by _log_unexpected; the watcher is gone
        pass


# --- backtest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestEvent:
    bars_done: int
    total_bars: int
    elapsed_seconds: float
    outcome: BacktestOutcome | None = None  # on the last event only

    @property
    def fraction(self) -> float:
        return self.bars_done / self.total_bars if self.total_bars else 1.0


class Throttle:
    """Admits progress reports that advance by `min_step` of the total at least `min_interval`
    seconds after the last admitted one. Reports that go backwards or name another total are
    dropped: they come from the sandboxed child, which runs untrusted code."""

    def __init__(
        self,
        min_interval: float = MIN_INTERVAL_SECONDS,
        min_step: float = MIN_STEP_FRACTION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_interval = min_interval
        self.min_step = min_step
        self.clock = clock
        self._total: int | None = None
        self._done = -1
        self._at = -math.inf

    def admit(self, done: int, total: int) -> bool:
        if self._total is None:
            self._total = total
        if total != self._total or done <= self._done:
            return False
        now = self.clock()
        if self._done >= 0 and (
            done - self._done < self.min_step * total or now - self._at < self.min_interval
        ):
            return False
        self._done, self._at = done, now
        return True


async def watch_backtest(
    runner: StrategyRunner,
    user: User,
    strategy_id: uuid.UUID,
    request: BacktestRequest,
    throttle: Throttle | None = None,
) -> AsyncGenerator[BacktestEvent, None]:
    """Start a backtest and return its events: bars done (0 first), then the last with the
    outcome (bars done = total bars)."""
    clock = _stopwatch()
    admit = (throttle or Throttle()).admit
    feed: _Feed[BacktestEvent, BacktestOutcome] = _Feed()

    def on_progress(done: int, total: int) -> None:
        if done < total and admit(done, total):  # the end comes with the outcome
            feed.put(BacktestEvent(done, total, clock()))

    task = feed.start(runner.backtest(user, strategy_id, request, on_progress))
    try:
        first = await feed.next()
    except BaseException:
        task.cancel()
        raise
    if first is None:
        task.result()  # ended before starting: bad input, unknown strategy, rate limit
    return _backtest_events(feed, task, first, clock)


async def _backtest_events(
    feed: _Feed[BacktestEvent, BacktestOutcome],
    task: asyncio.Task[BacktestOutcome],
    first: BacktestEvent | None,
    clock: Callable[[], float],
) -> AsyncGenerator[BacktestEvent, None]:
    try:
        event = first
        while event is not None:
            yield event
            event = await feed.next()
    finally:
        if not task.done():  # nobody watches: stop the sandbox job
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # it ended meanwhile: nobody is left to report to
    outcome = task.result()
    bars = outcome.result.bars
    yield BacktestEvent(bars, bars, clock(), outcome)
