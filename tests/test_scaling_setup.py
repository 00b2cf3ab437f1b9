"""docs/scaling.md's set-ups: the compose file (Docker is not run here: it must parse, build
our image and run only commands the CLI has) and `make cluster` (scripts/cluster.sh), run for
real against the run's database and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO

import httpx
import pytest
import typer.main
import yaml

from models import Job, JobStatus, User
from server.cli import app
from services.job_queue import QueueKeys, QueueSubmitter
from services.jobs import JobRules
from tests.support.api import ROOT
from tests.support.job_kinds import write_spec  # registers test.batch and test.sleep
from tests.support.server_process import free_port, server_env


def cli_commands() -> set[str]:
    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_the_compose_file_is_valid_and_runs_only_our_commands() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(services)
    for name, service in services.items():
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").exists()
            command = service["command"]
            assert command[:3] == ["python", "-m", "server"], name
            assert all(part in cli_commands() for part in command[3:]), (name, command)
        else:
            assert service["image"].split(":")[0] in ("postgres", "redis"), name
    for name in ("api", "worker", "migrate"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://postgres@postgres:5432/")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["environment"]["JOB_BACKEND"] == "queue"
    assert "8001/readyz" in " ".join(services["worker"]["healthcheck"]["test"])
    assert services["api"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }


def _port_pair() -> int:
    """A free port whose next one is free too (the two workers' health endpoints)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe, contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", port + 1))
            return port
    raise AssertionError("no two free ports in a row")


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(url, timeout=1).status_code == 200
    return False


def run_cluster_script(env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "cluster.sh")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.process
async def test_make_cluster_starts_the_api_and_two_workers_that_run_jobs(
    database: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOB_TEST_DIR", str(tmp_path))
    api_port, worker_port = free_port(), _port_pair()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = server_env(
        PY=sys.executable,
        DATABASE_URL=database,
        REDIS_URL=redis_url,
        PORT=str(api_port),
        WORKER_PORT=str(worker_port),
        JOB_QUEUE_NAME=queue,
        JOB_MODULES="tests.support.job_kinds",
        JOB_TEST_DIR=str(tmp_path),
    )
    log = (tmp_path / "cluster.log").open("wb")
    script = run_cluster_script(env, log)
    urls = [
        f"http://127.0.0.1:{api_port}/healthz",
        f"http://127.0.0.1:{worker_port}/readyz",
        f"http://127.0.0.1:{worker_port + 1}/readyz",
    ]
    submitter = QueueSubmitter(redis_url, JobRules(), QueueKeys(queue))
    try:
        deadline = time.monotonic() + 90
        while not all(await asyncio.gather(*(asyncio.to_thread(_answers, u) for u in urls))):
            assert script.poll() is None, (tmp_path / "cluster.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "cluster.log").read_text()
            await asyncio.sleep(0.2)
        user = await User.create(email=f"cl-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
        job_id = uuid.uuid4()
        write_spec(tmp_path, job_id, tasks=4, seconds=0.05)
        await submitter.submit("test.batch", job_id, user.id)
        while (job := await Job.get(id=job_id)).status not in (
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
        ):
            assert time.monotonic() < deadline + 30, "the cluster did not run the job"
            await asyncio.sleep(0.1)
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert not job.worker or not job.worker.endswith(f":{script.pid}")
    finally:
        await submitter.aclose()
        script.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(script.wait, 60)
        except subprocess.TimeoutExpired:
            os.killpg(script.pid, signal.SIGKILL)
            raise
        log.close()
    assert code in (0, 143), (tmp_path / "cluster.log").read_text()
    # Ctrl-C / SIGTERM stops every process it started.
    await asyncio.sleep(1)
    assert not any([_answers(url) for url in urls])
