"""Long work as jobs: the handler registry, the stored job state, and the in-process backend.

A job is registered by kind (`register_job`), its fan-out tasks too (`register_task`); the
API submits a job by kind and subject id through a `JobSubmitter` and never runs it itself.
Two backends take the jobs, with the same rules (this module's `execute_job`):

- `InProcessJobs` (the embedded default, no Redis): asyncio tasks in the server process,
  dispatched from the `jobs` table, so a restart takes up what was queued or running.
- `services.job_queue` (REDIS_URL, JOB_BACKEND=queue or auto): arq queues, taken by
  `python -m server worker` processes on any machine.

The database is the truth in both: a job is claimed by one process at a time (a conditional
update that also holds the per-user cap), the running process refreshes its heartbeat, and a
job whose heartbeat went stale may be claimed again. Only the claiming process may finish
it, once. Tasks are rows keyed by job and payload: a done task is never run or counted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import importlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from models import Job, JobStatus, JobTask, User
from models.job import FINISHED
from services import telemetry
from services.errors import BadInput, NotFound
from services.job_control import (
    JobCancelled,
    JobControl,
    JobHandler,
    JobSubmitter,
    TaskFailed,
    TaskHandler,
)
from services.outages import DATABASE_FAILURES

if TYPE_CHECKING:
    from services.execution import StrategyRunner

log = logging.getLogger(__name__)

# Modules whose import registers the product's job and task handlers (each process imports
# them: the API for the in-process backend, every worker). JOB_MODULES adds more.
BUILTIN_JOB_MODULES: tuple[str, ...] = ("services.optimization",)


class JobBackend(JobSubmitter, Protocol):
    """A submitter with a lifetime: `start` once the database is open, `aclose` before it
    closes (the in-process backend gives its running jobs back to the queue then)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


# --- registry ---------------------------------------------------------------------------

_job_handlers: dict[str, JobHandler] = {}
_task_handlers: dict[str, TaskHandler] = {}


def register_job(kind: str) -> Callable[[JobHandler], JobHandler]:
    """`@register_job("optimization")` on `async def run(control: JobControl) -> None`."""

    def register(handler: JobHandler) -> JobHandler:
        _job_handlers[kind] = handler
        return handler

    return register


def register_task(kind: str) -> Callable[[TaskHandler], TaskHandler]:
    """`@register_task("optimization.trial")` on `async def run(payload, control) -> None`."""

    def register(handler: TaskHandler) -> TaskHandler:
        _task_handlers[kind] = handler
        return handler

    return register


def job_handler(kind: str) -> JobHandler:
    try:
        return _job_handlers[kind]
    except KeyError:
        raise BadInput(f"unknown job kind {kind!r}", reason="UNKNOWN_JOB_KIND") from None


def task_handler(kind: str) -> TaskHandler:
    try:
        return _task_handlers[kind]
    except KeyError:
        raise BadInput(f"unknown task kind {kind!r}", reason="UNKNOWN_TASK_KIND") from None


def load_job_modules(extra: Iterable[str] = ()) -> None:
    """Import the modules that register handlers: the built-in ones and JOB_MODULES'."""
    for name in (*BUILTIN_JOB_MODULES, *extra):
        importlib.import_module(name)


def parse_modules(setting: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in setting.split(",") if name.strip())


