"""Jobs across real processes: the API, two `python -m server worker` processes, the run's
database (PostgreSQL under TEST_DATABASE_URL) and Redis. Workers are killed with SIGKILL
mid-job; the API is killed and restarted with jobs queued."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from models import Job, JobStatus, JobTask, User
from services.job_queue import QueueKeys, QueueSubmitter
from services.jobs import JobRules, create_job
from tests.support.job_kinds import write_spec  # registers test.batch and test.sleep
from tests.support.server_process import ServerProcess, server_env
from tests.support.worker_process import WorkerProcess

pytestmark = pytest.mark.process

HEARTBEAT, STALE = 0.2, 2.0
RULES = JobRules(max_running_per_user=2, heartbeat_seconds=HEARTBEAT, stale_seconds=STALE)


@pytest.fixture
def job_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JOB_TEST_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
async def user(database: str) -> User:
    return await User.create(email=f"work-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")


def cluster_env(database: str, redis_url: str, job_root: Path, **more: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        # Keys of this test's own: other runs may share the Redis.
        "JOB_QUEUE_NAME": f"test-{uuid.uuid4().hex[:12]}",
        "JOB_MODULES": "tests.support.job_kinds",
        "JOB_TEST_DIR": str(job_root),
        "JOB_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "JOB_STALE_SECONDS": str(STALE),
        "SANDBOX_MAX_CONCURRENT_JOBS": "2",
        "SECRET_KEY": "jobs-test-secret-key-0123456789-0123456789",
        "LOG_LEVEL": "info",
        **more,
    }


@pytest.fixture
def started() -> Iterator[list[ServerProcess | WorkerProcess]]:
    """Processes to stop at the end, whatever happened."""
    processes: list[ServerProcess | WorkerProcess] = []
    yield processes
    for process in processes:
        process.stop(signal.SIGKILL)


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds}s for {what}")
        await asyncio.sleep(0.05)


async def status_of(job_id: uuid.UUID) -> JobStatus:
    return (await Job.get(id=job_id)).status


def stored(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("task-*"))


def run_lines(folder: Path) -> list[tuple[int, str]]:
    log = folder / "runs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(int(index), worker) for index, worker in (line.split() for line in lines)]


async def start_cluster(
    env: dict[str, str], root: Path, started: list[ServerProcess | WorkerProcess]
) -> tuple[ServerProcess, list[WorkerProcess]]:
    api = ServerProcess(root, **env)
    workers = [WorkerProcess(root, **env), WorkerProcess(root, **env)]
    for process in (api, *workers):
        started.append(process)
    await api.start_async(60)
    await asyncio.gather(*(asyncio.to_thread(worker.start) for worker in workers))
    return api, workers


async def test_a_worker_killed_mid_job_loses_nothing(
    database: str, redis_url: str, job_root: Path, user: User, started
) -> None:
    env = cluster_env(database, redis_url, job_root)
    api, workers = await start_cluster(env, job_root, started)
    submitter = QueueSubmitter(redis_url, RULES, QueueKeys(env["JOB_QUEUE_NAME"]))
    job_id = uuid.uuid4()
    folder = write_spec(job_root, job_id, tasks=30, seconds=0.3, batches=2)
    try:
        await submitter.submit("test.batch", job_id, user.id)

        async def midway() -> bool:
            job = await Job.get(id=job_id)
            return job.status == JobStatus.RUNNING and len(stored(folder)) >= 6

        await wait_for(midway, "the job to be midway", 60)
        # Kill the worker running the job itself (its tasks in flight die with it).
        job = await Job.get(id=job_id)
        (victim,) = [w for w in workers if job.worker and job.worker.endswith(f":{w.pid}")]
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()

        async def ended() -> bool:
            return await status_of(job_id) in (JobStatus.SUCCEEDED, JobStatus.FAILED)

        await wait_for(ended, "the job to end on the other worker", 90)
    finally:
        await submitter.aclose()
    job = await Job.get(id=job_id)
    survivor = next(w for w in workers if w is not victim)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2 and job.worker and job.worker.endswith(f":{survivor.pid}")
    assert stored(folder) == sorted(f"task-{i}" for i in range(30)), "a task lost or extra"
    assert await JobTask.filter(job_id=job_id, done=True).count() == 30
    assert job.progress == {"tasksDone": 30, "tasksTotal": 30}
    ran_on = {worker for _, worker in run_lines(folder)}
    assert all(not name.endswith(f":{api.pid}") for name in ran_on), "the API ran a task"
    assert time.monotonic() - killed_at < 60
    assert survivor.readyz().json()["ready"] is True


async def test_a_stopped_worker_gives_its_job_back_to_the_other(
    database: str, redis_url: str, job_root: Path, user: User, started
) -> None:
    env = cluster_env(database, redis_url, job_root)
    _, workers = await start_cluster(env, job_root, started)
    submitter = QueueSubmitter(redis_url, RULES, QueueKeys(env["JOB_QUEUE_NAME"]))
    job_id = uuid.uuid4()
    folder = write_spec(job_root, job_id, tasks=16, seconds=0.3, batches=4)
    try:
        await submitter.submit("test.batch", job_id, user.id)

        async def midway() -> bool:
            return len(stored(folder)) >= 4

        await wait_for(midway, "the job to be midway", 60)
        job = await Job.get(id=job_id)
        (stopping,) = [w for w in workers if job.worker and job.worker.endswith(f":{w.pid}")]
        await asyncio.to_thread(stopping.stop, signal.SIGTERM)
        assert stopping.process is not None and stopping.process.returncode == 0

        async def ended() -> bool:
            return await status_of(job_id) in (JobStatus.SUCCEEDED, JobStatus.FAILED)

        await wait_for(ended, "the job to end on the other worker", 60)
    finally:
        await submitter.aclose()
    job = await Job.get(id=job_id)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    assert stored(folder) == sorted(f"task-{i}" for i in range(16))


async def test_cancellation_reaches_a_job_on_a_worker_within_two_seconds(
    database: str, redis_url: str, job_root: Path, user: User, started
) -> None:
    env = cluster_env(database, redis_url, job_root)
    _, workers = await start_cluster(env, job_root, started)
    submitter = QueueSubmitter(redis_url, RULES, QueueKeys(env["JOB_QUEUE_NAME"]))
    job_id = uuid.uuid4()
    folder = write_spec(job_root, job_id, tasks=60, seconds=0.3)
    try:
        await submitter.submit("test.batch", job_id, user.id)

        async def busy() -> bool:
            return len(run_lines(folder)) >= 2

        await wait_for(busy, "tasks to run", 60)
        asked = time.monotonic()
        await submitter.cancel(job_id)

        async def cancelled() -> bool:
            return await status_of(job_id) == JobStatus.CANCELLED

        await wait_for(cancelled, "the job to be cancelled", 10)
        took = time.monotonic() - asked
        await asyncio.sleep(1.0)
        runs_after = len(run_lines(folder))
        await asyncio.sleep(1.0)
    finally:
        await submitter.aclose()
    assert took < 2.0, f"cancelled after {took:.2f}s"
    assert len(run_lines(folder)) == runs_after, "tasks kept starting after the cancellation"
    assert len(stored(folder)) < 60
    assert all(worker.readyz().status_code == 200 for worker in workers)


async def test_a_users_jobs_are_capped_across_workers(
    database: str, redis_url: str, job_root: Path, user: User, started
) -> None:
    env = cluster_env(database, redis_url, job_root, JOB_MAX_RUNNING_PER_USER="1")
    await start_cluster(env, job_root, started)
    submitter = QueueSubmitter(redis_url, RULES, QueueKeys(env["JOB_QUEUE_NAME"]))
    job_ids = [uuid.uuid4() for _ in range(3)]
    most_running = 0
    try:
        for job_id in job_ids:
            write_spec(job_root, job_id, tasks=2, seconds=0.3)
            await submitter.submit("test.batch", job_id, user.id)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            statuses = await Job.filter(id__in=job_ids).values_list("status", flat=True)
            most_running = max(most_running, sum(s == JobStatus.RUNNING for s in statuses))
            if all(s == JobStatus.SUCCEEDED for s in statuses):
                break
            await asyncio.sleep(0.02)
    finally:
        await submitter.aclose()
    assert [await status_of(job_id) for job_id in job_ids] == [JobStatus.SUCCEEDED] * 3
    assert most_running == 1


async def test_workers_say_they_are_ready_and_count_each_other_in_metrics(
    database: str, redis_url: str, job_root: Path, started
) -> None:
    env = cluster_env(database, redis_url, job_root)
    _, workers = await start_cluster(env, job_root, started)
    ready = workers[0].readyz().json()
    assert ready == {**ready, "ready": True, "redis": True, "database": True, "sandbox": True}

    async def counted(text: str) -> bool:
        return text in (await asyncio.to_thread(httpx.get, f"{workers[0].base}/metrics")).text

    await wait_for(lambda: counted("job_workers 2.0"), "the worker gauge to say 2", 15)
    workers[1].stop(signal.SIGTERM)
    assert workers[1].process is not None and workers[1].process.returncode == 0
    await wait_for(lambda: counted("job_workers 1.0"), "the worker gauge to say 1", 15)


def test_a_worker_without_redis_refuses_to_start(tmp_path: Path) -> None:
    env = server_env(DATABASE_URL=f"sqlite://{tmp_path}/x.db")
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "server", "worker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: a worker needs REDIS_URL")


async def test_a_killed_and_restarted_api_loses_no_queued_job(
    database: str, job_root: Path, user: User, started
) -> None:
    """The embedded backend: jobs queued in the database survive the server's SIGKILL; the
    next start runs them, and the interrupted one again, every task stored once."""
    env = cluster_env(database, "", job_root, JOB_CONCURRENCY="1")
    env.pop("REDIS_URL")
    api = ServerProcess(job_root, **env)
    started.append(api)
    await api.start_async(60)
    job_ids = [uuid.uuid4() for _ in range(3)]
    folders = [write_spec(job_root, job_id, tasks=6, seconds=0.2, batches=3) for job_id in job_ids]
    for job_id in job_ids:  # as the API's submit stores them; its dispatcher takes them
        await create_job("test.batch", job_id, user.id)

    async def first_midway() -> bool:
        return any(1 <= len(stored(folder)) < 6 for folder in folders)

    await wait_for(first_midway, "a job to be midway", 60)
    api.stop(signal.SIGKILL)
    statuses = await Job.filter(id__in=job_ids).values_list("status", flat=True)
    assert JobStatus.QUEUED in statuses, "the test wants jobs still queued when the API dies"

    restarted = ServerProcess(job_root, **env)
    started.append(restarted)
    await restarted.start_async(60)

    async def all_ended() -> bool:
        rows = await Job.filter(id__in=job_ids).values_list("status", flat=True)
        return all(status in (JobStatus.SUCCEEDED, JobStatus.FAILED) for status in rows)

    await wait_for(all_ended, "every job to end after the restart", 90)
    jobs = [await Job.get(id=job_id) for job_id in job_ids]
    assert [job.status for job in jobs] == [JobStatus.SUCCEEDED] * 3, [j.error for j in jobs]
    assert max(job.attempts for job in jobs) == 2
    for folder in folders:
        assert stored(folder) == sorted(f"task-{i}" for i in range(6))
