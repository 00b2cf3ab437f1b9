"""Numbered versions of a strategy's code and parameters.

Every change of either (a generation, a refinement, a manual edit, a revert) becomes the
strategy's next version, stored in the same transaction as the strategy itself, so the
strategy always holds exactly its current version's code and parameters. Backtest metrics
are kept per version: a user can compare versions and see whether a change helped.

Callers have already checked ownership: these functions take a strategy, not a user.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import GeneratedStrategy, StrategyVersion, User
from services.code_analysis import UserCodeChecks
from services.errors import NotFound

MANUAL_EDIT = "manual edit"
# What add_version writes: the version's own fields and what the caller may have changed
# with it, never the counters concurrent runs update (usage_count).
SAVED_WITH_A_VERSION = (
    "generated_code",
    "parameters",
    "validation_results",
    "performance_metrics",
    "version",
    "name",
    "description",
    "strategy_type",
    "status",
    "updated_at",
)


def model_author(provider: str, model: str) -> str:
    """The author of generated code: the model's id as the `models` query names it."""
    return f"{provider}:{model}"


def revert_instruction(number: int) -> str:
    return f"revert to {number}"


@dataclass(frozen=True)
class NewVersion:
    """A change of a strategy's code or parameters, with why and by whom it was made."""

    code: str
    parameters: dict[str, Any]
    validation: dict[str, Any] | None  # the ValidationReport of `code`, as_dict()
    instruction: str  # the prompt, the refinement instruction, "manual edit", "revert to N"
    author: str  # model_author(...) for a model's code, the user's email for a person's


async def record_first_version(
    strategy: GeneratedStrategy, *, instruction: str, author: str
) -> StrategyVersion:
    """Version 1 of a strategy just created: call it in the transaction that created it."""
    return await StrategyVersion.create(
        strategy_id=strategy.id,
        number=strategy.version,
        generated_code=strategy.generated_code,
        parameters=strategy.parameters,
        instruction=instruction,
        author=author,
        validation_results=strategy.validation_results,
        performance_metrics=strategy.performance_metrics,
    )


async def add_version(strategy: GeneratedStrategy, new: NewVersion) -> StrategyVersion:
    """Make `new` the strategy's current code and parameters, as its next numbered version.

    The strategy is saved with it in one transaction, with whatever else the caller changed
    on it (name, status, ...). Its stored backtest metrics are cleared: they measured the
    previous version, which keeps them. The number comes from an increment in the database,
    so concurrent changes get distinct numbers (PostgreSQL locks the row until commit; SQLite
    has one writer).

    A refinement sets the strategy's status from its verdict, then calls this with
    `NewVersion(code, parameters, report.as_dict(), instruction, model_author(provider,
    model))` inside the transaction that writes its generation log: the inner transaction
    becomes a savepoint, and both land or neither does.
    """
    async with in_transaction("default") as connection:
        bumped = (
            await GeneratedStrategy.filter(id=strategy.id)
            .using_db(connection)
            .update(version=F("version") + 1)
        )
        if not bumped:
            raise NotFound(f"Strategy {strategy.id} not found")
        # Read on the transaction's own connection: SQLite's reader would not see the bump.
        await strategy.refresh_from_db(fields=["version"], using_db=connection)
        strategy.generated_code = new.code
        strategy.parameters = new.parameters
        strategy.validation_results = new.validation
        strategy.performance_metrics = {}
        await strategy.save(using_db=connection, update_fields=SAVED_WITH_A_VERSION)
        return await StrategyVersion.create(
            strategy_id=strategy.id,
            number=strategy.version,
            generated_code=new.code,
            parameters=new.parameters,
            instruction=new.instruction,
            author=new.author,
            validation_results=new.validation,
            performance_metrics={},
            using_db=connection,
        )


async def versions_of(
    strategy_ids: Sequence[uuid.UUID],
) -> list[list[StrategyVersion]]:
    """Batch lookup for DataLoaders: each strategy's versions, oldest first, in the order
    asked (one query for them all)."""
    found: dict[uuid.UUID, list[StrategyVersion]] = {i: [] for i in strategy_ids}
    query = StrategyVersion.filter(strategy_id__in=list(strategy_ids)).order_by(
        "strategy_id", "number"
    )
    for version in await query:
        found[uuid.UUID(str(version.strategy_id))].append(version)
    return [found[i] for i in strategy_ids]


def pick_version(
    strategy_id: uuid.UUID, versions: Sequence[StrategyVersion], number: int
) -> StrategyVersion:
    for version in versions:
        if version.number == number:
            return version
    raise NotFound(f"Strategy {strategy_id} has no version {number}")


async def require_version(strategy: GeneratedStrategy, number: int) -> StrategyVersion:
    version = await StrategyVersion.get_or_none(strategy_id=strategy.id, number=number)
    if version is None:
        raise NotFound(f"Strategy {strategy.id} has no version {number}")
    return version


async def diff_versions(
    user: User,
    strategy_id: uuid.UUID,
    versions: Sequence[StrategyVersion],
    from_number: int,
    to_number: int,
    code_checks: UserCodeChecks,
) -> str:
    """A unified diff of two of `versions`' code, headed "version N" ("" when the code is the
    same); computed in the code-analysis workers and charged to `user` (the caller)."""
    before = pick_version(strategy_id, versions, from_number)
    after = pick_version(strategy_id, versions, to_number)
    return await code_checks.diff(
        str(user.id),
        before.generated_code,
        after.generated_code,
        f"version {before.number}",
        f"version {after.number}",
    )


async def record_backtest(strategy: GeneratedStrategy, metrics: dict[str, Any]) -> None:
    """Store a backtest's metrics on the version it ran (the one `strategy` held when read),
    and on the strategy only if that is still its current version: code changed during the
    backtest must not inherit metrics measured on the code before."""
    async with in_transaction("default") as connection:
        await (
            StrategyVersion.filter(strategy_id=strategy.id, number=strategy.version)
            .using_db(connection)
            .update(performance_metrics=metrics)
        )
        await (
            GeneratedStrategy.filter(id=strategy.id, version=strategy.version)
            .using_db(connection)
            .update(performance_metrics=metrics)
        )
