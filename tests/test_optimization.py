"""Issue 13 §3: optimisation and walk-forward, run as a job (services/optimization.py).

The job and task handlers run under a tiny in-test job runner (tests/support/local_jobs.py);
the sandbox, the engine and the database are real."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import uuid
from typing import Any

import pytest

from bench.backtest_engine import execute_strategy as sma_cross
from models import (
    GeneratedStrategy,
    Optimization,
    OptimizationFold,
    OptimizationStatus,
    OptimizationTrial,
    StrategyStatus,
    User,
)
from services.backtesting import (
    BacktestOptions,
    collect_signals,
    metrics_json,
    run_backtest,
    simulate,
)
from services.errors import BadInput, NotFound
from services.optimization import (
    JOB_KIND,
    TASK_KIND,
    Optimizer,
    OptimizeRequest,
    ParameterRange,
    WalkForward,
    bars_between,
    edge_warnings,
    objective_value,
    walk_forward_efficiency,
    walk_forward_folds,
)
from services.samples import load_sample
from services.sandbox import Sandbox
from services.sandbox.errors import SandboxBusy
from tests.support.local_jobs import LocalJobs

SMA_CODE = "from typing import Any\n\n" + inspect.getsource(sma_cross)
BARS = load_sample("trending_daily")
GRID = [ParameterRange("fast", values=[5, 10]), ParameterRange("slow", min=20, max=40, step=10)]

CHEAT_CODE = """
def execute_strategy(market_data, strategy_params):
    close = market_data["close"]
    i = len(close) - 1
    if i % 7 == 0:
        return {"action": "buy", "confidence": 1.0, "reason": "x"}
    if i % 7 == 3:
        return {"action": "sell", "confidence": 1.0, "reason": "x"}
    return {"action": "hold", "confidence": 0.5, "reason": "x"}
