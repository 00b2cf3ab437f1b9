"""Every parse and walk of untrusted code, in a small pool of worker processes.

Parsing and walking code is CPU-bound and holds the GIL: a 64 KiB chained comparison
(`x = a<a<...<1`) takes ~0.2 s to validate, and thirty of them in one request froze every
other request, `/healthz` included, for seconds (issue 10). A thread would not help; so the
validator, the parameter and description extraction and the extraction of code from a model's
answer all run here, in `pebble` worker processes: pebble kills a task past its time bound and
replaces the worker, which `concurrent.futures.ProcessPoolExecutor` cannot do. The workers run
at a lower CPU priority, under a memory rlimit, and start from a fork server (a clean process:
forking the threaded server itself is unsafe).

Code sent by a user also costs them: `UserCodeChecks.check` is the one way in for it, and charges
the request's allowance (code bytes summed over one operation's fields, so aliases and
variables add up) and the user's budget (KiB per minute, on the rate-limit storage) first.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import multiprocessing
import os
import resource
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures.process import BrokenProcessPool
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from services.code_rules import MAX_CODE_BYTES
from services.errors import BadInput, RateLimited
from services.extraction import extract_code
from services.providers.base import ResponsePart
from services.rate_limits import RateLimit
from services.validation import (
    ValidationReport,
    extract_default_params,
    extract_description,
    validate_code,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Tasks waiting or running per worker before more are refused (RATE_LIMITED, retry in 1 s):
# the queue must not grow without bound while the pool is saturated.
MAX_PENDING_PER_WORKER = 32
# Workers yield the CPU to the server's event loop (nice(2): higher is kinder).
WORKER_NICENESS = 10


@dataclass(frozen=True)
class CodeAnalysis:
    """What the static analysis of one code text found."""

    report: ValidationReport
    parameters: dict[str, Any]  # DEFAULT_PARAMS, JSON-safe ({} when absent)
    description: str  # the docstring's first paragraph ("" when absent)


@dataclass(frozen=True)
class AnswerAnalysis:
    """The code found in a model's answer and its analysis."""

    code: str
    analysis: CodeAnalysis


class CodeTooComplex(BadInput):
    """The code exceeded the analysis' time or memory bound: refused, never half-checked."""


class AnalysisBusy(RateLimited):
    """Too many analyses are waiting already."""


def analyse_code(code: str) -> CodeAnalysis:
    """Validation, parameters and description of `code` (one parse: parse_module caches it).
    Runs in a worker process; tests may call it directly."""
    return CodeAnalysis(
        report=validate_code(code),
        parameters=extract_default_params(code),
        description=extract_description(code),
    )


def analyse_answer(parts: list[ResponsePart]) -> AnswerAnalysis | None:
    """The strategy's code in a model's answer, analysed; None when it holds no code."""
    code = extract_code(parts)
    return None if code is None else AnswerAnalysis(code, analyse_code(code))


def code_size(code: str) -> int:
    return len(code.encode("utf-8", "surrogatepass"))


def check_code_size(code: str) -> int:
    """The code's size in bytes, or BAD_USER_INPUT past MAX_CODE_BYTES (nothing is parsed)."""
    size = code_size(code)
    if size > MAX_CODE_BYTES:
        raise BadInput(f"code must be at most {MAX_CODE_BYTES} bytes")
    return size


class CodeAllowance:
    """Code bytes one GraphQL operation may have checked, summed over all its fields."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0

    def take(self, size: int) -> None:
        if self.used + size > self.max_bytes:
            raise BadInput(
                f"This request carries more than {self.max_bytes} bytes of code to check; "
                "send the code in several requests"
            )
        self.used += size


# Set per operation by the schema (schema/context.py); None outside the API (the CLI).
CURRENT_CODE_ALLOWANCE: ContextVar[CodeAllowance | None] = ContextVar(
    "code_allowance", default=None
)


def _start_worker(memory_bytes: int) -> None:
    """Worker start-up: a lower priority and an address-space limit."""
    os.nice(WORKER_NICENESS)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


class CodeAnalyser:
    """The pool of workers (started at first use).

    Workers start from multiprocessing's fork server, which re-imports a `__main__` run as a
    script path (not one run with `-m`, as the server and pytest are): such a script must
    guard its entry point with `if __name__ == "__main__":`."""

    def __init__(
        self, *, workers: int = 2, timeout_seconds: float = 1.0, memory_mb: int = 512
    ) -> None:
        self.workers = workers
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.max_pending = workers * MAX_PENDING_PER_WORKER
        self._pending = 0
        self._pool: ProcessPool | None = None

    async def start(self) -> None:
        """Start the workers now (at server start-up) rather than at the first request."""
        await self.analyse("")

    async def analyse(self, code: str) -> CodeAnalysis:
        return await self._run(analyse_code, code)

    async def analyse_answer(self, parts: list[ResponsePart]) -> AnswerAnalysis | None:
        return await self._run(analyse_answer, parts)

    async def _run(self, function: Any, argument: Any) -> Any:
        if self._pending >= self.max_pending:
            raise AnalysisBusy(
                "Too many code checks are waiting; retry in 1 s", retry_after_seconds=1
            )
        self._pending += 1
        try:
            future = self._started().schedule(
                function, args=(argument,), timeout=self.timeout_seconds
            )
            try:
                return await asyncio.wrap_future(future)
            except TimeoutError:
                raise CodeTooComplex(
                    f"The code took too long to analyse (over {self.timeout_seconds:g} s); "
                    "simplify it"
                ) from None
            except (MemoryError, ProcessExpired):
                raise CodeTooComplex(
                    "The code needs too much memory to analyse; simplify it"
                ) from None
            except FutureCancelled:  # the pool was stopped under us (shutdown)
                raise asyncio.CancelledError from None
            except BrokenProcessPool:
                # Workers that cannot even start (say, out of processes): start afresh next
                # time; this analysis fails as an internal error.
                await self.close()
                raise
        finally:
            self._pending -= 1

    def _started(self) -> ProcessPool:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self._pool = ProcessPool(
                max_workers=self.workers,
                initializer=_start_worker,
                initargs=(self.memory_mb * 1024 * 1024,),
                context=context,
            )
            # Pebble's workers are not daemons: an analyser nobody closed must not keep the
            # interpreter from exiting (atexit runs this before multiprocessing joins them).
            atexit.register(self._stop_now)
        return self._pool

    def _stop_now(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            atexit.unregister(self._stop_now)
            pool.stop()
            pool.join(timeout=10)

    async def close(self) -> None:
        """Stop the workers (a running analysis is abandoned); safe to call twice."""
        await asyncio.to_thread(self._stop_now)


class UserCodeChecks:
    """The one way in for code a user sent (validateCode with or without its trial run,
    updateStrategy, createStrategy): its size, the operation's allowance and the user's
    budget (KiB per minute, `budget`) are charged before any parsing."""

    def __init__(
        self, analyser: CodeAnalyser, budget: RateLimit | None, per_operation_bytes: int
    ) -> None:
        self.analyser = analyser
        self.budget = budget
        self.per_operation_bytes = per_operation_bytes  # each operation's CodeAllowance

    async def check(self, user_key: str, code: str) -> CodeAnalysis:
        size = check_code_size(code)
        allowance = CURRENT_CODE_ALLOWANCE.get()
        if allowance is not None:
            allowance.take(size)
        if self.budget is not None:
            await self.budget.hit(user_key, cost=max(1, math.ceil(size / 1024)))
        return await self.analyser.analyse(code)
