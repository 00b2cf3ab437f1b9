"""The long-lived service objects of one process, as the API and the CLI use them.

Built from settings by `server.wiring`; the schema reaches them through its context. Nothing
here knows about settings, HTTP or GraphQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.accounts import RecentUsers, TokenSigner
from services.code_analysis import CodeAnalyser, UserCodeChecks
from services.datasets import DatasetLimits
from services.execution import StrategyRunner
from services.generation import Generator
from services.jobs import JobBackend
from services.optimization import Optimizer
from services.persisted_queries import MemoryDocumentStore, PersistedOperations
from services.rate_limits import RateLimits


@dataclass
class Services:
    signer: TokenSigner
    generator: Generator
    runner: StrategyRunner
    limits: RateLimits
    analyser: CodeAnalyser
    code_checks: UserCodeChecks
    # Long work (services/jobs.py): in this process, or queued to workers.
    jobs: JobBackend
    recent_users: RecentUsers = field(default_factory=RecentUsers)
    dataset_limits: DatasetLimits = field(default_factory=DatasetLimits)
    persisted: PersistedOperations = field(
        default_factory=lambda: PersistedOperations(MemoryDocumentStore())
    )
    optimizer: Optimizer | None = None

    async def aclose(self) -> None:
        # Cancelled generations are still writing their FAILURE logs: let them, while the
        # database is open.
        await self.generator.drain()
        # Before the sandbox closes: running jobs stop and go back to the queue.
        await self.jobs.aclose()
        await self.generator.providers.aclose()
        await self.runner.sandbox.close()
        await self.analyser.close()
        await self.persisted.aclose()
