"""Long work run as jobs (services/jobs.py): their stored state, and the tasks they fan out."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.fields import DatetimeField, JSONField


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(Model):
    """One piece of long work. Its id is the id of the row it works on (an optimisation's),
    so a job is found from its subject and a subject has at most one job."""

    id = fields.UUIDField(primary_key=True)
    kind = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="jobs", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(JobStatus, max_length=16, default=JobStatus.QUEUED)
    progress: dict = JSONField(default=dict)
    # "<host>:<pid>" of the process running it (the last one, once finished).
    worker = fields.CharField(max_length=200, null=True)
    # How many times a process started it: more than one after a worker died mid-job.
    attempts = fields.IntField(default=0)
    cancel_requested = fields.BooleanField(default=False)
    error = fields.TextField(null=True)
    created_at = DatetimeField(auto_now_add=True)
    started_at = DatetimeField(null=True)
    finished_at = DatetimeField(null=True)
    # Refreshed by the running process every JOB_HEARTBEAT_SECONDS: a running job whose
    # heartbeat is older than JOB_STALE_SECONDS lost its process and may be taken again.
    heartbeat_at = DatetimeField(null=True)

    user_id: str

    class Meta:
        table = "jobs"
        indexes = (("user_id", "created_at"), ("status", "created_at"), ("user_id", "status"))


class JobTask(Model):
    """One task of a job's fan-out (`JobControl.run_tasks`), keyed by its job and payload: a
    task that ran (or is redelivered after its worker died) is not counted twice."""

    id = fields.IntField(primary_key=True)
    job: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Job", related_name="tasks", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=64)
    # sha256 of the kind and the payload's canonical JSON.
    key = fields.CharField(max_length=64)
    done = fields.BooleanField(default=False)
    error = fields.TextField(null=True)
    created_at = DatetimeField(auto_now_add=True)
    finished_at = DatetimeField(null=True)

    job_id: str

    class Meta:
        table = "job_tasks"
        unique_together = (("job", "key"),)
