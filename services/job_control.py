"""What long work sees of the machinery that runs it, whichever machinery that is.

Long work (an optimisation first) is written against `JobControl`, so the same code runs
inside the server process (the embedded default, no Redis) or on a queue worker on another
machine (REDIS_URL set). A job is identified by its kind and the id of the row it works on
(an optimisation's id); everything else it needs it reads from the database, so a job can be
taken again by another worker after its first one died.

Fan-out: a job may split its work into tasks (`run_tasks`), each a JSON payload handled by
the task handler registered for its kind. The tasks may run on any worker; each writes its
own results idempotently (keyed by job and task), so a task that runs twice stores once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from services.execution import StrategyRunner


class JobCancelled(Exception):
    """Raised inside a job (by `check_cancelled`) once its owner asked to cancel it."""


class TaskFailed(Exception):
    """A task of `run_tasks` raised: its kind and message (the task may have run in another
    process, so the original exception is `__cause__` only when it ran in this one)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"task {kind} failed: {message}")
        self.kind = kind
        self.message = message


class JobControl(Protocol):
    @property
    def job_id(self) -> uuid.UUID:
        """The id of the row the job works on (an optimisation's id)."""

    @property
    def user_id(self) -> uuid.UUID:
        """Whose job it is (the sandbox's owner for its runs, for fairness)."""

    @property
    def worker(self) -> str:
        """Which process runs the job, for the job's stored state."""

    @property
    def runner(self) -> StrategyRunner:
        """This process' strategy runner and its sandbox (each worker has its own)."""

    async def check_cancelled(self) -> None:
        """Raise JobCancelled if the job was cancelled; cheap enough to call between trials."""

    async def report_progress(self, progress: dict[str, Any]) -> None:
        """Store and publish progress (JSON), e.g. {"trialsDone": 40, "trialsTotal": 200}."""

    async def run_tasks(self, kind: str, payloads: Sequence[dict[str, Any]]) -> None:
        """Run one task per payload (anywhere, concurrently as capacity allows) and return when
        all are done; raises the first task failure, JobCancelled on cancellation."""


JobHandler = Callable[[JobControl], Awaitable[None]]
TaskHandler = Callable[[dict[str, Any], JobControl], Awaitable[None]]


class JobSubmitter(Protocol):
    """The API's side: queue a job, ask to cancel it. In-process or queue-backed."""

    async def submit(self, kind: str, job_id: uuid.UUID, user_id: uuid.UUID) -> None: ...

    async def cancel(self, job_id: uuid.UUID) -> None: ...
