"""A tiny in-test job runner behind services/job_control.py's protocols (tests only).

Runs a job as an asyncio task and its tasks concurrently in this process. `crash_after`
makes `run_tasks` stop dead after that many task calls, as a worker killed mid-job would
(the tasks already run have stored their work; the rest never ran)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

from services.job_control import JobCancelled, JobHandler, TaskHandler


class WorkerDied(BaseException):
    """The simulated crash: like SIGKILL, no handler of the job's records it."""


class LocalControl:
    def __init__(self, jobs: LocalJobs, job_id: uuid.UUID) -> None:
        self.jobs = jobs
        self._job_id = job_id
        self.progress: list[dict[str, Any]] = []

    @property
    def job_id(self) -> uuid.UUID:
        return self._job_id

    @property
    def worker(self) -> str:
        return "test-worker"

    async def check_cancelled(self) -> None:
        if self._job_id in self.jobs.cancelled:
            raise JobCancelled()

    async def report_progress(self, progress: dict[str, Any]) -> None:
        self.progress.append(dict(progress))

    async def run_tasks(self, kind: str, payloads: Sequence[dict[str, Any]]) -> None:
        handler = self.jobs.task_handlers[kind]
        for payload in payloads:
            await self.check_cancelled()  # pending tasks of a cancelled job never start
            if self.jobs.crash_after is not None and self.jobs.task_calls >= self.jobs.crash_after:
                raise WorkerDied()
            self.jobs.task_calls += 1
            self.jobs.payloads.append(payload)
            await handler(payload, self)
        await self.check_cancelled()


class LocalJobs:
    """Both sides: the API's submitter and the machinery that runs the handlers."""

    def __init__(self) -> None:
        self.job_handlers: dict[str, JobHandler] = {}
        self.task_handlers: dict[str, TaskHandler] = {}
        self.cancelled: set[uuid.UUID] = set()
        self.crash_after: int | None = None
        self.task_calls = 0
        self.payloads: list[dict[str, Any]] = []
        self.running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.controls: dict[uuid.UUID, LocalControl] = {}
        self.start = True  # False: submitted jobs wait for `run`

    async def submit(self, kind: str, job_id: uuid.UUID, user_id: uuid.UUID) -> None:
        if self.start:
            self.running[job_id] = asyncio.ensure_future(self.run(kind, job_id))

    async def cancel(self, job_id: uuid.UUID) -> None:
        self.cancelled.add(job_id)

    async def run(self, kind: str, job_id: uuid.UUID) -> None:
        control = self.controls[job_id] = LocalControl(self, job_id)
        with contextlib.suppress(JobCancelled, WorkerDied):
            await self.job_handlers[kind](control)

    async def wait(self, job_id: uuid.UUID | str) -> None:
        await self.running[uuid.UUID(str(job_id))]
