"""The real server as users run it: `python -m server migrate`, then `python -m server`.

Configured only by environment variables, in a working directory of the test's (its ./data
holds the default SQLite database and the dev secret key). Output goes to a log file, never
a pipe that could fill and stall the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from tests.support.api import ROOT

# Configuration of the environment the tests run in, which must not leak into the server.
STRIPPED = (
    "GEMINI_",
    "OPENAI_",
    "ANTHROPIC_",
    "DEFAULT_MODEL",
    "MODEL_PRICES",
    "DATABASE_",
    "SECRET_",
    "LOG_",
    "RATE_LIMIT_",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(**settings: str) -> dict[str, str]:
    """This environment without the server's own settings, plus PYTHONPATH and `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED)}
    return {**env, "PYTHONPATH": str(ROOT), **settings}


class LoggedChild:
    """A program a test started, its stdout and stderr in `log_path`: the server, a worker."""

    process: subprocess.Popen[bytes] | None
    log_path: Path

    def stop(self, signum: signal.Signals = signal.SIGTERM, timeout: float = 30) -> None:
        """Send `signum` unless it has exited; SIGKILL if it is still running after `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def output(self) -> str:
        """Everything it wrote so far, stdout and stderr (its JSON log lines) alike."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ServerProcess(LoggedChild):
    """`python -m server` on a free port of 127.0.0.1 in `workdir`, configured by `settings`.

    Without DATABASE_URL in `settings`, the default SQLite file under `workdir`/data.
    `with ServerProcess(...) as server:` starts it (migrating first) and stops it.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        migrate_first: bool = True,
        open_files: int | None = None,
        **settings: str,
    ) -> None:
        self.workdir = workdir
        self.open_files = open_files  # RLIMIT_NOFILE of the server process, when given
        self.migrate_first = migrate_first  # False: as a user runs it, on an unmigrated database
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = server_env(HOST="127.0.0.1", PORT=str(self.port), **settings)
        self.log_path = workdir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def migrate(self) -> None:
        """`python -m server migrate`: on a database already migrated, a no-op."""
        migrate = subprocess.run(
            [sys.executable, "-m", "server", "migrate"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    def start(self, timeout: float = 30, migrate: bool = True) -> ServerProcess:
        """Migrate (unless told not to), serve, and wait until GET /healthz answers 200."""
        if migrate:
            self.migrate()
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server"],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=self._limit_open_files if self.open_files else None,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{self.base}/healthz").status_code == 200:
                        return self
                time.sleep(0.05)
        self.stop(signal.SIGKILL)
        pytest.fail(f"server did not start in {timeout} s:\n{self.output()}")

    def _limit_open_files(self) -> None:
        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def send(self, signum: signal.Signals) -> None:
        assert self.process is not None, "not started"
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code (minus the signal's number if a signal ended it); TimeoutExpired."""
        assert self.process is not None, "not started"
        return self.process.wait(timeout)

    # For async tests: the same, without blocking their event loop.

    async def start_async(self, seconds: float = 30) -> ServerProcess:
        return await asyncio.to_thread(self.start, seconds)

    async def wait_async(self, seconds: float) -> int:
        return await asyncio.to_thread(self.wait, seconds)

    async def stop_async(self, signum: signal.Signals = signal.SIGTERM) -> None:
        await asyncio.to_thread(self.stop, signum)

    def __enter__(self) -> ServerProcess:
        return self.start(migrate=self.migrate_first)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
