"""Generation statistics over a time window, aggregated in SQL.

Scope follows the admin rule of the lists (`owner_scope`): the caller's own generations, or
everyone's for staff who ask. The window is half-open, [since, until), in absolute time; the
daily series uses UTC days. Figures that have no meaning without generations (success rate,
average and p95 time) are None then, never a misleading 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pypika_tortoise import SqlContext
from pypika_tortoise.enums import Dialects
from pypika_tortoise.terms import Function as PypikaFunction
from tortoise.expressions import Function, Q
from tortoise.functions import Count, Sum
from tortoise.queryset import QuerySet

from models import GenerationStatus, StrategyGenerationLog, StrategyType, User
from services.errors import BadInput
from services.strategies import owner_scope

DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=366)
P95 = 0.95


class _UtcDaySql(PypikaFunction):
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD' text, on either dialect."""

    def __init__(self, term: Any, alias: str | None = None) -> None:
        super().__init__("DATE", term, alias=alias)

    def get_function_sql(self, ctx: SqlContext) -> str:
        column = self.get_arg_sql(self.args[0], ctx)
        if ctx.dialect == Dialects.POSTGRESQL:
            # timestamptz: the session's time zone must not decide the day.
            return f"TO_CHAR(({column} AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
        # SQLite keeps ISO text with its offset; DATE() converts it to UTC first.
        return f"DATE({column})"


