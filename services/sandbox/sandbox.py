"""The server side of the sandbox: probe the host, keep a fork server, run jobs through it.

Nothing here executes strategy code. A job's result is read from a pipe as size-capped JSON
and re-validated (a backtest's job sends only signals: the engine runs here, on them); a job
that overruns is SIGKILLed by the fork server, and a fork server that misbehaves is killed
with its whole process tree and started again. Where things are: `settings` (limits, the
probe's findings), `forkserver` (the process and its frames), `scheduler` (fair slots),
`outcome` (why a job ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from services import telemetry
from services.backtesting import (
    STREAM_BYTES_PER_BAR,
    BacktestOptions,
    BacktestReport,
    MalformedSignalStream,
    StrategyFailure,
    Trade,
    lookback_for,
    simulate,
    unpack_signals,
)
from services.errors import BadInput
from services.lookahead import (
    CheckPlan,
    LookAheadVerdict,
    check_budget,
    failed_verdict,
    plan_checks,
    verdict_of,
)
from services.market_data import Bars
from services.offload import run_off_loop
from services.sandbox import launcher
from services.sandbox.errors import (
    ForkServerDown,
    InvalidStrategyOutput,
    SandboxUnavailable,
    SandboxViolation,
    StrategySandboxError,
)
from services.sandbox.forkserver import (
    ForkServer,
    ForkServerDied,
    ProgressCallback,
    ResultReader,
    quietly,
    write_input,
)
from services.sandbox.outcome import JobEnd, counted_job, ending_of, error_of_frame
from services.sandbox.scheduler import FairScheduler
from services.sandbox.settings import ProbeResult, SandboxSettings
from services.signals import InvalidSignal, normalise_signal

log = logging.getLogger("services.sandbox")

_KILL_GRACE_SECONDS = 2.0
# What a look-ahead check's answer may cost per planned call on top of the output cap: the
# bar, the history and a compared signal (action, stop, target and the order keys).
CHECK_BYTES_PER_CALL = 256
_MB = 1024 * 1024


@dataclass
class _Job:
    kind: str
    payload: bytes
    timeout: float
    cpu_seconds: int
    on_progress: ProgressCallback | None
    label: str  # run, backtest or trial_run: the metrics' kind
    max_output_bytes: int  # cap on the final frame
    owner: str  # whose job: slots are shared fairly between owners


class Sandbox:
    """Runs untrusted strategy code in isolated, resource-limited processes.

    `start()` probes the host and starts the fork server; `probe` then says which layers
    are active. Every job has an owner (a user id; jobs given none share the owner ""). Jobs
    beyond `max_concurrent_jobs` wait, and slots go round robin between the owners waiting
    (services/sandbox/scheduler.py); past their owner's own cap, or past `max_queue` waiting
    jobs in all, `SandboxBusy` is raised at once.
    """

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self.probe: ProbeResult | None = None
        self.unavailable: SandboxUnavailable | None = None  # why the last start() failed
        self.restarts = 0
        self._fork_server: ForkServer | None = None
        self._launch: launcher.Launch | None = None
        self._start_lock = asyncio.Lock()
        self.scheduler = FairScheduler(
            slots=self.settings.max_concurrent_jobs,
            max_running_per_owner=self.settings.running_per_owner,
            max_queued_per_owner=self.settings.queued_per_owner,
            max_queue=self.settings.max_queue,
        )
        self._job_ids = 0
        self._closed = False
        self._background: set[asyncio.Future[None]] = set()
        # Why the last restart of the fork server failed (None: it runs, or was never up).
        self.restart_failure: str | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def fork_server_pid(self) -> int | None:
        """Host pid of the fork server's outermost process (bwrap/unshare or python)."""
        fork_server = self._fork_server
        return None if fork_server is None or fork_server.dead else fork_server.process.pid

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> ProbeResult:
        """Probe the layers, start the fork server; raises SandboxUnavailable if the host
        offers neither seccomp nor namespaces (unless allow_unisolated)."""
        async with self._start_lock:
            running = self._fork_server
            if running is not None and not running.dead and self.probe is not None:
                return self.probe
            self._closed = False
            problems: list[str] = []
            settings = self.settings
            for launch in launcher.candidates(
                settings.namespaces, settings.python, settings.host_uid
            ):
                began = time.perf_counter()
                try:
                    fork_server = await ForkServer.spawn(launch, self.settings)
                except OSError as exc:
                    problems.append(str(exc))
                    continue
                probe = self._probe_of(fork_server, time.perf_counter() - began, problems)
                wanted = launcher.privilege_drop(self.settings.host_uid)
                if wanted is not None and probe.host_uid != wanted:
                    await fork_server.close()
                    problems.append(
                        f"{launch.method}: the fork server runs as host uid {probe.host_uid}, "
                        f"not {wanted}"
                    )
                    continue
                if not probe.isolated and not self.settings.allow_unisolated:
                    await fork_server.close()
                    problems.append(f"{launch.method}: no seccomp and no namespaces")
                    continue
                self._fork_server, self._launch, self.probe = fork_server, launch, probe
                self.unavailable = None
                log.info("sandbox started: %s", probe.summary())
                return probe
            message = (
                "The strategy sandbox cannot isolate code on this host: neither seccomp "
                "(pyseccomp + libseccomp) nor namespaces (bubblewrap or unshare) work. "
                "Run scripts/install-system-deps.sh, or set allow_unisolated=True for local "
                "development only. Details: " + "; ".join(problems)
            )
            log.error(message)
            self.unavailable = SandboxUnavailable(message, reason="NO_ISOLATION")
            raise self.unavailable

    def _probe_of(
        self, fork_server: ForkServer, elapsed: float, problems: list[str]
    ) -> ProbeResult:
        ready = fork_server.ready
        notes = list(problems)
        for key in ("seccomp_error", "landlock_error", "warmup_error"):
            if ready.get(key):
                notes.append(f"{key.split('_')[0]}: {ready[key]}")
        if ready.get("fork_server_seccomp_error"):
            notes.append(f"fork server seccomp: {ready['fork_server_seccomp_error']}")
        return ProbeResult(
            namespaces=fork_server.method,
            seccomp=bool(ready.get("seccomp")),
            landlock_abi=int(ready.get("landlock_abi") or 0),
            rlimits=True,
            python_guards=self.settings.python_guards,
            network_isolated=bool(ready.get("network_isolated")),
            user_id=int(ready.get("uid", -1)),
            host_uid=fork_server.host_uid,
            fork_server_ms=round(elapsed * 1000, 1),
            warmup_ms=float(ready.get("warmup_ms") or 0.0),
            problems=tuple(notes),
            fork_server_seccomp=bool(ready.get("fork_server_seccomp")),
        )

    @property
    def fork_server_running(self) -> bool:
        fork_server = self._fork_server
        return fork_server is not None and not fork_server.dead

    def watch(self, interval_seconds: float = 1.0) -> None:
        """Check the fork server every `interval_seconds` and restart it when it died, so a
        fork server killed while idle is back before the next job (and /readyz says so)."""
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch(interval_seconds))

    async def _watch(self, interval_seconds: float) -> None:
        while not self._closed:
            await asyncio.sleep(interval_seconds)
            fork_server = self._fork_server
            if self._closed or self._launch is None or self.probe is None:
                continue
            if fork_server is not None and not fork_server.dead:
                if fork_server.process.returncode is None:
                    continue
                fork_server.dead = True  # exited, though its socket has not said so yet
            with contextlib.suppress(SandboxUnavailable):
                await self._current_fork_server()

    async def close(self) -> None:
        """Stop the fork server; running jobs die with it."""
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        fork_server, self._fork_server = self._fork_server, None
        if fork_server is not None:
            await fork_server.close()

    async def _current_fork_server(self) -> ForkServer:
        """The running fork server, restarted with the probed launch method if it died."""
        if self._closed:
            raise SandboxUnavailable("the sandbox is closed", reason="CLOSED")
        fork_server = self._fork_server
        if fork_server is not None and not fork_server.dead:
            return fork_server
        if self._launch is None or self.probe is None:
            await self.start()
            assert self._fork_server is not None
            return self._fork_server
        async with self._start_lock:
            if self._fork_server is not None and not self._fork_server.dead:
                return self._fork_server
            if fork_server is not None:
                await fork_server.close()
            try:
                fresh = await ForkServer.spawn(self._launch, self.settings)
            except OSError as exc:
                raise self._restart_failed(str(exc)) from exc
            if (
                bool(fresh.ready.get("seccomp")) != self.probe.seccomp
                or bool(fresh.ready.get("fork_server_seccomp")) != self.probe.fork_server_seccomp
                or fresh.host_uid != self.probe.host_uid
            ):
                await fresh.close()
                raise self._restart_failed("the restarted fork server lost a layer")
            self._fork_server = fresh
            self.restarts += 1
            self.restart_failure = None
            log.warning("sandbox fork server restarted (%d so far)", self.restarts)
            return fresh

    def _restart_failed(self, why: str) -> ForkServerDown:
        """Log why (once per failure streak, at ERROR; the details are for the operator),
        and answer the client without them."""
        if self.restart_failure is None:
            log.error(
                "sandbox fork server could not be restarted: %s; strategy execution answers "
                "SERVICE_UNAVAILABLE until a restart succeeds",
                why,
                extra={"fork_server": "restart_failed"},
            )
        self.restart_failure = why
        return ForkServerDown(reason="RESTART_FAILED")

    # --- public job kinds -----------------------------------------------------------------

    async def run_signal(
        self,
        code: str,
        market_data: Bars,
        params: dict[str, Any],
        *,
        timeout_seconds: float = 2.0,
        owner: str = "",
    ) -> dict[str, Any]:
        """One `execute_strategy` call on the last bars of `market_data` (the strategy's
        look-back window, as in a backtest); returns the normalised signal."""
        return await self._signal(code, market_data, params, timeout_seconds, "run", owner)

    def lookback_of(self, code: str) -> int:
        """The look-back window `code` runs with (services/backtesting.py, `lookback_for`).
        Parses the code: CPU work, cached per text (services/code_ast.py)."""
        settings = self.settings
        return lookback_for(code, settings.lookback_bars, settings.lookback_max_bars)

    async def _signal(
        self, code: str, bars: Bars, params: dict[str, Any], seconds: float, label: str, owner: str
    ) -> dict[str, Any]:
        if not isinstance(code, str):
            raise TypeError("code must be a str")
        window = await run_off_loop(self.lookback_of, code)
        if isinstance(bars, Bars) and len(bars) > window:
            bars = bars_at(bars, slice(len(bars) - window, len(bars)))
        job = self._job("signal", code, bars, params, seconds, None, label, owner)
        with counted_job(label):
            value = await self._run(job)
            try:
                return normalise_signal(value)  # the child is untrusted: check again here
            except InvalidSignal as exc:
                raise InvalidStrategyOutput(str(exc)) from None

    async def run_backtest(
        self,
        code: str,
        bars: Bars,
        params: dict[str, Any],
        options: BacktestOptions,
        *,
        timeout_seconds: float = 30.0,
        on_progress: ProgressCallback | None = None,
        owner: str = "",
        check_look_ahead: bool = True,
    ) -> BacktestReport:
        """A backtest in two halves: the job process only calls the strategy bar by bar and
        streams its signals back; here, off the event loop, every signal is checked again and
        the engine derives fills, trades, equity and metrics. Then, unless told not to, the
        look-ahead check (`look_ahead_check`), whose verdict goes in the report's look_ahead.
        Returns the engine's report."""
        try:
            options.check()
        except (ValueError, AttributeError) as exc:
            raise BadInput(f"invalid backtest options: {exc}", reason="INVALID_OPTIONS") from None
        if not isinstance(code, str):
            raise TypeError("code must be a str")
        window = await run_off_loop(self.lookback_of, code)
        job = await run_off_loop(  # the payload is the bars' bytes: 48 MB at a million
            self._job,
            "backtest",
            code,
            bars,
            params,
            timeout_seconds,
            on_progress,
            "backtest",
            owner,
            {"lookback": window},
        )
        started = time.perf_counter()
        with counted_job("backtest"):
            packed = await self._run(job)
            result, signals = await run_off_loop(_simulated, bars, packed, options)
        result = replace(result, lookback=window)
        if check_look_ahead:
            backtest_seconds = time.perf_counter() - started
            verdict = await self.look_ahead_check(
                code, bars, params, signals, result.trades, timeout_seconds, owner, window
            )
            # Marked where every reader of the numbers sees it (report_json's metrics too).
            look_ahead = {**verdict.as_json(), "backtestSeconds": backtest_seconds}
            result = replace(result, look_ahead=look_ahead)
        return result

    async def look_ahead_check(
        self,
        code: str,
        bars: Bars,
        params: dict[str, Any],
        signals: list[dict[str, Any] | None],
        trades: Sequence[Trade],
        timeout_seconds: float,
        owner: str = "",
        lookback: int | None = None,
    ) -> LookAheadVerdict:
        """The proof of no look-ahead for a run whose checked `signals` and `trades` are
        known (services/lookahead.py): one sandbox job re-runs the planned bars on data that
        ends at each of them, and the signals are compared here. `lookback` is the window
        the run used (None: `lookback_of(code)`); the job receives only the windows that end
        at the planned bars. Optimisation runs and walk-forward folds are to get their
        verdict from here too."""
        if lookback is None:
            lookback = await run_off_loop(self.lookback_of, code)
        budget = check_budget(len(bars), self.settings.lookahead_check_pct)
        # Off the loop: at a million bars, planning and seeding take a good part of a second.
        plan = await run_off_loop(_plan, bars, signals, trades, budget, lookback)
        if not plan.bars:
            return verdict_of(plan, signals, [], check_seconds=0.0)
        # Only the windows the checks need, and nothing after the last checked bar.
        windows, checks = await run_off_loop(check_windows, bars, plan)
        job = await run_off_loop(
            self._job,
            "lookahead",
            code,
            windows,
            params,
            timeout_seconds,
            None,
            "lookahead",
            owner,
            {"checks": checks},
        )
        started = time.perf_counter()
        with counted_job("lookahead"):
            try:
                results = await self._run(job)
            except StrategySandboxError as exc:
                return failed_verdict(plan, exc.message, time.perf_counter() - started)
        return verdict_of(plan, signals, results, check_seconds=time.perf_counter() - started)

    async def run_backtest_batch(
        self,
        code: str,
        bars: Bars,
        param_sets: list[dict[str, Any]],
        options: BacktestOptions,
        *,
        timeout_seconds: float,
        owner: str = "",
    ) -> list[BatchRun]:
        """Backtests of one strategy on the same bars with each of `param_sets` (an
        optimisation's batch): ONE sandbox job gets the bars once and sends back a packed
        signal stream per set; here, off the event loop, each stream is checked and run
        through the engine. A set whose run failed gets its message and the rest go on; a
        failure of the job as a whole (timeout, memory, a broken protocol) raises as for a
        backtest. No look-ahead check: the caller checks the parameters it keeps."""
        try:
            options.check()
        except (ValueError, AttributeError) as exc:
            raise BadInput(f"invalid backtest options: {exc}", reason="INVALID_OPTIONS") from None
        count = len(param_sets)
        if count == 0:
            return []
        # A stream per set: the cap grows with the sets as a backtest's does with the bars.
        cap = self.settings.max_output_bytes + STREAM_BYTES_PER_BAR * len(bars) * count
        # The same window as a backtest of these parameters, or trials would not match it.
        window = await run_off_loop(self.lookback_of, code)
        job = self._job(
            "signal_batch",
            code,
            bars,
            {},
            timeout_seconds,
            None,
            "backtest_batch",
            owner,
            {
                "param_sets": [dict(params) for params in param_sets],
                "max_output_bytes": cap,
                "lookback": window,
            },
        )
        job.max_output_bytes = cap
        with counted_job("backtest_batch"):
            value = await self._run(job)
            if type(value) is not list or len(value) != count:
                raise SandboxViolation(
                    "the strategy process broke the result protocol (batch size)",
                    layer="protocol",
                )
            return await run_off_loop(_batch_runs, bars, value, options, self._limits())

    def _limits(self) -> dict[str, Any]:
        return {"memoryLimitMb": self.settings.memory_limit_mb}

    async def trial_run(
        self, code: str, bars: Bars, params: dict[str, Any], *, owner: str = ""
    ) -> list[str]:
        """Run the strategy once on sample data; the problems found, [] when it works."""
        try:
            timeout = self.settings.trial_run_timeout_seconds
            await self._signal(code, bars, params, timeout, "trial_run", owner)
        except StrategySandboxError as exc:
            return [exc.message]
        return []

    # --- machinery --------------------------------------------------------------------------

    def _job(
        self,
        kind: str,
        code: str,
        bars: Bars,
        params: dict[str, Any],
        timeout: float,
        on_progress: ProgressCallback | None,
        label: str,
        owner: str,
        extra: dict[str, Any] | None = None,
    ) -> _Job:
        if not isinstance(code, str):
            raise TypeError("code must be a str")
        if not isinstance(owner, str):
            raise TypeError("owner must be a str")
        if not isinstance(bars, Bars):
            raise TypeError("market data must be Bars")
        if not (isinstance(timeout, int | float) and 0 < timeout <= 3600):
            raise ValueError("timeout_seconds must be in (0, 3600]")
        settings = self.settings
        cpu_seconds = math.ceil(timeout) + 1  # a backstop: the wall clock is the real limit
        max_output = settings.max_output_bytes
        if kind == "backtest":  # a signal stream grows with the bars
            max_output += STREAM_BYTES_PER_BAR * len(bars)
        elif kind == "lookahead":  # one compared signal per call, as many as it plans
            calls = sum(1 + len(check[1]) for check in (extra or {}).get("checks", ()))
            max_output += CHECK_BYTES_PER_CALL * calls
        payload = {
            "kind": kind,
            "code": code,
            "bars": bars.to_bytes(),
            "params": dict(params or {}),
            "guards": settings.python_guards,
            "cpu_seconds": cpu_seconds,
            "memory_bytes": settings.memory_limit_mb * _MB,
            "recursion_limit": settings.recursion_limit,
            "max_output_bytes": max_output,
            "progress": on_progress is not None,
            # About a hundred reports for a progress bar, however long the data.
            "progress_every": min(settings.progress_every, max(1, len(bars) // 100)),
            **(extra or {}),
        }
        return _Job(
            kind,
            pickle.dumps(payload, protocol=5),
            timeout,
            cpu_seconds,
            on_progress,
            label,
            max_output,
            owner,
        )

    async def _run(self, job: _Job) -> Any:
        async with self.scheduler.slot(job.owner):
            for attempt in range(2):
                fork_server = await self._current_fork_server()
                try:
                    return await self._run_once(fork_server, job)
                except ForkServerDied:
                    if attempt:
                        log.error("the sandbox's fork server died twice while running a job")
                        raise ForkServerDown(reason="FORK_SERVER_DIED") from None
                    log.warning("fork server died during a job; restarting and retrying")
        raise AssertionError("unreachable")

    async def _run_once(self, fork_server: ForkServer, job: _Job) -> Any:
        loop = asyncio.get_running_loop()
        self._job_ids += 1
        job_id = self._job_ids
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        exit_future = fork_server.expect_exit(job_id)
        killed = False

        def kill() -> None:
            nonlocal killed
            if not killed:
                killed = True
                task = asyncio.ensure_future(
                    quietly(fork_server.send({"op": "kill", "job": job_id}))
                )
                self._background.add(task)
                task.add_done_callback(self._background.discard)

        reader = ResultReader(job.max_output_bytes, job.on_progress, kill)
        try:
            await fork_server.send({"op": "run", "job": job_id}, (in_r, out_w))
        except BaseException:
            for fd in (in_w, out_r):
                os.close(fd)
            exit_future.cancel()
            raise
        finally:
            os.close(in_r)
            os.close(out_w)
        try:
            transport, _ = await loop.connect_read_pipe(lambda: reader, os.fdopen(out_r, "rb", 0))
        except BaseException:
            os.close(in_w)
            kill()
            raise
        # Not cancelled on the way out: it ends by itself once the job's end closes.
        writer = asyncio.ensure_future(write_input(in_w, job.payload))
        timed_out = False
        done = asyncio.gather(reader.done, exit_future)
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            try:
                await asyncio.wait_for(asyncio.shield(done), job.timeout)
            except TimeoutError:
                timed_out = not reader.overflow and not reader.violation
                kill()
            try:
                result = await asyncio.wait_for(exit_future, _KILL_GRACE_SECONDS)
            except TimeoutError:
                # The fork server did not reap the job in time: kill the whole tree.
                log.error("fork server did not kill job %d; restarting it", job_id)
                await fork_server.close()
                raise ForkServerDied() from None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader.done), _KILL_GRACE_SECONDS)
        finally:
            if not exit_future.done():
                kill()  # cancelled by the caller: the job must not run on
                telemetry.record_sandbox_kill(job.label, "cancelled")
            transport.close()
            self._background.add(writer)
            writer.add_done_callback(self._background.discard)
        ending = ending_of(
            JobEnd(
                exit=result,
                timed_out=timed_out,
                overflow=reader.overflow,
                violation=reader.violation,
                final=reader.final,
                timeout_seconds=job.timeout,
                cpu_seconds=job.cpu_seconds,
                max_output_bytes=job.max_output_bytes,
                memory_limit_mb=self.settings.memory_limit_mb,
            )
        )
        if ending.kill_reason is not None:
            telemetry.record_sandbox_kill(job.label, ending.kill_reason)
        if ending.error is not None:
            raise ending.error
        return ending.value


