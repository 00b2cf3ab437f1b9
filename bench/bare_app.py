"""The reference for bench/api.py: the least a Strawberry app needs to give the bench's three
queries (`strategies` page, `strategy(id)`, `me`) the same answers from the same database.

Like for like, so the ratio measures what the project adds, not tricks it has and this lacks:
the same parse and validation caches (strawberry's ParserCache and ValidationCache), the same
`gc.freeze` after start-up, the same uvicorn command line (bench/api.py starts both), the same
database through the same Tortoise configuration (server.db.serving_config), the same field
types (models' DatetimeField), the user remembered for the same 5 seconds. What it leaves out
is what the project is for: no tokens (the user is BARE_USER_ID), no middleware (request ids,
access log, body limit), no limits, no telemetry, no error masking. Each resolver reads just
the columns its query asks for, with Tortoise's `.values()`, and the list's total comes from
the same window count in one statement.

Environment: DATABASE_URL (migrated, seeded by bench/api.py), BARE_USER_ID.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.scalars import JSON
from tortoise.contrib.starlette import RegisterTortoise
from tortoise.expressions import RawSQL

import models
from server.db import serving_config

USER_ID = uuid.UUID(os.environ.get("BARE_USER_ID", str(uuid.UUID(int=0))))
DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite://:memory:")
PREVIEW_LINES = 10
USER_TTL_SECONDS = 5.0

StrategyType = strawberry.enum(models.StrategyType, name="StrategyType")
StrategyStatus = strawberry.enum(models.StrategyStatus, name="StrategyStatus")


@strawberry.type
class User:
    id: uuid.UUID
    email: str
    is_staff: bool
    created_at: datetime


@strawberry.type
class Strategy:
    """Fields a query does not ask for stay at their defaults: nothing reads them."""

    id: uuid.UUID
    name: str = ""
    description: str = ""
    original_prompt: str = ""
    generated_code: str = ""
    strategy_type: StrategyType = models.StrategyType.CUSTOM
    status: StrategyStatus = models.StrategyStatus.DRAFT
    parameters: JSON = None
    performance_metrics: JSON = None
    usage_count: int = 0
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @strawberry.field
    def code_preview(self) -> str:
        return "\n".join(self.generated_code.splitlines()[:PREVIEW_LINES])


@strawberry.type
class StrategyPage:
    items: list[Strategy]
    total_count: int
    page: int
    page_size: int
    has_next_page: bool
    has_previous_page: bool


LIST_COLUMNS = (
    "id",
    "name",
    "strategy_type",
    "status",
    "usage_count",
    "generated_code",
    "parameters",
    "created_at",
)
DETAIL_COLUMNS = (
    "id",
    "name",
    "description",
    "original_prompt",
    "generated_code",
    "strategy_type",
    "status",
    "parameters",
    "performance_metrics",
    "usage_count",
    "version",
    "created_at",
    "updated_at",
)

_user: tuple[float, User] | None = None
_user_lock = asyncio.Lock()


async def remembered_user() -> User:
    global _user
    if _user is None or time.monotonic() - _user[0] > USER_TTL_SECONDS:
        async with _user_lock:  # one refresh at a time, like the project's RecentUsers
            if _user is None or time.monotonic() - _user[0] > USER_TTL_SECONDS:
                row: Any = await models.User.get(id=USER_ID).values(
                    "id", "email", "is_staff", "created_at"
                )
                _user = (time.monotonic(), User(**row))
    return _user[1]


@strawberry.type
class Query:
    @strawberry.field
    async def me(self) -> User:
        return await remembered_user()

    @strawberry.field
    async def strategies(self, page: int = 1, page_size: int = 20) -> StrategyPage:
        rows: list[dict[str, Any]] = (
            await models.GeneratedStrategy.filter(user_id=USER_ID)
            .annotate(window_total=RawSQL("COUNT(*) OVER ()"))
            .order_by("-created_at", "-id")
            .offset((page - 1) * page_size)
            .limit(page_size)
            .values(*LIST_COLUMNS, "window_total")
        )
        total = int(rows[0].pop("window_total")) if rows else 0
        for row in rows[1:]:
            del row["window_total"]
        return StrategyPage(
            items=[Strategy(**row) for row in rows],
            total_count=total,
            page=page,
            page_size=page_size,
            has_next_page=page * page_size < total,
            has_previous_page=page > 1,
        )

    @strawberry.field
    async def strategy(self, id: uuid.UUID) -> Strategy | None:
        row = (
            await models.GeneratedStrategy.filter(id=id, user_id=USER_ID)
            .first()
            .values(*DETAIL_COLUMNS)
        )
        return Strategy(**row) if row is not None else None


# Factories, as the project passes them (strawberry shares the caches between instances).
schema = strawberry.Schema(
    query=Query,
    extensions=[partial(ParserCache, maxsize=256), partial(ValidationCache, maxsize=256)],
)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with RegisterTortoise(app, config=serving_config(DATABASE_URL)):
        gc.collect()
        gc.freeze()
        yield


app = Starlette(
    routes=[Route("/graphql", GraphQL(schema), methods=["GET", "POST"])],
    lifespan=lifespan,
)
