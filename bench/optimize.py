"""Optimisation benchmark (issue 13, Targets): our optimisation job against backtesting.py's
`Backtest.optimize` on the same grid, bars and machine.

The grid: an SMA crossover's fast in 2..20 step 2 and slow in 25..120 step 5 (200 pairs) over
10,000 synthetic daily bars, Sharpe ratio maximised. Ours: `Optimizer.optimize` through the
real in-process job backend (services/jobs.py), from submission to the stored result: batches
of trials in sandbox jobs (fork server, seccomp, rlimits, namespaces), the engine in the
server, every trial stored, the look-ahead check of the best parameters. backtesting.py:
`Backtest.optimize`, which runs its grid on a multiprocessing Pool of os.cpu_count()
processes; ours gets as many sandbox slots (SANDBOX_MAX_CONCURRENT_JOBS) and lets the one user
use all of them (SANDBOX_MAX_RUNNING_PER_USER), so both have the same cores. `--rounds`
rounds after an untimed warm-up of each, alternated (the order swaps every round); medians,
spreads, the ratio beside the 1.5x target, and whether both found the same best parameters.

Then what one trial costs, in one process, to say where the time goes: our strategy's calls
alone (`collect_signals`: one `execute_strategy` call per bar), our engine on its signals,
and one backtesting.py run.

Usage: .venv/bin/python bench/optimize.py [--bars 10000] [--rounds 3]
Exits 1 when the best parameters differ.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars, when tqdm is there

from backtesting import Strategy  # noqa: E402

from bench.backtest_engine import CASH, COMMISSION, execute_strategy  # noqa: E402
from bench.results import add_json_option, results_for, span  # noqa: E402
from services.backtesting import (  # noqa: E402
    BacktestOptions,
    collect_signals,
    simulate,
)
from services.market_data import Bars  # noqa: E402
from services.samples import synthetic_bars  # noqa: E402
from tests.support.reference_backtest import backtest_with  # noqa: E402

FAST = list(range(2, 22, 2))
SLOW = list(range(25, 125, 5))
TARGET = 1.5


def strategy_code() -> str:
    return "from typing import Any\n\n" + inspect.getsource(execute_strategy)


def sma(values: Any, n: int) -> Any:
    import pandas as pd

    return pd.Series(values).rolling(n).mean().to_numpy()


class SmaCross(Strategy):
    """At module level: backtesting.py's Pool pickles it to its processes."""

    fast = 10
    slow = 30

    def init(self) -> None:
        self.fast_sma = self.I(sma, self.data.Close, self.fast)
        self.slow_sma = self.I(sma, self.data.Close, self.slow)

    def next(self) -> None:
        f, s = self.fast_sma, self.slow_sma
        if f[-2] < s[-2] and f[-1] > s[-1] and not self.position:
            self.buy()
        elif f[-2] > s[-2] and f[-1] < s[-1] and self.position:
            self.position.close()


def backtesting_py(bars: Bars) -> Any:
    """backtesting.py's Backtest as tests/support/reference_backtest.py sets it up, with the
    periods as class attributes that `optimize` varies."""
    return backtest_with(bars, SmaCross, CASH, COMMISSION, finalize_trades=True)


def optimize_theirs(backtest: Any) -> tuple[float, dict[str, int], float]:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = backtest.optimize(fast=FAST, slow=SLOW, maximize="Sharpe Ratio")
    elapsed = time.perf_counter() - started
    best = stats._strategy
    return elapsed, {"fast": int(best.fast), "slow": int(best.slow)}, float(stats["Sharpe Ratio"])


async def optimize_ours(optimizer: Any, user: Any, strategy_id: uuid.UUID) -> tuple[float, Any]:
    from models import Optimization
    from services.optimization import FINISHED, OptimizeRequest, ParameterRange

    request = OptimizeRequest(
        parameters=[ParameterRange("fast", values=FAST), ParameterRange("slow", values=SLOW)],
        sample=None,
        market_data=BARS,
        objective="sharpeRatio",
        max_trials=len(FAST) * len(SLOW),
        initial_cash=CASH,
        commission_pct=COMMISSION * 100,
    )
    started = time.perf_counter()
    row = await optimizer.optimize(user, strategy_id, request)
    while row.status not in FINISHED:
        await asyncio.sleep(0.02)
        row = await Optimization.get(id=row.id)
    elapsed = time.perf_counter() - started
    if row.error_message:
        raise RuntimeError(f"our optimisation failed: {row.error_message}")
    return elapsed, row


def per_trial_costs(bars: Bars, backtest: Any, repeat: int = 3) -> dict[str, float]:
    """Milliseconds of one trial's parts, best of `repeat`, in this process."""
    params = {"fast": 10, "slow": 30}
    options = BacktestOptions(initial_cash=CASH, commission_pct=COMMISSION * 100)

    def best_of(work: Any) -> tuple[float, Any]:
        times, result = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            result = work()
            times.append(time.perf_counter() - started)
        return min(times) * 1e3, result

    calls_ms, signals = best_of(lambda: collect_signals(execute_strategy, bars, params))
    engine_ms, _ = best_of(lambda: simulate(bars, signals, options))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs_ms, _ = best_of(lambda: backtest.run(fast=10, slow=30))
    return {"calls": calls_ms, "engine": engine_ms, "theirs": theirs_ms}


BARS: Bars


