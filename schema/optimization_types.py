"""Optimisation and walk-forward (issue 13 §3): types, inputs and the fields Query, Mutation
and Subscription inherit. Thin: every rule is in services/optimization.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

import models
from schema.context import Context
from schema.inputs import MarketDataInput
from schema.types import Page, Strategy, page_of
from services import optimization as service
from services.errors import NotFound, ServiceUnavailable
from services.execution import MAX_BACKTEST_BARS, bars_from_input
from services.optimization import Optimizer

Info = strawberry.Info[Context, None]


@strawberry.enum(description="Where a job is: waiting, running, or how it ended.")
class JobStatus(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.enum(description="GRID tries every point in order; RANDOM and TPE (optuna) sample.")
class SearchMethod(Enum):
    GRID = "grid"
    RANDOM = "random"
    TPE = "tpe"


@strawberry.type(description="A walk-forward fold: tuned in sample, tested on the bars after.")
class OptimizationFold:
    index: int
    best_parameters: JSON
    in_sample: JSON = strawberry.field(
        description="Metrics of the best parameters on the fold's in-sample bars."
    )
    out_of_sample: JSON = strawberry.field(
        description="Metrics of those parameters on the following out-of-sample bars."
    )
    in_sample_bars: list[int] = strawberry.field(description="[first, end) bar indexes.")
    out_of_sample_bars: list[int] = strawberry.field(description="[first, end) bar indexes.")
    look_ahead_bias: bool = strawberry.field(
        description="The best parameters' signals changed when the bars after them were "
        "removed (services/lookahead.py): these results cannot be trusted or applied."
    )
    look_ahead_bars: list[int]
    warmup_bars_needed: int | None

    @classmethod
    def from_model(cls, fold: models.OptimizationFold) -> OptimizationFold:
        verdict = fold.look_ahead or {}
        return cls(
            index=fold.index,
            best_parameters=cast(JSON, fold.best_parameters),
            in_sample=cast(JSON, fold.in_sample),
            out_of_sample=cast(JSON, fold.out_of_sample),
            in_sample_bars=list(fold.in_sample_bars),
            out_of_sample_bars=list(fold.out_of_sample_bars),
            look_ahead_bias=bool(verdict.get("lookAheadBias")),
            look_ahead_bars=list(verdict.get("lookAheadBars") or []),
            warmup_bars_needed=verdict.get("warmupBarsNeeded"),
        )


@strawberry.type(description="One evaluated parameter set.")
class OptimizationTrial:
    number: int
    fold: int | None = strawberry.field(description="null without walk-forward.")
    parameters: JSON
    metrics: JSON = strawberry.field(
        description="In-sample metrics; {error} when the run failed, constraintViolated "
        "when beyond maxDrawdownPct."
    )
    value: float | None = strawberry.field(
        description="The objective's value; null when undefined, failed or beyond the cap."
    )

    @classmethod
    def from_model(cls, trial: models.OptimizationTrial) -> OptimizationTrial:
        return cls(
            number=trial.number,
            fold=trial.fold,
            parameters=cast(JSON, trial.parameters),
            metrics=cast(JSON, trial.metrics),
            value=trial.value,
        )


@strawberry.type(description="A search over a strategy's parameters, stored and queryable.")
class Optimization:
    id: uuid.UUID
    status: JobStatus
    method: SearchMethod
    objective: str
    trials_done: int
    trials_total: int
    best_parameters: JSON | None = strawberry.field(
        description="Over the whole data (no walk-forward) or the last fold; while it runs, "
        "the best so far (of the fold being searched)."
    )
    best_metrics: JSON | None
    walk_forward_efficiency: float | None = strawberry.field(
        description="Mean out-of-sample objective / mean in-sample objective over the folds "
        "(a total return is compared annualised); null without folds."
    )
    out_of_sample_metrics: JSON | None = strawberry.field(
        description="The folds' out-of-sample runs stitched into one account; null without folds."
    )
    warnings: list[str]
    look_ahead_bias: bool = strawberry.field(
        description="The best parameters (of any fold) showed look-ahead bias."
    )
    look_ahead_bars: list[int]
    warmup_bars_needed: int | None = strawberry.field(
        description="History the best parameters' signals need to settle (without folds; "
        "each fold has its own)."
    )
    strategy_version: int = strawberry.field(description="The version that was optimised.")
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    strategy_id: strawberry.Private[uuid.UUID]
    owner_id: strawberry.Private[uuid.UUID]
    row: strawberry.Private[models.Optimization]

    @strawberry.field
    async def strategy(self, info: Info) -> Strategy:
        found = await info.context.strategy_loader(self.owner_id).load(self.strategy_id)
        if found is None:  # deleted meanwhile: the optimisation went with it (cascade)
            raise NotFound(f"Strategy {self.strategy_id} not found")
        return Strategy.from_model(found)

    @strawberry.field
    async def folds(self) -> list[OptimizationFold]:
        return [OptimizationFold.from_model(f) for f in await service.folds_of(self.row)]

    @strawberry.field(description="Every trial, in plan order.")
    async def trials(self) -> list[OptimizationTrial]:
        return [OptimizationTrial.from_model(t) for t in await service.trials_of(self.row)]

    @classmethod
    def from_model(cls, row: models.Optimization) -> Optimization:
        verdict = row.look_ahead or {}
        return cls(
            id=row.id,
            status=JobStatus(row.status.value),
            method=SearchMethod(row.spec.get("method", "grid")),
            objective=row.objective,
            trials_done=row.trials_done,
            trials_total=row.trials_total,
            best_parameters=cast(JSON, row.best_parameters),
            best_metrics=cast(JSON, row.best_metrics),
            walk_forward_efficiency=row.walk_forward_efficiency,
            out_of_sample_metrics=cast(JSON, row.spec.get("outOfSample")),
            warnings=[str(w) for w in row.warnings or []],
            look_ahead_bias=bool(verdict.get("lookAheadBias")),
            look_ahead_bars=list(verdict.get("lookAheadBars") or []),
            warmup_bars_needed=verdict.get("warmupBarsNeeded"),
            strategy_version=row.strategy_version,
            error_message=row.error_message,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            strategy_id=cast(uuid.UUID, row.strategy_id),
            owner_id=cast(uuid.UUID, row.user_id),
            row=row,
        )


@strawberry.input
class ParameterRangeInput:
    name: str
    values: list[JSON] | None = strawberry.field(
        default=None, description="Explicit values, tried in this order; or min, max, step."
    )
    min: float | None = None
    max: float | None = None
    step: float | None = strawberry.field(
        default=None, description="Needed for GRID; without it RANDOM and TPE sample the range."
    )


@strawberry.input
class WalkForwardInput:
    folds: int
    anchored: bool | None = strawberry.field(
        default=False, description="Every in-sample part starts at the first bar."
    )
    out_of_sample_pct: float | None = strawberry.field(
        default=25, description="Share of each fold kept out of sample."
    )


@strawberry.input
class OptimizeInput:
    dataset_id: uuid.UUID | None = None
    sample: str | None = None
    market_data: MarketDataInput | None = None
    parameters: list[ParameterRangeInput]
    method: SearchMethod | None = SearchMethod.GRID
    objective: str | None = strawberry.field(
        default="sharpeRatio",
        description="A metric to maximise: " + ", ".join(service.OBJECTIVES) + ".",
    )
    max_trials: int | None = strawberry.field(
        default=200, description="Trials per search (per fold with walk-forward)."
    )
    walk_forward: WalkForwardInput | None = None
    initial_cash: float | None = 10000
    commission_pct: float | None = 0.1
    max_drawdown_pct: float | None = strawberry.field(
        default=None,
        description="Constraint: a trial whose drawdown is deeper than this percent does not "
        "count (return with a drawdown cap: objective totalReturnPct and this).",
    )
    seed: int | None = strawberry.field(
        default=None,
        description="Seed of RANDOM and TPE (default 0): the same seed, the same plan.",
    )

    def to_request(self) -> service.OptimizeRequest:
        wf = self.walk_forward
        return service.OptimizeRequest(
            parameters=[
                service.ParameterRange(
                    p.name, None if p.values is None else list(p.values), p.min, p.max, p.step
                )
                for p in self.parameters
            ],
            sample=self.sample,
            market_data=None
            if self.market_data is None
            else bars_from_input(self.market_data.to_columns(), MAX_BACKTEST_BARS),
            dataset_id=self.dataset_id,
            method=(self.method or SearchMethod.GRID).value,
            objective=self.objective or "sharpeRatio",
            max_trials=200 if self.max_trials is None else self.max_trials,
            walk_forward=None
            if wf is None
            else service.WalkForward(
                folds=wf.folds,
                anchored=bool(wf.anchored),
                out_of_sample_pct=25.0 if wf.out_of_sample_pct is None else wf.out_of_sample_pct,
            ),
            initial_cash=10_000.0 if self.initial_cash is None else self.initial_cash,
            commission_pct=0.1 if self.commission_pct is None else self.commission_pct,
            max_drawdown_pct=self.max_drawdown_pct,
            seed=self.seed,
        )


def _optimizer(info: Info) -> Optimizer:
    found = info.context.services.optimizer
    if found is None:
        raise ServiceUnavailable("Optimisations are not available on this server", 30)
    return found


@strawberry.type
class OptimizationQuery:
    @strawberry.field
    async def optimization(self, info: Info, id: uuid.UUID) -> Optimization | None:
        user = await info.context.require_user()
        found = await service.get_optimization(user, id)
        return None if found is None else Optimization.from_model(found)

    @strawberry.field(description="The caller's optimisations, newest first.")
    async def optimizations(
        self,
        info: Info,
        strategy_id: uuid.UUID | None = None,
        page: int | None = 1,
        page_size: int | None = 20,
    ) -> Page[Optimization]:
        user = await info.context.require_user()
        result = await service.list_optimizations(
            user, strategy_id, 1 if page is None else page, 20 if page_size is None else page_size
        )
        return page_of(result, Optimization.from_model)


@strawberry.type
class OptimizationMutation:
    @strawberry.mutation(
        description="Start an optimisation; it returns at once (QUEUED or RUNNING) and runs as "
        "a job: follow it with optimizationProgress or optimization(id)."
    )
    async def optimize_strategy(
        self, info: Info, id: uuid.UUID, input: OptimizeInput
    ) -> Optimization:
        user = await info.context.require_user()
        started = await _optimizer(info).optimize(user, id, input.to_request())
        return Optimization.from_model(started)

    @strawberry.mutation(description="Stop a queued or running optimisation (trials kept).")
    async def cancel_optimization(self, info: Info, id: uuid.UUID) -> Optimization:
        user = await info.context.require_user()
        return Optimization.from_model(await _optimizer(info).cancel(user, id))

    @strawberry.mutation(
        description="The best parameters (of the run, or of fold `fold`) become the strategy's "
        "next version; refused for a result with look-ahead bias."
    )
    async def apply_optimization(
        self,
        info: Info,
        id: uuid.UUID,
        fold: Annotated[int | None, strawberry.argument(description="A fold's index.")] = None,
    ) -> Strategy:
        user = await info.context.require_user()
        return Strategy.from_model(await _optimizer(info).apply(user, id, fold))


async def _progress(events: Any) -> AsyncGenerator[Optimization, None]:
    async for row in events:
        yield Optimization.from_model(row)


@strawberry.type
class OptimizationSubscription:
    @strawberry.subscription(
        description="The optimisation now and at each change (about every half second while "
        "trials finish) until it ends; the last event has its final state. Leaving does not "
        "stop it (cancelOptimization does)."
    )
    async def optimization_progress(
        self, info: Info, id: uuid.UUID
    ) -> AsyncGenerator[Optimization, None]:
        user = await info.context.require_user()
        events = await _optimizer(info).watch(user, id)
        return _progress(events)
