"""Subscriptions (graphql-transport-ws on /graphql) that do a generation or a backtest and
stream its progress; the last event carries what the matching mutation returns."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from schema.context import Context
from schema.types import (
    BacktestInput,
    BacktestResult,
    GenerateStrategyInput,
    GenerateStrategyPayload,
)
from services import progress
from services.generation import GenerationStage

Info = strawberry.Info[Context, None]

strawberry.enum(
    GenerationStage,
    name="GenerationStage",
    description="Milestones of a generation, in order; EXTRACTED and VALIDATED are skipped "
    "when the model call failed.",
)


@strawberry.type(description="One stage of a generation.")
class GenerationProgress:
    stage: GenerationStage
    elapsed_seconds: float = strawberry.field(description="Since the subscription started.")
    message: str = strawberry.field(description="What happened, for a status line.")
    result: GenerateStrategyPayload | None = strawberry.field(
        description="What generateStrategy returns; on the last event (stage STORED) only."
    )

    @classmethod
    def from_event(cls, event: progress.GenerationEvent) -> GenerationProgress:
        return cls(
            stage=event.stage,
            elapsed_seconds=event.elapsed_seconds,
            message=event.message,
            result=GenerateStrategyPayload.from_outcome(event.outcome) if event.outcome else None,
        )


@strawberry.type(description="How far a backtest is.")
class BacktestProgress:
    bars_done: int
    total_bars: int
    fraction: float = strawberry.field(description="barsDone / totalBars, 0.0 to 1.0.")
    elapsed_seconds: float = strawberry.field(description="Since the subscription started.")
    result: BacktestResult | None = strawberry.field(
        description="What backtestStrategy returns; on the last event only."
    )

    @classmethod
    def from_event(cls, event: progress.BacktestEvent) -> BacktestProgress:
        return cls(
            bars_done=event.bars_done,
            total_bars=event.total_bars,
            fraction=event.fraction,
            elapsed_seconds=event.elapsed_seconds,
            result=BacktestResult.from_outcome(event.outcome) if event.outcome else None,
        )


async def _generation_progress(
    events: AsyncGenerator[progress.GenerationEvent, None],
) -> AsyncGenerator[GenerationProgress, None]:
    async with aclosing(events):
        async for event in events:
            yield GenerationProgress.from_event(event)


async def _backtest_progress(
    events: AsyncGenerator[progress.BacktestEvent, None],
) -> AsyncGenerator[BacktestProgress, None]:
    async with aclosing(events):
        async for event in events:
            yield BacktestProgress.from_event(event)


@strawberry.type
class Subscription:
    # Plain coroutines returning the stream: what fails before the work starts (credentials,
    # input, rate limits) is raised here and answered with an `error` message.

    @strawberry.subscription(
        description="generateStrategy with progress: SENT, RECEIVED, EXTRACTED, VALIDATED, "
        "then STORED carrying the payload. A client that leaves does not stop the generation: "
        "it is stored and logged all the same (see generationLogs)."
    )
    async def generate_strategy_progress(
        self, info: Info, input: GenerateStrategyInput
    ) -> AsyncGenerator[GenerationProgress, None]:
        user = await info.context.require_user()
        events = await progress.watch_generation(
            info.context.services.generator,
            user,
            input.to_request(),
        )
        return _generation_progress(events)

    @strawberry.subscription(
        description="backtestStrategy with progress: barsDone from 0, at most about 20 events "
        "a second, then the last (barsDone = totalBars) carrying the result. Unsubscribing "
        "stops the backtest."
    )
    async def backtest_strategy_progress(
        self, info: Info, id: uuid.UUID, input: BacktestInput
    ) -> AsyncGenerator[BacktestProgress, None]:
        user = await info.context.require_user()
        events = await progress.watch_backtest(
            info.context.services.runner, user, id, input.to_request()
        )
        return _backtest_progress(events)
