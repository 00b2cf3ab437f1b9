from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from schema.context import Context
from schema.types import (
    GenerationLog,
    GenerationLogPage,
    GenerationStatus,
    SampleDataset,
    Strategy,
    StrategyPage,
    StrategyStatus,
    StrategyType,
    User,
)
from services import strategies
from services.execution import sample_datasets
from services.samples import SAMPLE_NAMES

Info = strawberry.Info[Context, None]
ALL_USERS = strawberry.argument(description="Staff only: every user's rows (the admin view).")


@strawberry.type
class Query:
    @strawberry.field
    async def me(self, info: Info) -> User:
        return User.from_model(await info.context.require_user())

    @strawberry.field
    async def strategies(
        self,
        info: Info,
        status: StrategyStatus | None = None,
        strategy_type: StrategyType | None = None,
        page: int | None = 1,
        page_size: int | None = 20,
        all_users: Annotated[bool, ALL_USERS] = False,
    ) -> StrategyPage:
        user = await info.context.require_user()
        result = await strategies.list_strategies(
            user,
            status=status,
            strategy_type=strategy_type,
            page=1 if page is None else page,
            page_size=20 if page_size is None else page_size,
            all_users=all_users,
        )
        return StrategyPage.from_page(result)

    @strawberry.field
    async def strategy(self, info: Info, id: uuid.UUID) -> Strategy | None:
        found = await strategies.get_strategy(await info.context.require_user(), id)
        return Strategy.from_model(found) if found is not None else None

    @strawberry.field
    async def generation_logs(
        self,
        info: Info,
        status: GenerationStatus | None = None,
        page: int | None = 1,
        page_size: int | None = 20,
        all_users: Annotated[bool, ALL_USERS] = False,
    ) -> GenerationLogPage:
        user = await info.context.require_user()
        result = await strategies.list_generation_logs(
            user,
            status=status,
            page=1 if page is None else page,
            page_size=20 if page_size is None else page_size,
            all_users=all_users,
        )
        return GenerationLogPage.from_page(result)

    @strawberry.field
    async def generation_log(self, info: Info, id: uuid.UUID) -> GenerationLog | None:
        found = await strategies.get_generation_log(await info.context.require_user(), id)
        return GenerationLog.from_model(found) if found is not None else None

    @strawberry.field(description="Names of the built-in (synthetic) data sets for backtests.")
    def sample_datasets(self) -> list[str]:
        return list(SAMPLE_NAMES)

    @strawberry.field(description="The built-in data sets with their descriptions.")
    def sample_dataset_details(self) -> list[SampleDataset]:
        return [SampleDataset(**vars(dataset)) for dataset in sample_datasets()]