def worker_name() -> str:
    """This process, as a job's `worker` says it: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class JobRules:
    """What every backend applies: the per-user cap on running jobs, and the heartbeat."""

    max_running_per_user: int = 2
    heartbeat_seconds: float = 1.0
    # A running job whose heartbeat is older than this lost its process: it may be taken again.
    stale_seconds: float = 10.0


# --- stored state -----------------------------------------------------------------------


async def create_job(kind: str, job_id: uuid.UUID, user_id: uuid.UUID) -> Job:
    """The QUEUED row of a new job. Submitting a subject whose job is queued or running
    changes nothing; one whose job finished starts it afresh (its tasks forgotten)."""
    job_handler(kind)  # an unknown kind is refused before anything is stored
    existing = await Job.get_or_none(id=job_id)
    if existing is None:
        return await Job.create(id=job_id, kind=kind, user_id=user_id)
    if existing.kind != kind or str(existing.user_id) != str(user_id):
        raise BadInput(f"job {job_id} exists with another kind or owner", reason="JOB_EXISTS")
    if existing.status in FINISHED:
        await JobTask.filter(job_id=job_id).delete()
        await Job.filter(id=job_id).update(
            status=JobStatus.QUEUED,
            progress={},
            worker=None,
            attempts=0,
            cancel_requested=False,
            error=None,
            started_at=None,
            finished_at=None,
            heartbeat_at=None,
        )
        await existing.refresh_from_db()
    return existing


class Claim(Enum):
    CLAIMED = "claimed"  # this process runs it now
    FINISHED = "finished"  # nothing to do (done, failed, cancelled, or gone)
    TAKEN = "taken"  # another live process runs it
    WAIT = "wait"  # its owner has as many jobs running as allowed


async def claim_job(job_id: uuid.UUID, worker: str, rules: JobRules) -> Claim:
    """Make this process the job's runner, if it is queued (or running with a stale
    heartbeat) and its owner runs fewer than `rules.max_running_per_user` jobs. The owner's
    row is locked meanwhile, so two processes cannot both take the last place."""
    stale = _now() - datetime.timedelta(seconds=rules.stale_seconds)
    async with in_transaction("default") as connection:
        # Write first: the transaction holds the write lock from its start. On SQLite a
        # transaction that read first cannot upgrade once another process wrote ("database is
        # locked" without waiting); on PostgreSQL it queues claims of the same job.
        await Job.filter(id=job_id).using_db(connection).update(attempts=F("attempts"))
        job = await Job.filter(id=job_id).using_db(connection).first()
        if job is None or job.status in FINISHED:
            return Claim.FINISHED
        if job.status == JobStatus.RUNNING and job.heartbeat_at and job.heartbeat_at >= stale:
            return Claim.TAKEN
        await User.select_for_update().filter(id=job.user_id).using_db(connection).first()
        running = (
            await Job.filter(user_id=job.user_id, status=JobStatus.RUNNING, heartbeat_at__gte=stale)
            .exclude(id=job_id)
            .using_db(connection)
            .count()
        )
        if running >= rules.max_running_per_user:
            return Claim.WAIT
        now = _now()
        claimed = (
            await Job.filter(
                Q(status=JobStatus.QUEUED)
                | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
                | Q(status=JobStatus.RUNNING, heartbeat_at__isnull=True),
                id=job_id,
            )
            .using_db(connection)
            .update(
                status=JobStatus.RUNNING,
                worker=worker,
                attempts=F("attempts") + 1,
                started_at=now,
                heartbeat_at=now,
                error=None,
            )
        )
    return Claim.CLAIMED if claimed else Claim.TAKEN


async def beat(job_id: uuid.UUID, worker: str) -> tuple[bool, bool]:
    """Refresh a running job's heartbeat: (still ours, cancellation asked)."""
    updated = await Job.filter(id=job_id, worker=worker, status=JobStatus.RUNNING).update(
        heartbeat_at=_now()
    )
    if not updated:
        return False, False
    asked = await Job.filter(id=job_id).values_list("cancel_requested", flat=True)
    return True, bool(asked and asked[0])


async def finish_job(
    job_id: uuid.UUID, worker: str, status: JobStatus, error: str | None = None
) -> bool:
    """Mark the job finished, once, and only by the process that runs it."""
    return bool(
        await Job.filter(id=job_id, worker=worker, status=JobStatus.RUNNING).update(
            status=status, error=error, finished_at=_now()
        )
    )


async def release_job(job_id: uuid.UUID, worker: str) -> None:
    """Give a running job back to the queue (this process is shutting down)."""
    await Job.filter(id=job_id, worker=worker, status=JobStatus.RUNNING).update(
        status=JobStatus.QUEUED, heartbeat_at=None
    )


