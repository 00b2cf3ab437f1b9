"""Hostile strategy code, each sample run twice: with the in-child Python guards (static pass,
restricted builtins, import hook) and with them switched off, to show the OS layers (seccomp,
rlimits, Landlock, namespaces) contain it by themselves. Every test checks the typed error AND
that nothing escaped: no marker file, the server and the fork server alive, no secret leaked.
Samples that reach interpreter internals test what lies past them with the guards off only:
with the guards on, the Python layer stops them first (test_python_layer_stops_internals).
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from services.errors import StrategyError
from services.sandbox import (
    ExecutionTimeout,
    InvalidStrategyOutput,
    MemoryLimitExceeded,
    OutputTooLarge,
    Sandbox,
    SandboxSettings,
    SandboxViolation,
    StrategyRuntimeError,
)
from services.sandbox.warmup import sample_bars

SECRET = "sandbox-test-secret-5f1c9e"
os.environ["SANDBOX_TEST_SECRET"] = SECRET  # set before any fork server starts
SERVER_PID = os.getpid()
BARS = sample_bars(120)
MODES = ("guarded", "os_only")


@pytest_asyncio.fixture(scope="module", params=MODES)
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    settings = SandboxSettings(
        memory_limit_mb=256,
        max_concurrent_jobs=2,
        python_guards=request.param == "guarded",
    )
    async with Sandbox(settings) as box:
        assert box.probe is not None and box.probe.isolated
        yield box


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "escaped"


def escaped(marker: Path) -> bool:
    """A stat, too quick to matter to the event loop."""
    return marker.exists()


async def run(
    box: Sandbox, code: str, marker: Path, *, limit: float = 2.0, **params: object
) -> dict[str, object]:
    """Run a sample; afterwards nothing may have escaped, whatever the outcome."""
    before = box.fork_server_pid
    code = code.replace("MARKER", str(marker))
    try:
        return await box.run_signal(
            code, BARS, {"pid": SERVER_PID, **params}, timeout_seconds=limit
        )
    finally:
        assert not escaped(marker), "the strategy wrote a file outside the sandbox"
        os.kill(SERVER_PID, 0)  # the server is alive
        assert box.fork_server_pid == before, "the fork server died"
        assert box.restarts == 0


def assert_stopped_by_os_layer_if_unguarded(box: Sandbox, error: SandboxViolation) -> None:
    """Without the Python guards, only the kernel can have stopped the code; with them, the
    Python layer must have, on its own (it runs first, so any other layer means it let go)."""
    expected = "python" if box.settings.python_guards else "seccomp"
    assert error.extensions["layer"] == expected


# For a sample that reaches interpreter internals to test a later layer: the Python guards
# refuse that reach (test_python_layer_stops_internals), so it runs unguarded only.
UNGUARDED_ONLY = pytest.mark.parametrize("sandbox", ["os_only"], indirect=True)
GUARDED_ONLY = pytest.mark.parametrize("sandbox", ["guarded"], indirect=True)


def assert_no_secret(error: BaseException) -> None:
    assert SECRET not in str(error)
    assert SECRET not in repr(getattr(error, "extensions", {}))


# --- resource exhaustion ---------------------------------------------------------------------

INFINITE_LOOP = """
def execute_strategy(market_data, strategy_params):
    while True:
        pass
"""

CATCH_EVERYTHING_LOOP = """
def execute_strategy(market_data, strategy_params):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
"""

MEMORY_BOMB = """
def execute_strategy(market_data, strategy_params):
    hoard = []
    while True:
        hoard.append(bytearray(10_000_000))
"""

BIG_ALLOC_CAUGHT = """
def execute_strategy(market_data, strategy_params):
    while True:
        try:
            hoard = [bytearray(10_000_000) for _ in range(1000)]
        except BaseException:
            continue
"""

HUGE_POWER = """
def execute_strategy(market_data, strategy_params):
    x = 10 ** (10 ** 9)
    return {"action": "buy", "confidence": 0.5}
"""

LONG_C_CALL = """
import numpy as np

def execute_strategy(market_data, strategy_params):
    a = np.ones((3000, 3000))
    b = a @ a @ a @ a
    return {"action": "buy", "confidence": 0.5}
"""

HUGE_STRING = """
def execute_strategy(market_data, strategy_params):
    s = "x" * 10**9
    return {"action": "buy", "confidence": 0.5, "reason": s[:10]}
