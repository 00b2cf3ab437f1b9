"""The reference for bench/api.py: a bare Strawberry app serving 20 in-memory strategies.

Same field shape as the real `strategies` query, no database, no auth.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.scalars import JSON

NOW = datetime.now(UTC)


@strawberry.type
class Strategy:
    id: uuid.UUID
    name: str
    strategy_type: str
    status: str
    usage_count: int
    code_preview: str
    parameters: JSON
    created_at: datetime


@strawberry.type
class StrategyPage:
    items: list[Strategy]
    total_count: int
    page: int
    page_size: int
    has_next_page: bool
    has_previous_page: bool


ITEMS = [
    Strategy(
        id=uuid.uuid4(),
        name=f"SMA Crossover {i}",
        strategy_type="TREND_FOLLOWING",
        status="VALIDATED",
        usage_count=i,
        code_preview="def execute_strategy(market_data, strategy_params):\n    ...",
        parameters={"fast_period": 20, "slow_period": 50},
        created_at=NOW,
    )
    for i in range(20)
]


@strawberry.type
class Query:
    @strawberry.field
    async def strategies(self, page: int = 1, page_size: int = 20) -> StrategyPage:
        items = ITEMS[(page - 1) * page_size : page * page_size]
        return StrategyPage(
            items=items,
            total_count=len(ITEMS),
            page=page,
            page_size=page_size,
            has_next_page=page * page_size < len(ITEMS),
            has_previous_page=page > 1,
        )


app = Starlette(
    routes=[Route("/graphql", GraphQL(strawberry.Schema(query=Query)), methods=["GET", "POST"])]
)
