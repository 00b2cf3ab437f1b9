"""The server side of the sandbox: probe the host, keep a fork server, run jobs through it.

Nothing here executes strategy code. A job's result is read from a pipe as size-capped JSON
and re-validated (a backtest's job sends only signals: the engine runs here, on them); a job
that overruns is SIGKILLed by the fork server, and a fork server that misbehaves is killed
with its whole process tree and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import pickle
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services import metrics
from services.backtesting import (
    STREAM_BYTES_PER_BAR,
    BacktestOptions,
    MalformedSignalStream,
    StrategyFailure,
    simulate,
    unpack_signals,
)
from services.errors import BadInput, ServiceError
from services.market_data import Bars
from services.offload import run_off_loop
from services.sandbox import launcher, protocol
from services.sandbox.child import EXIT_SETUP_FAILED
from services.sandbox.errors import (
    ExecutionTimeout,
    InvalidStrategyOutput,
    MemoryLimitExceeded,
    OutputTooLarge,
    SandboxUnavailable,
    SandboxViolation,
    StrategyRuntimeError,
    StrategySandboxError,
)
from services.sandbox.scheduler import FairScheduler
from services.signals import InvalidSignal, normalise_signal

log = logging.getLogger("services.sandbox")

ProgressCallback = Callable[[int, int], None]
_KILL_GRACE_SECONDS = 2.0
_PROGRESS_ALLOWANCE = 256 * 1024  # bytes of progress frames on top of the result cap
_MB = 1024 * 1024


@dataclass(frozen=True)
class SandboxSettings:
    """Limits and layer choices. The defaults are the production ones."""

    max_concurrent_jobs: int = max(1, os.cpu_count() or 1)
    max_queue: int = 32  # waiting jobs of all owners together: a memory backstop
    # Per owner (user); None derives them: all slots but one, so one always stays for the
    # other owners (README, Benchmarks: bench/sandbox_fairness.py), and a quarter of
    # max_queue, at most 4 per slot, so that one owner alone never reaches max_queue.
    max_running_per_owner: int | None = None
    max_queued_per_owner: int | None = None
    memory_limit_mb: int = 512  # address space a job may add to the fork server's own
    max_output_bytes: int = 1 * _MB
    recursion_limit: int = 1000
    progress_every: int = 500  # bars between progress reports at most
    smoke_timeout_seconds: float = 2.0
    start_timeout_seconds: float = 60.0
    namespaces: str = "auto"  # "auto", "bwrap", "unshare" or "none"
    seccomp: bool = True
    landlock: bool = True
    allow_unisolated: bool = False  # run with neither seccomp nor namespaces (dev only)
    python_guards: bool = True  # False only in tests that prove the OS layers alone hold
    python: str = field(default_factory=lambda: sys.executable)
    # The host uid (and gid) of the fork server and jobs when the server runs as root.
    host_uid: int = launcher.DEFAULT_HOST_UID

    def __post_init__(self) -> None:
        if self.namespaces not in ("auto", "bwrap", "unshare", "none"):
            raise ValueError(f"namespaces must be auto, bwrap, unshare or none: {self.namespaces}")
        for name in ("max_concurrent_jobs", "memory_limit_mb", "max_output_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_queue < 0 or self.recursion_limit < 50 or self.progress_every < 1:
            raise ValueError("max_queue >= 0, recursion_limit >= 50 and progress_every >= 1")
        if not 0 < self.host_uid < 2**32 - 1:
            raise ValueError(f"host_uid must be in [1, 4294967294]: {self.host_uid}")
        if self.max_running_per_owner is not None and self.max_running_per_owner < 1:
            raise ValueError("max_running_per_owner must be at least 1")
        if self.max_queued_per_owner is not None and self.max_queued_per_owner < 0:
            raise ValueError("max_queued_per_owner must be at least 0")

    @property
    def running_per_owner(self) -> int:
        """Slots one owner may hold at once: by default all but one, so that a newcomer never
        waits for another owner's jobs to end, however long (backtests) they are."""
        if self.max_running_per_owner is None:
            return max(1, self.max_concurrent_jobs - 1)
        return min(self.max_running_per_owner, self.max_concurrent_jobs)

    @property
    def queued_per_owner(self) -> int:
        """Jobs one owner may have waiting at once."""
        if self.max_queued_per_owner is not None:
            return self.max_queued_per_owner
        return max(min(1, self.max_queue), min(4 * self.max_concurrent_jobs, self.max_queue // 4))


@dataclass(frozen=True)
class ProbeResult:
    """Which isolation layers are active for this sandbox, as measured at start-up."""

    namespaces: str  # "bwrap", "unshare" or "none"
    seccomp: bool
    landlock_abi: int  # 0 when Landlock is not applied
    rlimits: bool
    python_guards: bool
    network_isolated: bool
    user_id: int  # the fork server's uid as it sees itself
    host_uid: int  # the fork server's uid on the host, read from /proc (-1: unknown)
    fork_server_ms: float  # spawn to ready, warm-up included
    warmup_ms: float
    problems: tuple[str, ...] = ()
    fork_server_seccomp: bool = False  # the fork server's own filter (jobs add theirs)

    @property
    def isolated(self) -> bool:
        """Seccomp or namespaces: the minimum the runner accepts without allow_unisolated."""
        return self.seccomp or self.namespaces != "none"

    @property
    def layers(self) -> tuple[str, ...]:
        active = []
        if self.python_guards:
            active.append("python-guards")
        if self.rlimits:
            active.append("rlimits")
        if self.seccomp:
            active.append("seccomp")
        if self.landlock_abi:
            active.append(f"landlock-v{self.landlock_abi}")
        if self.namespaces != "none":
            active.append(f"namespaces:{self.namespaces}")
        return tuple(active)

    def summary(self) -> str:
        text = (
            f"layers={','.join(self.layers)} network_isolated={self.network_isolated} "
            f"uid={self.user_id} host_uid={self.host_uid} "
            f"fork_server_seccomp={self.fork_server_seccomp} "
            f"fork_server_ms={self.fork_server_ms:.0f} "
            f"warmup_ms={self.warmup_ms:.0f}"
        )
        if self.problems:
            text += " problems=" + "; ".join(self.problems)
        return text


@dataclass(frozen=True)
class _Exit:
    code: int | None
    signal: int | None
    cpu: float
    maxrss_kb: int
    error: str | None = None  # the fork server could not start the job


class _ZygoteDied(Exception):
    """The fork server vanished while a job was in flight."""


class _Zygote:
    """Handle on one fork-server process and its control socket."""

    def __init__(
        self, process: asyncio.subprocess.Process, sock: socket.socket, method: str
    ) -> None:
        self.process = process
        self.sock = sock
        self.method = method
        self.ready: dict[str, Any] = {}
        self.host_uid = -1
        self.dead = False
        self._waiters: dict[int, asyncio.Future[_Exit]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr_tail: list[str] = []

    @classmethod
    async def spawn(cls, launch: launcher.Launch, settings: SandboxSettings) -> _Zygote:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = json.dumps(
            {
                "ctl_fd": child_sock.fileno(),
                "seccomp": settings.seccomp,
                "landlock": settings.landlock,
                "host_uid": settings.host_uid,
            }
        )
        argv = [*launch.argv, *launcher.python_argv(settings.python, config)]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(child_sock.fileno(),),
                env=launch.env,
                start_new_session=True,
            )
        except OSError:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        parent_sock.setblocking(False)
        zygote = cls(process, parent_sock, launch.method)
        zygote._stderr_task = asyncio.create_task(zygote._drain_stderr())
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(
                loop.sock_recv(parent_sock, 65536), settings.start_timeout_seconds
            )
            ready = json.loads(data) if data else {}
        except (TimeoutError, ValueError, OSError):
            ready = {}
        if ready.get("ev") != "ready":
            await zygote.close()
            tail = " | ".join(zygote._stderr_tail[-5:]) or "no output"
            raise OSError(f"{launch.method}: fork server did not start ({tail})")
        zygote.ready = ready
        zygote.host_uid = _host_uid(process.pid, int(ready.get("pid", -1)))
        zygote._reader = asyncio.create_task(zygote._read_events())
        return zygote

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr_tail = [*self._stderr_tail[-19:], text]
            log.debug("fork server: %s", text)

    async def _read_events(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(self.sock, 65536)
                if not data:
                    break
                event = json.loads(data)
                if event.get("ev") != "exit":
                    continue
                waiter = self._waiters.pop(int(event["job"]), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(
                        _Exit(
                            code=event.get("code"),
                            signal=event.get("signal"),
                            cpu=float(event.get("cpu") or 0.0),
                            maxrss_kb=int(event.get("maxrss_kb") or 0),
                            error=str(event["error"]) if event.get("error") else None,
                        )
                    )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("fork server connection failed: %s", exc)
        finally:
            self._mark_dead()

    def _mark_dead(self) -> None:
        self.dead = True
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(_ZygoteDied())
        self._waiters.clear()

    def expect_exit(self, job: int) -> asyncio.Future[_Exit]:
        future: asyncio.Future[_Exit] = asyncio.get_running_loop().create_future()
        if self.dead:
            future.set_exception(_ZygoteDied())
        else:
            self._waiters[job] = future
        return future

    async def send(self, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
        """sendmsg with SCM_RIGHTS; asyncio has no such call, so wait for writability."""
        if self.dead:
            raise _ZygoteDied()
        payload = json.dumps(message).encode()
        loop = asyncio.get_running_loop()
        while True:
            try:
                socket.send_fds(self.sock, [payload], list(fds))
                return
            except BlockingIOError:
                ready: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self.sock, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(self.sock)
            except OSError as exc:
                self._mark_dead()
                raise _ZygoteDied() from exc

    async def close(self) -> None:
        """Kill the fork server's whole process tree (bwrap/unshare kill the namespace)."""
        self._mark_dead()
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 5)
        if self._reader is not None:
            self._reader.cancel()
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._stderr_task, 1)
        self.sock.close()


class _ResultReader(asyncio.Protocol):
    """Parses a job's frames as they arrive; stops reading past the byte cap."""

    def __init__(
        self, max_frame: int, on_progress: ProgressCallback | None, abort: Callable[[], None]
    ) -> None:
        self.max_frame = max_frame
        self.max_total = max_frame + protocol.FRAME_HEADER.size + _PROGRESS_ALLOWANCE
        self.on_progress = on_progress
        self.abort = abort
        self.buffer = bytearray()
        self.total = 0
        self.final: dict[str, Any] | None = None
        self.overflow = False
        self.violation = ""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def _stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.abort()

    def data_received(self, data: bytes) -> None:
        if self.overflow or self.violation:
            return
        self.total += len(data)
        if self.total > self.max_total:
            self.overflow = True
            self._stop()
            return
        self.buffer += data
        header = protocol.FRAME_HEADER.size
        while len(self.buffer) >= header:
            (length,) = protocol.FRAME_HEADER.unpack_from(self.buffer)
            if length > self.max_frame:
                self.overflow = True
                self._stop()
                return
            if len(self.buffer) < header + length:
                return
            body = bytes(self.buffer[header : header + length])
            del self.buffer[: header + length]
            try:
                self._on_frame(protocol.decode_body(body))
            except ValueError as exc:
                self.violation = str(exc)
                self._stop()
                return

    def _on_frame(self, message: dict[str, Any]) -> None:
        if self.final is not None:
            raise ValueError("data after the final frame")
        kind = message["t"]
        if kind == protocol.PROGRESS:
            done, total = message.get("done"), message.get("total")
            if type(done) is not int or type(total) is not int or not 0 <= done <= total:
                raise ValueError("malformed progress frame")
            if self.on_progress is not None:
                try:
                    self.on_progress(done, total)
                except Exception:  # the caller's callback must not break the job
                    log.exception("on_progress callback failed")
        elif kind in (protocol.OK, protocol.ERROR):
            self.final = message
        else:
            raise ValueError(f"unknown frame type {kind[:20]!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class _Job:
    kind: str
    payload: bytes
    timeout: float
    cpu_seconds: int
    on_progress: ProgressCallback | None
    label: str  # run, backtest or smoke: the metrics' kind
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
        self._zygote: _Zygote | None = None
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

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def fork_server_pid(self) -> int | None:
        """Host pid of the fork server's outermost process (bwrap/unshare or python)."""
        zygote = self._zygote
        return None if zygote is None or zygote.dead else zygote.process.pid

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> ProbeResult:
        """Probe the layers, start the fork server; raises SandboxUnavailable if the host
        offers neither seccomp nor namespaces (unless allow_unisolated)."""
        async with self._start_lock:
            if self._zygote is not None and not self._zygote.dead and self.probe is not None:
                return self.probe
            self._closed = False
            problems: list[str] = []
            settings = self.settings
            for launch in launcher.candidates(
                settings.namespaces, settings.python, settings.host_uid
            ):
                began = time.perf_counter()
                try:
                    zygote = await _Zygote.spawn(launch, self.settings)
                except OSError as exc:
                    problems.append(str(exc))
                    continue
                probe = self._probe_of(zygote, time.perf_counter() - began, problems)
                wanted = launcher.privilege_drop(self.settings.host_uid)
                if wanted is not None and probe.host_uid != wanted:
                    await zygote.close()
                    problems.append(
                        f"{launch.method}: the fork server runs as host uid {probe.host_uid}, "
                        f"not {wanted}"
                    )
                    continue
                if not probe.isolated and not self.settings.allow_unisolated:
                    await zygote.close()
                    problems.append(f"{launch.method}: no seccomp and no namespaces")
                    continue
                self._zygote, self._launch, self.probe = zygote, launch, probe
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

    def _probe_of(self, zygote: _Zygote, elapsed: float, problems: list[str]) -> ProbeResult:
        ready = zygote.ready
        notes = list(problems)
        for key in ("seccomp_error", "landlock_error", "warmup_error"):
            if ready.get(key):
                notes.append(f"{key.split('_')[0]}: {ready[key]}")
        if ready.get("fork_server_seccomp_error"):
            notes.append(f"fork server seccomp: {ready['fork_server_seccomp_error']}")
        return ProbeResult(
            namespaces=zygote.method,
            seccomp=bool(ready.get("seccomp")),
            landlock_abi=int(ready.get("landlock_abi") or 0),
            rlimits=True,
            python_guards=self.settings.python_guards,
            network_isolated=bool(ready.get("network_isolated")),
            user_id=int(ready.get("uid", -1)),
            host_uid=zygote.host_uid,
            fork_server_ms=round(elapsed * 1000, 1),
            warmup_ms=float(ready.get("warmup_ms") or 0.0),
            problems=tuple(notes),
            fork_server_seccomp=bool(ready.get("fork_server_seccomp")),
        )

    async def close(self) -> None:
        """Stop the fork server; running jobs die with it."""
        self._closed = True
        zygote, self._zygote = self._zygote, None
        if zygote is not None:
            await zygote.close()

    async def _current_zygote(self) -> _Zygote:
        """The running fork server, restarted with the probed launch method if it died."""
        if self._closed:
            raise SandboxUnavailable("the sandbox is closed", reason="CLOSED")
        zygote = self._zygote
        if zygote is not None and not zygote.dead:
            return zygote
        if self._launch is None or self.probe is None:
            await self.start()
            assert self._zygote is not None
            return self._zygote
        async with self._start_lock:
            if self._zygote is not None and not self._zygote.dead:
                return self._zygote
            if zygote is not None:
                await zygote.close()
            try:
                fresh = await _Zygote.spawn(self._launch, self.settings)
            except OSError as exc:
                raise SandboxUnavailable(
                    f"the sandbox's fork server could not be restarted: {exc}",
                    reason="RESTART_FAILED",
                ) from exc
            if (
                bool(fresh.ready.get("seccomp")) != self.probe.seccomp
                or bool(fresh.ready.get("fork_server_seccomp")) != self.probe.fork_server_seccomp
                or fresh.host_uid != self.probe.host_uid
            ):
                await fresh.close()
                raise SandboxUnavailable(
                    "the restarted fork server lost a layer", reason="RESTART_FAILED"
                )
            self._zygote = fresh
            self.restarts += 1
            log.warning("sandbox fork server restarted (%d so far)", self.restarts)
            return fresh

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
        """One `execute_strategy` call on `market_data`; returns the normalised signal."""
        return await self._signal(code, market_data, params, timeout_seconds, "run", owner)

    async def _signal(
        self, code: str, bars: Bars, params: dict[str, Any], seconds: float, label: str, owner: str
    ) -> dict[str, Any]:
        job = self._job("signal", code, bars, params, seconds, None, label, owner)
        with metrics.sandbox_job(label):
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
    ) -> dict[str, Any]:
        """A backtest in two halves: the job process only calls the strategy bar by bar and
        streams its signals back; here, off the event loop, every signal is checked again and
        the engine derives fills, trades, equity and metrics. Returns the engine's result."""
        try:
            options.check()
        except (ValueError, AttributeError) as exc:
            raise BadInput(f"invalid backtest options: {exc}", reason="INVALID_OPTIONS") from None
        job = self._job(
            "backtest", code, bars, params, timeout_seconds, on_progress, "backtest", owner
        )
        with metrics.sandbox_job("backtest"):
            packed = await self._run(job)
            return await run_off_loop(backtest_from_stream, bars, packed, options)

    async def smoke_test(
        self, code: str, bars: Bars, params: dict[str, Any], *, owner: str = ""
    ) -> list[str]:
        """Run the strategy once on sample data; the problems found, [] when it works."""
        try:
            timeout = self.settings.smoke_timeout_seconds
            await self._signal(code, bars, params, timeout, "smoke", owner)
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
                zygote = await self._current_zygote()
                try:
                    return await self._run_once(zygote, job)
                except _ZygoteDied:
                    if attempt:
                        raise SandboxUnavailable(
                            "the sandbox's fork server died twice while running this job",
                            reason="FORK_SERVER_DIED",
                        ) from None
                    log.warning("fork server died during a job; restarting and retrying")
        raise AssertionError("unreachable")

    async def _run_once(self, zygote: _Zygote, job: _Job) -> Any:
        loop = asyncio.get_running_loop()
        self._job_ids += 1
        job_id = self._job_ids
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        exit_future = zygote.expect_exit(job_id)
        killed = False

        def kill() -> None:
            nonlocal killed
            if not killed:
                killed = True
                task = asyncio.ensure_future(_quietly(zygote.send({"op": "kill", "job": job_id})))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

        reader = _ResultReader(job.max_output_bytes, job.on_progress, kill)
        try:
            await zygote.send({"op": "run", "job": job_id}, (in_r, out_w))
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
        writer = asyncio.ensure_future(_write_input(in_w, job.payload))
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
                await zygote.close()
                raise _ZygoteDied() from None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader.done), _KILL_GRACE_SECONDS)
        finally:
            if not exit_future.done():
                kill()  # cancelled by the caller: the job must not run on
                metrics.record_sandbox_kill(job.label, "cancelled")
            transport.close()
            self._background.add(writer)
            writer.add_done_callback(self._background.discard)
        reason = self._kill_reason(job, reader, result, timed_out)
        if reason is not None:
            metrics.record_sandbox_kill(job.label, reason)
        return self._outcome(job, reader, result, timed_out)

    def _kill_reason(
        self, job: _Job, reader: _ResultReader, exit: _Exit, timed_out: bool
    ) -> str | None:
        """Why the job's process was killed, by us or by the kernel; None if it just ended."""
        if timed_out:
            return "timeout"
        if reader.overflow:
            return "output_limit"
        if reader.violation:
            return "protocol_violation"
        if exit.signal is None or exit.error:
            return None
        if exit.signal == signal.SIGSYS:
            return "seccomp"
        if exit.signal in (signal.SIGXCPU, signal.SIGKILL) and exit.cpu >= job.cpu_seconds - 0.5:
            return "cpu_limit"
        if exit.maxrss_kb * 1024 >= self.settings.memory_limit_mb * _MB * 0.9:
            return "memory_limit"
        return "signal"

    def _outcome(self, job: _Job, reader: _ResultReader, exit: _Exit, timed_out: bool) -> Any:
        """Turn what the job sent and how it ended into a value or a typed error."""
        limits = {"memoryLimitMb": self.settings.memory_limit_mb}
        if exit.error:
            log.error("sandbox fork server could not start a job: %s", exit.error)
            raise SandboxUnavailable(
                f"the sandbox could not start the job: {exit.error}", reason="FORK_FAILED"
            )
        if timed_out:
            raise ExecutionTimeout(
                f"the strategy ran longer than {job.timeout:g} s and was stopped",
                limitSeconds=job.timeout,
            )
        if reader.overflow:
            raise OutputTooLarge(
                f"the strategy's result exceeded {job.max_output_bytes} bytes",
                limitBytes=job.max_output_bytes,
            )
        if exit.signal == signal.SIGSYS:
            raise SandboxViolation(
                "the strategy was stopped by the sandbox: it attempted a forbidden operation "
                "(opening files, starting processes, networking, signalling other processes "
                "or similar)",
                layer="seccomp",
            )
        if reader.violation:
            raise SandboxViolation(
                f"the strategy process broke the result protocol ({reader.violation})",
                layer="protocol",
            )
        if exit.signal in (signal.SIGXCPU, signal.SIGKILL) and exit.cpu >= job.cpu_seconds - 0.5:
            raise ExecutionTimeout(
                f"the strategy used more than {job.cpu_seconds} s of CPU time and was stopped",
                limitSeconds=job.cpu_seconds,
            )
        final = reader.final
        if final is not None and final["t"] == protocol.OK:
            return final.get("value")
        if final is not None:
            raise _error_of(final, limits)
        if exit.signal is not None:
            name = _signal_name(exit.signal)
            if exit.maxrss_kb * 1024 >= self.settings.memory_limit_mb * _MB * 0.9:
                raise MemoryLimitExceeded(
                    f"the strategy ran out of memory (process killed by {name})", **limits
                )
            raise StrategyRuntimeError(
                f"the strategy process crashed ({name})", reason="CRASHED", signal=name
            )
        if exit.code == EXIT_SETUP_FAILED:
            raise SandboxUnavailable("the sandbox could not set up the job", reason="INTERNAL")
        raise StrategyRuntimeError(
            f"the strategy process exited (code {exit.code}) without a result",
            reason="NO_RESULT",
        )


def backtest_from_stream(bars: Bars, packed: object, options: BacktestOptions) -> dict[str, Any]:
    """Check a job's packed signal stream and run the engine on it (trusted, CPU-bound)."""
    try:
        return simulate(bars, unpack_signals(packed, len(bars)), options)
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


def _error_of(frame: dict[str, Any], limits: dict[str, Any]) -> ServiceError:
    """Map a child's ERROR frame to the typed error. Only plain data is read from it."""
    kind = frame.get("kind")
    exc_type = _field(frame.get("type"), 100) or "Exception"
    message = _field(frame.get("message"), 2000)
    line = frame.get("line") if type(frame.get("line")) is int else None
    bar = frame.get("bar_index") if type(frame.get("bar_index")) is int else None
    where = ""
    if line is not None:
        where += f" (line {line}"
        where += f", bar {bar})" if bar is not None else ")"
    elif bar is not None:
        where += f" (bar {bar})"
    details: dict[str, Any] = {"exceptionType": exc_type, "line": line, "barIndex": bar}
    if kind == protocol.KIND_VIOLATION:
        return SandboxViolation(f"forbidden by the sandbox: {message}{where}", layer="python")
    if kind == protocol.KIND_MEMORY:
        return MemoryLimitExceeded(
            f"the strategy exceeded its memory limit of {limits['memoryLimitMb']} MB{where}",
            **limits,
            line=line,
            barIndex=bar,
        )
    if kind == protocol.KIND_RECURSION:
        return StrategyRuntimeError(
            f"RecursionError: {message}{where}", reason="RECURSION_LIMIT", **details
        )
    if kind == protocol.KIND_INVALID_OUTPUT:
        return InvalidStrategyOutput(f"invalid strategy output: {message}{where}", **details)
    if kind == protocol.KIND_OUTPUT_TOO_LARGE:
        return OutputTooLarge(f"the strategy's result is too large: {message}")
    if kind == protocol.KIND_SYNTAX:
        return StrategyRuntimeError(
            f"{exc_type}: {message}{where}", reason="SYNTAX_ERROR", **details
        )
    if kind == protocol.KIND_NO_ENTRYPOINT:
        return StrategyRuntimeError(message, reason="NO_ENTRYPOINT")
    if kind == protocol.KIND_RUNTIME:
        return StrategyRuntimeError(f"{exc_type}: {message}{where}", **details)
    log.error("sandbox job failed internally: %s", message)
    return SandboxUnavailable(f"the sandbox failed internally: {message}", reason="INTERNAL")


def _host_uid(root_pid: int, inner_pid: int) -> int:
    """The real uid, on the host, of the fork server: the process at or below `root_pid`
    (bwrap/unshare or python) whose innermost pid is `inner_pid`. The fork server cannot
    tell itself: bwrap nests two user namespaces, so its uid_map names the outer one's uid."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError, IndexError, ValueError):
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            )
            ns_pids = status["NSpid"].split()
            if int(ns_pids[-1]) == inner_pid and (len(ns_pids) > 1 or pid == inner_pid):
                return int(status["Uid"].split()[0])
    return -1


def _field(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(_ZygoteDied, OSError):
        await awaitable


async def _write_input(fd: int, data: bytes) -> None:
    """Write the job's input without blocking the loop; a job that died early is fine."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    view = memoryview(data)
    try:
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                ready: asyncio.Future[None] = loop.create_future()
                loop.add_writer(fd, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(fd)
    except OSError:  # EPIPE: the job is gone; its outcome is reported by the reader
        pass
    finally:
        os.close(fd)
