"""The fork server ("zygote"): a trusted, long-lived child with numpy and pandas loaded.

Started once by `Sandbox.start()` (inside bubblewrap or unshare when the host allows), it
imports and warms up everything a strategy may use, locks itself down (no root, Landlock,
no_new_privs and a seccomp filter of its own), then forks one job process per request. Jobs
inherit its namespaces and its warm memory, so a job costs a fork, not an interpreter start.
It talks to the server over one SEQPACKET socket: requests carry the job's two pipe fds,
replies are small JSON events.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from typing import Any, NoReturn

from services.sandbox.oslayers import THREAD_ENV

for _name, _value in THREAD_ENV.items():
    os.environ.setdefault(_name, _value)  # before numpy loads, even if the launcher forgot

# The warm-up module imports numpy, pandas and every module strategy code may use.
from services.sandbox import child, oslayers, warmup  # noqa: E402

MAX_MESSAGE = 64 * 1024


class Zygote:
    """The fork server's state: the control socket and the running jobs."""

    def __init__(self, ctl: socket.socket, state: child.ZygoteState, statm_fd: int) -> None:
        self.ctl = ctl
        self.state = state
        self.statm_fd = statm_fd
        self.jobs: dict[int, int] = {}  # pid -> job id
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)

    def send(self, event: dict[str, Any]) -> None:
        self.ctl.send(json.dumps(event, separators=(",", ":")).encode())

    def serve(self) -> NoReturn:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        selector = selectors.DefaultSelector()
        selector.register(self.ctl, selectors.EVENT_READ, "ctl")
        selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        while True:
            for key, _ in selector.select():
                if key.data == "ctl":
                    self.on_request()
                else:
                    try:
                        while os.read(self.wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
            self.reap()

    def on_request(self) -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.ctl, MAX_MESSAGE, 4)
        except ConnectionError:
            data, fds = b"", []
        if not data:
            self.shutdown()
        try:
            request = json.loads(data)
            op = request["op"]
            job = int(request["job"])
        except (ValueError, KeyError, TypeError):
            for fd in fds:
                os.close(fd)
            return
        if op == "run" and len(fds) == 2:
            self.fork_job(job, fds[0], fds[1])
        elif op == "kill":
            for fd in fds:
                os.close(fd)
            for pid, owner in self.jobs.items():
                if owner == job:
                    _kill(pid)
        else:
            for fd in fds:
                os.close(fd)

    def fork_job(self, job: int, in_fd: int, out_fd: int) -> None:
        try:
            vm_bytes = oslayers.virtual_memory_bytes(self.statm_fd)
            pid = os.fork()
        except OSError as exc:  # EAGAIN/ENOMEM: the host's problem, reported as such
            self.send({"ev": "exit", "job": job, "error": f"fork failed: {exc}"})
            pid = -1
        if pid == 0:
            child.job_main(self.state, in_fd, out_fd, vm_bytes)
        os.close(in_fd)
        os.close(out_fd)
        if pid > 0:
            self.jobs[pid] = job

    def reap(self) -> None:
        while self.jobs:
            try:
                pid, status, usage = os.wait3(os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = self.jobs.pop(pid, None)
            if job is None:
                continue
            self.send(
                {
                    "ev": "exit",
                    "job": job,
                    "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    "cpu": usage.ru_utime + usage.ru_stime,
                    "maxrss_kb": usage.ru_maxrss,
                }
            )

    def shutdown(self) -> NoReturn:
        """The server is gone: no job may outlive it."""
        for pid in list(self.jobs):
            _kill(pid)
        os._exit(0)


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)  # the job's group (it made itself leader)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _inside_view() -> dict[str, Any]:
    """What the namespaces look like from inside, for the probe report."""
    try:
        interfaces = sorted(name for _, name in socket.if_nameindex())
    except OSError:
        interfaces = []
    return {
        "uid": os.getuid(),
        "pid": os.getpid(),
        "interfaces": interfaces,
        "network_isolated": all(name == "lo" for name in interfaces),
    }


def _set_oom_score() -> None:
    """Under memory pressure the kernel should kill jobs (and this server) first."""
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass


def _lock_down_fork_server(seccomp: bool) -> dict[str, Any]:
    """no_new_privs always; the fork server's own seccomp filter unless seccomp is off."""
    report: dict[str, Any] = {"fork_server_seccomp": False}
    try:
        oslayers.set_no_new_privs()
    except OSError as exc:
        report["fork_server_seccomp_error"] = str(exc)
        return report
    if not seccomp:
        return report
    try:
        oslayers.build_fork_server_filter().load()
    except (ImportError, OSError, RuntimeError) as exc:
        report["fork_server_seccomp_error"] = f"{type(exc).__name__}: {exc}"
    else:
        report["fork_server_seccomp"] = True
    return report


def main(argv: list[str]) -> None:
    started = time.perf_counter()
    config = json.loads(argv[1])
    oslayers.set_parent_death_signal()
    ctl = socket.socket(fileno=int(config["ctl_fd"]))
    ctl.set_inheritable(False)
    report: dict[str, Any] = {"ev": "ready", "python": sys.version.split()[0]}

    warm_started = time.perf_counter()
    problems = warmup.run()
    if problems:
        report["warmup_error"] = " | ".join(problems)
    report["warmup_ms"] = round((time.perf_counter() - warm_started) * 1000, 1)

    seccomp_filter = None
    if config.get("seccomp", True):
        try:
            candidate = oslayers.build_seccomp_filter()
            problem = oslayers.probe_seccomp(candidate)
        except (ImportError, OSError, RuntimeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            report["seccomp_error"] = problem
        else:
            seccomp_filter = candidate
    else:
        report["seccomp_error"] = "disabled by settings"

    _set_oom_score()
    devnull_fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    statm_fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
    report["dropped_root"] = oslayers.drop_root(int(config["host_uid"]))

    landlock_abi = 0
    if config.get("landlock", True):
        abi = oslayers.landlock_abi()
        try:
            oslayers.apply_landlock(abi)
            landlock_abi = abi
        except OSError as exc:
            report["landlock_error"] = str(exc)
    else:
        report["landlock_error"] = "disabled by settings"

    report.update(_inside_view())
    report["seccomp"] = seccomp_filter is not None
    report["landlock_abi"] = landlock_abi
    report["vm_bytes"] = oslayers.virtual_memory_bytes(statm_fd)
    # Last, once nothing but serving is left: the socket() of _inside_view included.
    report.update(_lock_down_fork_server(bool(config.get("seccomp", True))))
    report["startup_ms"] = round((time.perf_counter() - started) * 1000, 1)
    state = child.ZygoteState(
        zygote_pid=os.getpid(),
        devnull_fd=devnull_fd,
        seccomp_filter=seccomp_filter,
        landlock_abi=landlock_abi,
    )
    zygote = Zygote(ctl, state, statm_fd)
    zygote.send(report)
    zygote.serve()


if __name__ == "__main__":
    main(sys.argv)