def check_windows(bars: Bars, plan: CheckPlan) -> tuple[Bars, list[list[Any]]]:
    """The bars the look-ahead job receives (the union of the windows that end at the
    planned bars, in order) and its checks: [bar, history lengths, the bar's position in
    those bars, the window's length]. With a window of a few hundred bars a long backtest's
    check job gets a small part of the data, and never a bar after the last checked one."""
    needed = np.zeros(plan.last_bar + 1, dtype=bool)
    for bar in plan.bars:
        needed[max(0, bar + 1 - plan.lookback) : bar + 1] = True
    positions = np.flatnonzero(needed)
    local = np.searchsorted(positions, plan.bars).tolist()
    checks = [
        [bar, list(plan.warmup.get(bar, ())), at, min(plan.lookback, bar + 1)]
        for bar, at in zip(plan.bars, local, strict=True)
    ]
    return bars_at(bars, positions), checks


def bars_at(bars: Bars, positions: np.ndarray | slice) -> Bars:
    """The bars at `positions` (ascending indices, or a slice), as new Bars."""
    ts = bars.timestamp
    return Bars(
        timestamp=None if ts is None else ts[positions],
        open=bars.open[positions],
        high=bars.high[positions],
        low=bars.low[positions],
        close=bars.close[positions],
        volume=bars.volume[positions],
        symbol=bars.symbol,
        timeframe=bars.timeframe,
    )