async def main_async(args: argparse.Namespace) -> int:
    global BARS
    from tortoise import Tortoise

    from models import GeneratedStrategy, StrategyStatus, User
    from server.db import migrate, tortoise_config
    from services.execution import StrategyRunner
    from services.jobs import InProcessJobs
    from services.optimization import Optimizer
    from services.sandbox import Sandbox, SandboxSettings

    BARS = synthetic_bars("trending", args.bars, timeframe="1d", seed=7)
    cores = os.cpu_count() or 1
    backtest = backtesting_py(BARS)
    url = f"sqlite://{tempfile.mkdtemp(prefix='bench-optimize-')}/bench.sqlite3"
    await migrate(url)
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)
    settings = SandboxSettings(max_concurrent_jobs=cores, max_running_per_owner=cores)
    ours_s: list[float] = []
    theirs_s: list[float] = []
    try:
        async with Sandbox(settings) as sandbox:
            runner = StrategyRunner(sandbox)
            jobs = InProcessJobs(runner)
            await jobs.start()
            optimizer = Optimizer(sandbox, jobs)
            user = await User.create(
                email=f"bench-{uuid.uuid4().hex[:8]}@example.com", password_hash="x"
            )
            strategy = await GeneratedStrategy.create(
                user_id=user.id,
                name="SMA crossover",
                original_prompt="SMA crossover",
                generated_code=strategy_code(),
                status=StrategyStatus.VALIDATED,
                parameters={"fast": 10, "slow": 30},
            )
            load = os.getloadavg()[0]
            print(
                f"{args.bars:,} bars, {len(FAST) * len(SLOW)} parameter pairs, {cores} cores, "
                f"load average {load:.1f}"
            )
            await optimize_ours(optimizer, user, strategy.id)  # warm-up, untimed
            optimize_theirs(backtest)
            for round_ in range(args.rounds):
                if round_ % 2 == 0:
                    elapsed, ours = await optimize_ours(optimizer, user, strategy.id)
                    ours_s.append(elapsed)
                    theirs = optimize_theirs(backtest)
                    theirs_s.append(theirs[0])
                else:
                    theirs = optimize_theirs(backtest)
                    theirs_s.append(theirs[0])
                    elapsed, ours = await optimize_ours(optimizer, user, strategy.id)
                    ours_s.append(elapsed)
                mine, reference = ours_s[-1], theirs_s[-1]
                print(f"round {round_ + 1}: ours {mine:.2f} s, backtesting.py {reference:.2f} s")
            await jobs.aclose()
    finally:
        await Tortoise.close_connections()
    costs = per_trial_costs(BARS, backtest)
    trial_ratio = (costs["calls"] + costs["engine"]) / costs["theirs"]
    load_after = os.getloadavg()[0]

    our_best, their_best = ours.best_parameters, theirs[1]
    ratio = statistics.median(ours_s) / statistics.median(theirs_s)
    same = our_best == their_best
    print(f"{'':34}{'ours':>22}{'backtesting.py':>22}")
    print(
        f"{'wall time, median (min to max)':34}"
        f"{statistics.median(ours_s):>8.2f} s ({min(ours_s):.2f}-{max(ours_s):.2f})"
        f"{statistics.median(theirs_s):>8.2f} s ({min(theirs_s):.2f}-{max(theirs_s):.2f})"
    )
    print(f"{'best parameters':34}{our_best!s:>22}{their_best!s:>22}")
    print(f"{'best Sharpe ratio':34}{ours.best_metrics['sharpeRatio']:>22.4f}{theirs[2]:>22.4f}")
    print(f"{'ratio ours / backtesting.py':34}{ratio:>22.2f}   (target <= {TARGET}x)")
    verdict = "biased" if ours.look_ahead["lookAheadBias"] else "clean"
    print(f"{'look-ahead check of the best':34}{verdict:>22}")
    print(
        f"one trial in one process: our strategy's {args.bars:,} calls {costs['calls']:.1f} ms, "
        f"our engine {costs['engine']:.1f} ms; one backtesting.py run {costs['theirs']:.1f} ms "
        f"({trial_ratio:.2f}x)"
    )
    print(
        f"load average {load:.1f} at the start, {load_after:.1f} at the end: on a busy machine "
        "our three busy processes (two sandbox jobs, the server's engine) get a larger share "
        "than backtesting.py's two, so compare the per-trial ratio too"
    )
    results = results_for(args)
    results.add(
        f"optimisation, SMA crossover over {len(FAST) * len(SLOW)} parameter pairs on "
        f"{args.bars:,} bars, {cores} cores each (sandbox, engine, stored trials, look-ahead "
        f"check) against backtesting.py's Backtest.optimize; {args.rounds} rounds alternated",
        f"{ratio:.2f}x ({statistics.median(ours_s):.2f} vs {statistics.median(theirs_s):.2f} s; "
        f"best {our_best} vs {their_best}; load average {load:.1f} to {load_after:.1f})",
        f"ours {span(ours_s, '{:.2f}', ' s')}, backtesting.py {span(theirs_s, '{:.2f}', ' s')}",
        f"<= {TARGET}x, same best parameters",
        ratio <= TARGET and same,
    )
    results.add(
        f"where one trial's time goes ({args.bars:,} bars, one process)",
        f"{trial_ratio:.2f}x: strategy calls {costs['calls']:.1f} ms + engine "
        f"{costs['engine']:.1f} ms, against {costs['theirs']:.1f} ms for a backtesting.py run",
        "best of 3",
    )
    results.write()
    if not same:
        print("MISMATCH: the best parameters differ", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    add_json_option(parser)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
