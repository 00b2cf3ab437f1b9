"""Jobs on queue workers: taskiq over Redis streams (docs/scaling.md says why taskiq).

The API process only stores a job (QUEUED) and kicks a message; `python -m server worker`
processes, on any machine sharing the database and Redis, take the messages. Two streams:
jobs (a job's handler, JOB_CONCURRENCY at once per worker) and tasks (the fan-out of
`run_tasks`, as many at once as the worker's sandbox has slots), so waiting jobs never hold
the slots their own tasks need.

Delivery is at least once. A message stays pending in the stream until its handler has
finished; each worker re-claims its own pending messages every JOB_HEARTBEAT_SECONDS, so
their idle time stays near zero while it lives. When it dies, its messages go idle and,
after JOB_STALE_SECONDS, another worker's XAUTOCLAIM takes them. The database decides the
rest (services/jobs.py): a job is claimed by one process, finished once; a task is recorded
once. A sweeper (one worker at a time) kicks again any job still QUEUED once the stream has
nothing undelivered: a job whose message was lost (the API died between storing and
kicking it, Redis lost its data) or that waited for its owner's cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from taskiq.api import run_receiver_task
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker
from tortoise.expressions import Q

from models import Job, JobStatus
from services import telemetry
from services.job_control import JobCancelled, TaskFailed
from services.jobs import (
    Claim,
    Control,
    JobRules,
    TaskView,
    create_job,
    ensure_tasks,
    execute_job,
    release_job,
    request_cancel,
    run_task,
    task_states,
)

if TYPE_CHECKING:
    from services.execution import StrategyRunner

log = logging.getLogger(__name__)

GROUP = "workers"
RUN_JOB = "strategies.run_job"
RUN_TASK = "strategies.run_task"
# Acked entries are trimmed past this many per stream; far above any backlog.
STREAM_MAXLEN = 100_000
# How often a job waiting for its tasks looks at their rows.
TASK_POLL_SECONDS = 0.05
SWEEP_SECONDS = 2.0
# A task on a worker sees its job's cancellation within this long.
CANCEL_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class QueueKeys:
    """The Redis keys of one deployment (JOB_QUEUE_NAME), so several can share a Redis."""

    name: str = "strategies"

    @property
    def jobs(self) -> str:
        return f"{self.name}:jobs"

    @property
    def tasks(self) -> str:
        return f"{self.name}:tasks"

    @property
    def workers(self) -> str:
        return f"{self.name}:workers:"

    @property
    def sweep_lock(self) -> str:
        return f"{self.name}:jobs:sweep"


def _broker(redis_url: str, stream: str, consumer: str, rules: JobRules) -> RedisStreamBroker:
    return RedisStreamBroker(
        redis_url,
        queue_name=stream,
        consumer_group_name=GROUP,
        consumer_name=consumer,
        # "0": a group created after the API kicked its first messages still sees them.
        consumer_id="0",
        xread_block=1000,
        # One message at a time: a busy worker leaves the others to the idle ones.
        xread_count=1,
        unacknowledged_batch_size=1,
        idle_timeout=int(rules.stale_seconds * 1000),
        # A worker killed while holding the autoclaim lock must not block it for ever.
        unacknowledged_lock_timeout=max(1.0, rules.heartbeat_seconds * 2),
        maxlen=STREAM_MAXLEN,
    )


async def kick(broker: RedisStreamBroker, task_name: str, *args: Any) -> None:
    await AsyncKicker(task_name, broker, {}).kiq(*args)


class QueueSubmitter:
    """The API's side with JOB_BACKEND=queue: store the job, kick its message. Cancelling
    marks the row; the job's worker sees it within JOB_HEARTBEAT_SECONDS."""

    def __init__(
        self, redis_url: str, rules: JobRules | None = None, keys: QueueKeys | None = None
    ) -> None:
        self.redis_url = redis_url
        self.rules = rules or JobRules()
        self.keys = keys or QueueKeys()
        self.broker = _broker(redis_url, self.keys.jobs, "api", self.rules)
        self._gauges: asyncio.Task[None] | None = None

    async def submit(self, kind: str, job_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await create_job(kind, job_id, user_id)
        await kick(self.broker, RUN_JOB, str(job_id))

    async def cancel(self, job_id: uuid.UUID) -> None:
        await request_cancel(job_id)

    async def start(self) -> None:
        if self._gauges is None:
            self._gauges = asyncio.ensure_future(self._count_forever())

    async def aclose(self) -> None:
        if self._gauges is not None:
            self._gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gauges
            self._gauges = None
        await self.broker.shutdown()

    async def _count_forever(self) -> None:
        """The queue depth and the live workers, for this process' /metrics."""
        while True:
            with contextlib.suppress(Exception):
                await refresh_gauges(self.redis_url, self.keys)
            await asyncio.sleep(5.0)


async def live_workers(redis: Redis, keys: QueueKeys) -> list[dict[str, Any]]:
    """The workers alive now: each keeps a key with a short expiry (its heartbeat)."""
    found = []
    async for key in redis.scan_iter(match=keys.workers + "*", count=100):
        value = await redis.get(key)
        if value:
            found.append(json.loads(value))
    return found


async def refresh_gauges(redis_url: str, keys: QueueKeys) -> None:
    telemetry.JOBS_QUEUED.set(await Job.filter(status=JobStatus.QUEUED).count())
    async with Redis.from_url(redis_url) as redis:
        telemetry.JOB_WORKERS.set(len(await live_workers(redis, keys)))


class JobWorker:
    """One `python -m server worker` process: takes jobs and tasks from the streams and runs
    them on this process' sandbox (through `runner`)."""

    def __init__(
        self,
        redis_url: str,
        runner: StrategyRunner,
        rules: JobRules,
        *,
        name: str,
        job_concurrency: int = 4,
        keys: QueueKeys | None = None,
    ) -> None:
        self.keys = keys or QueueKeys()
        self.redis_url = redis_url
        self.runner = runner
        self.rules = rules
        self.name = name
        self.job_concurrency = job_concurrency
        self.task_concurrency = runner.sandbox.settings.max_concurrent_jobs
        self.jobs = _broker(redis_url, self.keys.jobs, name, rules)
        self.tasks = _broker(redis_url, self.keys.tasks, name, rules)

        # taskiq wants plain functions, not bound methods.
        async def run_job(job_id: str) -> None:
            await self._run_job(job_id)

        async def run_task(job_id: str, kind: str, key: str, payload: dict[str, Any]) -> None:
            await self._run_task(job_id, kind, key, payload)

        self.jobs.register_task(run_job, task_name=RUN_JOB)
        self.tasks.register_task(run_task, task_name=RUN_TASK)
        self.redis = Redis.from_url(redis_url)
        self.running_jobs: dict[uuid.UUID, asyncio.Task[Any]] = {}
        self.running_tasks = 0
        self._jobs_seen: dict[str, tuple[float, Job | None]] = {}
        self.draining = False
        self.started = False
        self._background: list[asyncio.Task[Any]] = []

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        for broker in (self.jobs, self.tasks):
            await broker.startup()
        await self._beat_once()
        self._background = [
            asyncio.ensure_future(
                run_receiver_task(self.jobs, max_async_tasks=self.job_concurrency)
            ),
            # One task fetched ahead of the slots: the next starts without a round trip.
            asyncio.ensure_future(
                run_receiver_task(self.tasks, max_async_tasks=self.task_concurrency, max_prefetch=1)
            ),
            asyncio.ensure_future(self._heartbeat_forever()),
            asyncio.ensure_future(self._sweep_forever()),
        ]
        self.started = True
        log.info(
            "worker %s taking jobs (%d at once) and tasks (%d at once)",
            self.name,
            self.job_concurrency,
            self.task_concurrency,
        )

    async def stop(self) -> None:
        """Stop taking messages; running jobs go back to QUEUED and their messages, still
        pending, are taken by another worker after JOB_STALE_SECONDS."""
        self.draining = True
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for job_id, task in list(self.running_jobs.items()):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            with contextlib.suppress(Exception):
                await release_job(job_id, self.name)
        with contextlib.suppress(Exception):
            await self.redis.delete(self.keys.workers + self.name)
        for broker in (self.jobs, self.tasks):
            with contextlib.suppress(Exception):
                await broker.shutdown()
        await self.redis.aclose()

    async def ready(self) -> dict[str, Any]:
        """Whether this worker can take jobs, and why not."""
        checks: dict[str, Any] = {"taking": self.started and not self.draining}
        try:
            async with asyncio.timeout(1.0):
                checks["redis"] = bool(await self.redis.ping())
        except Exception:
            checks["redis"] = False
        try:
            async with asyncio.timeout(2.0):
                await Job.filter(id=uuid.UUID(int=0)).exists()
            checks["database"] = True
        except Exception:
            checks["database"] = False
        sandbox = self.runner.sandbox
        checks["sandbox"] = sandbox.probe is not None and sandbox.unavailable is None
        checks["ready"] = all(bool(value) for value in checks.values())
        checks["runningJobs"] = len(self.running_jobs)
        checks["runningTasks"] = self.running_tasks
        return checks

    # --- message handlers ---------------------------------------------------------------

    async def _run_job(self, job_id: str) -> None:
        subject = uuid.UUID(job_id)
        if subject in self.running_jobs:  # a duplicate message of a job running here
            return
        task = asyncio.ensure_future(
            execute_job(subject, self.name, self.runner, self._run_tasks, self.rules)
        )
        self.running_jobs[subject] = task
        try:
            claim = await task
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(release_job(subject, self.name))
            raise
        finally:
            self.running_jobs.pop(subject, None)
        if claim is Claim.WAIT:
            log.info("job %s waits: its owner runs as many jobs as allowed", job_id)

    async def _run_task(self, job_id: str, kind: str, key: str, payload: dict[str, Any]) -> None:
        job = await self._running_job(job_id)
        if job is None:
            return  # the job ended or is stopping: its leftover tasks are dropped
        view = TaskView(job, self.name, self.runner, _cancel_poller(job.id))
        self.running_tasks += 1
        try:
            await run_task(view, kind, key, payload)
        except JobCancelled:
            return
        finally:
            self.running_tasks -= 1

    async def _running_job(self, job_id: str) -> Job | None:
        """The job of a task, if it still runs; read at most every CANCEL_POLL_SECONDS per
        job, so a batch of short tasks costs no database read each."""
        now = time.monotonic()
        seen = self._jobs_seen.get(job_id)
        if seen is None or now - seen[0] > CANCEL_POLL_SECONDS:
            job = await Job.get_or_none(id=job_id)
            running = job is not None and job.status == JobStatus.RUNNING
            seen = (now, job if running and job and not job.cancel_requested else None)
            self._jobs_seen = {k: v for k, v in self._jobs_seen.items() if now - v[0] < 60}
            self._jobs_seen[job_id] = seen
        return seen[1]

    async def _run_tasks(
        self, control: Control, kind: str, payloads: Sequence[dict[str, Any]]
    ) -> None:
        """Kick every task not yet done, then wait for their rows: done, failed (raised as
        TaskFailed) or the job cancelled. Tasks that make no progress for a long while are
        kicked again (a lost message); a task runs idempotently, so that costs only time."""
        pending = await ensure_tasks(control.job_id, kind, payloads)
        keys = [key for key, _ in pending]

        async def kick_all() -> None:
            for key, payload in pending:
                await kick(self.tasks, RUN_TASK, str(control.job_id), kind, key, payload)

        await kick_all()
        done_before, progressed = -1, time.monotonic()
        while True:
            done, error = await task_states(control.job_id, keys)
            if error is not None:
                raise TaskFailed(kind, error)
            if done >= len(keys):
                return
            await control.check_cancelled()
            if done != done_before:
                done_before, progressed = done, time.monotonic()
            elif time.monotonic() - progressed > 6 * self.rules.stale_seconds:
                log.warning("job %s: tasks made no progress, kicking them again", control.job_id)
                await kick_all()
                progressed = time.monotonic()
            await asyncio.sleep(TASK_POLL_SECONDS)

    # --- upkeep -------------------------------------------------------------------------

    async def _beat_once(self) -> None:
        state = {"name": self.name, "jobs": len(self.running_jobs), "tasks": self.running_tasks}
        ttl = int(self.rules.stale_seconds * 1000)
        await self.redis.set(self.keys.workers + self.name, json.dumps(state), px=ttl)
        # Our pending messages stay ours: reset their idle time before anyone claims them.
        for stream in (self.keys.jobs, self.keys.tasks):
            with contextlib.suppress(Exception):
                entries = await self.redis.xpending_range(
                    stream, GROUP, min="-", max="+", count=1000, consumername=self.name
                )
                ids: list[Any] = [entry["message_id"] for entry in entries]
                if ids:
                    await self.redis.xclaim(
                        stream, GROUP, self.name, min_idle_time=0, message_ids=ids, justid=True
                    )

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.rules.heartbeat_seconds)
            try:
                await self._beat_once()
            except Exception:
                log.warning("worker heartbeat failed", exc_info=True)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await refresh_gauges(self.redis_url, self.keys)
                lease = int(SWEEP_SECONDS * 900)
                if await self.redis.set(self.keys.sweep_lock, self.name, nx=True, px=lease):
                    await self.sweep()
            except Exception:
                log.warning("job sweep failed", exc_info=True)

    async def sweep(self) -> None:
        """Kick again the jobs the stream no longer carries: QUEUED ones (or RUNNING with a
        stale heartbeat) once every message was delivered."""
        if await _undelivered(self.redis, self.keys.jobs):
            return
        stale = datetime.datetime.now(datetime.UTC) - datetime.timedelta(
            seconds=self.rules.stale_seconds
        )
        orphans = await Job.filter(
            Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
        ).values_list("id", flat=True)
        for job_id in orphans:
            await kick(self.jobs, RUN_JOB, str(job_id))


async def _undelivered(redis: Redis, stream: str) -> int:
    """Entries of the stream the workers' group has not read yet (Redis >= 7: its lag)."""
    try:
        groups = await redis.xinfo_groups(stream)
    except Exception:
        return 0
    for group in groups:
        name = group.get("name")
        if name in (GROUP, GROUP.encode()):
            return int(group.get("lag") or 0)
    return 0


def _cancel_poller(job_id: Any, every: float = CANCEL_POLL_SECONDS) -> Any:
    """check_cancelled for a task on another process: reads the job row at most every
    `every` seconds."""
    state = {"at": 0.0, "cancelled": False}

    async def cancelled() -> bool:
        now = time.monotonic()
        if not state["cancelled"] and now - state["at"] >= every:
            state["at"] = now
            row = await Job.filter(id=job_id).values_list("status", "cancel_requested")
            state["cancelled"] = (
                not row or row[0][1] or row[0][0] not in (JobStatus.RUNNING, "running")
            )
        return bool(state["cancelled"])

    return cancelled
