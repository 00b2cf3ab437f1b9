"""What a job process does between fork and exit: lock itself down, run ONE job, report.

Runs in a fresh process forked from the fork server. Everything before `seal()` (the seccomp
filter) is trusted; from the moment the strategy's module body runs, the process may be
hostile, so the report it sends is only data for the parent to re-check (a signal, or a
backtest's signals: never a backtest's numbers, which the parent computes), and the process
never returns (it `_exit`s) to the fork server's code.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn

from services.code_rules import ENTRYPOINT
from services.sandbox import oslayers, protocol
from services.sandbox.guards import ForbiddenCode, ForbiddenOperation, check_code, module_globals

STRATEGY_FILENAME = "<strategy>"
# Exit status of a job process that failed before any strategy code ran.
EXIT_SETUP_FAILED = 71
_MAX_TEXT = 2000
_FALLBACK_MEMORY = protocol.encode_frame(
    {"t": protocol.ERROR, "kind": protocol.KIND_MEMORY, "type": "MemoryError", "message": ""}
)
_FALLBACK_INTERNAL = protocol.encode_frame(
    {"t": protocol.ERROR, "kind": protocol.KIND_INTERNAL, "message": "could not report"}
)


@dataclass
class ZygoteState:
    """What the fork server hands each job: pre-opened fds and pre-built filters."""

    zygote_pid: int
    devnull_fd: int
    seccomp_filter: Any | None
    landlock_abi: int


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(protocol.RESULT_FD, view)
        view = view[written:]


def _send(message: dict[str, Any]) -> None:
    _write_all(protocol.encode_frame(message))


def _sealed(seal: Callable[[], None]) -> bytes | None:
    """Load the seccomp filter; a failure is the host's problem, not the strategy's, and its
    ERROR frame is returned (None: sealed, untrusted code may run)."""
    try:
        seal()
    except BaseException as exc:
        return protocol.encode_frame(
            {"t": protocol.ERROR, "kind": protocol.KIND_INTERNAL, "message": _text(exc)}
        )
    return None


def _text(value: object) -> str:
    """str() of a possibly hostile object, bounded and never raising."""
    try:
        text = str(value)
    except BaseException:
        text = "<unprintable>"
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def _type_name(exc: BaseException) -> str:
    """Read the C-level name slot: a hostile metaclass cannot intercept it."""
    return _text(type.__dict__["__qualname__"].__get__(type(exc)))


def _user_line(tb: TracebackType | None) -> int | None:
    """Line of the innermost frame that belongs to the strategy's own code."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == STRATEGY_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _error(kind: str, exc: BaseException, bar_index: int | None = None) -> dict[str, Any]:
    if isinstance(exc, SyntaxError) and exc.filename == STRATEGY_FILENAME:
        line = exc.lineno
        message = _text(exc.msg)
    else:
        line = _user_line(exc.__traceback__)
        message = _text(exc)
    return {
        "t": protocol.ERROR,
        "kind": kind,
        "type": _type_name(exc),
        "message": message,
        "line": line,
        "bar_index": bar_index,
    }


def _classify(exc: BaseException, bar_index: int | None = None) -> dict[str, Any]:
    if isinstance(exc, ForbiddenOperation):
        return _error(protocol.KIND_VIOLATION, exc, bar_index)
    if isinstance(exc, MemoryError):
        return _error(protocol.KIND_MEMORY, exc, bar_index)
    if isinstance(exc, RecursionError):
        return _error(protocol.KIND_RECURSION, exc, bar_index)
    from services.signals import InvalidSignal

    if isinstance(exc, InvalidSignal):
        return _error(protocol.KIND_INVALID_OUTPUT, exc, bar_index)
    return _error(protocol.KIND_RUNTIME, exc, bar_index)


def _classify_failure(exc: BaseException) -> dict[str, Any]:
    """Unwrap collect_signals' StrategyFailure to the strategy's own exception."""
    from services.backtesting import StrategyFailure

    if isinstance(exc, StrategyFailure):
        original = exc.original if isinstance(exc.original, BaseException) else exc.__cause__
        bar = exc.bar_index if isinstance(exc.bar_index, int) else None
        if isinstance(original, BaseException):
            return _classify(original, bar)
        return _error(protocol.KIND_RUNTIME, exc, bar)
    return _classify(exc)