"""

DEEP_RECURSION = """
def dive(n):
    return dive(n + 1) + 1

def execute_strategy(market_data, strategy_params):
    return dive(0)
"""


@pytest.mark.parametrize("code", [INFINITE_LOOP, CATCH_EVERYTHING_LOOP, HUGE_POWER, LONG_C_CALL])
async def test_cpu_burners_are_killed_on_the_wall_clock(
    sandbox: Sandbox, marker: Path, code: str
) -> None:
    with pytest.raises(ExecutionTimeout) as caught:
        await run(sandbox, code, marker, limit=1.0)
    assert caught.value.extensions["code"] == "STRATEGY_ERROR"
    assert caught.value.extensions["reason"] == "TIMEOUT"


@pytest.mark.parametrize("code", [MEMORY_BOMB, HUGE_STRING])
async def test_memory_bombs_hit_the_address_space_limit(
    sandbox: Sandbox, marker: Path, code: str
) -> None:
    with pytest.raises(MemoryLimitExceeded) as caught:
        await run(sandbox, code, marker)
    assert caught.value.extensions["reason"] == "MEMORY_LIMIT"


async def test_memory_error_swallowed_in_a_loop_still_ends(sandbox: Sandbox, marker: Path) -> None:
    with pytest.raises(ExecutionTimeout):
        await run(sandbox, BIG_ALLOC_CAUGHT, marker, limit=1.0)


async def test_deep_recursion_is_a_runtime_error_with_line(sandbox: Sandbox, marker: Path) -> None:
    with pytest.raises(StrategyRuntimeError) as caught:
        await run(sandbox, DEEP_RECURSION, marker)
    assert caught.value.extensions["reason"] == "RECURSION_LIMIT"
    assert caught.value.extensions["line"] == 3
    assert "RecursionError" in caught.value.message


# --- processes, files, network, signals ------------------------------------------------------

FORK = """
import os

def execute_strategy(market_data, strategy_params):
    if os.fork() == 0:
        open("MARKER", "w").write("child")
    return {"action": "buy", "confidence": 0.5}
"""

OS_SYSTEM = """
import os

def execute_strategy(market_data, strategy_params):
    os.system("touch MARKER")
    return {"action": "buy", "confidence": 0.5}
"""

SUBPROCESS = """
import subprocess

def execute_strategy(market_data, strategy_params):
    subprocess.run(["/bin/sh", "-c", "touch MARKER"])
    return {"action": "buy", "confidence": 0.5}
"""

READ_PASSWD = """
def execute_strategy(market_data, strategy_params):
    text = open("/etc/passwd").read()
    return {"action": "buy", "confidence": 0.5, "reason": text[:900]}
"""

READ_PARENT_ENVIRON = """
def execute_strategy(market_data, strategy_params):
    pid = strategy_params["pid"]
    text = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
    return {"action": "buy", "confidence": 0.5, "reason": text[-900:]}
"""

WRITE_FILE = """
def execute_strategy(market_data, strategy_params):
    with open("MARKER", "w") as fh:
        fh.write("escaped")
    return {"action": "buy", "confidence": 0.5}
"""

SOCKET_CONNECT = """
import socket

def execute_strategy(market_data, strategy_params):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", strategy_params["port"]))
    s.sendall(b"exfiltrated")
    return {"action": "buy", "confidence": 0.5}
"""

KILL_PARENT = """
import os

def execute_strategy(market_data, strategy_params):
    os.kill(os.getppid(), 9)
    return {"action": "buy", "confidence": 0.5}
"""

KILL_SERVER = """
import os

def execute_strategy(market_data, strategy_params):
    os.kill(strategy_params["pid"], 9)
    return {"action": "buy", "confidence": 0.5}
"""


THREAD = """
import threading

def execute_strategy(market_data, strategy_params):
    threading.Thread(target=lambda: None).start()
    return {"action": "buy", "confidence": 0.5}
"""

# Reaches ctypes through the stack (works with the guards on too), then makes a raw syscall.
RAW_SYSCALL = """
def execute_strategy(market_data, strategy_params):
    def climb():
        yield gen.gi_frame.f_back

    gen = climb()
    frame = next(gen)
    while "sys" not in frame.f_globals:
        frame = frame.f_back
    ctypes = frame.f_globals["sys"].modules["ctypes"]
    libc = ctypes.CDLL(None)
    number = strategy_params["syscall"]
    result = libc.syscall(number, 0, 0, 0, 0, 0)
    raise RuntimeError(f"syscall {number} returned {result}")
