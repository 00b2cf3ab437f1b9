"""The sandbox is never host root (issue 10, item 5).

Started as root, bubblewrap used to map the sandbox's uid 65534 to host uid 0, so the fork
server and every job were host root without capabilities. These tests read, from the host
side, /proc of every process of the fork server's tree while a job runs: the fork server and
the job run as the unprivileged `host_uid` (uid_map included), and the fork server has
no_new_privs and a seccomp filter of its own, which the job inherits under its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from server.settings import Settings
from services.sandbox import Sandbox, SandboxSettings, SandboxUnavailable, launcher, oslayers
from tests.test_sandbox import _descendants
from tests.test_sandbox_hostile import BARS

pytestmark = pytest.mark.process

SLEEPER = """
import time

def execute_strategy(market_data, strategy_params):
    time.sleep(strategy_params["seconds"])
    return {"action": "hold", "confidence": 0.0}
"""
HOST_UID = 1_987_654_321  # not the default: the setting must be what is used
METHODS = ("bwrap", "unshare", "none")


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, value in (line.split(":", 1) for line in lines)}


def _argv0(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def _expected_uid() -> int:
    """The configured uid when the tests run as root; else ours (nothing to drop)."""
    return HOST_UID if os.geteuid() == 0 else os.getuid()


Snapshot = tuple[int, list[int], dict[int, str], dict[int, str]]


def _snapshot(root: int, python: str) -> Snapshot | None:
    """(fork server pid, job pids, status of every process of the tree, uid_map of the
    fork server and jobs) as the host sees them; None while no job runs."""
    tree = {root, *_descendants(root)}
    # The fork server and jobs run the interpreter; bwrap's argv merely names it.
    pythons = {pid for pid in tree if _argv0(pid) == python}
    parents = {pid: int(_status(pid)["PPid"]) for pid in pythons}
    servers = [pid for pid in pythons if parents[pid] not in pythons]
    jobs = [pid for pid in pythons if parents[pid] in pythons]
    if not jobs:
        return None
    statuses = {pid: Path(f"/proc/{pid}/status").read_text() for pid in tree}
    maps = {pid: Path(f"/proc/{pid}/uid_map").read_text() for pid in pythons}
    assert len(servers) == 1
    return servers[0], jobs, statuses, maps


def _filters(status_text: str) -> int:
    return int(_field(status_text, "Seccomp_filters"))


async def _tree_while_a_job_runs(box: Sandbox) -> Snapshot:
    """The snapshot, taken while a job sleeps inside the sandbox: once the job has loaded
    its own filter (right before the strategy runs), or, failing that, the last one seen."""
    root = box.fork_server_pid
    assert root is not None
    job = asyncio.ensure_future(box.run_signal(SLEEPER, BARS, {"seconds": 2.5}, timeout_seconds=5))
    last: Snapshot | None = None
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            found = _snapshot(root, box.settings.python)
            if found is None:
                continue
            last = found
            server, jobs, statuses, _maps = found
            if all(_filters(statuses[pid]) > _filters(statuses[server]) for pid in jobs):
                return found
        assert last is not None, "no job process appeared under the fork server"
        return last
    finally:
        assert (await job)["action"] == "hold"


def _ids(status_text: str, key: str) -> list[int]:
    line = next(line for line in status_text.splitlines() if line.startswith(key + ":"))
    return [int(value) for value in line.split()[1:]]


def _field(status_text: str, key: str) -> str:
    line = next(line for line in status_text.splitlines() if line.startswith(key + ":"))
    return line.split(":", 1)[1].strip()


@pytest.mark.parametrize("method", METHODS)
async def test_fork_server_and_jobs_are_not_host_root(
    method: str, caplog: pytest.LogCaptureFixture
) -> None:
    if method != "none" and shutil.which(method) is None:
        pytest.skip(f"{method} is not installed")
    settings = SandboxSettings(
        namespaces=method, python_guards=False, host_uid=HOST_UID, memory_limit_mb=256
    )
    with caplog.at_level(logging.INFO, logger="services.sandbox"):
        async with Sandbox(settings) as box:
            assert box.probe is not None and box.probe.namespaces == method
            server, jobs, statuses, uid_maps = await _tree_while_a_job_runs(box)
    expected = _expected_uid()
    assert expected != 0
    assert box.probe.host_uid == expected
    assert f"host_uid={expected} " in caplog.text  # the start-up log says it
    for pid in [server, *jobs]:
        assert _ids(statuses[pid], "Uid") == [expected] * 4, (pid, statuses[pid])
        assert _ids(statuses[pid], "Gid") == [expected] * 4
        assert _field(statuses[pid], "Groups") in ("", str(expected))
        assert int(_field(statuses[pid], "CapEff"), 16) == 0
        # Each line: inside uid, host uid (as the host sees it), count. Never host root.
        for line in uid_maps[pid].splitlines():
            inside, outside, count = map(int, line.split())
            if (inside, outside, count) != (0, 0, 2**32 - 1):  # no user namespace at all
                assert outside == expected and count == 1, uid_maps[pid]
    # Only the outermost launcher (root's bwrap building the view, or unshare) stays root,
    # outside the sandbox's namespaces, waiting for its child.
    roots = {pid for pid, text in statuses.items() if 0 in _ids(text, "Uid")}
    assert roots <= {box_root_pid(statuses, server)}
    # The fork server: no_new_privs and its own filter; the job inherits it under its own.
    assert _field(statuses[server], "NoNewPrivs") == "1"
    assert _field(statuses[server], "Seccomp") == "2"
    assert box.probe.fork_server_seccomp
    for pid in jobs:
        assert _field(statuses[pid], "Seccomp") == "2"
        assert _filters(statuses[pid]) > _filters(statuses[server])


def box_root_pid(statuses: dict[int, str], server: int) -> int:
    """The outermost process of the tree: the one whose parent is not in it."""
    parents = {pid: int(_field(text, "PPid")) for pid, text in statuses.items()}
    outermost = [pid for pid, parent in parents.items() if parent not in parents]
    assert len(outermost) == 1
    return outermost[0]


# --- the fork server's filter on its own, in a forked child of the test process ----------

_CLONE_NEWUSER = 0x10000000


def _in_filtered_child(action: Callable[[], None]) -> tuple[int | None, int | None]:
    """Fork; the child loads the fork server's filter, runs `action` and exits 0.
    Returns (exit code, signal)."""
    flt = oslayers.build_fork_server_filter()
    pid = os.fork()
    if pid == 0:
        try:
            flt.load()
            action()
        except BaseException:
            os._exit(3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


def _fork_and_reap() -> None:
    child = os.fork()
    if child == 0:
        os._exit(7)
    _, status = os.waitpid(child, 0)
    if os.WEXITSTATUS(status) != 7:
        raise RuntimeError("the forked job did not run")


def _unshare_user() -> None:
    ctypes.CDLL(None, use_errno=True).unshare(_CLONE_NEWUSER)


def _setuid_root() -> None:
    os.setuid(0)


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("exec", lambda: os.execv("/bin/true", ["true"])),
        ("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),
        ("unshare", _unshare_user),
        ("setuid", _setuid_root),
        ("ptrace", lambda: ctypes.CDLL(None).ptrace(16, os.getppid(), 0, 0)),  # ATTACH
    ],
)
def test_fork_server_filter_kills_what_a_fork_server_never_does(
    name: str, action: Callable[[], None]
) -> None:
    assert _in_filtered_child(action) == (None, signal.SIGSYS), name


def test_fork_server_filter_lets_it_fork_and_reap_jobs() -> None:
    assert _in_filtered_child(_fork_and_reap) == (0, None)


# --- the setting --------------------------------------------------------------------------


def test_host_uid_setting_defaults_to_a_dedicated_uid_and_refuses_root() -> None:
    assert Settings().sandbox_host_uid == launcher.DEFAULT_HOST_UID == SandboxSettings().host_uid
    assert launcher.DEFAULT_HOST_UID != launcher.NOBODY
    with pytest.raises(ValueError):
        Settings(sandbox_host_uid=0)
    with pytest.raises(ValueError):
        SandboxSettings(host_uid=0)


# --- refusals -----------------------------------------------------------------------------


def test_no_bwrap_method_as_root_without_setpriv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        pytest.skip("bubblewrap is not installed")
    (tmp_path / "bwrap").symlink_to(bwrap)
    monkeypatch.setenv("PATH", str(tmp_path))  # bwrap, but no setpriv
    assert launcher.bwrap_argv(sys.executable, user_namespace=True) is not None
    assert launcher.bwrap_argv(sys.executable, user_namespace=True, drop_to=HOST_UID) is None


async def test_a_fork_server_that_would_be_host_root_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if os.geteuid() != 0 or shutil.which("bwrap") is None:
        pytest.skip("needs root and bubblewrap")
    # Yesterday's launch: root's bwrap with a user namespace maps uid 65534 to host root.
    argv = launcher.bwrap_argv(sys.executable, user_namespace=True)
    assert argv is not None
    as_root = launcher.Launch("bwrap", tuple(argv), launcher.zygote_env())
    monkeypatch.setattr(launcher, "candidates", lambda *args: [as_root])
    box = Sandbox(SandboxSettings(namespaces="bwrap", host_uid=HOST_UID))
    with pytest.raises(SandboxUnavailable) as caught:
        await box.start()
    assert f"runs as host uid 0, not {HOST_UID}" in caught.value.message
    assert box.fork_server_pid is None
