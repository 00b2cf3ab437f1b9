from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry

from schema.context import Context
from schema.datasets import DatasetQueries
from schema.jobs import JobQueries
from schema.optimization_types import OptimizationQuery
from schema.types import (
    GenerationLog,
    GenerationStats,
    GenerationStatus,
    ModelInfo,
    Page,
    SampleDataset,
    Strategy,
    StrategyStatus,
    StrategyTemplate,
    StrategyType,
    User,
    page_of,
    strategy_columns,
)
from services import analytics, strategies
from services.execution import sample_datasets
from services.providers.templates import template_catalogue
from services.samples import SAMPLE_NAMES

Info = strawberry.Info[Context, None]
ALL_USERS = strawberry.argument(description="Staff only: every user's rows (the admin view).")


@strawberry.type
class Query(DatasetQueries, OptimizationQuery, JobQueries):
    @strawberry.field
    async def me(self, info: Info) -> User:
        return User.from_model(await info.context.require_user())

    @strawberry.field(description="The models generateStrategy can use; one is the default.")
    async def models(self, info: Info) -> list[ModelInfo]:
        await info.context.require_user()
        return [
            ModelInfo.from_choice(c) for c in info.context.services.generator.providers.models()
        ]

    @strawberry.field
    async def strategies(
        self,
        info: Info,
        status: StrategyStatus | None = None,
        strategy_type: StrategyType | None = None,
        page: int | None = 1,
        page_size: int | None = 20,
        all_users: Annotated[bool, ALL_USERS] = False,
    ) -> Page[Strategy]:
        user = await info.context.require_user()
        page, page_size = 1 if page is None else page, 20 if page_size is None else page_size
        # Only the columns the query's fields need (the code and the validation report are
        # most of a row); whole model objects when a field's needs are not known.
        columns = strategy_columns(info, "items")
        if columns is None:
            found = await strategies.list_strategies(
                user,
                status=status,
                strategy_type=strategy_type,
                page=page,
                page_size=page_size,
                all_users=all_users,
            )
            return page_of(found, Strategy.from_model)
        rows = await strategies.list_strategy_rows(
            user,
            columns,
            status=status,
            strategy_type=strategy_type,
            page=page,
            page_size=page_size,
            all_users=all_users,
        )
        return page_of(rows, Strategy.from_row)

    @strawberry.field
    async def strategy(
        self, info: Info, id: uuid.UUID, all_users: Annotated[bool, ALL_USERS] = False
    ) -> Strategy | None:
        user = await info.context.require_user()
        found = await strategies.get_strategy(user, id, all_users)
        return Strategy.from_model(found) if found is not None else None

    @strawberry.field
    async def generation_logs(
        self,
        info: Info,
        status: GenerationStatus | None = None,
        page: int | None = 1,
        page_size: int | None = 20,
        all_users: Annotated[bool, ALL_USERS] = False,
    ) -> Page[GenerationLog]:
        user = await info.context.require_user()
        result = await strategies.list_generation_logs(
            user,
            status=status,
            page=1 if page is None else page,
            page_size=20 if page_size is None else page_size,
            all_users=all_users,
        )
        return page_of(result, GenerationLog.from_model)

    @strawberry.field
    async def generation_log(
        self, info: Info, id: uuid.UUID, all_users: Annotated[bool, ALL_USERS] = False
    ) -> GenerationLog | None:
        user = await info.context.require_user()
        found = await strategies.get_generation_log(user, id, all_users)
        return GenerationLog.from_model(found) if found is not None else None

    @strawberry.field(
        description="Success rate, processing times, tokens and popular strategy types over "
        "[since, until) (default: the last 30 days; at most 366 days). A date alone, "
        'e.g. "2026-11-01", means midnight UTC; a time of day needs an offset.'
    )
    async def generation_stats(
        self,
        info: Info,
        since: datetime | None = None,
        until: Annotated[
            datetime | None, strawberry.argument(description="Exclusive; defaults to now.")
        ] = None,
        all_users: Annotated[bool, ALL_USERS] = False,
    ) -> GenerationStats:
        user = await info.context.require_user()
        stats = await analytics.generation_stats(
            user, since=since, until=until, all_users=all_users
        )
        return GenerationStats.from_stats(stats)

    @strawberry.field(description="Names of the built-in (synthetic) data sets for backtests.")
    def sample_datasets(self) -> list[str]:
        return list(SAMPLE_NAMES)

    @strawberry.field(description="The built-in data sets with their descriptions.")
    def sample_dataset_details(self) -> list[SampleDataset]:
        return [SampleDataset(**vars(dataset)) for dataset in sample_datasets()]

    @strawberry.field(
        description="The template provider's built-in templates: what it builds without a "
        "model, with parameter defaults and ranges and example prompts."
    )
    def strategy_templates(self) -> list[StrategyTemplate]:
        return [StrategyTemplate.from_info(info) for info in template_catalogue()]
