"""Backtest benchmark (issue 3): this service's sandboxed backtest against backtesting.py.

The same SMA crossover over the same 10,000 bars, after an untimed warm-up, `--rounds` runs
each, alternated: ours as an `execute_strategy` source string run by `Sandbox.run_backtest`
(fork server, seccomp, rlimits, namespaces, then the server's own check of every signal and
its engine: everything a user's backtest goes through), backtesting.py idiomatically. Prints
median and spread of the wall times, trade count (they must agree), final equity and the
ratio of medians (target: at most 3x). Ours includes the look-ahead check (issue 18), whose
own time and share are printed, with a run without it for comparison.

Then the event loop during a long backtest (issue 10, item 3: the engine runs in the server
now, off the loop): a 1 ms ticker's lateness while idle and while a `--lag-bars` backtest
runs, and during the server's half of it alone (the check of the signals and the engine,
in a worker thread), side by side. Then `runStrategy` latency on the fast path, through the
GraphQL API in-process (auth, database, sandbox round trip; target p50 under 20 ms).

Usage: .venv/bin/python bench/backtest.py [--bars 10000] [--rounds 5] [--lag-bars 100000]
       [--calls 200]
Exits 1 when the trade counts differ.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.backtest_engine import (  # noqa: E402
    CASH,
    COMMISSION,
    FAST,
    SLOW,
    execute_strategy,
    run_backtesting_py,
)
from bench.results import ONE_RUN, add_json_option, results_for, span  # noqa: E402
from services.backtesting import (  # noqa: E402
    BacktestOptions,
    BacktestReport,
    collect_signals,
    pack_signals,
)
from services.market_data import Bars  # noqa: E402
from services.offload import run_off_loop  # noqa: E402
from services.samples import synthetic_bars  # noqa: E402
from services.sandbox import Sandbox  # noqa: E402
from services.sandbox.sandbox import backtest_from_stream  # noqa: E402

RUN = """mutation($id: UUID!, $data: MarketDataInput!) {
  runStrategy(id: $id, marketData: $data) { action confidence } }"""
GENERATE = """mutation { generateStrategy(input: {prompt: "SMA 20/50 crossover"}) {
  strategy { id } } }"""


def strategy_code() -> str:
    return "from typing import Any\n\n" + inspect.getsource(execute_strategy)


async def sandboxed_backtest(
    sandbox: Sandbox, bars: Bars, check_look_ahead: bool = True
) -> tuple[float, BacktestReport]:
    # end_of_data_fill="open": backtesting.py's finalize_trades (docs/backtesting.md).
    options = BacktestOptions(
        initial_cash=CASH, commission_pct=COMMISSION * 100, end_of_data_fill="open"
    )
    params = {"fast": FAST, "slow": SLOW}
    started = time.perf_counter()
    result = await sandbox.run_backtest(
        strategy_code(),
        bars,
        params,
        options,
        timeout_seconds=300,
        check_look_ahead=check_look_ahead,
    )
    return time.perf_counter() - started, result


async def ticker_lateness(until: asyncio.Future[object] | None, seconds: float) -> list[float]:
    """How late a 1 ms sleep wakes up, again and again, until `until` is done (or for
    `seconds` when there is nothing to wait for)."""
    lateness = []
    deadline = time.perf_counter() + seconds
    while (until is not None and not until.done()) or (
        until is None and time.perf_counter() < deadline
    ):
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        lateness.append(time.perf_counter() - started - 0.001)
    return sorted(lateness)


def lag_p99_ms(lateness: list[float]) -> float:
    return lateness[max(0, int(len(lateness) * 0.99) - 1)] * 1e3


def lag_summary(lateness: list[float]) -> str:
    p50 = statistics.median(lateness) * 1e3
    p99 = lag_p99_ms(lateness)
    return f"p50 {p50:5.1f} ms  p99 {p99:5.1f} ms  max {lateness[-1] * 1e3:5.1f} ms"


async def loop_lag(
    sandbox: Sandbox, bars: Bars
) -> tuple[list[float], list[float], list[float], float, float]:
    """Ticker lateness idle, during one sandboxed backtest over `bars`, and during the server's
    half alone (check of the signal stream and engine, in the worker thread; five runs), with
    the times of the backtest and of one server half."""
    job = asyncio.ensure_future(sandboxed_backtest(sandbox, bars))
    busy = await ticker_lateness(job, 0)
    elapsed, _ = await job
    params = {"fast": FAST, "slow": SLOW}
    packed = json.loads(json.dumps(pack_signals(collect_signals(execute_strategy, bars, params))))
    options = BacktestOptions(initial_cash=CASH, commission_pct=COMMISSION * 100)
    engine: list[float] = []
    engine_s = []
    for _ in range(5):
        started = time.perf_counter()
        half = asyncio.ensure_future(run_off_loop(backtest_from_stream, bars, packed, options))
        engine += await ticker_lateness(half, 0)
        await half
        engine_s.append(time.perf_counter() - started)
    idle = await ticker_lateness(None, min(elapsed, 3.0))
    return idle, busy, sorted(engine), elapsed, statistics.median(engine_s)


def spread(times: list[float]) -> str:
    return (
        f"{statistics.median(times) * 1e3:8.1f} ms [{min(times) * 1e3:.0f}-{max(times) * 1e3:.0f}]"
    )


async def run_strategy_latency(sandbox: Sandbox, calls: int) -> list[float]:
    from tortoise import Tortoise

    from server.db import migrate, tortoise_config
    from server.settings import Settings
    from services.providers.templates import TemplateProvider
    from tests.support.api import call_graphql, make_client, register_user

    url = f"sqlite://{tempfile.mkdtemp(prefix='bench-run-')}/bench.sqlite3"
    await migrate(url)
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, secret_key="b" * 40, rate_limit_execute="100000/minute"
    )
    data = synthetic_bars("trending", 200, timeframe="1d", seed=3).as_columns()
    latencies = []
    try:
        async with make_client(settings, TemplateProvider(), sandbox=sandbox) as client:
            token, _ = await register_user(client)
            body = await call_graphql(client, GENERATE, None, token)
            strategy_id = body["data"]["generateStrategy"]["strategy"]["id"]
            variables = {"id": strategy_id, "data": data}
            for _ in range(10):
                await call_graphql(client, RUN, variables, token)
            for _ in range(calls):
                started = time.perf_counter()
                body = await call_graphql(client, RUN, variables, token)
                latencies.append(time.perf_counter() - started)
                assert "errors" not in body, body
    finally:
        await Tortoise.close_connections()
    return sorted(latencies)


async def main_async(args: argparse.Namespace) -> int:
    bars = synthetic_bars("trending", args.bars, timeframe="1d", seed=7)
    long_bars = synthetic_bars("trending", args.lag_bars, timeframe="1d", seed=11)
    ours_s: list[float] = []
    theirs_s: list[float] = []
    check_s: list[float] = []  # the look-ahead check's share of ours_s
    unchecked_s: list[float] = []  # ours without the check
    async with Sandbox() as sandbox:
        assert sandbox.probe is not None
        print(f"sandbox layers: {sandbox.probe.summary()}")
        await sandboxed_backtest(sandbox, bars)  # warm-up
        run_backtesting_py(bars)  # warm-up: backtesting.py's first run initialises lazily
        for round_ in range(args.rounds):
            for ours_first in (True, False) if round_ % 2 == 0 else (False, True):
                if ours_first:
                    elapsed, ours = await sandboxed_backtest(sandbox, bars)
                    ours_s.append(elapsed)
                    check_s.append((ours.look_ahead or {})["checkSeconds"])
                    unchecked_s.append((await sandboxed_backtest(sandbox, bars, False))[0])
                else:
                    started = time.perf_counter()
                    their_trades, their_final = run_backtesting_py(bars)
                    theirs_s.append(time.perf_counter() - started)
        idle, busy, engine, long_s, engine_s = await loop_lag(sandbox, long_bars)
        latencies = await run_strategy_latency(sandbox, args.calls)

    our_trades, our_final = ours.stats.num_trades, ours.stats.final_equity
    ratio = statistics.median(ours_s) / statistics.median(theirs_s)
    print(f"\n{args.bars} bars, SMA({FAST}/{SLOW}) crossover, {COMMISSION:.2%} commission")
    print(f"{args.rounds} runs each, alternated; median [min-max]")
    print(f"{'':30}{'this service':>24}{'backtesting.py':>24}")
    print(f"{'wall time (sandbox included)':30}{spread(ours_s):>24}{spread(theirs_s):>24}")
    print(f"{'trades':30}{our_trades:>24}{their_trades:>24}")
    print(f"{'final equity':30}{our_final:>24.2f}{their_final:>24.2f}")
    print(f"ratio {ratio:.2f}x (target <= 3x -> {'MET' if ratio <= 3 else 'NOT MET'})")
    share = statistics.median(check_s) / statistics.median(ours_s)
    check = ours.look_ahead or {}
    print(
        f"look-ahead check (in the wall time above): {spread(check_s)}, {share:.1%} of it; "
        f"{check['checkedBars']} bars re-run ({check['tradeBarsChecked']} traded), "
        f"bias {check['lookAheadBias']}, warm-up {check['warmupBarsNeeded']} bars"
    )
    print(f"{'wall time without the check':30}{spread(unchecked_s):>24}")
    print(f"\nevent loop, 1 ms ticker's lateness ({args.lag_bars} bars took {long_s:.2f} s):")
    print(f"  idle                      {lag_summary(idle)}")
    print(f"  during the backtest       {lag_summary(busy)}")
    print(f"  during the server's half  {lag_summary(engine)}  ({engine_s * 1e3:.0f} ms each)")
    p50 = statistics.median(latencies) * 1e3
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1e3
    print(f"\nrunStrategy through the API, {args.calls} calls on 200 bars:")
    print(
        f"  p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p50 < 20 ms -> "
        f"{'MET' if p50 < 20 else 'NOT MET'})"
    )
    results = results_for(args)
    results.add(
        f"SMA crossover backtest, {args.bars:,} bars, sandbox included (the child's signals, "
        f"the server's check and engine, the look-ahead check), against backtesting.py; "
        f"{args.rounds} runs each, alternated",
        f"{ratio:.2f}x ({statistics.median(ours_s) * 1e3:.1f} vs "
        f"{statistics.median(theirs_s) * 1e3:.1f} ms; {our_trades} vs {their_trades} trades)",
        f"ours {span([t * 1e3 for t in ours_s], '{:.0f}')}, backtesting.py "
        f"{span([t * 1e3 for t in theirs_s], '{:.0f}')}",
        "<= 3x, same trades",
        ratio <= 3 and our_trades == their_trades,
    )
    results.add(
        f"the look-ahead check's share of that backtest ({check['checkedBars']} bars re-run, "
        f"{check['tradeBarsChecked']} of them traded, plus warm-up runs)",
        f"{statistics.median(check_s) * 1e3:.1f} ms, {share:.1%} of the backtest; without the "
        f"check {statistics.median(unchecked_s) * 1e3:.1f} ms",
        f"check {span([t * 1e3 for t in check_s], '{:.0f}')}, without it "
        f"{span([t * 1e3 for t in unchecked_s], '{:.0f}')}",
        "reported (LOOKAHEAD_CHECK_PCT)",
    )
    results.add(
        f"event loop during a {args.lag_bars:,}-bar backtest ({long_s:.1f} s): a 1 ms "
        "ticker's lateness",
        f"p99 {lag_p99_ms(busy):.1f} ms (the server's half alone: "
        f"p99 {lag_p99_ms(engine):.1f} ms, max {engine[-1] * 1e3:.1f} ms)",
        ONE_RUN,
        f"idle p99 {lag_p99_ms(idle):.1f} ms",
    )
    results.add(
        f"`runStrategy` through the API, 200 bars, {args.calls} calls",
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        ONE_RUN,
        "p50 < 20 ms",
        p50 < 20,
    )
    results.write()
    if our_trades != their_trades:
        print("MISMATCH: trade counts differ", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lag-bars", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200)
    add_json_option(parser)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
