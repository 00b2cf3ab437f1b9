"""`python -m server worker` as users run it, configured only by environment variables."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server_process import LoggedChild, free_port, server_env


class WorkerProcess(LoggedChild):
    """A queue worker in `workdir`, its health endpoint on a free port of 127.0.0.1;
    `start()` waits until its /readyz answers 200 (it takes jobs)."""

    def __init__(self, workdir: Path, **settings: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = server_env(HOST="127.0.0.1", WORKER_PORT=str(self.port), **settings)
        self.log_path = workdir / f"worker-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self, timeout: float = 60) -> WorkerProcess:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server", "worker"],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"worker exited with {self.process.returncode}:\n{self.output()}")
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{self.base}/readyz").status_code == 200:
                        return self
                time.sleep(0.05)
        self.stop(signal.SIGKILL)
        pytest.fail(f"worker not ready in {timeout} s:\n{self.output()}")

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.base}/readyz", timeout=5)
