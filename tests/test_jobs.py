"""The jobs machinery in-process (the embedded default): registry, stored state, tasks run
once, cancellation, the per-user cap, and a restart taking up queued and running jobs."""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from models import Job, JobStatus, JobTask, User
from server.settings import Settings
from services.errors import BadInput, NotFound
from services.execution import StrategyRunner
from services.jobs import InProcessJobs, JobRules, user_job, user_jobs
from services.sandbox import Sandbox
from tests.support.job_kinds import write_spec  # registers test.batch and test.sleep

RULES = JobRules(max_running_per_user=2, heartbeat_seconds=0.2, stale_seconds=1.0)


@pytest.fixture
def job_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JOB_TEST_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
async def user(database: str) -> User:
    return await User.create(email=f"jobs-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")


@pytest.fixture
async def backends(sandbox: Sandbox) -> AsyncIterator[Callable[..., InProcessJobs]]:
    """Make in-process backends on the run's sandbox; each is closed at the end."""
    made: list[InProcessJobs] = []

    def make(rules: JobRules = RULES, max_running: int = 4) -> InProcessJobs:
        backend = InProcessJobs(
            StrategyRunner(sandbox), rules, max_running=max_running, poll_seconds=0.1
        )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


async def job_state(job_id: uuid.UUID) -> Job:
    return await Job.get(id=job_id)


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds}s for {what}")
        await asyncio.sleep(0.02)


async def wait_status(job_id: uuid.UUID, *statuses: JobStatus, seconds: float = 15) -> Job:
    async def reached() -> bool:
        return (await job_state(job_id)).status in statuses

    await wait_for(reached, f"job {job_id} to be {statuses}", seconds)
    return await job_state(job_id)


def stored(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("task-*"))


def runs(folder: Path) -> list[int]:
    log = folder / "runs.log"
    return [int(line.split()[0]) for line in log.read_text().splitlines()] if log.exists() else []


