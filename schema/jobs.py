"""Long work's stored state (issue 14): what a user sees of their jobs, wherever they run.
Thin: the rules (ownership, listing) are in services/jobs.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

import models
from schema.context import Context
from schema.optimization_types import JobStatus
from services import jobs as service
from services.errors import BadInput, NotFound

Info = strawberry.Info[Context, None]

MAX_JOBS_PAGE = 100


@strawberry.type(description="One job: long work run in the server or on a queue worker.")
class Job:
    id: uuid.UUID = strawberry.field(
        description="The id of what the job works on (an optimisation's id)."
    )
    kind: str = strawberry.field(description='e.g. "optimization"')
    status: JobStatus
    progress: JSON = strawberry.field(description="The job's last report, e.g. trials done.")
    worker: str | None = strawberry.field(description="The process running (or that ran) it.")
    attempts: int = strawberry.field(
        description="How many times a worker took it (above 1 after a worker died)."
    )
    cancel_requested: bool
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_model(cls, job: models.Job) -> Job:
        progress: Any = job.progress or {}
        return cls(
            id=job.id,
            kind=job.kind,
            status=JobStatus(job.status.value),
            progress=progress,
            worker=job.worker,
            attempts=job.attempts,
            cancel_requested=job.cancel_requested,
            error_message=job.error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


@strawberry.type
class JobQueries:
    @strawberry.field(description="One of the caller's jobs; null when there is none.")
    async def job(self, info: Info, id: uuid.UUID) -> Job | None:
        user = await info.context.require_user()
        try:
            found = await service.user_job(user, id)
        except NotFound:
            return None
        return Job.from_model(found)

    @strawberry.field(description="The caller's jobs, newest first.")
    async def jobs(
        self,
        info: Info,
        status: JobStatus | None = None,
        limit: int | None = 20,
        offset: int | None = 0,
    ) -> list[Job]:
        user = await info.context.require_user()
        limit = 20 if limit is None else limit
        offset = 0 if offset is None else offset
        if not 1 <= limit <= MAX_JOBS_PAGE:
            raise BadInput(f"limit must be between 1 and {MAX_JOBS_PAGE}")
        if offset < 0:
            raise BadInput("offset must be 0 or more")
        wanted = None if status is None else models.JobStatus(status.value)
        found = await service.user_jobs(user, wanted, limit=limit, offset=offset)
        return [Job.from_model(job) for job in found]
