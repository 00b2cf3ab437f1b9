"""Subscriptions (graphql-transport-ws on /graphql) that do a generation or a backtest and
stream its progress; the last event carries what the matching mutation returns."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from schema.context import Context
from schema.inputs import BacktestInput, GenerateStrategyInput
from schema.optimization_types import OptimizationSubscription
from schema.progress import BacktestProgress, GenerationProgress
from services import progress

Info = strawberry.Info[Context, None]


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
class Subscription(OptimizationSubscription):
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