class UtcDay(Function):
    database_func = _UtcDaySql


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    def days(self) -> list[date]:
        """Every UTC day the window touches, oldest first."""
        first = self.since.date()
        last = (self.until - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class ModelUsage:
    provider: str
    model: str
    generations: int
    tokens_used: int
    estimated_cost_usd: float | None  # over the generations with a known price


@dataclass(frozen=True)
class StrategyTypeCount:
    strategy_type: StrategyType
    count: int


@dataclass(frozen=True)
class DailyStats:
    day: date
    generations: int
    successes: int
    tokens_used: int


@dataclass(frozen=True)
class GenerationStats:
    window: Window
    all_users: bool
    total: int
    success_count: int
    partial_count: int
    failure_count: int
    success_rate: float | None
    average_processing_seconds: float | None
    p95_processing_seconds: float | None
    tokens_used: int
    active_users: int
    by_model: Sequence[ModelUsage]
    strategy_types: Sequence[StrategyTypeCount]
    daily: Sequence[DailyStats]


def _aware_utc(name: str, value: datetime) -> datetime:
    """A date alone ("2026-11-01", parsed as a naive midnight) is midnight UTC, as people type
    it; a time of day without an offset is ambiguous and refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        if value.time() == time(0):
            return value.replace(tzinfo=UTC)
        raise BadInput(
            f"{name} needs a time zone offset when it has a time of day, e.g. "
            "2025-01-31T09:30:00Z (a date alone, 2025-01-31, means midnight UTC)"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadInput(f"{name} is out of range") from None


def resolve_window(
    since: datetime | None, until: datetime | None, now: datetime | None = None
) -> Window:
    """Defaults: until is now, since is 30 days before until."""
    end = _aware_utc("until", until) if until is not None else (now or datetime.now(UTC))
    if since is not None:
        start = _aware_utc("since", since)
    else:
        try:
            start = end - DEFAULT_WINDOW
        except OverflowError:
            raise BadInput("until is out of range") from None
    if start >= end:
        raise BadInput("since must be earlier than until (until defaults to now)")
    if end - start > MAX_WINDOW:
        raise BadInput(f"The window may span at most {MAX_WINDOW.days} days")
    return Window(start, end)


def nearest_rank(count: int, quantile: float) -> int:
    """1-based rank of the nearest-rank percentile: the smallest value with `quantile` of the
    values at or below it (no interpolation, so it is always a measured time)."""
    return max(1, math.ceil(quantile * count))


async def generation_stats(
    user: User,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    all_users: bool = False,
) -> GenerationStats:
    scope = owner_scope(user, all_users)
    window = resolve_window(since, until)
    logs = StrategyGenerationLog.filter(
        **scope, created_at__gte=window.since, created_at__lt=window.until
    )

    per_day = await _per_day(logs)
    daily = [
        DailyStats(
            day,
            int(row["generations"]) if (row := per_day.get(day)) else 0,
            int(row["successes"]) if row else 0,
            int(row["tokens"] or 0) if row else 0,
        )
        for day in window.days()
    ]
    rows = per_day.values()
    total = sum(int(r["generations"]) for r in rows)
    successes = sum(int(r["successes"]) for r in rows)
    partials = sum(int(r["partials"]) for r in rows)
    seconds = sum(float(r["seconds"] or 0.0) for r in rows)

    return GenerationStats(
        window=window,
        all_users=all_users,
        total=total,
        success_count=successes,
        partial_count=partials,
        failure_count=total - successes - partials,
        success_rate=successes / total if total else None,
        average_processing_seconds=seconds / total if total else None,
        p95_processing_seconds=await _percentile_time(logs, total, P95) if total else None,
        tokens_used=sum(d.tokens_used for d in daily),
        active_users=await _active_users(logs) if total else 0,
        by_model=await _by_model(logs) if total else [],
        strategy_types=await _strategy_types(logs) if total else [],
        daily=daily,
    )


async def _per_day(logs: QuerySet[StrategyGenerationLog]) -> dict[date, dict[str, Any]]:
    """One pass over the window: counts, tokens and time per UTC day (totals are their sums)."""
    rows = (
        await logs.annotate(
            day=UtcDay("created_at"),
            generations=Count("id"),
            successes=Count("id", _filter=Q(status=GenerationStatus.SUCCESS)),
            partials=Count("id", _filter=Q(status=GenerationStatus.PARTIAL)),
            tokens=Sum("tokens_used"),
            seconds=Sum("processing_time_seconds"),
        )
        .group_by("day")
        .values("day", "generations", "successes", "partials", "tokens", "seconds")
    )
    return {date.fromisoformat(str(row["day"])): row for row in rows}


async def _percentile_time(
    logs: QuerySet[StrategyGenerationLog], total: int, quantile: float
) -> float | None:
    """The row at the nearest rank, found by the database's sort: no rows come to Python."""
    rows = (
        await logs.order_by("processing_time_seconds", "id")
        .offset(nearest_rank(total, quantile) - 1)
        .limit(1)
        .values("processing_time_seconds")
    )
    return float(rows[0]["processing_time_seconds"]) if rows else None


async def _active_users(logs: QuerySet[StrategyGenerationLog]) -> int:
    row = await logs.annotate(users=Count("user_id", distinct=True)).first().values("users")
    return int(row["users"]) if row else 0


async def _by_model(logs: QuerySet[StrategyGenerationLog]) -> list[ModelUsage]:
    rows = (
        await logs.annotate(
            generations=Count("id"), tokens=Sum("tokens_used"), cost=Sum("estimated_cost_usd")
        )
        .group_by("provider", "model")
        .order_by("-tokens", "-generations", "provider", "model")
        .values("provider", "model", "generations", "tokens", "cost")
    )
    return [
        ModelUsage(
            r["provider"],
            r["model"],
            int(r["generations"]),
            int(r["tokens"] or 0),
            None if r["cost"] is None else float(r["cost"]),
        )
        for r in rows
    ]


async def _strategy_types(logs: QuerySet[StrategyGenerationLog]) -> list[StrategyTypeCount]:
    """Types of the strategies the window's generations stored (deleted ones drop out)."""
    rows = (
        await logs.filter(strategy_id__isnull=False)
        .annotate(count=Count("id"))
        .group_by("strategy__strategy_type")
        .order_by("-count", "strategy__strategy_type")
        .values("strategy__strategy_type", "count")
    )
    return [
        StrategyTypeCount(StrategyType(r["strategy__strategy_type"]), int(r["count"])) for r in rows
    ]
