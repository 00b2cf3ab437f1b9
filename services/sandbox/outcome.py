"""Why a sandbox job ended, decided once: the value it returned, or the typed error to raise,
and the reason its process was killed (for the metrics), from what it sent and how it exited.

Only plain data from the job is read: its frames are untrusted.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from services import telemetry
from services.errors import ServiceError
from services.sandbox import protocol
from services.sandbox.child import EXIT_SETUP_FAILED
from services.sandbox.errors import (
    ExecutionTimeout,
    InvalidStrategyOutput,
    MemoryLimitExceeded,
    OutputTooLarge,
    SandboxBusy,
    SandboxUnavailable,
    SandboxViolation,
    StrategyRuntimeError,
    StrategySandboxError,
)
from services.sandbox.forkserver import JobExit

log = logging.getLogger("services.sandbox")

_MB = 1024 * 1024


@dataclass(frozen=True)
class JobEnd:
    """Everything known about a finished job: how its process exited, what it sent, and the
    limits it ran under."""

    exit: JobExit
    timed_out: bool  # killed by us on the wall clock
    overflow: bool  # sent more bytes than allowed
    violation: str  # broke the frame protocol ("" if not)
    final: dict[str, Any] | None  # its final frame, if any
    timeout_seconds: float
    cpu_seconds: int
    max_output_bytes: int
    memory_limit_mb: int


@dataclass(frozen=True)
class Ending:
    kill_reason: str | None  # why its process was killed, by us or the kernel; None: it ended
    value: Any = None
    error: ServiceError | None = None


def ending_of(end: JobEnd) -> Ending:
    """The one place that reads a job's end: each case names both the kill reason and the
    outcome, so the metrics and the error always agree."""
    exit = end.exit
    limits = {"memoryLimitMb": end.memory_limit_mb}
    if exit.error:
        log.error("sandbox fork server could not start a job: %s", exit.error)
        return Ending(
            None,
            error=SandboxUnavailable(
                f"the sandbox could not start the job: {exit.error}", reason="FORK_FAILED"
            ),
        )
    if end.timed_out:
        return Ending(
            "timeout",
            error=ExecutionTimeout(
                f"the strategy ran longer than {end.timeout_seconds:g} s and was stopped",
                limitSeconds=end.timeout_seconds,
            ),
        )
    if end.overflow:
        return Ending(
            "output_limit",
            error=OutputTooLarge(
                f"the strategy's result exceeded {end.max_output_bytes} bytes",
                limitBytes=end.max_output_bytes,
            ),
        )
    if exit.signal == signal.SIGSYS:
        return Ending(
            "seccomp",
            error=SandboxViolation(
                "the strategy was stopped by the sandbox: it attempted a forbidden operation "
                "(opening files, starting processes, networking, signalling other processes "
                "or similar)",
                layer="seccomp",
            ),
        )
    if end.violation:
        return Ending(
            "protocol_violation",
            error=SandboxViolation(
                f"the strategy process broke the result protocol ({end.violation})",
                layer="protocol",
            ),
        )
    if exit.signal in (signal.SIGXCPU, signal.SIGKILL) and exit.cpu >= end.cpu_seconds - 0.5:
        return Ending(
            "cpu_limit",
            error=ExecutionTimeout(
                f"the strategy used more than {end.cpu_seconds} s of CPU time and was stopped",
                limitSeconds=end.cpu_seconds,
            ),
        )
    out_of_memory = exit.maxrss_kb * 1024 >= end.memory_limit_mb * _MB * 0.9
    killed = None if exit.signal is None else ("memory_limit" if out_of_memory else "signal")
    final = end.final
    if final is not None and final["t"] == protocol.OK:
        return Ending(killed, value=final.get("value"))
    if final is not None:
        return Ending(killed, error=error_of_frame(final, limits))
    if exit.signal is not None:
        name = _signal_name(exit.signal)
        if out_of_memory:
            error: ServiceError = MemoryLimitExceeded(
                f"the strategy ran out of memory (process killed by {name})", **limits
            )
        else:
            error = StrategyRuntimeError(
                f"the strategy process crashed ({name})", reason="CRASHED", signal=name
            )
        return Ending(killed, error=error)
    if exit.code == EXIT_SETUP_FAILED:
        return Ending(
            None,
            error=SandboxUnavailable("the sandbox could not set up the job", reason="INTERNAL"),
        )
    return Ending(
        None,
        error=StrategyRuntimeError(
            f"the strategy process exited (code {exit.code}) without a result",
            reason="NO_RESULT",
        ),
    )


def error_of_frame(frame: dict[str, Any], limits: dict[str, Any]) -> ServiceError:
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


def _field(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def outcome_label(error: BaseException | None) -> str:
    """The outcome label of a job that ended with `error` (None: it returned a value)."""
    if error is None:
        return "ok"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, StrategySandboxError):
        # The class's reason, not the instance's: the classes are a fixed set.
        return type(error).reason.lower()
    if isinstance(error, SandboxBusy):
        return "busy"
    if isinstance(error, SandboxUnavailable):
        return "unavailable"
    if isinstance(error, ServiceError):
        return error.code.lower()
    return "error"


@contextmanager
def counted_job(kind: str) -> Iterator[None]:
    """Count the job run inside the block by its outcome, and time it."""
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        telemetry.SANDBOX_JOBS.labels(kind, outcome_label(error)).inc()
        telemetry.SANDBOX_JOB_DURATION.labels(kind).observe(time.perf_counter() - started)
