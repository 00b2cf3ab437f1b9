"""Private PostgreSQL and Redis servers for chaos tests: started on free ports of 127.0.0.1,
frozen (SIGSTOP), thawed (SIGCONT), killed (SIGKILL) and started again by the tests, and
always stopped at the end, whatever happened. Never the shared instances."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.server_process import free_port

POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
POSTGRES_USER = "postgres"  # initdb and postgres refuse to run as root


def postgres_available() -> bool:
    return bool(POSTGRES_BIN)


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port} after {seconds}s")


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name may hold spaces: the fields after its closing parenthesis.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


class ChaosProcess:
    """A server process the test controls; `command()` says how to start it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def credentials(self) -> dict[str, str]:
        """Popen's user and group: the server is our own child (we reap it when killed, so
        its pid is free for the next start to see), never a grandchild behind runuser."""
        return {}

    def ready(self) -> None:
        """Block until the server accepts work."""
        assert self.process is not None
        _wait_for_port(self.port, self.process)

    log_path: Path | None = None

    def start(self) -> None:
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.credentials(),
            )
        finally:
            if not isinstance(log, int):
                log.close()
        self.ready()

    def _signal_group(self, signum: signal.Signals) -> None:
        """The process and its children (PostgreSQL's backends: each in a session of its own,
        so a process group signal would miss them)."""
        assert self.process is not None
        for pid in [self.process.pid, *children_of(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def freeze(self) -> None:
        self._signal_group(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL to every process of the server, and wait until it is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        children = children_of(self.process.pid)
        self._signal_group(signal.SIGKILL)
        self._signal_group(signal.SIGCONT)  # a stopped process dies only once resumed
        self.process.wait(10)
        for pid in children:  # PostgreSQL's backends, if the postmaster's death left any
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # PostgreSQL's children leave after their postmaster; wait until the port is free.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.02)

    def restart(self) -> None:
        self.kill()
        self.start()


class PrivateRedis(ChaosProcess):
    def command(self) -> list[str]:
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class PrivatePostgres(ChaosProcess):
    """initdb into a fresh directory owned by the postgres user; trust authentication on
    127.0.0.1 only; fsync off (the tests need speed, not durability)."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.bin = POSTGRES_BIN[-1]
        self.datadir = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        account = pwd.getpwnam(POSTGRES_USER)
        os.chown(self.datadir, account.pw_uid, account.pw_gid)
        self.log_path = self.datadir / "postgres.log"
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.datadir / "data"),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=self.datadir,
            **self.credentials(),
        )

    def credentials(self) -> dict[str, str]:
        return {"user": POSTGRES_USER, "group": POSTGRES_USER} if os.geteuid() == 0 else {}

    def command(self) -> list[str]:
        return [
            str(self.bin / "postgres"),
            "-D",
            str(self.datadir / "data"),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.datadir),  # its Unix socket, away from the system's
            "-c",
            "fsync=off",
        ]

    def ready(self) -> None:
        super().ready()
        assert self.process is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("PostgreSQL did not become ready")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        shutil.rmtree(self.datadir, ignore_errors=True)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port())
    try:
        server.start()
        yield server
    finally:
        server.kill()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(free_port())
    try:
        server.start()
        yield server
    finally:
        server.kill()
        server.remove()