"""

# x86_64 numbers; on another architecture libseccomp resolves the filter by name, and these
# numbers are either the same call or something else the allow-list also refuses.
DANGEROUS_SYSCALLS = {
    "ptrace": 101,
    "personality": 135,
    "mount": 165,
    "unshare": 272,
    "prlimit64": 302,
    "setns": 308,
    "process_vm_readv": 310,
    "seccomp": 317,
    "bpf": 321,
    "execveat": 322,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "pidfd_open": 434,
    "clone3": 435,
}

SEGFAULT = """
def execute_strategy(market_data, strategy_params):
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            ctypes = cls.__init__.__globals__["sys"].modules["ctypes"]
            ctypes.string_at(0)
    raise LookupError("no os")
"""


@pytest.mark.parametrize(
    "code",
    [
        FORK,
        THREAD,
        OS_SYSTEM,
        SUBPROCESS,
        READ_PASSWD,
        READ_PARENT_ENVIRON,
        WRITE_FILE,
        KILL_PARENT,
    ],
    ids=[
        "fork",
        "thread",
        "os.system",
        "subprocess",
        "read-passwd",
        "read-environ",
        "write",
        "kill-ppid",
    ],
)
async def test_os_access_is_a_violation(sandbox: Sandbox, marker: Path, code: str) -> None:
    with pytest.raises(SandboxViolation) as caught:
        await run(sandbox, code, marker)
    assert caught.value.extensions["reason"] == "SANDBOX_VIOLATION"
    assert "root:" not in caught.value.message
    assert_no_secret(caught.value)
    assert_stopped_by_os_layer_if_unguarded(sandbox, caught.value)


@UNGUARDED_ONLY
@pytest.mark.parametrize("name", list(DANGEROUS_SYSCALLS))
async def test_raw_dangerous_syscalls_kill_the_job(
    sandbox: Sandbox, marker: Path, name: str
) -> None:
    with pytest.raises(SandboxViolation) as caught:
        await run(sandbox, RAW_SYSCALL, marker, syscall=DANGEROUS_SYSCALLS[name])
    assert caught.value.extensions["layer"] == "seccomp"


@UNGUARDED_ONLY
async def test_interpreter_crash_is_reported(sandbox: Sandbox, marker: Path) -> None:
    with pytest.raises(StrategyRuntimeError) as caught:
        await run(sandbox, SEGFAULT, marker)
    assert caught.value.extensions["reason"] == "CRASHED"
    assert caught.value.extensions["signal"] == "SIGSEGV"


async def test_killing_the_server_pid_is_a_violation(sandbox: Sandbox, marker: Path) -> None:
    with pytest.raises(SandboxViolation) as caught:
        await run(sandbox, KILL_SERVER, marker)
    os.kill(SERVER_PID, 0)
    assert_stopped_by_os_layer_if_unguarded(sandbox, caught.value)


async def test_socket_connect_is_a_violation(sandbox: Sandbox, marker: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        with pytest.raises(SandboxViolation) as caught:
            await run(sandbox, SOCKET_CONNECT, marker, port=port)
        assert_stopped_by_os_layer_if_unguarded(sandbox, caught.value)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


# --- escapes from the Python guards -----------------------------------------------------------

SUBCLASSES_WALK = """
def execute_strategy(market_data, strategy_params):
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            cls.__init__.__globals__["system"]("touch MARKER")
            return {"action": "buy", "confidence": 0.5}
    raise LookupError("no _wrap_close found")
"""

FRAME_WALK = """
def execute_strategy(market_data, strategy_params):
    def climb():
        yield gen.gi_frame.f_back

    gen = climb()
    frame = next(gen)
    while frame is not None:
        table = frame.f_globals.get("__builtins__")
        table = table if isinstance(table, dict) else getattr(table, "__dict__", {})
        real_open = table.get("open")
        if type(real_open).__name__ == "builtin_function_or_method":
            table["__import__"]("os").system("touch MARKER")
            real_open("MARKER", "w").write("escaped")
            return {"action": "buy", "confidence": 0.5}
        frame = frame.f_back
    raise LookupError("no real builtins on the stack")
"""

FORMAT_LEAK = """
import numpy as np

