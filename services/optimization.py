"""Optimisation of a strategy's parameters, with walk-forward analysis, as a job.

The request is checked in full before anything runs (`check_request`) and stored with the
strategy's code and the data, so the job (`Optimizer.run_optimization`) can run on any worker
and be taken again after its worker died: it reads the trials already stored and evaluates
only the rest. The trial plan is deterministic: grid order for GRID, a seeded optuna
RandomSampler for RANDOM, a seeded optuna TPESampler fed the stored trials for TPE. Trials go
out in batches (`evaluate_trials`, a task handler): one sandbox job per batch gets the bars
once and returns each parameter set's signals; the server runs the engine on them and stores
each trial once (unique per optimisation and number).

Walk-forward: the bars are cut into folds (rolling or anchored); each fold's in-sample part is
searched, its best parameters are then run on the out-of-sample part that follows, and the
out-of-sample runs are stitched. Walk-forward efficiency is the mean out-of-sample objective
over the mean in-sample one. The best parameters of each fold (or of a run without folds)
get the look-ahead check (services/lookahead.py), and its verdict is stored with them.

optuna is the sampler library (https://optuna.org): its samplers are well tested, its
ask-and-tell interface lets us batch trials and replay stored ones, and TPE needs no tuning.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import uuid
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models import (
    GeneratedStrategy,
    Optimization,
    OptimizationFold,
    OptimizationStatus,
    OptimizationTrial,
    User,
)
from services import versions
from services.backtesting import (
    BacktestOptions,
    BacktestReport,
    Trade,
    camel_case_json,
    compute_metrics,
    metrics_json,
    simulate,
)
from services.datasets import load_dataset_bars
from services.errors import BadInput, NotFound, ServiceUnavailable
from services.job_control import JobCancelled, JobControl, JobSubmitter
from services.jobs import register_job, register_task
from services.lookahead import require_trustworthy
from services.market_data import Bars
from services.offload import run_off_loop
from services.samples import SAMPLE_NAMES, UnknownSample, load_sample
from services.sandbox import Sandbox
from services.sandbox.errors import SandboxBusy, StrategySandboxError
from services.sandbox.sandbox import BatchRun
from services.strategies import Page, paginate, require_strategy

log = logging.getLogger("services.optimization")

JOB_KIND = "optimization"
TASK_KIND = "optimization-trials"
# What an objective may be: metrics where more is better.
OBJECTIVES = (
    "sharpeRatio",
    "sortinoRatio",
    "calmarRatio",
    "sqn",
    "totalReturnPct",
    "annualReturnPct",
    "cagrPct",
    "profitFactor",
    "expectancyPct",
    "winRatePct",
)
METHODS = ("grid", "random", "tpe")
BATCH_SIZE = 10  # trials per sandbox job
BUSY_RETRIES = 120  # a batch waits up to about two minutes for room in the sandbox's queue
ROUND_BATCHES = 4  # batches in flight between two progress reports and cancellation checks
MAX_FOLDS = 20
MIN_IN_SAMPLE_BARS = 100
MIN_OUT_OF_SAMPLE_BARS = 30
MAX_PARAMETERS = 10
MAX_VALUES = 1_000  # explicit values, or steps of a range, per parameter
# Below this out-of-sample/in-sample ratio the result gets a plain warning (Pardo's rule of
# thumb: a robust system keeps at least half of its in-sample performance).
LOW_EFFICIENCY = 0.5
FINISHED = (OptimizationStatus.SUCCEEDED, OptimizationStatus.FAILED, OptimizationStatus.CANCELLED)


# --- the request ------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterRange:
    name: str
    values: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None


@dataclass(frozen=True)
class WalkForward:
    folds: int
    anchored: bool = False
    out_of_sample_pct: float = 25.0


@dataclass(frozen=True)
class OptimizeRequest:
    parameters: list[ParameterRange]
    sample: str | None = None
    market_data: Bars | None = None
    dataset_id: uuid.UUID | None = None
    method: str = "grid"
    objective: str = "sharpeRatio"
    max_trials: int = 200
    walk_forward: WalkForward | None = None
    initial_cash: float = 10_000.0
    commission_pct: float = 0.1
    max_drawdown_pct: float | None = None  # constraint: drawdown no deeper than this percent
    seed: int | None = None


@dataclass(frozen=True)
class BestRun:
    """The best parameters (with the strategy's others) run again on `bars`."""

    bars: Bars
    parameters: dict[str, Any]
    result: BacktestReport
    signals: list[dict[str, Any] | None]


@dataclass(frozen=True)
class Fold:
    """Bar index ranges [start, end) of one walk-forward fold."""

    index: int
    in_sample: tuple[int, int]
    out_of_sample: tuple[int, int]


def walk_forward_folds(bar_count: int, walk_forward: WalkForward) -> list[Fold]:
    """Cut `bar_count` bars into folds whose out-of-sample parts tile the end of the data.

    Each out-of-sample part has L = n * p / (100 - p + k * p) bars (rounded down) for k folds
    and p percent out of sample; the first in-sample part takes the rest, n - k * L. Rolling:
    every in-sample part has that length and moves on by L; anchored: every in-sample part
    starts at bar 0. Raises BadInput when a part would be too small to mean anything."""
    k, pct = walk_forward.folds, walk_forward.out_of_sample_pct
    if not 1 <= k <= MAX_FOLDS:
        raise BadInput(f"walkForward.folds must be between 1 and {MAX_FOLDS}; got {k}")
    if not (isinstance(pct, int | float) and 0 < pct <= 90):
        raise BadInput(f"walkForward.outOfSamplePct must be above 0 and at most 90; got {pct}")
    oos = math.floor(bar_count * pct / (100 - pct + k * pct))
    first_in_sample = bar_count - k * oos
    if oos < MIN_OUT_OF_SAMPLE_BARS or first_in_sample < MIN_IN_SAMPLE_BARS:
        raise BadInput(
            f"walkForward: {k} folds of {bar_count:,} bars with {pct:g}% out of sample leave "
            f"{first_in_sample:,} in-sample and {oos:,} out-of-sample bars per fold; at least "
            f"{MIN_IN_SAMPLE_BARS} and {MIN_OUT_OF_SAMPLE_BARS} are needed: use fewer folds, "
            "another outOfSamplePct or more data",
            reason="FOLDS_TOO_SMALL",
        )
    folds = []
    for index in range(k):
        oos_start = first_in_sample + index * oos
        in_start = 0 if walk_forward.anchored else index * oos
        folds.append(Fold(index, (in_start, oos_start), (oos_start, oos_start + oos)))
    return folds


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integral(*values: float | None) -> bool:
    return all(v is not None and float(v).is_integer() for v in values)


def search_space(
    ranges: Sequence[ParameterRange], known: dict[str, Any], method: str
) -> list[dict[str, Any]]:
    """The checked search space, as stored: per parameter its name and either `values`
    (a finite list, searched in that order) or `low`/`high` (continuous, `int` or not)."""
    if not ranges:
        raise BadInput("parameters: give at least one parameter to optimise")
    if len(ranges) > MAX_PARAMETERS:
        raise BadInput(f"parameters: at most {MAX_PARAMETERS} parameters can be optimised")
    if not known:
        raise BadInput(
            "This strategy declares no parameters (its `parameters` are empty): there is "
            "nothing to optimise; set its parameters first (updateStrategy)",
            reason="UNKNOWN_PARAMETER",
        )
    names = [r.name for r in ranges]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BadInput(
            f"Unknown parameter {', '.join(map(repr, unknown))}: this strategy's parameters "
            f"are {', '.join(sorted(known))}",
            reason="UNKNOWN_PARAMETER",
        )
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise BadInput(f"Parameter {', '.join(map(repr, duplicated))} is given more than once")
    space: list[dict[str, Any]] = []
    for item in ranges:
        where = f"parameters[{item.name!r}]"
        ranged = item.min is not None or item.max is not None or item.step is not None
        if item.values is not None:
            if ranged:
                raise BadInput(f"{where}: give either values or min/max/step, not both")
            values = list(dict.fromkeys(item.values))  # in order, without repeats
            if not values:
                raise BadInput(f"{where}: values is empty")
            if len(values) > MAX_VALUES:
                raise BadInput(f"{where}: at most {MAX_VALUES} values")
            for value in values:
                if not (value is None or isinstance(value, bool | str) or _is_number(value)):
                    raise BadInput(f"{where}: values must be numbers, strings or booleans")
                if isinstance(value, float) and not math.isfinite(value):
                    raise BadInput(f"{where}: values must be finite")
            space.append({"name": item.name, "values": values})
            continue
        low, high, step = item.min, item.max, item.step
        if low is None or high is None:
            raise BadInput(f"{where}: give values, or min and max (and step for a grid)")
        if not (math.isfinite(low) and math.isfinite(high)):
            raise BadInput(f"{where}: min and max must be finite")
        if low > high:
            raise BadInput(f"{where}: min {low:g} is above max {high:g}: the range is empty")
        wants_int = isinstance(known[item.name], int) and not isinstance(known[item.name], bool)
        if step is None:
            if method == "grid":
                raise BadInput(f"{where}: a GRID search needs a step or values")
            whole = wants_int and _integral(low, high)
            space.append({"name": item.name, "low": low, "high": high, "int": whole})
            continue
        if not (math.isfinite(step) and step > 0):
            raise BadInput(f"{where}: step must be above 0; got {step:g}")
        count = math.floor((high - low) / step + 1e-9) + 1
        if count > MAX_VALUES:
            raise BadInput(f"{where}: {count:,} steps; at most {MAX_VALUES}")
        if _integral(low, high, step):
            values = [int(low) + i * int(step) for i in range(count)]
        else:
            values = [round(low + i * step, 10) for i in range(count)]
        space.append({"name": item.name, "values": values})
    return space


def grid_size(space: Sequence[dict[str, Any]]) -> int | None:
    """How many points a grid over `space` has; None when a parameter is continuous."""
    size = 1
    for parameter in space:
        if "values" not in parameter:
            return None
        size *= len(parameter["values"])
    return size


def check_request(
    request: OptimizeRequest, known: dict[str, Any], bar_count: int, max_trials_cap: int
) -> dict[str, Any]:
    """Everything checked up front (BAD_USER_INPUT naming the first problem); the spec the
    job runs, as stored."""
    method = request.method.lower()
    if method not in METHODS:
        raise BadInput(f"method must be one of GRID, RANDOM, TPE; got {request.method!r}")
    if request.objective not in OBJECTIVES:
        raise BadInput(
            f"Unknown objective {request.objective!r}; choose one of {', '.join(OBJECTIVES)}"
        )
    if not 1 <= request.max_trials <= max_trials_cap:
        raise BadInput(
            f"maxTrials must be between 1 and {max_trials_cap:,} (OPTIMIZATION_MAX_TRIALS); "
            f"got {request.max_trials:,}"
        )
    cap = request.max_drawdown_pct
    if cap is not None and not (math.isfinite(cap) and 0 < cap <= 100):
        raise BadInput(f"maxDrawdownPct must be above 0 and at most 100; got {cap:g}")
    options = BacktestOptions(
        initial_cash=request.initial_cash, commission_pct=request.commission_pct
    )
    try:
        options.check()
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    space = search_space(request.parameters, known, method)
    size = grid_size(space)
    if method == "grid":
        assert size is not None
        if size > request.max_trials:
            raise BadInput(
                f"The grid has {size:,} points, more than maxTrials ({request.max_trials:,}): "
                "narrow the ranges, raise maxTrials or use RANDOM or TPE",
                reason="TOO_MANY_GRID_POINTS",
            )
        per_fold = size
    else:
        per_fold = request.max_trials if size is None else min(request.max_trials, size)
    folds: list[Fold] = []
    if request.walk_forward is not None:
        folds = walk_forward_folds(bar_count, request.walk_forward)
    elif bar_count < MIN_IN_SAMPLE_BARS:
        raise BadInput(f"At least {MIN_IN_SAMPLE_BARS} bars are needed to optimise")
    wf = request.walk_forward
    return {
        "method": method,
        "parameters": space,
        "maxTrials": request.max_trials,
        "trialsPerFold": per_fold,
        "maxDrawdownPct": cap,
        "initialCash": float(request.initial_cash),
        "commissionPct": float(request.commission_pct),
        "seed": request.seed if request.seed is not None else 0,
        "walkForward": None
        if wf is None
        else {"folds": wf.folds, "anchored": wf.anchored, "outOfSamplePct": wf.out_of_sample_pct},
        "folds": [[*f.in_sample, *f.out_of_sample] for f in folds],
    }


# --- trials ---------------------------------------------------------------------------------


def objective_value(
    metrics: dict[str, Any], objective: str, max_drawdown_pct: float | None
) -> float | None:
    """The trial's score; None when undefined (e.g. no trades) or beyond the drawdown cap."""
    value = metrics.get(objective)
    if not _is_number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        return None
    if max_drawdown_pct is not None:
        drawdown = metrics.get("maxDrawdownPct")
        if not _is_number(drawdown) or -float(drawdown) > max_drawdown_pct:  # type: ignore[arg-type]
            return None
    return float(value)  # type: ignore[arg-type]


def _distributions(space: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    found: dict[str, Any] = {}
    for parameter in space:
        if "values" in parameter:
            found[parameter["name"]] = CategoricalDistribution(parameter["values"])
        elif parameter["int"]:
            found[parameter["name"]] = IntDistribution(
                int(parameter["low"]), int(parameter["high"])
            )
        else:
            found[parameter["name"]] = FloatDistribution(parameter["low"], parameter["high"])
    return found


def grid_points(space: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every grid point, in order: the first parameter varies slowest (itertools.product,
    as backtesting.py's Backtest.optimize orders its grid)."""
    names = [p["name"] for p in space]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(p["values"] for p in space))
    ]


def random_points(space: Sequence[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` points from optuna's RandomSampler with `seed`: the same list every time."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed))
    distributions = _distributions(space)
    return [study.ask(distributions).params for _ in range(count)]


def tpe_points(
    space: Sequence[dict[str, Any]],
    done: Sequence[tuple[dict[str, Any], float | None]],
    count: int,
    seed: int,
) -> list[dict[str, Any]]:
    """The next `count` points from optuna's TPESampler after the trials `done` (parameters
    and value; None: failed or infeasible) are replayed into a fresh study. Seeded by how
    many are done, so a job taken again asks what the first would have asked."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=seed + len(done), n_startup_trials=10, constant_liar=True
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    distributions = _distributions(space)
    for params, value in done:
        if value is None:
            study.add_trial(
                create_trial(params=params, distributions=distributions, state=TrialState.FAIL)
            )
        else:
            study.add_trial(create_trial(params=params, distributions=distributions, value=value))
    return [study.ask(distributions).params for _ in range(count)]


# --- walk-forward results ---------------------------------------------------------------------


def bars_between(bars: Bars, start: int, end: int) -> Bars:
    """Bars [start, end) of `bars`, views of the same arrays."""
    ts = bars.timestamp
    return Bars(
        timestamp=None if ts is None else ts[start:end],
        open=bars.open[start:end],
        high=bars.high[start:end],
        low=bars.low[start:end],
        close=bars.close[start:end],
        volume=bars.volume[start:end],
        symbol=bars.symbol,
        timeframe=bars.timeframe,
    )


def stitch(
    bars: Bars, runs: Sequence[tuple[int, BacktestReport]], initial_cash: float
) -> dict[str, Any]:
    """Metrics of the out-of-sample runs (each (first bar, engine report), in order, each
    started with `initial_cash`) chained into one account: each run's equity and trades are
    scaled by what the account held when it began (all-in sizing scales exactly)."""
    first = runs[0][0]
    equity: list[float] = []
    trades: list[Trade] = []
    factor = 1.0
    for start, report in runs:
        offset = start - first
        equity.extend(value * factor for value in report.equity)
        for trade in report.trades:
            trades.append(
                replace(
                    trade,
                    entry_bar=trade.entry_bar + offset,
                    exit_bar=trade.exit_bar + offset,
                    pnl=trade.pnl * factor,
                    size=trade.size * factor,
                    commission=trade.commission * factor,
                    slippage=trade.slippage * factor,
                )
            )
        factor = equity[-1] / initial_cash
    end = runs[-1][0] + runs[-1][1].bars
    stats = compute_metrics(equity, trades, bars_between(bars, first, end), initial_cash)
    return camel_case_json(stats)


def efficiency_metric(objective: str) -> str:
    """The metric walk-forward efficiency compares: the objective, except that a total
    return is compared annualised (in- and out-of-sample parts differ in length)."""
    return "annualReturnPct" if objective == "totalReturnPct" else objective


def walk_forward_efficiency(
    folds: Sequence[dict[str, Any]], objective: str
) -> tuple[float | None, list[str]]:
    """Mean out-of-sample objective over mean in-sample objective across folds, and the
    warnings a trader should read (out-of-sample far below in-sample, a fold that flipped)."""
    metric = efficiency_metric(objective)
    warnings: list[str] = []
    ins, outs = [], []
    for fold in folds:
        value_in = fold["inSample"].get(metric)
        value_out = fold["outOfSample"].get(metric)
        if not (_is_number(value_in) and _is_number(value_out)):
            warnings.append(
                f"Fold {fold['index']}: {metric} is undefined in or out of sample (no trades?): "
                "it is left out of the walk-forward efficiency"
            )
            continue
        ins.append(float(value_in))
        outs.append(float(value_out))
        if value_in > 0 and value_out < 0:
            warnings.append(
                f"Fold {fold['index']}: {metric} was {value_in:.3g} in sample but "
                f"{value_out:.3g} out of sample: the tuned parameters lost on new data"
            )
    if not ins:
        return None, warnings
    mean_in, mean_out = float(np.mean(ins)), float(np.mean(outs))
    if mean_in <= 0:
        warnings.append(
            f"The mean in-sample {metric} is {mean_in:.3g}: even tuned, the strategy did not "
            "do well, so walk-forward efficiency is not defined"
        )
        return None, warnings
    wfe = mean_out / mean_in
    if wfe < LOW_EFFICIENCY:
        warnings.append(
            f"Out-of-sample {metric} is {wfe:.0%} of in-sample ({mean_out:.3g} against "
            f"{mean_in:.3g}): the parameters did far worse on data they were not tuned on, a "
            "sign of overfitting. Do not expect the in-sample figures live."
        )
    return wfe, warnings


def edge_warnings(space: Sequence[dict[str, Any]], best: dict[str, Any]) -> list[str]:
    """A best value on the edge of a numeric range: the optimum may lie beyond it."""
    found = []
    for parameter in space:
        values = parameter.get("values")
        if values is None:
            ends = (parameter["low"], parameter["high"])
        elif len(values) >= 3 and all(_is_number(v) for v in values):
            ends = (min(values), max(values))
        else:
            continue
        value = best.get(parameter["name"])
        if _is_number(value) and value in ends:
            found.append(
                f"The best {parameter['name']} ({value}) is at the edge of its range "
                f"[{ends[0]}, {ends[1]}]: the optimum may lie outside it; widen the range"
            )
    return found


def _look_ahead_summary(verdict: dict[str, Any]) -> dict[str, Any]:
    return {
        "lookAheadBias": bool(verdict.get("lookAheadBias")),
        "lookAheadBars": list(verdict.get("lookAheadBars") or []),
        "warmupBarsNeeded": verdict.get("warmupBarsNeeded"),
        "warmupWarning": verdict.get("warmupWarning"),
        "checkError": verdict.get("checkError"),
    }


# --- storage helpers ------------------------------------------------------------------------


def pack_bars(bars: Bars) -> bytes:
    return zlib.compress(bars.to_bytes(), 1)


def unpack_bars(data: bytes) -> Bars:
    return Bars.from_bytes(zlib.decompress(data))


async def _bars_of_source(user: User, request: OptimizeRequest) -> tuple[Bars, dict[str, Any]]:
    given = [
        name
        for name, value in (
            ("datasetId", request.dataset_id),
            ("sample", request.sample),
            ("marketData", request.market_data),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise BadInput("Give exactly one of datasetId, sample or marketData")
    if request.sample is not None:
        return _sample(request.sample), {"sample": request.sample}
    if request.dataset_id is not None:
        bars = await load_dataset_bars(user, request.dataset_id)
        return bars, {"datasetId": str(request.dataset_id)}
    assert request.market_data is not None
    return request.market_data, {"marketData": True}


def _sample(name: str) -> Bars:
    try:
        return load_sample(name)
    except UnknownSample:
        raise BadInput(
            f"Unknown sample '{name}'; choose one of {', '.join(SAMPLE_NAMES)}"
        ) from None


async def require_optimization(user: User, optimization_id: uuid.UUID) -> Optimization:
    found = await Optimization.get_or_none(id=optimization_id, user_id=user.id)
    if found is None:
        raise NotFound(f"Optimization {optimization_id} not found")
    return found


async def get_optimization(user: User, optimization_id: uuid.UUID) -> Optimization | None:
    return await Optimization.get_or_none(id=optimization_id, user_id=user.id)


async def list_optimizations(
    user: User, strategy_id: uuid.UUID | None, page: int, page_size: int
) -> Page[Optimization]:
    query = Optimization.filter(user_id=user.id)
    if strategy_id is not None:
        query = query.filter(strategy_id=strategy_id)
    return await paginate(query, page, page_size)


async def trials_of(optimization: Optimization) -> list[OptimizationTrial]:
    return await OptimizationTrial.filter(optimization_id=optimization.id).order_by("number")


async def folds_of(optimization: Optimization) -> list[OptimizationFold]:
    return await OptimizationFold.filter(optimization_id=optimization.id).order_by("index")


def _now() -> datetime:
    return datetime.now(UTC)


# --- the service ------------------------------------------------------------------------------

# The bars of the optimisations whose tasks ran here lately: a batch needs them, and reading
# and unpacking them for every batch would cost more than the batch's engine runs.
_BARS: dict[uuid.UUID, Bars] = {}
_BARS_KEPT = 8


@dataclass
class Optimizer:
    """Submits, runs, cancels and applies optimisations; `run_optimization` is the job
    handler and `evaluate_trials` the task handler the job machinery calls."""

    sandbox: Sandbox
    submitter: JobSubmitter | None = None
    max_trials: int = 1_000
    trial_timeout_seconds: float = 60.0

    async def optimize(
        self, user: User, strategy_id: uuid.UUID, request: OptimizeRequest
    ) -> Optimization:
        """Check the request, store the optimisation QUEUED and hand it to the job machinery."""
        strategy = await require_strategy(user, strategy_id)
        require_trustworthy(strategy)
        bars, source = await _bars_of_source(user, request)
        spec = check_request(request, dict(strategy.parameters or {}), len(bars), self.max_trials)
        if self.submitter is None:
            raise ServiceUnavailable("Optimisations cannot run on this server (no job runner)", 30)
        folds = max(1, len(spec["folds"]))
        optimization = await Optimization.create(
            user_id=user.id,
            strategy_id=strategy.id,
            strategy_version=strategy.version,
            code=strategy.generated_code,
            base_parameters=dict(strategy.parameters or {}),
            objective=request.objective,
            spec=spec,
            data_source=source,
            data=pack_bars(bars) if "marketData" in source else None,
            trials_total=spec["trialsPerFold"] * folds,
        )
        await self.submitter.submit(JOB_KIND, optimization.id, user.id)
        await optimization.refresh_from_db()
        return optimization

    async def cancel(self, user: User, optimization_id: uuid.UUID) -> Optimization:
        """Ask a queued or running optimisation to stop; a finished one is returned as is.
        A queued one is cancelled at once; a running one at its next batch."""
        optimization = await require_optimization(user, optimization_id)
        if optimization.status in FINISHED:
            return optimization
        await Optimization.filter(id=optimization.id).update(cancel_requested=True)
        await Optimization.filter(id=optimization.id, status=OptimizationStatus.QUEUED).update(
            status=OptimizationStatus.CANCELLED, finished_at=_now()
        )
        if self.submitter is not None:
            await self.submitter.cancel(optimization.id)
        await optimization.refresh_from_db()
        return optimization

    async def apply(
        self, user: User, optimization_id: uuid.UUID, fold: int | None = None
    ) -> GeneratedStrategy:
        """The best parameters (of the whole run, or of fold `fold`) become the strategy's
        next version. Refused for a result not finished, one with look-ahead bias, or a
        strategy whose code changed since."""
        optimization = await require_optimization(user, optimization_id)
        if optimization.status is not OptimizationStatus.SUCCEEDED:
            raise BadInput(
                f"Optimization {optimization_id} is {optimization.status.value}: only a "
                "succeeded one can be applied"
            )
        if fold is None:
            best = optimization.best_parameters
            verdict = optimization.look_ahead
            what = "optimisation's best parameters"
        else:
            row = await OptimizationFold.get_or_none(optimization_id=optimization.id, index=fold)
            if row is None:
                count = len(optimization.spec.get("folds") or [])
                raise BadInput(
                    f"fold {fold} does not exist: this optimisation has "
                    + (f"folds 0 to {count - 1}" if count else "no folds")
                )
            best, verdict, what = row.best_parameters, row.look_ahead, f"fold {fold}'s parameters"
        if not best:
            raise BadInput("No trial met the objective and constraint: there is nothing to apply")
        if verdict.get("lookAheadBias"):
            raise BadInput(
                f"The {what} showed look-ahead bias (their signals changed when later bars were "
                "removed): fix the strategy's code and optimise again",
                reason="LOOK_AHEAD_BIAS",
            )
        strategy = await require_strategy(user, uuid.UUID(str(optimization.strategy_id)))
        if strategy.generated_code != optimization.code:
            raise BadInput(
                f"The strategy's code changed since this optimisation (it ran on version "
                f"{optimization.strategy_version}): optimise the current code again",
                reason="STRATEGY_CHANGED",
            )
        await versions.add_version(
            strategy,
            versions.NewVersion(
                code=strategy.generated_code,
                parameters={**(strategy.parameters or {}), **best},
                validation=strategy.validation_results,
                instruction=f"apply optimization {optimization.id}"
                + (f" (fold {fold})" if fold is not None else ""),
                author=user.email,
            ),
        )
        await strategy.refresh_from_db()
        return strategy

    async def watch(
        self, user: User, optimization_id: uuid.UUID, interval: float = 0.5
    ) -> AsyncIterator[Optimization]:
        """The optimisation now and at every change of its state until it ends. It reads the
        stored row, so it follows a job running on any machine."""
        optimization = await require_optimization(user, optimization_id)

        async def events() -> AsyncIterator[Optimization]:
            current = optimization
            seen = None
            while True:
                state = (current.status, current.trials_done, current.finished_at)
                if state != seen:
                    seen = state
                    yield current
                if current.status in FINISHED:
                    return
                await asyncio.sleep(interval)
                current = await require_optimization(user, optimization_id)

        return events()

    # --- the job -------------------------------------------------------------------------------

    async def run_optimization(self, control: JobControl) -> None:
        """The job: search each fold (or the whole data), evaluate out of sample, check the
        best parameters for look-ahead, store the result. Resumes from stored trials."""
        optimization = await Optimization.get_or_none(id=control.job_id)
        if optimization is None or optimization.status in FINISHED:
            return
        try:
            if optimization.cancel_requested:
                raise JobCancelled()
            await Optimization.filter(id=optimization.id).update(
                status=OptimizationStatus.RUNNING,
                started_at=optimization.started_at or _now(),
            )
            await self._run(control, optimization)
        except JobCancelled:
            await self._finish(optimization, OptimizationStatus.CANCELLED, None)
            raise
        except Exception as exc:  # the job machinery records the failure too
            message = getattr(exc, "message", None)
            if not isinstance(message, str):
                log.exception("optimization %s failed", optimization.id)
                message = "the optimisation failed with an internal error"
            await self._finish(optimization, OptimizationStatus.FAILED, message)
            raise
        # asyncio.CancelledError passes: this process stops and the job, still RUNNING,
        # is taken again (by this or another process) and resumes from the stored trials.

    async def _finish(
        self, optimization: Optimization, status: OptimizationStatus, message: str | None
    ) -> None:
        await Optimization.filter(id=optimization.id).update(
            status=status, error_message=message, finished_at=_now()
        )

    async def _run(self, control: JobControl, optimization: Optimization) -> None:
        spec = optimization.spec
        bars = await self._bars_of(optimization)
        folds = [Fold(i, (f[0], f[1]), (f[2], f[3])) for i, f in enumerate(spec["folds"])]
        objective = optimization.objective
        warnings: list[str] = []
        fold_results: list[dict[str, Any]] = []
        oos_runs: list[tuple[int, BacktestReport]] = []
        plan: list[Fold | None] = list(folds) if folds else [None]
        for fold in plan:
            trials = await self._search(control, optimization, fold)
            best = _best(trials)
            if fold is None:
                if best is None:
                    warnings.append(_no_feasible(optimization))
                    await self._store_result(optimization, None, None, None, warnings, {})
                    return
                run = await self._best_run(optimization, bars, best.parameters, 0, len(bars))
                verdict = await self._check(optimization, run)
                warnings += edge_warnings(spec["parameters"], best.parameters)
                warnings += _failure_warnings(trials)
                warnings += _bias_warning(verdict, "The best parameters")
                await self._store_result(
                    optimization, best.parameters, best.metrics, None, warnings, verdict
                )
                return
            result = await self._fold_result(optimization, bars, fold, best)
            fold_results.append(result)
            if result.get("run") is not None:
                oos_runs.append((fold.out_of_sample[0], result["run"]))
            warnings += _failure_warnings(trials, fold.index)
        wfe, wf_warnings = walk_forward_efficiency(
            [r for r in fold_results if r["bestParameters"]], objective
        )
        warnings += wf_warnings
        for result in fold_results:
            if not result["bestParameters"]:
                warnings.append(f"Fold {result['index']}: " + _no_feasible(optimization))
            warnings += _bias_warning(result["lookAhead"], f"Fold {result['index']}'s parameters")
        last = fold_results[-1]
        if last["bestParameters"]:
            warnings += edge_warnings(spec["parameters"], last["bestParameters"])
        stitched = stitch(bars, oos_runs, spec["initialCash"]) if oos_runs else None
        biased = [r["index"] for r in fold_results if r["lookAhead"].get("lookAheadBias")]
        verdict = {
            "lookAheadBias": bool(biased),
            "biasedFolds": biased,
            "lookAheadBars": sorted(
                {bar for r in fold_results for bar in r["lookAhead"].get("lookAheadBars", [])}
            ),
        }
        await self._store_result(
            optimization,
            last["bestParameters"] or None,
            last["inSample"] or None,
            wfe,
            warnings,
            verdict,
            stitched,
        )

    async def _store_result(
        self,
        optimization: Optimization,
        best: dict[str, Any] | None,
        metrics: dict[str, Any] | None,
        wfe: float | None,
        warnings: list[str],
        verdict: dict[str, Any],
        stitched: dict[str, Any] | None = None,
    ) -> None:
        done = await OptimizationTrial.filter(optimization_id=optimization.id).count()
        spec = {**optimization.spec, "outOfSample": stitched}
        await Optimization.filter(id=optimization.id).update(
            status=OptimizationStatus.SUCCEEDED,
            best_parameters=best,
            best_metrics=metrics,
            walk_forward_efficiency=wfe,
            warnings=warnings,
            look_ahead=verdict,
            trials_done=done,
            spec=spec,
            finished_at=_now(),
        )

    async def _search(
        self, control: JobControl, optimization: Optimization, fold: Fold | None
    ) -> list[OptimizationTrial]:
        """Evaluate the fold's trial plan, round by round, skipping stored trials."""
        spec = optimization.spec
        per_fold = spec["trialsPerFold"]
        index = fold.index if fold is not None else 0
        first = index * per_fold
        numbers = range(first, first + per_fold)
        seed = int(spec["seed"]) + 7919 * index
        method = spec["method"]
        planned: list[dict[str, Any]] | None = None
        if method == "grid":
            planned = grid_points(spec["parameters"])
        elif method == "random":
            planned = await run_off_loop(random_points, spec["parameters"], per_fold, seed)
        round_size = BATCH_SIZE * ROUND_BATCHES
        stored_before = -1
        while True:
            stored = await OptimizationTrial.filter(
                optimization_id=optimization.id, number__gte=first, number__lt=first + per_fold
            ).order_by("number")
            await self._report(control, optimization, stored)
            have = {trial.number for trial in stored}
            missing = [n for n in numbers if n not in have]
            if not missing:
                return stored
            await control.check_cancelled()
            # Cancelled here, or deleted with its strategy: either way, stop.
            flags = await Optimization.filter(id=optimization.id).values_list(
                "cancel_requested", flat=True
            )
            if not flags or flags[0]:
                raise JobCancelled()
            if len(stored) == stored_before:  # a round that stored nothing would loop forever
                raise RuntimeError(f"optimization {optimization.id}: a round stored no trial")
            stored_before = len(stored)
            todo = missing[:round_size]
            if planned is not None:
                trials = [{"number": n, "parameters": planned[n - first]} for n in todo]
            else:
                # TPE asks its next points knowing every stored trial: a batch at a time.
                todo = missing[: BATCH_SIZE * 2]
                done = [(t.parameters, t.value) for t in stored]
                points = await run_off_loop(tpe_points, spec["parameters"], done, len(todo), seed)
                trials = [{"number": n, "parameters": p} for n, p in zip(todo, points, strict=True)]
            payloads = [
                {
                    "optimization": str(optimization.id),
                    "fold": None if fold is None else fold.index,
                    "trials": trials[i : i + BATCH_SIZE],
                }
                for i in range(0, len(trials), BATCH_SIZE)
            ]
            await control.run_tasks(TASK_KIND, payloads)

    async def _report(
        self,
        control: JobControl,
        optimization: Optimization,
        fold_trials: Sequence[OptimizationTrial],
    ) -> None:
        done = await OptimizationTrial.filter(optimization_id=optimization.id).count()
        best = _best(fold_trials)  # so far (of the fold being searched): a progress bar shows it
        await Optimization.filter(id=optimization.id).update(
            trials_done=done,
            best_parameters=None if best is None else best.parameters,
            best_metrics=None if best is None else best.metrics,
        )
        values = [t.value for t in fold_trials if t.value is not None]
        await control.report_progress(
            {
                "trialsDone": done,
                "trialsTotal": optimization.trials_total,
                "bestValue": max(values) if values else None,
            }
        )

    async def evaluate_trials(self, payload: dict[str, Any], control: JobControl) -> None:
        """The task: backtest a batch of trials (one sandbox job) and store each once."""
        optimization = await Optimization.get_or_none(id=uuid.UUID(payload["optimization"]))
        if optimization is None:
            return  # deleted with its strategy meanwhile
        wanted = payload["trials"]
        numbers = [int(t["number"]) for t in wanted]
        stored = set(
            await OptimizationTrial.filter(
                optimization_id=optimization.id, number__in=numbers
            ).values_list("number", flat=True)
        )
        todo = [t for t in wanted if int(t["number"]) not in stored]
        if not todo:
            return
        spec = optimization.spec
        fold_index = payload.get("fold")
        bars = await self._bars_of(optimization)
        if fold_index is not None:
            start, end = spec["folds"][fold_index][:2]
            bars = bars_between(bars, start, end)
        param_sets = [{**optimization.base_parameters, **t["parameters"]} for t in todo]
        options = _options(spec)
        try:
            runs = await self._batch(optimization, bars, param_sets, options)
            outcomes = [
                (metrics_json(run.result) if run.result else {"error": run.error}) for run in runs
            ]
        except StrategySandboxError as exc:  # the batch as a whole: its trials failed
            outcomes = [{"error": exc.message} for _ in todo]
        rows = []
        for trial, metrics in zip(todo, outcomes, strict=True):
            value = None
            if "error" not in metrics:
                value = objective_value(metrics, optimization.objective, spec["maxDrawdownPct"])
                if (
                    value is None
                    and spec["maxDrawdownPct"] is not None
                    and metrics.get(optimization.objective) is not None
                ):
                    metrics = {**metrics, "constraintViolated": True}
            rows.append(
                OptimizationTrial(
                    optimization_id=optimization.id,
                    number=int(trial["number"]),
                    fold=fold_index,
                    parameters=trial["parameters"],
                    metrics=metrics,
                    value=value,
                )
            )
        await OptimizationTrial.bulk_create(rows, ignore_conflicts=True)

    # --- pieces ---------------------------------------------------------------------------------

    async def _batch(
        self,
        optimization: Optimization,
        bars: Bars,
        param_sets: list[dict[str, Any]],
        options: BacktestOptions,
    ) -> list[BatchRun]:
        """One sandbox job for the batch. The user's other work may fill their share of the
        sandbox's queue for a while (SandboxBusy): the batch waits its turn rather than fail
        the whole optimisation, up to BUSY_RETRIES times."""
        for attempt in range(BUSY_RETRIES + 1):
            try:
                return await self.sandbox.run_backtest_batch(
                    optimization.code,
                    bars,
                    param_sets,
                    options,
                    timeout_seconds=min(3600.0, self.trial_timeout_seconds * len(param_sets)),
                    owner=str(optimization.user_id),
                )
            except SandboxBusy as busy:
                if attempt == BUSY_RETRIES:
                    raise
                await asyncio.sleep(max(1, busy.retry_after_seconds))
        raise AssertionError("unreachable")

    async def _bars_of(self, optimization: Optimization) -> Bars:
        """The optimisation's bars, kept while its job or tasks run in this process."""
        cached = _BARS.get(optimization.id)
        if cached is not None:
            return cached
        source = optimization.data_source
        if "sample" in source:
            bars = _sample(source["sample"])
        elif "datasetId" in source:
            owner = await User.get(id=optimization.user_id)
            bars = await load_dataset_bars(owner, uuid.UUID(source["datasetId"]))
        else:
            assert optimization.data is not None
            bars = unpack_bars(optimization.data)
        if len(_BARS) >= _BARS_KEPT:
            del _BARS[next(iter(_BARS))]  # the oldest
        _BARS[optimization.id] = bars
        return bars

    async def _best_run(
        self, optimization: Optimization, bars: Bars, best: dict[str, Any], start: int, end: int
    ) -> BestRun:
        """The best parameters run again on bars [start, end), for their signals."""
        window = bars_between(bars, start, end)
        parameters = {**optimization.base_parameters, **best}
        runs = await self._batch(optimization, window, [parameters], _options(optimization.spec))
        run = runs[0]
        if run.result is None or run.signals is None:
            raise BadInput(f"The best parameters failed when run again: {run.error}")
        return BestRun(window, parameters, run.result, run.signals)

    async def _check(self, optimization: Optimization, best: BestRun) -> dict[str, Any]:
        """The look-ahead check of a best run, as every backtest gets it."""
        verdict = await self.sandbox.look_ahead_check(
            optimization.code,
            best.bars,
            best.parameters,
            best.signals,
            best.result.trades,
            self.trial_timeout_seconds,
            str(optimization.user_id),
        )
        return _look_ahead_summary(verdict.as_json())

    async def _fold_result(
        self,
        optimization: Optimization,
        bars: Bars,
        fold: Fold,
        best: OptimizationTrial | None,
    ) -> dict[str, Any]:
        """The fold's best in-sample parameters run over in-sample + out-of-sample bars (the
        in-sample part warms the indicators up), the out-of-sample signals simulated alone,
        the look-ahead check on that run; stored once per fold."""
        spec = optimization.spec
        result: dict[str, Any] = {
            "index": fold.index,
            "bestParameters": {},
            "inSample": {},
            "outOfSample": {},
            "lookAhead": {},
            "run": None,
        }
        if best is not None:
            start, split = fold.in_sample[0], fold.out_of_sample[0]
            end = fold.out_of_sample[1]
            run = await self._best_run(optimization, bars, best.parameters, start, end)
            after = bars_between(bars, split, end)
            oos = await run_off_loop(simulate, after, run.signals[split - start :], _options(spec))
            verdict = await self._check(optimization, run)
            result.update(
                bestParameters=best.parameters,
                inSample=best.metrics,
                outOfSample=metrics_json(oos),
                lookAhead=verdict,
                run=oos,
            )
        await OptimizationFold.update_or_create(
            optimization_id=optimization.id,
            index=fold.index,
            defaults={
                "in_sample_bars": list(fold.in_sample),
                "out_of_sample_bars": list(fold.out_of_sample),
                "best_parameters": result["bestParameters"],
                "in_sample": result["inSample"],
                "out_of_sample": result["outOfSample"],
                "look_ahead": result["lookAhead"],
            },
        )
        return result


def _options(spec: dict[str, Any]) -> BacktestOptions:
    return BacktestOptions(initial_cash=spec["initialCash"], commission_pct=spec["commissionPct"])


def _best(trials: Sequence[OptimizationTrial]) -> OptimizationTrial | None:
    """The highest value; on a tie the first in plan order (as backtesting.py's idxmax)."""
    best = None
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.value is not None and (best is None or trial.value > best.value):  # type: ignore[operator]
            best = trial
    return best


def _no_feasible(optimization: Optimization) -> str:
    cap = optimization.spec.get("maxDrawdownPct")
    if cap is not None:
        return (
            f"No trial had a defined {optimization.objective} within maxDrawdownPct {cap:g}: "
            "there are no best parameters"
        )
    return (
        f"No trial had a defined {optimization.objective} (no trades?): there are no best "
        "parameters"
    )


def _failure_warnings(trials: Sequence[OptimizationTrial], fold: int | None = None) -> list[str]:
    failed = [t for t in trials if "error" in t.metrics]
    if not failed:
        return []
    where = "" if fold is None else f"Fold {fold}: "
    return [
        f"{where}{len(failed)} of {len(trials)} trials failed; the first "
        f"(trial {failed[0].number}, {failed[0].parameters}): {failed[0].metrics['error']}"
    ]


def _bias_warning(verdict: dict[str, Any], what: str) -> list[str]:
    if not verdict.get("lookAheadBias"):
        return []
    bars = ", ".join(str(b) for b in list(verdict.get("lookAheadBars") or [])[:10])
    return [
        f"{what} showed look-ahead bias (signals changed when later bars were removed"
        + (f": bars {bars}" if bars else "")
        + "): the results cannot be trusted and cannot be applied"
    ]


# --- the handlers the job machinery runs (services/jobs.py), in the API or on a worker -------


def _optimizer_of(control: JobControl) -> Optimizer:
    runner = control.runner
    return Optimizer(runner.sandbox, trial_timeout_seconds=runner.backtest_timeout_seconds)


@register_job(JOB_KIND)
async def run_optimization(control: JobControl) -> None:
    await _optimizer_of(control).run_optimization(control)


@register_task(TASK_KIND)
async def evaluate_trials(payload: dict[str, Any], control: JobControl) -> None:
    await _optimizer_of(control).evaluate_trials(payload, control)