def market_data_of(bars: Any) -> dict[str, Any]:
    """The dict a single `execute_strategy` call receives: read-only arrays plus labels."""
    return {
        "open": bars.open,
        "high": bars.high,
        "low": bars.low,
        "close": bars.close,
        "volume": bars.volume,
        "timestamp": bars.timestamp,
        "symbol": bars.symbol,
        "timeframe": bars.timeframe,
    }


def _encode_result(value: Any, max_bytes: int) -> bytes:
    frame = protocol.encode_frame({"t": protocol.OK, "value": value})
    if len(frame) > max_bytes:
        return protocol.encode_frame(
            {
                "t": protocol.ERROR,
                "kind": protocol.KIND_OUTPUT_TOO_LARGE,
                "type": "OutputTooLarge",
                "message": f"result is {len(frame)} bytes; the limit is {max_bytes}",
            }
        )
    return frame


def run_job(
    job: dict[str, Any], seal: Callable[[], None], send: Callable[[dict[str, Any]], None]
) -> bytes:
    """Compile, seal (load seccomp), run the strategy; return the final frame (`send`
    streams the progress ones). Also the fork server's warm-up path, where `seal` is a no-op.
    """
    from services.market_data import Bars
    from services.signals import normalise_signal

    try:
        code = compile(job["code"], STRATEGY_FILENAME, "exec", dont_inherit=True)
        if job["guards"]:
            check_code(job["code"], code)
    except SyntaxError as exc:
        return protocol.encode_frame(_error(protocol.KIND_SYNTAX, exc))
    except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes, absurd nesting
        return protocol.encode_frame(_error(protocol.KIND_SYNTAX, exc))
    except ForbiddenCode as exc:
        return protocol.encode_frame({**_error(protocol.KIND_VIOLATION, exc), "line": exc.line})
    bars = Bars.from_bytes(job.pop("bars"))
    params = dict(job["params"])
    user_globals = module_globals(job["guards"])
    max_bytes = int(job["max_output_bytes"])
    if job["kind"] == "lookahead":
        columns, labels = _writable_columns(bars)
        del bars  # with the job's bytes gone, `columns` hold the only copy of the bars
        return _look_ahead_job(job, code, columns, labels, params, seal, max_bytes)
    if job["kind"] == "signal_batch":
        return _signal_batch_job(job, code, bars, seal, max_bytes)

    if (refused := _sealed(seal)) is not None:
        return refused
    # ---- from here on the process runs untrusted code ----
    try:
        exec(code, user_globals)
        entry = user_globals.get(ENTRYPOINT)
        if not callable(entry):
            return protocol.encode_frame(
                {
                    "t": protocol.ERROR,
                    "kind": protocol.KIND_NO_ENTRYPOINT,
                    "type": "NameError",
                    "message": f"the code defines no function {ENTRYPOINT}(market_data, "
                    "strategy_params)",
                }
            )
        if job["kind"] == "signal":
            raw = entry(market_data_of(bars), params)
            value: Any = normalise_signal(raw)
        else:
            # Only the strategy's signals leave this process: the server checks them and
            # runs the engine itself, so no number we store comes from here.
            from services.backtesting import collect_signals, pack_signals

            def progress(done: int, total: int) -> None:
                send({"t": protocol.PROGRESS, "done": int(done), "total": int(total)})

            value = pack_signals(
                collect_signals(
                    entry,
                    bars,
                    params,
                    on_progress=progress if job["progress"] else None,
                    progress_every=int(job["progress_every"]),
                )
            )
        return _encode_result(value, max_bytes)
    except BaseException as exc:  # everything the strategy can raise, SystemExit included
        try:
            return protocol.encode_frame(_classify_failure(exc))
        except MemoryError:
            return _FALLBACK_MEMORY