def execute_strategy(market_data, strategy_params):
    leaked = "{0.__globals__[os].environ}".format(np.load)
    mro = "{0.__class__.__mro__}".format(market_data)
    raise ValueError(leaked + mro)
"""

BUILT_GETATTR = """
def execute_strategy(market_data, strategy_params):
    base = getattr(getattr((), "__cla" + "ss__"), "__ba" + "se__")
    for cls in getattr(base, "__subcla" + "sses__")():
        if cls.__name__ == "_wrap_close":
            getattr(cls.__init__, "__glo" + "bals__")["system"]("touch MARKER")
    return {"action": "buy", "confidence": 0.5}
"""

NUMPY_CTYPES = """
import numpy as np

def execute_strategy(market_data, strategy_params):
    libc = np.ctypeslib.ctypes.CDLL(None)
    libc.system(b"touch MARKER")
    return {"action": "buy", "confidence": 0.5}
"""

NUMPY_PICKLE = """
import numpy as np

class Blob:
    def __init__(self, data):
        self.data, self.pos = data, 0
    def read(self, n=-1):
        n = len(self.data) - self.pos if n is None or n < 0 else n
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk
    def readline(self, n=-1):
        end = self.data.index(b"\\n", self.pos) + 1
        return self.read(end - self.pos)
    def seek(self, offset, whence=0):
        self.pos = offset if whence == 0 else self.pos + offset
        return self.pos
    def tell(self):
        return self.pos

def execute_strategy(market_data, strategy_params):
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - len(header)) + b"\\n"
    payload = b"cposix\\nsystem\\n(S'touch MARKER'\\ntR."
    blob = b"\\x93NUMPY\\x01\\x00" + bytes([len(header), 0]) + header + payload
    np.load(Blob(blob), allow_pickle=True)
    return {"action": "buy", "confidence": 0.5}
"""

PANDAS_READ_CSV = """
import pandas as pd

def execute_strategy(market_data, strategy_params):
    frame = pd.read_csv("/etc/passwd", sep=":", header=None)
    return {"action": "buy", "confidence": 0.5, "reason": frame.to_string()[:900]}
"""

ENV_THROUGH_FRAMES = """
def execute_strategy(market_data, strategy_params):
    def climb():
        yield gen.gi_frame.f_back

    gen = climb()
    frame = next(gen)
    while frame is not None:
        os_module = frame.f_globals.get("os")
        if os_module is not None:
            return {"action": "hold", "confidence": 0.0, "reason": repr(dict(os_module.environ))}
        frame = frame.f_back
    raise LookupError("no os module on the stack")
"""


@pytest.mark.parametrize(
    "code",
    [SUBCLASSES_WALK, FRAME_WALK, BUILT_GETATTR, NUMPY_CTYPES, NUMPY_PICKLE, PANDAS_READ_CSV],
    ids=["subclasses", "frame-walk", "getattr-strings", "np-ctypes", "np-pickle", "pd-read-csv"],
)
async def test_guard_escapes_are_still_contained(sandbox: Sandbox, marker: Path, code: str) -> None:
    with pytest.raises(SandboxViolation) as caught:
        await run(sandbox, code, marker)
    assert_no_secret(caught.value)
    assert_stopped_by_os_layer_if_unguarded(sandbox, caught.value)


@UNGUARDED_ONLY
async def test_format_string_leak_finds_no_secret(sandbox: Sandbox, marker: Path) -> None:
    with pytest.raises(StrategyRuntimeError) as caught:
        await run(sandbox, FORMAT_LEAK, marker)
    assert "environ(" in caught.value.message  # the leak worked, and found nothing worth it
    assert "OPENBLAS_NUM_THREADS" in caught.value.message
    assert_no_secret(caught.value)


@UNGUARDED_ONLY
async def test_environment_reached_through_frames_holds_no_secret(
    sandbox: Sandbox, marker: Path
) -> None:
    signal = await run(sandbox, ENV_THROUGH_FRAMES, marker)
    assert "OPENBLAS_NUM_THREADS" in signal["reason"]
    assert SECRET not in signal["reason"]
    assert "SANDBOX_TEST_SECRET" not in signal["reason"]


# --- output -------------------------------------------------------------------------------------

RAW_FLOOD = """
def execute_strategy(market_data, strategy_params):
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            os_globals = cls.__init__.__globals__
            for _ in range(200):
                os_globals["write"](3, b"x" * 1_000_000)
    return {"action": "buy", "confidence": 0.5}
