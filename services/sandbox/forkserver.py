"""The server's handle on a fork server: spawn it, send it jobs, read their frames.

Only trusted code lives here. A job's frames are read as size-capped JSON from a pipe
(`ResultReader`); why a job ended is decided in `services.sandbox.outcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.sandbox import launcher, protocol
from services.sandbox.settings import SandboxSettings

log = logging.getLogger("services.sandbox")

ProgressCallback = Callable[[int, int], None]
PROGRESS_ALLOWANCE = 256 * 1024  # bytes of progress frames on top of the result cap


@dataclass(frozen=True)
class JobExit:
    code: int | None
    signal: int | None
    cpu: float
    maxrss_kb: int
    error: str | None = None  # the fork server could not start the job


class ForkServerDied(Exception):
    """The fork server vanished while a job was in flight."""


class ForkServer:
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
        self._waiters: dict[int, asyncio.Future[JobExit]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr_tail: list[str] = []

    @classmethod
    async def spawn(cls, launch: launcher.Launch, settings: SandboxSettings) -> ForkServer:
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
        fork_server = cls(process, parent_sock, launch.method)
        fork_server._stderr_task = asyncio.create_task(fork_server._drain_stderr())
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(
                loop.sock_recv(parent_sock, 65536), settings.start_timeout_seconds
            )
            ready = json.loads(data) if data else {}
        except (TimeoutError, ValueError, OSError):
            ready = {}
        if ready.get("ev") != "ready":
            await fork_server.close()
            tail = " | ".join(fork_server._stderr_tail[-5:]) or "no output"
            raise OSError(f"{launch.method}: fork server did not start ({tail})")
        fork_server.ready = ready
        fork_server.host_uid = host_uid_of(process.pid, int(ready.get("pid", -1)))
        fork_server._reader = asyncio.create_task(fork_server._read_events())
        return fork_server

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
                        JobExit(
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
                waiter.set_exception(ForkServerDied())
        self._waiters.clear()

    def expect_exit(self, job: int) -> asyncio.Future[JobExit]:
        future: asyncio.Future[JobExit] = asyncio.get_running_loop().create_future()
        if self.dead:
            future.set_exception(ForkServerDied())
        else:
            self._waiters[job] = future
        return future

    async def send(self, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
        """sendmsg with SCM_RIGHTS; asyncio has no such call, so wait for writability."""
        if self.dead:
            raise ForkServerDied()
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
                raise ForkServerDied() from exc

    async def close(self) -> None:
        """Kill the fork server's whole process tree (bwrap/unshare kill the namespace)."""
        self._mark_dead()
        # os.kill, not Process.kill: Popen.send_signal polls first and may reap the process
        # under asyncio's child watcher, which then logs "Unknown child process".
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(OSError):
                kill(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 5)
        if self._reader is not None:
            self._reader.cancel()
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._stderr_task, 1)
        self.sock.close()


class ResultReader(asyncio.Protocol):
    """Parses a job's frames as they arrive; stops reading past the byte cap."""

    def __init__(
        self, max_frame: int, on_progress: ProgressCallback | None, abort: Callable[[], None]
    ) -> None:
        self.max_frame = max_frame
        self.max_total = max_frame + protocol.FRAME_HEADER.size + PROGRESS_ALLOWANCE
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


def host_uid_of(root_pid: int, inner_pid: int) -> int:
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


async def quietly(awaitable: Any) -> None:
    with contextlib.suppress(ForkServerDied, OSError):
        await awaitable


async def write_input(fd: int, data: bytes) -> None:
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