def _writable_columns(bars: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Writable copies of the bars' columns, and their labels."""
    import numpy as np

    from services.lookahead import COLUMNS

    columns = {
        name: np.array(getattr(bars, name), dtype=np.float64)
        for name in COLUMNS
        if getattr(bars, name) is not None
    }
    return columns, {"symbol": bars.symbol, "timeframe": bars.timeframe}


def _look_ahead_job(
    job: dict[str, Any],
    code: Any,
    columns: dict[str, Any],
    labels: dict[str, Any],
    params: dict[str, Any],
    seal: Callable[[], None],
    max_bytes: int,
) -> bytes:
    """The look-ahead check (services/lookahead.py): the strategy at each planned bar, in a
    fresh module namespace, on bars that end there. `columns` are the only copy of the bars
    in this process; the check overwrites them past each bar, latest bar first."""
    from services.lookahead import run_checks
    from services.signals import normalise_signal

    guards = bool(job["guards"])

    def call(market_data: dict[str, Any]) -> dict[str, Any]:
        namespace = module_globals(guards)
        exec(code, namespace)
        entry = namespace.get(ENTRYPOINT)
        if not callable(entry):
            raise NameError(f"no function {ENTRYPOINT}")
        return normalise_signal(entry(market_data, dict(params)))

    if (refused := _sealed(seal)) is not None:
        return refused
    # ---- from here on the process runs untrusted code ----
    try:
        return _encode_result(run_checks(columns, job["checks"], call, labels), max_bytes)
    except BaseException as exc:
        try:
            return protocol.encode_frame(_classify_failure(exc))
        except MemoryError:
            return _FALLBACK_MEMORY


def _signal_batch_job(
    job: dict[str, Any], code: Any, bars: Any, seal: Callable[[], None], max_bytes: int
) -> bytes:
    """An optimisation's batch: the strategy's packed signals for each parameter set in
    `job["param_sets"]`, each run in a fresh module namespace (no state carries from one set
    to the next). A set whose run fails gets its error report in its place; the others go on.
    """
    from services.backtesting import collect_signals, pack_signals

    guards = bool(job["guards"])
    if (refused := _sealed(seal)) is not None:
        return refused
    # ---- from here on the process runs untrusted code ----
    try:
        results: list[dict[str, Any]] = []
        for params in job["param_sets"]:
            try:
                namespace = module_globals(guards)
                exec(code, namespace)
                entry = namespace.get(ENTRYPOINT)
                if not callable(entry):
                    raise NameError(f"the code defines no function {ENTRYPOINT}")
                results.append({"signals": pack_signals(collect_signals(entry, bars, params))})
            except (Exception, SystemExit) as exc:  # this set's failure, not the batch's
                results.append({"error": _classify_failure(exc)})
        return _encode_result(results, max_bytes)
    except BaseException as exc:
        try:
            return protocol.encode_frame(_classify_failure(exc))
        except MemoryError:
            return _FALLBACK_MEMORY


def _confine(state: ZygoteState, job: dict[str, Any], vm_bytes: int) -> None:
    """Everything but seccomp, which comes last, right before the strategy's code runs."""
    if state.landlock_abi:
        # A nested domain: the job cannot signal even the fork server. Needs an fd, so it
        # comes before RLIMIT_NOFILE.
        oslayers.apply_landlock(state.landlock_abi)
    oslayers.apply_rlimits(
        oslayers.Limits(
            cpu_seconds=int(job["cpu_seconds"]),
            address_space_bytes=vm_bytes + int(job["memory_bytes"]),
            open_files=protocol.RESULT_FD + 1,
        )
    )
    warnings.simplefilter("ignore")  # formatting a warning reads source files
    sys.setrecursionlimit(int(job["recursion_limit"]) + 50)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def job_main(state: ZygoteState, in_fd: int, out_fd: int, vm_bytes: int) -> NoReturn:
    """Entry point of a freshly forked job process. Never returns."""
    try:
        oslayers.set_parent_death_signal()
        if os.getppid() != state.zygote_pid:
            os._exit(EXIT_SETUP_FAILED)  # the fork server died between fork and here
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        job = pickle.loads(_read_all(in_fd))
        os.close(in_fd)
        for fd in (0, 1, 2):  # before RESULT_FD is taken: devnull_fd may be that number
            os.dup2(state.devnull_fd, fd)
        if out_fd != protocol.RESULT_FD:
            os.dup2(out_fd, protocol.RESULT_FD, inheritable=False)
            os.close(out_fd)
        os.closerange(protocol.RESULT_FD + 1, 1 << 20)
    except BaseException:
        os._exit(EXIT_SETUP_FAILED)

    def seal() -> None:
        if state.seccomp_filter is not None:
            state.seccomp_filter.load()

    try:
        _confine(state, job, vm_bytes)  # before compiling: that runs under the limits too
        frame = run_job(job, seal, _send)
    except MemoryError:
        frame = _FALLBACK_MEMORY
    except BaseException as exc:
        try:
            frame = protocol.encode_frame(
                {"t": protocol.ERROR, "kind": protocol.KIND_INTERNAL, "message": _text(exc)}
            )
        except BaseException:
            frame = _FALLBACK_INTERNAL
    try:
        _write_all(frame)
    finally:
        os._exit(0)