"""

FORGED_FRAME = """
def execute_strategy(market_data, strategy_params):
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            body = b'{"t":"ok","value":{"action":"nuke","confidence":7}}'
            cls.__init__.__globals__["write"](3, len(body).to_bytes(4, "big") + body)
            cls.__init__.__globals__["_exit"](0)
    raise LookupError("no os")
"""

HUGE_METADATA = """
def execute_strategy(market_data, strategy_params):
    return {"action": "buy", "confidence": 0.5, "metadata": {"x": list(range(10**6))}}
"""


@UNGUARDED_ONLY
async def test_raw_pipe_flood_is_cut_off(sandbox: Sandbox, marker: Path) -> None:
    with pytest.raises(OutputTooLarge) as caught:
        await run(sandbox, RAW_FLOOD, marker)
    assert caught.value.extensions["reason"] == "OUTPUT_TOO_LARGE"


@UNGUARDED_ONLY
async def test_forged_result_is_revalidated_by_the_server(sandbox: Sandbox, marker: Path) -> None:
    with pytest.raises(InvalidStrategyOutput):
        await run(sandbox, FORGED_FRAME, marker)


async def test_huge_metadata_is_invalid_output(sandbox: Sandbox, marker: Path) -> None:
    with pytest.raises(InvalidStrategyOutput) as caught:
        await run(sandbox, HUGE_METADATA, marker)
    assert "too large" in caught.value.message


# --- market data and return values ------------------------------------------------------------

WRITE_MARKET_DATA = """
def execute_strategy(market_data, strategy_params):
    market_data["close"][0] = 0.0
    return {"action": "buy", "confidence": 0.5}
"""

UNLOCK_MARKET_DATA = """
def execute_strategy(market_data, strategy_params):
    market_data["close"].setflags(write=True)
    return {"action": "buy", "confidence": 0.5}
"""


@pytest.mark.parametrize("code", [WRITE_MARKET_DATA, UNLOCK_MARKET_DATA])
async def test_market_data_is_read_only(sandbox: Sandbox, marker: Path, code: str) -> None:
    before = BARS.close.copy()
    with pytest.raises(StrategyRuntimeError) as caught:
        await run(sandbox, code, marker)
    assert "ValueError" in caught.value.message
    assert caught.value.extensions["line"] == 3
    assert np.array_equal(BARS.close, before)


@pytest.mark.parametrize(
    "returned",
    [
        "None",
        "'buy'",
        "[1, 2]",
        "{'action': 'buy'}",
        "{'confidence': 0.5}",
        "{'action': 'moon', 'confidence': 0.5}",
        "{'action': 'buy', 'confidence': 1.5}",
        "{'action': 'buy', 'confidence': -0.1}",
        "{'action': 'buy', 'confidence': float('nan')}",
        "{'action': 'buy', 'confidence': '0.5'}",
        "{'action': 'buy', 'confidence': 0.5, 'metadata': [1]}",
    ],
)
async def test_bad_return_values_are_invalid_output(
    sandbox: Sandbox, marker: Path, returned: str
) -> None:
    code = f"def execute_strategy(market_data, strategy_params):\n    return {returned}\n"
    with pytest.raises(InvalidStrategyOutput) as caught:
        await run(sandbox, code, marker)
    assert isinstance(caught.value, StrategyError)
    assert caught.value.extensions["reason"] == "INVALID_OUTPUT"


# --- the Python layer on its own ----------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [RAW_SYSCALL, SEGFAULT, FORMAT_LEAK, ENV_THROUGH_FRAMES, RAW_FLOOD, FORGED_FRAME],
    ids=["raw-syscall", "segfault", "format-leak", "env-frames", "raw-flood", "forged-frame"],
)
@GUARDED_ONLY
async def test_python_layer_stops_internals(sandbox: Sandbox, marker: Path, code: str) -> None:
    """What the guards-off tests above reach (frames, `__subclasses__`, `__globals__`, format
    fields) the guards refuse before the code runs; tests/test_guard_probes.py has the probes
    with the OS layers off too."""
    with pytest.raises(SandboxViolation) as caught:
        await run(sandbox, code, marker, syscall=DANGEROUS_SYSCALLS["ptrace"])
    assert caught.value.extensions["layer"] == "python"
    assert_no_secret(caught.value)
