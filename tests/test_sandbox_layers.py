"""Each OS layer alone, with the Python guards off: seccomp only, bubblewrap only, Landlock
only. Whatever the outcome of a hostile sample (a typed error, or a result when the kernel
merely refused the call), nothing may escape: no file written on the host, no file read, no
connection made, the server alive, no secret of the server's environment visible."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.sandbox import Sandbox, SandboxSettings, SandboxUnavailable, StrategySandboxError
from services.sandbox.oslayers import landlock_abi
from tests.test_sandbox_hostile import (
    BARS,
    ENV_THROUGH_FRAMES,
    KILL_SERVER,
    OS_SYSTEM,
    READ_PARENT_ENVIRON,
    READ_PASSWD,
    SECRET,
    SERVER_PID,
    SOCKET_CONNECT,
    WRITE_FILE,
)

pytestmark = pytest.mark.process

LAYERS = {
    "seccomp-only": SandboxSettings(
        namespaces="none", landlock=False, python_guards=False, memory_limit_mb=256
    ),
    "bwrap-only": SandboxSettings(
        namespaces="bwrap", seccomp=False, landlock=False, python_guards=False
    ),
    "landlock-only": SandboxSettings(
        namespaces="none",
        seccomp=False,
        python_guards=False,
        allow_unisolated=True,  # Landlock alone does not count as isolation (see the docs)
    ),
}
SAMPLES = {
    "write": WRITE_FILE,
    "read-passwd": READ_PASSWD,
    "read-environ": READ_PARENT_ENVIRON,
    "os.system": OS_SYSTEM,
    "socket": SOCKET_CONNECT,
    "kill-server": KILL_SERVER,
    "env": ENV_THROUGH_FRAMES,
}


def _available(name: str) -> bool:
    if name == "bwrap-only":
        return shutil.which("bwrap") is not None
    if name == "landlock-only":
        return landlock_abi() >= 6  # scoped signals arrived in ABI 6
    return True


@pytest_asyncio.fixture(scope="module", params=list(LAYERS))
async def layer_box(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    if not _available(request.param):
        pytest.skip(f"{request.param} is not available on this host")
    async with Sandbox(LAYERS[request.param]) as box:
        assert box.probe is not None
        yield box


@pytest.mark.parametrize("sample", list(SAMPLES))
async def test_one_layer_alone_contains_the_sample(
    layer_box: Sandbox, sample: str, tmp_path: Path
) -> None:
    marker = tmp_path / "escaped"
    code = SAMPLES[sample].replace("MARKER", str(marker))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        try:
            result = await layer_box.run_signal(
                code, BARS, {"pid": SERVER_PID, "port": port}, timeout_seconds=2.0
            )
            text = repr(result)
        except (StrategySandboxError, SandboxUnavailable) as exc:
            text = exc.message + repr(exc.extensions)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert not marker.exists()
    os.kill(SERVER_PID, 0)
    assert SECRET not in text
    assert "root:x:0:0" not in text
    assert (await layer_box.run_signal(ENV_THROUGH_FRAMES, BARS, {}))["action"] == "hold"


ROOT = Path(__file__).resolve().parents[1]
VIEW = """
import os

def execute_strategy(market_data, strategy_params):
    seen = {path: os.path.exists(path) for path in strategy_params["paths"]}
    return {"action": "hold", "confidence": 0.0, "metadata": seen}
"""


async def test_bwrap_shows_only_python_and_the_services_package() -> None:
    if not _available("bwrap-only"):
        pytest.skip("bubblewrap is not installed")
    # A file in the temporary directory, not "/tmp" itself: when the checkout lives under
    # /tmp (CI clones there), bwrap must create /tmp as a parent of the bound paths.
    with tempfile.NamedTemporaryFile(prefix="sandbox-marker-") as marker:
        hidden = [ROOT / ".git", ROOT / "server", ROOT / "tests", "/etc/passwd", "/home"]
        hidden.append(marker.name)
        visible = [ROOT / "services" / "sandbox", sys.prefix]
        paths = [str(p) for p in hidden + visible]
        async with Sandbox(LAYERS["bwrap-only"]) as box:
            seen = (await box.run_signal(VIEW, BARS, {"paths": paths}))["metadata"]
    assert seen == {path: path in map(str, visible) for path in paths}


async def test_seccomp_alone_is_isolation_and_reports_it() -> None:
    async with Sandbox(LAYERS["seccomp-only"]) as box:
        assert box.probe is not None
        assert box.probe.namespaces == "none" and box.probe.seccomp and box.probe.isolated
        assert box.probe.landlock_abi == 0