async def request_cancel(job_id: uuid.UUID) -> JobStatus:
    """A queued job is cancelled at once; a running one is asked to stop (its process sees
    it within a heartbeat). Returns the job's status after the request."""
    await Job.filter(id=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, cancel_requested=True, finished_at=_now()
    )
    await Job.filter(id=job_id, status=JobStatus.RUNNING).update(cancel_requested=True)
    job = await Job.get_or_none(id=job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job.status


async def save_progress(job_id: uuid.UUID, worker: str, progress: dict[str, Any]) -> None:
    await Job.filter(id=job_id, worker=worker, status=JobStatus.RUNNING).update(progress=progress)


async def user_job(user: User, job_id: uuid.UUID) -> Job:
    """The user's job (staff see everyone's); NOT_FOUND otherwise, as for strategies."""
    job = await Job.get_or_none(id=job_id)
    if job is None or (str(job.user_id) != str(user.id) and not user.is_staff):
        raise NotFound(f"no job {job_id}")
    return job


async def user_jobs(
    user: User, status: JobStatus | None = None, limit: int = 20, offset: int = 0
) -> list[Job]:
    query = Job.filter(user_id=user.id)
    if status is not None:
        query = query.filter(status=status)
    return await query.order_by("-created_at").offset(offset).limit(limit)


def task_key(kind: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps([kind, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def ensure_tasks(
    job_id: uuid.UUID, kind: str, payloads: Sequence[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """Store the tasks (once each) and return the ones not yet done, as (key, payload)."""
    by_key = {task_key(kind, payload): payload for payload in payloads}
    await JobTask.bulk_create(
        [JobTask(job_id=job_id, kind=kind, key=key) for key in by_key],
        ignore_conflicts=True,
    )
    done = set(
        await JobTask.filter(job_id=job_id, key__in=list(by_key), done=True).values_list(
            "key", flat=True
        )
    )
    return [(key, payload) for key, payload in by_key.items() if key not in done]


async def finish_task(job_id: uuid.UUID, key: str, error: str | None = None) -> bool:
    """Mark a task done (or failed); False if it was already: a redelivered task counts once."""
    return bool(
        await JobTask.filter(job_id=job_id, key=key, done=False, error__isnull=True).update(
            done=error is None, error=error, finished_at=_now()
        )
    )


async def task_states(job_id: uuid.UUID, keys: Sequence[str]) -> tuple[int, str | None]:
    """How many of `keys` are done, and the first error among them (None if none)."""
    rows = await JobTask.filter(job_id=job_id, key__in=list(keys)).values("done", "error")
    failed = next((row["error"] for row in rows if row["error"] is not None), None)
    return sum(1 for row in rows if row["done"]), failed


# --- running one job --------------------------------------------------------------------

RunTasks = Callable[["Control", str, Sequence[dict[str, Any]]], Awaitable[None]]


class Control:
    """What a running job sees (`JobControl`), the same on every backend but for how its
    tasks are run (`run_tasks`: concurrently here, or queued to every worker)."""

    def __init__(
        self,
        job: Job,
        worker: str,
        runner: StrategyRunner,
        run_tasks: RunTasks,
    ) -> None:
        self._job = job
        self._worker = worker
        self._runner = runner
        self._run_tasks = run_tasks
        self.cancelled = asyncio.Event()
        self.lost = False  # another process took the job (this one's heartbeat went stale)

    @property
    def job(self) -> Job:
        return self._job

    @property
    def job_id(self) -> uuid.UUID:
        return uuid.UUID(str(self._job.id))

    @property
    def user_id(self) -> uuid.UUID:
        return uuid.UUID(str(self._job.user_id))

    @property
    def worker(self) -> str:
        return self._worker

    @property
    def runner(self) -> StrategyRunner:
        return self._runner

    async def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled(str(self.job_id))

    async def report_progress(self, progress: dict[str, Any]) -> None:
        await save_progress(self.job_id, self._worker, progress)

    async def run_tasks(self, kind: str, payloads: Sequence[dict[str, Any]]) -> None:
        task_handler(kind)
        await self.check_cancelled()
        await self._run_tasks(self, kind, payloads)
        await self.check_cancelled()


class TaskView:
    """What a task sees (`JobControl`): its job's identity, this process' runner, and its
    job's cancellation. Only the job reports progress and fans out, so those two raise."""

    def __init__(
        self,
        job: Job,
        worker: str,
        runner: StrategyRunner,
        cancelled: Callable[[], Awaitable[bool]],
    ) -> None:
        self._job = job
        self._worker = worker
        self._runner = runner
        self._cancelled = cancelled

    @property
    def job_id(self) -> uuid.UUID:
        return uuid.UUID(str(self._job.id))

    @property
    def user_id(self) -> uuid.UUID:
        return uuid.UUID(str(self._job.user_id))

    @property
    def worker(self) -> str:
        return self._worker

    @property
    def runner(self) -> StrategyRunner:
        return self._runner

    async def check_cancelled(self) -> None:
        if await self._cancelled():
            raise JobCancelled(str(self.job_id))

    async def report_progress(self, progress: dict[str, Any]) -> None:
        raise RuntimeError("a task cannot report progress: its job does")

    async def run_tasks(self, kind: str, payloads: Sequence[dict[str, Any]]) -> None:
        raise RuntimeError("a task cannot fan out: its job does")


async def _heartbeat(control: Control, work: asyncio.Task[None], seconds: float) -> None:
    """Every `seconds`: keep the claim fresh, and stop the work if it was cancelled or lost."""
    while not work.done():
        await asyncio.sleep(seconds)
        try:
            ours, cancel_asked = await beat(control.job_id, control.worker)
        except Exception:  # a database blip: try again next beat, the claim lasts a while
            log.warning("job %s: heartbeat failed", control.job_id, exc_info=True)
            continue
        if cancel_asked:
            control.cancelled.set()
        if not ours:
            control.lost = True
            control.cancelled.set()
            work.cancel()
            return


async def run_task(control: JobControl, kind: str, key: str, payload: dict[str, Any]) -> str | None:
    """Run one task and record it; returns its error message (None when it worked)."""
    try:
        await task_handler(kind)(payload, control)
    except (JobCancelled, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.warning("job %s: task %s failed", control.job_id, kind, exc_info=True)
        message = exc.message if isinstance(exc, TaskFailed) else str(exc) or type(exc).__name__
        await finish_task(control.job_id, key, message)
        return message
    await finish_task(control.job_id, key)
    return None


async def execute_job(
    job_id: uuid.UUID,
    worker: str,
    runner: StrategyRunner,
    run_tasks: RunTasks,
    rules: JobRules,
) -> Claim:
    """Claim the job and run it to its end: SUCCEEDED, FAILED (the error stored, never a
    traceback) or CANCELLED. Returns how the claim went; the caller retries WAIT and TAKEN
    later if it wants to."""
    claim = await claim_job(job_id, worker, rules)
    if claim is not Claim.CLAIMED:
        return claim
    job = await Job.get(id=job_id)
    control = Control(job, worker, runner, run_tasks)
    started = time.perf_counter()
    status, error = JobStatus.SUCCEEDED, None
    telemetry.JOBS_RUNNING.inc()
    work = asyncio.ensure_future(_run_handler(job.kind, control))
    beating = asyncio.ensure_future(_heartbeat(control, work, rules.heartbeat_seconds))
    try:
        await asyncio.shield(work)
    except JobCancelled:
        status = JobStatus.CANCELLED
    except asyncio.CancelledError:
        if control.lost:
            log.warning("job %s: taken by another process, stopped here", job_id)
            return Claim.TAKEN
        raise  # this process stops: the caller releases the job
    except Exception as exc:
        status = JobStatus.FAILED
        error = exc.message if isinstance(exc, TaskFailed | BadInput) else _error_text(exc)
        if not isinstance(exc, TaskFailed | BadInput):
            log.error("job %s (%s) failed", job_id, job.kind, exc_info=exc)
    finally:
        telemetry.JOBS_RUNNING.dec()
        beating.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
    if await finish_job(job_id, worker, status, error):
        telemetry.record_job(job.kind, status.value, time.perf_counter() - started)
    return Claim.CLAIMED


def _error_text(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        return message
    return "the job failed with an internal error"


async def _run_handler(kind: str, control: Control) -> None:
    await job_handler(kind)(control)


# --- the in-process backend -------------------------------------------------------------


class InProcessJobs:
    """The embedded backend: jobs run as asyncio tasks of this process, their tasks
    concurrently up to the sandbox's slots. Jobs are dispatched from the `jobs` table, so a
    job submitted before a restart (queued, or running when the process died) is run after
    it; the per-user cap is the table's, so it holds across server processes too."""

    def __init__(
        self,
        runner: StrategyRunner,
        rules: JobRules | None = None,
        *,
        max_running: int = 4,
        poll_seconds: float = 2.0,
    ) -> None:
        self.runner = runner
        self.rules = rules or JobRules()
        self.max_running = max_running
        self.poll_seconds = poll_seconds
        self.worker = worker_name()
        self._running: dict[uuid.UUID, asyncio.Task[Claim]] = {}
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def task_capacity(self) -> int:
        return self.runner.sandbox.settings.max_concurrent_jobs

    async def submit(self, kind: str, job_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await create_job(kind, job_id, user_id)
        self._wake.set()

    async def cancel(self, job_id: uuid.UUID) -> None:
        await request_cancel(job_id)
        self._wake.set()

    async def start(self) -> None:
        """Start dispatching (queued jobs from before a restart included)."""
        if self._dispatcher is None:
            self._dispatcher = asyncio.ensure_future(self._dispatch_forever())

    async def aclose(self) -> None:
        """Stop: running jobs go back to QUEUED, for the next start to take up."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        running = list(self._running.items())
        for _, task in running:
            task.cancel()
        for job_id, task in running:
            with contextlib.suppress(BaseException):
                await task
            with contextlib.suppress(Exception):
                await release_job(job_id, self.worker)

    async def _dispatch_forever(self) -> None:
        while True:
            try:
                await self.dispatch()
            except asyncio.CancelledError:
                raise
            except DATABASE_FAILURES:
                pass  # services.outages logged the outage once; try again after a while
            except Exception:
                log.warning("job dispatch failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()

    async def dispatch(self) -> None:
        """Start the oldest claimable jobs while this process has room."""
        room = self.max_running - len(self._running)
        if room <= 0:
            return
        stale = _now() - datetime.timedelta(seconds=self.rules.stale_seconds)
        candidates = (
            await Job.filter(
                Q(status=JobStatus.QUEUED)
                | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
                | Q(status=JobStatus.RUNNING, heartbeat_at__isnull=True)
            )
            .exclude(id__in=list(self._running))
            .order_by("created_at")
            .limit(room * 4)
            .values_list("id", flat=True)
        )
        telemetry.JOBS_QUEUED.set(len(candidates))
        for job_id in candidates:
            if len(self._running) >= self.max_running:
                return
            if await claim_job_probe(job_id, self.rules) is not Claim.CLAIMED:
                continue
            self._start(uuid.UUID(str(job_id)))

    def _start(self, job_id: uuid.UUID) -> None:
        task = asyncio.ensure_future(
            execute_job(job_id, self.worker, self.runner, self._run_tasks, self.rules)
        )
        self._running[job_id] = task

        def done(finished: asyncio.Task[Claim]) -> None:
            self._running.pop(job_id, None)
            self._wake.set()
            if not finished.cancelled() and finished.exception() is not None:
                log.error("job %s: runner failed", job_id, exc_info=finished.exception())

        task.add_done_callback(done)

    async def _run_tasks(
        self, control: Control, kind: str, payloads: Sequence[dict[str, Any]]
    ) -> None:
        """Every task as an asyncio task here, at most `task_capacity` at once; the first
        failure cancels the rest and is raised."""
        pending = await ensure_tasks(control.job_id, kind, payloads)
        slots = asyncio.Semaphore(self.task_capacity)

        async def cancelled() -> bool:
            return control.cancelled.is_set()

        view = TaskView(control.job, control.worker, control.runner, cancelled)

        async def one(key: str, payload: dict[str, Any]) -> None:
            async with slots:
                await control.check_cancelled()
                error = await run_task(view, kind, key, payload)
                if error is not None:
                    raise TaskFailed(kind, error)

        tasks = {asyncio.ensure_future(one(key, payload)) for key, payload in pending}
        cancel_watch = asyncio.ensure_future(control.cancelled.wait())
        try:
            while tasks:
                done, _ = await asyncio.wait(
                    tasks | {cancel_watch}, return_when=asyncio.FIRST_COMPLETED
                )
                if cancel_watch in done:
                    raise JobCancelled(str(control.job_id))
                for task in done:
                    error = task.exception()
                    if error is not None:
                        raise error
                tasks -= done
        finally:
            cancel_watch.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def claim_job_probe(job_id: Any, rules: JobRules) -> Claim:
    """Whether the dispatcher should start the job: not finished, not held by a live
    process, its owner under the cap. `execute_job` claims it for real."""
    stale = _now() - datetime.timedelta(seconds=rules.stale_seconds)
    job = await Job.get_or_none(id=job_id)
    if job is None or job.status in FINISHED:
        return Claim.FINISHED
    if job.status == JobStatus.RUNNING and job.heartbeat_at and job.heartbeat_at >= stale:
        return Claim.TAKEN
    running = await Job.filter(
        user_id=job.user_id, status=JobStatus.RUNNING, heartbeat_at__gte=stale
    ).count()
    return Claim.WAIT if running >= rules.max_running_per_user else Claim.CLAIMED
