"""The events progress subscriptions stream: a generation's stages, a backtest's bars."""

from __future__ import annotations

import strawberry

from schema.types import BacktestResult, GenerateStrategyPayload
from services import progress
from services.generation import GenerationStage

strawberry.enum(
    GenerationStage,
    name="GenerationStage",
    description="Milestones of a generation, in order; EXTRACTED and VALIDATED are skipped "
    "when the model call failed; each repair round goes from SENT to VALIDATED again.",
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