async def test_a_job_runs_every_task_once_and_succeeds(job_root, user, backends) -> None:
    backend = backends()
    await backend.start()
    job_id = uuid.uuid4()
    folder = write_spec(job_root, job_id, tasks=6, seconds=0.02, batches=2)
    await backend.submit("test.batch", job_id, user.id)
    job = await wait_status(job_id, JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert stored(folder) == [f"task-{i}" for i in range(6)]
    assert sorted(runs(folder)) == list(range(6))
    assert job.progress == {"tasksDone": 6, "tasksTotal": 6}
    assert job.attempts == 1 and job.worker == backend.worker
    assert job.started_at and job.finished_at and job.started_at <= job.finished_at
    assert await JobTask.filter(job_id=job_id, done=True).count() == 6


async def test_a_failing_task_fails_the_job_with_its_message(job_root, user, backends) -> None:
    backend = backends()
    await backend.start()
    job_id = uuid.uuid4()
    write_spec(job_root, job_id, tasks=4, seconds=0.01, failing=[2])
    await backend.submit("test.batch", job_id, user.id)
    job = await wait_status(job_id, JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert job.status == JobStatus.FAILED
    assert job.error == "task 2 was told to fail"


async def test_a_failing_job_stores_its_message_and_no_traceback(job_root, user, backends) -> None:
    backend = backends()
    await backend.start()
    job_id = uuid.uuid4()
    write_spec(job_root, job_id, tasks=1, fail=True)
    await backend.submit("test.batch", job_id, user.id)
    job = await wait_status(job_id, JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert job.status == JobStatus.FAILED
    assert job.error == "the job failed with an internal error"


async def test_unknown_kinds_are_refused_before_anything_is_stored(user, backends) -> None:
    job_id = uuid.uuid4()
    with pytest.raises(BadInput, match="unknown job kind"):
        await backends().submit("no.such.kind", job_id, user.id)
    assert not await Job.exists(id=job_id)


async def test_cancelling_a_running_job_stops_it_within_a_heartbeat(
    job_root, user, backends
) -> None:
    backend = backends()
    await backend.start()
    job_id = uuid.uuid4()
    folder = write_spec(job_root, job_id, tasks=40, seconds=0.2)
    await backend.submit("test.batch", job_id, user.id)
    await wait_status(job_id, JobStatus.RUNNING)
    await wait_for(lambda: _true(runs(folder)), "a task to start")
    asked = time.monotonic()
    await backend.cancel(job_id)
    job = await wait_status(job_id, JobStatus.CANCELLED, JobStatus.SUCCEEDED, seconds=5)
    assert job.status == JobStatus.CANCELLED
    assert time.monotonic() - asked < 2.0
    assert len(stored(folder)) < 40
    assert job.finished_at is not None


async def _true(value: object) -> bool:
    return bool(value)


async def test_cancelling_a_queued_job_cancels_it_at_once(job_root, user, backends) -> None:
    backend = backends()  # not started: nothing takes the job
    job_id = uuid.uuid4()
    write_spec(job_root, job_id, tasks=1)
    await backend.submit("test.batch", job_id, user.id)
    assert (await job_state(job_id)).status == JobStatus.QUEUED
    await backend.cancel(job_id)
    assert (await job_state(job_id)).status == JobStatus.CANCELLED


async def test_a_users_running_jobs_are_capped_and_others_are_not_held_up(
    job_root, user, backends
) -> None:
    other = await User.create(email=f"jobs-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
    rules = JobRules(max_running_per_user=1, heartbeat_seconds=0.2, stale_seconds=1.0)
    backend = backends(rules)
    mine = [uuid.uuid4() for _ in range(3)]
    theirs = uuid.uuid4()
    for job_id in mine:
        write_spec(job_root, job_id, tasks=2, seconds=0.15)
        await backend.submit("test.batch", job_id, user.id)
    write_spec(job_root, theirs, tasks=2, seconds=0.15)
    await backend.submit("test.batch", theirs, other.id)
    await backend.start()
    most_mine, theirs_ran_beside_mine = 0, False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = await Job.filter(id__in=[*mine, theirs]).values("id", "status")
        running = {row["id"] for row in rows if row["status"] == JobStatus.RUNNING}
        most_mine = max(most_mine, len(running & set(mine)))
        theirs_ran_beside_mine |= theirs in running and bool(running & set(mine))
        if all(row["status"] == JobStatus.SUCCEEDED for row in rows):
            break
        await asyncio.sleep(0.02)
    assert [(await job_state(job_id)).status for job_id in mine] == [JobStatus.SUCCEEDED] * 3
    assert most_mine == 1
    assert theirs_ran_beside_mine


async def test_a_restart_takes_up_queued_and_interrupted_jobs(job_root, user, backends) -> None:
    """A graceful stop gives running jobs back (QUEUED); the next start runs them, skipping
    the tasks already done. Jobs queued meanwhile are run too."""
    first = backends()
    await first.start()
    job_id = uuid.uuid4()
    folder = write_spec(job_root, job_id, tasks=8, seconds=0.1, batches=4)
    await first.submit("test.batch", job_id, user.id)
    await wait_for(lambda: _true(len(stored(folder)) >= 2), "the first batch")
    await first.aclose()
    assert (await job_state(job_id)).status == JobStatus.QUEUED
    done_before = set(stored(folder))
    queued_while_down = uuid.uuid4()
    write_spec(job_root, queued_while_down, tasks=2)
    await first.submit("test.batch", queued_while_down, user.id)

    second = backends()
    await second.start()
    job = await wait_status(job_id, JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    assert stored(folder) == [f"task-{i}" for i in range(8)]
    rerun = [index for index in runs(folder) if f"task-{index}" in done_before]
    assert len(rerun) == len(done_before), "a task done before the restart ran again"
    assert (await wait_status(queued_while_down, JobStatus.SUCCEEDED)).attempts == 1


async def test_a_job_whose_process_died_is_taken_again_once_its_heartbeat_is_stale(
    job_root, user, backends
) -> None:
    job_id = uuid.uuid4()
    folder = write_spec(job_root, job_id, tasks=3)
    await Job.create(
        id=job_id,
        kind="test.batch",
        user_id=user.id,
        status=JobStatus.RUNNING,
        worker="gone-host:1",
        attempts=1,
        heartbeat_at=datetime.datetime.now(datetime.UTC),
    )
    backend = backends()
    await backend.start()
    await asyncio.sleep(RULES.stale_seconds / 2)
    assert (await job_state(job_id)).worker == "gone-host:1", "taken while its heartbeat was fresh"
    job = await wait_status(job_id, JobStatus.SUCCEEDED, seconds=10)
    assert job.attempts == 2 and job.worker == backend.worker
    assert len(stored(folder)) == 3


async def test_a_job_is_its_owners_to_see(job_root, user, backends) -> None:
    other = await User.create(email=f"jobs-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
    job_id = uuid.uuid4()
    write_spec(job_root, job_id, tasks=1)
    await backends().submit("test.batch", job_id, user.id)
    assert (await user_job(user, job_id)).id == job_id
    assert next(job.id for job in await user_jobs(user)) == job_id
    with pytest.raises(NotFound):
        await user_job(other, job_id)
    assert await user_jobs(other) == []


def test_the_queue_backend_needs_redis_and_the_heartbeat_fits_the_staleness() -> None:
    base = {"_env_file": None, "database_url": "sqlite://:memory:"}
    with pytest.raises(ValueError, match="JOB_BACKEND=queue needs REDIS_URL"):
        Settings(**base, job_backend="queue")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="JOB_STALE_SECONDS"):
        Settings(**base, job_heartbeat_seconds=5, job_stale_seconds=8)  # type: ignore[arg-type]
    assert Settings(**base, redis_url="redis://x").uses_job_queue  # type: ignore[arg-type]
    assert not Settings(**base).uses_job_queue  # type: ignore[arg-type]
    assert not Settings(  # type: ignore[arg-type]
        **base, redis_url="redis://x", job_backend="inprocess"
    ).uses_job_queue