"""


@pytest.fixture
def jobs() -> LocalJobs:
    return LocalJobs()


@pytest.fixture
def optimizer(sandbox: Sandbox, jobs: LocalJobs) -> Optimizer:
    found = Optimizer(sandbox, jobs, max_trials=500)
    jobs.job_handlers[JOB_KIND] = found.run_optimization
    jobs.task_handlers[TASK_KIND] = found.evaluate_trials
    return found


async def _user() -> User:
    return await User.create(email=f"opt-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")


async def _strategy(user: User, code: str = SMA_CODE, **extra: Any) -> GeneratedStrategy:
    return await GeneratedStrategy.create(
        user_id=user.id,
        name="SMA",
        original_prompt="sma",
        generated_code=code,
        status=StrategyStatus.VALIDATED,
        parameters={"fast": 10, "slow": 30},
        **extra,
    )


def _brute_force(objective: str = "sharpeRatio") -> tuple[dict[str, Any], dict[tuple, Any]]:
    metrics = {}
    for fast, slow in itertools.product([5, 10], [20, 30, 40]):
        result = run_backtest(sma_cross, BARS, {"fast": fast, "slow": slow}, BacktestOptions())
        metrics[(fast, slow)] = metrics_json(result)
    best = max(metrics, key=lambda k: (metrics[k][objective], -list(metrics).index(k)))
    return {"fast": best[0], "slow": best[1]}, metrics


async def test_grid_equals_brute_force(database: str, optimizer: Optimizer, jobs: LocalJobs):
    user = await _user()
    strategy = await _strategy(user)
    queued = await optimizer.optimize(
        user, strategy.id, OptimizeRequest(parameters=GRID, sample="trending_daily")
    )
    assert queued.status in (OptimizationStatus.QUEUED, OptimizationStatus.RUNNING)
    assert queued.trials_total == 6
    await jobs.wait(queued.id)
    done = await Optimization.get(id=queued.id)
    assert done.status is OptimizationStatus.SUCCEEDED, done.error_message
    best, metrics = _brute_force()
    assert done.best_parameters == best
    trials = await OptimizationTrial.filter(optimization_id=done.id).order_by("number")
    assert [(t.parameters["fast"], t.parameters["slow"]) for t in trials] == list(metrics)
    for trial in trials:
        expected = metrics[(trial.parameters["fast"], trial.parameters["slow"])]
        assert trial.metrics["finalEquity"] == pytest.approx(expected["finalEquity"], rel=1e-12)
        assert trial.value == pytest.approx(expected["sharpeRatio"], rel=1e-12)
    assert done.trials_done == 6
    assert done.look_ahead["lookAheadBias"] is False
    assert done.walk_forward_efficiency is None
    assert jobs.controls[done.id].progress[-1]["trialsDone"] == 6


async def test_a_redelivered_batch_stores_nothing_twice(
    database: str, optimizer: Optimizer, jobs: LocalJobs
):
    user = await _user()
    strategy = await _strategy(user)
    queued = await optimizer.optimize(
        user, strategy.id, OptimizeRequest(parameters=GRID, sample="trending_daily")
    )
    await jobs.wait(queued.id)
    before = await OptimizationTrial.filter(optimization_id=queued.id).order_by("number")
    for payload in jobs.payloads:  # every batch delivered again
        await optimizer.evaluate_trials(payload, jobs.controls[queued.id])
    after = await OptimizationTrial.filter(optimization_id=queued.id).order_by("number")
    assert [(t.id, t.number, t.value) for t in after] == [(t.id, t.number, t.value) for t in before]


@pytest.mark.parametrize("method", ["grid", "random", "tpe"])
async def test_resume_after_a_crash_evaluates_only_the_rest(
    database: str, optimizer: Optimizer, jobs: LocalJobs, method: str
):
    user = await _user()
    strategy = await _strategy(user)
    ranges = [
        ParameterRange("fast", min=3, max=12, step=1),
        ParameterRange("slow", min=20, max=40, step=10),
    ]
    jobs.crash_after = 2  # two batches of 10 stored, then the worker dies
    queued = await optimizer.optimize(
        user,
        strategy.id,
        OptimizeRequest(
            parameters=ranges, sample="trending_daily", method=method, max_trials=30, seed=3
        ),
    )
    await jobs.wait(queued.id)
    crashed = await Optimization.get(id=queued.id)
    assert crashed.status is OptimizationStatus.RUNNING  # nobody finished it
    first = await OptimizationTrial.filter(optimization_id=queued.id).order_by("number")
    assert [t.number for t in first] == list(range(20))
    first_batches = list(jobs.payloads)

    jobs.crash_after = None  # another worker takes the job again
    jobs.payloads.clear()
    await jobs.run(JOB_KIND, queued.id)
    done = await Optimization.get(id=queued.id)
    assert done.status is OptimizationStatus.SUCCEEDED, done.error_message
    trials = await OptimizationTrial.filter(optimization_id=queued.id).order_by("number")
    assert [t.number for t in trials] == list(range(30))
    assert done.trials_done == 30
    again = [t["number"] for p in jobs.payloads for t in p["trials"]]
    assert sorted(again) == list(range(20, 30))  # the stored twenty were not run again
    kept = {t.number: (t.id, t.parameters, t.value) for t in first}
    assert {t.number: (t.id, t.parameters, t.value) for t in trials[:20]} == kept
    if method != "tpe":  # a plan that does not depend on results: the same trials as planned
        planned = {t["number"]: t["parameters"] for p in first_batches for t in p["trials"]}
        assert {t.number: t.parameters for t in first} == planned


async def test_cancel_stops_a_running_optimization(
    database: str, optimizer: Optimizer, jobs: LocalJobs
):
    user = await _user()
    strategy = await _strategy(user)
    ranges = [
        ParameterRange("fast", min=2, max=21, step=1),
        ParameterRange("slow", values=[30, 40]),
    ]
    original = optimizer.evaluate_trials
    cancelled = False

    async def cancel_after_first(payload: dict[str, Any], control: Any) -> None:
        nonlocal cancelled
        await original(payload, control)
        if not cancelled:
            cancelled = True
            await optimizer.cancel(user, control.job_id)

    jobs.task_handlers[TASK_KIND] = cancel_after_first
    queued = await optimizer.optimize(
        user, strategy.id, OptimizeRequest(parameters=ranges, sample="trending_daily")
    )
    await jobs.wait(queued.id)
    done = await Optimization.get(id=queued.id)
    assert done.status is OptimizationStatus.CANCELLED
    assert done.finished_at is not None
    stored = await OptimizationTrial.filter(optimization_id=queued.id).count()
    assert 0 < stored < 40


async def test_cancel_of_a_queued_optimization_is_immediate(
    database: str, optimizer: Optimizer, jobs: LocalJobs
):
    jobs.start = False
    user = await _user()
    strategy = await _strategy(user)
    queued = await optimizer.optimize(
        user, strategy.id, OptimizeRequest(parameters=GRID, sample="trending_daily")
    )
    cancelled = await optimizer.cancel(user, queued.id)
    assert cancelled.status is OptimizationStatus.CANCELLED
    await jobs.run(JOB_KIND, queued.id)  # a worker that takes it later does nothing
    assert await OptimizationTrial.filter(optimization_id=queued.id).count() == 0


async def test_walk_forward_stores_folds_efficiency_and_stitched_results(
    database: str, optimizer: Optimizer, jobs: LocalJobs
):
    user = await _user()
    strategy = await _strategy(user)
    queued = await optimizer.optimize(
        user,
        strategy.id,
        OptimizeRequest(
            parameters=GRID,
            sample="trending_daily",
            walk_forward=WalkForward(folds=3, out_of_sample_pct=25),
        ),
    )
    await jobs.wait(queued.id)
    done = await Optimization.get(id=queued.id)
    assert done.status is OptimizationStatus.SUCCEEDED, done.error_message
    assert done.trials_total == done.trials_done == 18
    folds = await OptimizationFold.filter(optimization_id=done.id).order_by("index")
    assert [f.index for f in folds] == [0, 1, 2]
    expected = walk_forward_folds(len(BARS), WalkForward(folds=3, out_of_sample_pct=25))
    for fold, planned in zip(folds, expected, strict=True):
        assert tuple(fold.in_sample_bars) == planned.in_sample
        assert tuple(fold.out_of_sample_bars) == planned.out_of_sample
        # The best in-sample parameters are the best of the fold's own trials.
        trials = await OptimizationTrial.filter(optimization_id=done.id, fold=fold.index)
        assert len(trials) == 6
        best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
        assert fold.best_parameters == best.parameters
        assert fold.in_sample == best.metrics
        assert fold.look_ahead["lookAheadBias"] is False
        # Out of sample: the engine on those bars alone, with the signals of a run that
        # started at the in-sample start (indicators warmed up).
        start, split = planned.in_sample[0], planned.out_of_sample[0]
        end = planned.out_of_sample[1]
        window = bars_between(BARS, start, end)
        signals = collect_signals(sma_cross, window, fold.best_parameters)
        oos = simulate(bars_between(BARS, split, end), signals[split - start :], BacktestOptions())
        assert fold.out_of_sample == metrics_json(oos)
        assert 0 < end - split < end - start
    assert done.best_parameters == folds[-1].best_parameters
    wfe, _ = walk_forward_efficiency(
        [
            {"index": f.index, "inSample": f.in_sample, "outOfSample": f.out_of_sample}
            for f in folds
        ],
        "sharpeRatio",
    )
    assert done.walk_forward_efficiency == pytest.approx(wfe)
    stitched = done.spec["outOfSample"]
    assert stitched["numTrades"] == sum(f.out_of_sample["numTrades"] for f in folds)
    growth = 1.0
    for fold in folds:
        growth *= fold.out_of_sample["finalEquity"] / 10_000
    assert stitched["finalEquity"] == pytest.approx(10_000 * growth, rel=1e-9)


def test_fold_arithmetic_rolling_and_anchored():
    rolling = walk_forward_folds(1000, WalkForward(folds=4, out_of_sample_pct=20))
    # 1000 * 20 / (80 + 4 * 20) = 125 out-of-sample bars per fold, 500 in sample.
    assert [(f.in_sample, f.out_of_sample) for f in rolling] == [
        ((0, 500), (500, 625)),
        ((125, 625), (625, 750)),
        ((250, 750), (750, 875)),
        ((375, 875), (875, 1000)),
    ]
    anchored = walk_forward_folds(1000, WalkForward(folds=4, anchored=True, out_of_sample_pct=20))
    assert [f.in_sample for f in anchored] == [(0, 500), (0, 625), (0, 750), (0, 875)]
    assert [f.out_of_sample for f in anchored] == [f.out_of_sample for f in rolling]
    odd = walk_forward_folds(1003, WalkForward(folds=3, out_of_sample_pct=25))
    assert odd[-1].out_of_sample[1] == 1003  # the out-of-sample parts end with the data
    with pytest.raises(BadInput, match="fewer folds") as caught:
        walk_forward_folds(1000, WalkForward(folds=20, out_of_sample_pct=5))
    assert caught.value.extensions["reason"] == "FOLDS_TOO_SMALL"


def test_efficiency_and_plain_warnings():
    folds = [
        {"index": 0, "inSample": {"sharpeRatio": 2.0}, "outOfSample": {"sharpeRatio": 0.5}},
        {"index": 1, "inSample": {"sharpeRatio": 1.0}, "outOfSample": {"sharpeRatio": -0.2}},
    ]
    wfe, warnings = walk_forward_efficiency(folds, "sharpeRatio")
    assert wfe == pytest.approx(0.15 / 1.5)
    assert any("far worse on data they were not tuned on" in w for w in warnings)
    assert any(w.startswith("Fold 1:") and "lost on new data" in w for w in warnings)
    robust = [{"index": 0, "inSample": {"sharpeRatio": 1.0}, "outOfSample": {"sharpeRatio": 0.9}}]
    assert walk_forward_efficiency(robust, "sharpeRatio") == (pytest.approx(0.9), [])
    # Total returns are compared annualised: the two parts differ in length.
    returns = [
        {"index": 0, "inSample": {"annualReturnPct": 10.0}, "outOfSample": {"annualReturnPct": 8.0}}
    ]
    assert walk_forward_efficiency(returns, "totalReturnPct")[0] == pytest.approx(0.8)
    space = [{"name": "fast", "values": [5, 10, 15]}]
    assert edge_warnings(space, {"fast": 15}) and not edge_warnings(space, {"fast": 10})


def test_drawdown_cap_makes_a_trial_infeasible():
    metrics = {"totalReturnPct": 40.0, "maxDrawdownPct": -25.0}
    assert objective_value(metrics, "totalReturnPct", None) == 40.0
    assert objective_value(metrics, "totalReturnPct", 30.0) == 40.0
    assert objective_value(metrics, "totalReturnPct", 20.0) is None
    assert objective_value({"sharpeRatio": None}, "sharpeRatio", None) is None


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            OptimizeRequest([ParameterRange("nope", values=[1])], sample="trending_daily"),
            "Unknown parameter 'nope'",
        ),
        (
            OptimizeRequest([ParameterRange("fast", values=[])], sample="trending_daily"),
            "values is empty",
        ),
        (
            OptimizeRequest(
                [ParameterRange("fast", min=10, max=5, step=1)], sample="trending_daily"
            ),
            "range is empty",
        ),
        (
            OptimizeRequest([ParameterRange("fast", min=1, max=5)], sample="trending_daily"),
            "needs a step",
        ),
        (
            OptimizeRequest(
                [
                    ParameterRange("fast", min=1, max=100, step=1),
                    ParameterRange("slow", min=1, max=100, step=1),
                ],
                sample="trending_daily",
            ),
            "grid has 10,000 points",
        ),
        (OptimizeRequest(GRID, sample="trending_daily", objective="luck"), "Unknown objective"),
        (
            OptimizeRequest(GRID, sample="trending_daily", max_trials=100_000),
            "maxTrials must be between",
        ),
        (
            OptimizeRequest(
                GRID, sample="trending_daily", walk_forward=WalkForward(20, out_of_sample_pct=5)
            ),
            "fewer folds",
        ),
        (OptimizeRequest(GRID), "exactly one of"),
        (OptimizeRequest(GRID, sample="nowhere"), "Unknown sample"),
        (OptimizeRequest(GRID, sample="trending_daily", max_drawdown_pct=-3), "maxDrawdownPct"),
    ],
)
async def test_bad_requests_are_refused_up_front(
    database: str, optimizer: Optimizer, jobs: LocalJobs, request_: OptimizeRequest, message: str
):
    user = await _user()
    strategy = await _strategy(user)
    with pytest.raises(BadInput, match=message):
        await optimizer.optimize(user, strategy.id, request_)
    assert await Optimization.filter(strategy_id=strategy.id).count() == 0


async def test_apply_writes_a_new_version(database: str, optimizer: Optimizer, jobs: LocalJobs):
    user = await _user()
    strategy = await _strategy(user)
    queued = await optimizer.optimize(
        user, strategy.id, OptimizeRequest(parameters=GRID, sample="trending_daily")
    )
    await jobs.wait(queued.id)
    done = await Optimization.get(id=queued.id)
    applied = await optimizer.apply(user, done.id)
    assert applied.version == 2
    assert applied.parameters == done.best_parameters
    assert applied.generated_code == SMA_CODE
    with pytest.raises(BadInput, match="code changed"):  # version 2 has other parameters only
        applied.generated_code += "\n# edited\n"
        await applied.save()
        await optimizer.apply(user, done.id)
    with pytest.raises(BadInput, match="no folds"):
        await optimizer.apply(user, done.id, fold=0)


async def test_another_users_optimization_is_not_found(
    database: str, optimizer: Optimizer, jobs: LocalJobs
):
    owner, other = await _user(), await _user()
    strategy = await _strategy(owner)
    queued = await optimizer.optimize(
        owner, strategy.id, OptimizeRequest(parameters=GRID, sample="trending_daily")
    )
    await jobs.wait(queued.id)
    with pytest.raises(NotFound):
        await optimizer.optimize(other, strategy.id, OptimizeRequest(GRID, sample="trending_daily"))
    for action in (optimizer.cancel, optimizer.apply):
        with pytest.raises(NotFound):
            await action(other, queued.id)


async def test_biased_strategies_are_refused(database: str, optimizer: Optimizer):
    user = await _user()
    biased = await _strategy(
        user, performance_metrics={"trustworthy": False, "lookAheadBars": [3, 9]}
    )
    with pytest.raises(BadInput, match="look-ahead bias") as caught:
        await optimizer.optimize(user, biased.id, OptimizeRequest(GRID, sample="trending_daily"))
    assert caught.value.extensions["reason"] == "LOOK_AHEAD_BIAS"


async def test_apply_refuses_a_result_with_look_ahead_bias(
    database: str, optimizer: Optimizer, jobs: LocalJobs
):
    user = await _user()
    strategy = await _strategy(user)
    queued = await optimizer.optimize(
        user, strategy.id, OptimizeRequest(parameters=GRID, sample="trending_daily")
    )
    await jobs.wait(queued.id)
    await Optimization.filter(id=queued.id).update(look_ahead={"lookAheadBias": True})
    with pytest.raises(BadInput, match="look-ahead bias") as caught:
        await optimizer.apply(user, queued.id)
    assert caught.value.extensions["reason"] == "LOOK_AHEAD_BIAS"


async def test_deleting_the_strategy_ends_its_running_optimization(
    database: str, optimizer: Optimizer, jobs: LocalJobs
):
    user = await _user()
    strategy = await _strategy(user)
    original = optimizer.evaluate_trials

    async def delete_after_first(payload: dict[str, Any], control: Any) -> None:
        await original(payload, control)
        await GeneratedStrategy.filter(id=strategy.id).delete()

    jobs.task_handlers[TASK_KIND] = delete_after_first
    ranges = [ParameterRange("fast", min=2, max=41, step=1), ParameterRange("slow", values=[50])]
    queued = await optimizer.optimize(
        user, strategy.id, OptimizeRequest(parameters=ranges, sample="trending_daily")
    )
    await asyncio.wait_for(jobs.wait(queued.id), 60)  # ends: no endless round of empty batches
    assert await Optimization.filter(id=queued.id).count() == 0
    assert await OptimizationTrial.filter(optimization_id=queued.id).count() == 0


async def test_a_busy_sandbox_delays_a_batch_without_failing_it(
    database: str, sandbox: Sandbox, jobs: LocalJobs
):
    class OnceBusy:
        """The real sandbox, refusing the first batch as a full queue does."""

        def __init__(self) -> None:
            self.refused = 0

        async def run_backtest_batch(self, *args: Any, **kwargs: Any) -> Any:
            if not self.refused:
                self.refused += 1
                raise SandboxBusy("your queue is full", retry_after_seconds=1)
            return await sandbox.run_backtest_batch(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(sandbox, name)

    busy = OnceBusy()
    optimizer = Optimizer(busy, jobs)  # type: ignore[arg-type]
    jobs.job_handlers[JOB_KIND] = optimizer.run_optimization
    jobs.task_handlers[TASK_KIND] = optimizer.evaluate_trials
    user = await _user()
    strategy = await _strategy(user)
    queued = await optimizer.optimize(
        user, strategy.id, OptimizeRequest(parameters=GRID, sample="trending_daily")
    )
    await jobs.wait(queued.id)
    done = await Optimization.get(id=queued.id)
    assert busy.refused == 1
    assert done.status is OptimizationStatus.SUCCEEDED and done.trials_done == 6


async def test_the_best_so_far_is_stored_between_rounds(
    database: str, optimizer: Optimizer, jobs: LocalJobs
):
    user = await _user()
    strategy = await _strategy(user)
    ranges = [ParameterRange("fast", min=2, max=61, step=1), ParameterRange("slow", values=[40])]
    jobs.crash_after = 5  # a first round of four batches, then one more, then the worker dies
    queued = await optimizer.optimize(
        user, strategy.id, OptimizeRequest(parameters=ranges, sample="trending_daily")
    )
    await jobs.wait(queued.id)
    running = await Optimization.get(id=queued.id)
    assert running.status is OptimizationStatus.RUNNING
    first_round = await OptimizationTrial.filter(optimization_id=queued.id, number__lt=40).order_by(
        "number"
    )
    so_far = max((t for t in first_round if t.value is not None), key=lambda t: t.value)
    assert running.best_parameters == so_far.parameters
    assert running.best_metrics == so_far.metrics
    assert running.trials_done == 40