def _plan(
    bars: Bars,
    signals: list[dict[str, Any] | None],
    trades: Sequence[Trade],
    budget: int,
    lookback: int,
) -> CheckPlan:
    return plan_checks(
        len(bars), trades, budget=budget, seed=_seed_of(bars, signals), lookback=lookback
    )


def _seed_of(bars: Bars, signals: list[dict[str, Any] | None]) -> int:
    """The random sample's seed: the same backtest checks the same bars (reproducible)."""
    digest = hashlib.sha256(bars.close.tobytes())
    digest.update("".join("h" if s is None else s["action"][0] for s in signals).encode())
    return int.from_bytes(digest.digest()[:8], "big")


@dataclass(frozen=True)
class BatchRun:
    """One parameter set's run in a batch: the engine's result, or why there is none."""

    result: BacktestReport | None
    signals: list[dict[str, Any] | None] | None
    error: str | None = None


def _batch_runs(
    bars: Bars, reports: list[Any], options: BacktestOptions, limits: dict[str, Any]
) -> list[BatchRun]:
    runs: list[BatchRun] = []
    for report in reports:
        if type(report) is dict and "error" in report and type(report["error"]) is dict:
            error = error_of_frame(report["error"], limits)
            runs.append(BatchRun(None, None, error.message))
            continue
        if type(report) is not dict or "signals" not in report:
            raise SandboxViolation(
                "the strategy process broke the result protocol (batch entry)", layer="protocol"
            )
        try:
            result, signals = _simulated(bars, report["signals"], options)
        except InvalidStrategyOutput as exc:
            runs.append(BatchRun(None, None, exc.message))
            continue
        runs.append(BatchRun(result, signals))
    return runs


def backtest_from_stream(bars: Bars, packed: object, options: BacktestOptions) -> BacktestReport:
    """Check a job's packed signal stream and run the engine on it (trusted, CPU-bound)."""
    return _simulated(bars, packed, options)[0]


def _simulated(
    bars: Bars, packed: object, options: BacktestOptions
) -> tuple[BacktestReport, list[dict[str, Any] | None]]:
    """The engine's result and the checked signals it ran on."""
    try:
        signals = unpack_signals(packed, len(bars))
        return simulate(bars, signals, options), signals
    except StrategyFailure as failure:
        bar = failure.bar_index
        raise InvalidStrategyOutput(
            f"invalid strategy output: {failure.original} (bar {bar})",
            exceptionType=type(failure.original).__name__,
            line=None,
            barIndex=bar,
        ) from None
    except MalformedSignalStream as exc:
        raise SandboxViolation(
            f"the strategy process broke the result protocol ({exc})", layer="protocol"
        ) from None
