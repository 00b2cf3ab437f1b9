"""Issue 18: no look-ahead, proven.

Two defences, tested apart. The arrays a strategy gets hold nothing past the current bar,
whatever attribute it follows (`.base`, the buffer, ctypes): such cheats find no future and
so never trade on it. Code that reaches the engine's own objects (frames, the garbage
collector: only with the Python guards off, as code that got past them would) does see the
future, and the look-ahead check, which re-runs sampled bars in a process that never received
the later bars, catches it. Honest strategies (every template, the test samples, slow
warm-ups) are never flagged; a slow warm-up is reported as a warning.
"""

from __future__ import annotations

import inspect
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bench.backtest_engine import FAST, SLOW
from bench.backtest_engine import execute_strategy as bench_sma
from models import GeneratedStrategy, StrategyStatus
from server.settings import Settings
from services.backtesting import BacktestOptions, Trade, metrics_json
from services.errors import BadInput
from services.lookahead import (
    MIN_CHECK_CALLS,
    WARMUP_LENGTHS,
    LookAheadVerdict,
    check_budget,
    plan_checks,
    require_trustworthy,
    traded_bars,
    verdict_of,
)
from services.prompt_analysis import analyse_prompt
from services.providers.templates import compose
from services.samples import load_sample
from services.sandbox import Sandbox, SandboxSettings
from services.signals import ORDER_KEYS
from tests.support.api import call_graphql, make_client, register_user

BARS = load_sample("trending_daily")
OPTIONS = BacktestOptions()
SHORTS = BacktestOptions(allow_short=True)
SAMPLES = Path(__file__).parent / "sandbox_samples"
DEFAULT_PCT = SandboxSettings().lookahead_check_pct


@pytest_asyncio.fixture(scope="module")
async def unguarded() -> AsyncIterator[Sandbox]:
    """The job process as powerful as code that got past the Python guards."""
    settings = SandboxSettings(python_guards=False, max_concurrent_jobs=1, memory_limit_mb=256)
    async with Sandbox(settings) as box:
        yield box


@pytest.fixture(params=["guards", "no guards"])
def any_sandbox(request: pytest.FixtureRequest, sandbox: Sandbox, unguarded: Sandbox) -> Sandbox:
    return sandbox if request.param == "guards" else unguarded


# Each peek returns the close after the current bar, or None (NaN: the route holds no future).
TRADE_ON_PEEK = """
def execute_strategy(market_data, strategy_params):
    close = market_data["close"]
    ahead = peek(market_data, len(close) - 1)
    if ahead is None or ahead != ahead:
        return {"action": "hold", "confidence": 0.5, "reason": "nothing ahead"}
    action = "buy" if ahead > close[-1] else "sell"
    return {"action": action, "confidence": 0.9, "reason": "tomorrow's close"}
"""

BASE_PEEK = """
def peek(market_data, i):
    whole = market_data["close"].base
    while whole is not None and whole.base is not None:
        whole = whole.base
    return float(whole[i + 1]) if whole is not None and len(whole) > i + 1 else None
"""

CACHE_PEEK = """
CACHE = []

def peek(market_data, i):
    if not CACHE:  # filled once, from the first call's arrays
        whole = market_data["close"].base
        while whole is not None and whole.base is not None:
            whole = whole.base
        CACHE.append(whole)
    whole = CACHE[0]
    return float(whole[i + 1]) if whole is not None and len(whole) > i + 1 else None
"""

# Guards off: the buffer protocol and raw memory right after the last visible value.
BUFFER_PEEK = """
import numpy as np

def peek(market_data, i):
    whole = market_data["close"].base
    while whole is not None and whole.base is not None:
        whole = whole.base
    if whole is None:
        return None
    raw = np.frombuffer(memoryview(whole), dtype=np.float64)
    return float(raw[i + 1]) if len(raw) > i + 1 else None
"""

CTYPES_PEEK = """
import ctypes, struct

def peek(market_data, i):
    close = market_data["close"]
    raw = ctypes.string_at(close.ctypes.data + 8 * len(close), 8)
    return struct.unpack("<d", raw)[0]
"""

# Guards off: the engine's own objects, which do hold the future in the full run.
FRAME_PEEK = """
import sys

def peek(market_data, i):
    frame = sys._getframe(1)
    while frame is not None:
        bars = frame.f_locals.get("bars")
        if bars is not None and hasattr(bars, "close") and len(bars.close) > i + 1:
            return float(bars.close[i + 1])
        frame = frame.f_back
    return None
"""

GC_PEEK = """
import gc

def peek(market_data, i):
    for thing in gc.get_objects():
        if type(thing).__name__ == "Bars" and len(thing.close) > i + 1:
            return float(thing.close[i + 1])
    return None
"""

# Guards off, with shorting allowed: sell short when the next open is lower (the order would
# fill at exactly that open).
SHORT_ON_NEXT_OPEN = """
import sys

def execute_strategy(market_data, strategy_params):
    close = market_data["close"]
    i = len(close) - 1
    frame = sys._getframe(1)
    while frame is not None and "bars" not in frame.f_locals:
        frame = frame.f_back
    bars = frame.f_locals["bars"] if frame is not None else None
    if bars is None or len(bars.open) <= i + 1:
        return {"action": "hold", "confidence": 0.5, "reason": "nothing ahead"}
    if bars.open[i + 1] < close[-1] * 0.995:
        return {"action": "sell", "confidence": 0.9, "reason": "the next open is lower"}
    return {"action": "buy", "confidence": 0.9, "reason": "cover"}
"""


def cheat(peek: str) -> str:
    return peek + TRADE_ON_PEEK


# --- 1. the arrays hold nothing past the current bar ------------------------------------------


@pytest.mark.parametrize("peek", [BASE_PEEK, CACHE_PEEK], ids=["base", "module cache"])
async def test_attribute_routes_find_no_future(any_sandbox: Sandbox, peek: str) -> None:
    """On main, `.base` (and a module-level cache of it) gave the whole series: +1,000%."""
    result = await any_sandbox.run_backtest(cheat(peek), BARS, {}, OPTIONS)
    assert result.stats.num_trades == 0  # it never found a later bar to trade on
    assert result.look_ahead["lookAheadBias"] is False


@pytest.mark.parametrize("peek", [BUFFER_PEEK, CTYPES_PEEK], ids=["buffer", "ctypes"])
async def test_buffer_and_memory_routes_find_no_future(unguarded: Sandbox, peek: str) -> None:
    """On main, the bytes right after the last visible close were the next close."""
    result = await unguarded.run_backtest(cheat(peek), BARS, {}, OPTIONS)
    assert result.stats.num_trades == 0
    # (The check may still flag ctypes: in its process the columns end at the last checked
    # bar, and what lies past an allocation is not NaN but whatever memory follows.)
    if peek is BUFFER_PEEK:
        assert result.look_ahead["lookAheadBias"] is False


# --- 2. what reaches the engine's objects is caught by the check -----------------------------


@pytest.mark.parametrize(
    ("code", "options"),
    [
        (cheat(FRAME_PEEK), OPTIONS),
        (cheat(GC_PEEK), OPTIONS),
        (SHORT_ON_NEXT_OPEN, SHORTS),
    ],
    ids=["engine frames", "garbage collector", "short on the next open"],
)
async def test_cheats_that_reach_the_future_are_caught(
    unguarded: Sandbox, code: str, options: BacktestOptions
) -> None:
    result = await unguarded.run_backtest(code, BARS, {}, options)
    trades = result.trades
    assert len(trades) > 5  # it did trade on the future...
    check = result.look_ahead
    assert check["lookAheadBias"] is True  # ...and was caught
    assert metrics_json(result)["trustworthy"] is False
    assert metrics_json(result)["lookAheadBias"] is True
    # Every traded bar was re-run (at most half the budget of them: 20 on 1,000 bars at the
    # default 2%), and every checked signal changed without the later bars.
    assert check["tradeBarsChecked"] == min(len(traded_bars(trades)), 20)
    assert len(check["lookAheadBars"]) == check["checkedBars"] > check["tradeBarsChecked"]
    difference = check["differences"][0]
    assert difference["full"] != difference["truncated"]


# --- 3. honest strategies are never flagged; warm-up is a warning -----------------------------

TEMPLATE_PROMPTS = [
    "SMA 10/30 crossover",
    "EMA 9/21 crossover",
    "RSI 14 mean reversion 35/65",
    "MACD momentum",
    "Bollinger band 20 period 1.5 std",
    "20 bar channel breakout",
]


def honest_samples() -> list[Any]:
    templates = [
        pytest.param(compose(analyse_prompt(prompt), prompt), {}, id=prompt)
        for prompt in TEMPLATE_PROMPTS
    ]
    bench = "from typing import Any\n\n" + inspect.getsource(bench_sma)
    kitchen = (SAMPLES / "kitchen_sink_strategy.txt").read_text()
    return [
        *templates,
        pytest.param(bench, {"fast": FAST, "slow": SLOW}, id="bench SMA"),
        pytest.param(kitchen, {}, id="kitchen sink"),
    ]


@pytest.mark.parametrize(("code", "params"), honest_samples())
@pytest.mark.parametrize("sample", ["trending_daily", "ranging_hourly"])
async def test_honest_strategies_are_never_flagged(
    sandbox: Sandbox, code: str, params: dict[str, Any], sample: str
) -> None:
    bars = load_sample(sample)
    result = await sandbox.run_backtest(code, bars, params, SHORTS, timeout_seconds=120)
    check = result.look_ahead
    assert check["lookAheadBias"] is False, (check["differences"], check["checkError"])
    assert check["lookAheadBars"] == []
    assert metrics_json(result)["trustworthy"] is True
    traded = len(traded_bars(result.trades))
    assert check["tradeBarsChecked"] == min(traded, check_budget(len(bars), DEFAULT_PCT) // 2)
    assert check["checkedBars"] > check["tradeBarsChecked"] > 0


SLOW_SMA = """
def execute_strategy(market_data, strategy_params):
    close = market_data["close"]
    if len(close) < 151:
        return {"action": "hold", "confidence": 0.0, "reason": "warming up"}
    fast, slow = close[-20:].mean(), close[-150:].mean()
    prev_fast, prev_slow = close[-21:-1].mean(), close[-151:-1].mean()
    if prev_fast <= prev_slow and fast > slow:
        return {"action": "buy", "confidence": 0.8, "reason": "cross up"}
    if prev_fast >= prev_slow and fast < slow:
        return {"action": "sell", "confidence": 0.8, "reason": "cross down"}
    return {"action": "hold", "confidence": 0.5, "reason": "no cross"}
"""

# An EMA seeded at the first bar it is given, so slow that it never forgets it: its stop
# level changes with every history length.
WHOLE_SERIES = """
def execute_strategy(market_data, strategy_params):
    close = market_data["close"]
    ema = float(close[0])
    for price in close[1:]:
        ema += 0.002 * (float(price) - ema)
    stop = round(min(ema, float(close[-1])) * 0.9, 6)
    return {"action": "buy", "confidence": 0.6, "reason": "slow EMA",
            "metadata": {"stop_loss_price": stop}}
"""


async def test_a_slow_warm_up_is_a_warning_with_its_length(sandbox: Sandbox) -> None:
    bars = load_sample("trending_daily")
    result = await sandbox.run_backtest(SLOW_SMA, bars, {}, OPTIONS)
    check = result.look_ahead
    assert check["lookAheadBias"] is False
    # 151 bars are needed: 100 is not enough, 200 (the next length tried) is.
    assert check["warmupBarsNeeded"] == 200
    assert "200 bars of history" in check["warmupWarning"]
    assert {d["history"] for d in check["warmupDifferences"]} <= {10, 20, 50, 100}


async def test_an_indicator_over_the_whole_series_never_warms_up(sandbox: Sandbox) -> None:
    result = await sandbox.run_backtest(WHOLE_SERIES, BARS, {}, OPTIONS)
    check = result.look_ahead
    assert check["lookAheadBias"] is False
    assert check["warmupBarsNeeded"] is None
    assert "never warms up" in check["warmupWarning"]


# Not look-ahead, but signals that runStrategy (one fresh call on the same bars) would not
# give: flagged too.
STATEFUL = """
CALLS = [0]

def execute_strategy(market_data, strategy_params):
    CALLS[0] += 1
    action = {0: "buy", 50: "sell"}.get(CALLS[0] % 100, "hold")
    return {"action": action, "confidence": 0.5, "reason": "by call count"}
"""

UNSEEDED = """
import numpy as np

def execute_strategy(market_data, strategy_params):
    draw = np.random.random()
    action = "buy" if draw < 0.05 else "sell" if draw > 0.95 else "hold"
    return {"action": action, "confidence": 0.5, "reason": "a coin"}
"""


@pytest.mark.parametrize("code", [STATEFUL, UNSEEDED], ids=["state between calls", "random"])
async def test_signals_a_fresh_call_cannot_reproduce_are_flagged(
    sandbox: Sandbox, code: str
) -> None:
    result = await sandbox.run_backtest(code, BARS, {}, OPTIONS)
    assert result.stats.num_trades > 3
    assert result.look_ahead["lookAheadBias"] is True


# Spins when it is the first call of a fresh module past the first bars: only in the check.
SPINS_IN_THE_CHECK = """
CALLS = [0]

def execute_strategy(market_data, strategy_params):
    CALLS[0] += 1
    bar = len(market_data["close"])
    while CALLS[0] == 1 and bar > 5:
        pass
    action = {0: "buy", 25: "sell"}.get(bar % 50, "hold")
    return {"action": action, "confidence": 0.5, "reason": "r"}
"""


async def test_a_check_that_fails_as_a_whole_is_bias_on_every_checked_bar(
    sandbox: Sandbox,
) -> None:
    result = await sandbox.run_backtest(SPINS_IN_THE_CHECK, BARS, {}, OPTIONS, timeout_seconds=2)
    check = result.look_ahead
    assert result.stats.num_trades > 3  # the backtest itself ran
    assert check["lookAheadBias"] is True and "ran longer than 2 s" in check["checkError"]
    assert len(check["lookAheadBars"]) == check["checkedBars"] > 0
    assert metrics_json(result)["trustworthy"] is False


# --- the verdict as a service: plan, compare, refuse -----------------------------------------


def trade(entry_bar: int, exit_bar: int, exit_reason: str) -> Trade:
    return Trade(
        entry_bar, exit_bar, None, None, "long", 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0,
        None, None, None, "", exit_reason,
    )  # fmt: skip


def test_the_plan_takes_every_traded_bar_and_a_random_sample_within_its_budget() -> None:
    trades = [
        trade(11, 40, "signal: down"),
        trade(151, 170, "stop loss"),
    ]
    assert check_budget(200, 5.0) == MIN_CHECK_CALLS
    assert check_budget(10_000, 5.0) == 500 and check_budget(10_000, 0) == 0
    plan = plan_checks(200, trades, budget=60, seed=1)
    assert {10, 39, 150} <= set(plan.bars)  # the bars whose signals were acted on
    assert plan.trade_bars == 3 and len(plan.bars) == 3 + 6  # and a tenth of the budget
    assert 169 not in plan.bars or len(set(plan.bars) - {10, 39, 150}) == 6  # a stop: no signal
    assert max(plan.bars) < 199  # nothing follows the last bar
    calls = len(plan.bars) + sum(len(lengths) for lengths in plan.warmup.values())
    assert calls <= 60
    assert 150 in plan.warmup or 39 in plan.warmup or 10 in plan.warmup  # traded ones first
    for bar, lengths in plan.warmup.items():
        assert lengths == tuple(length for length in WARMUP_LENGTHS if length <= bar)
    assert plan == plan_checks(200, trades, budget=60, seed=1)
    # Many trades: a random half of the budget of them.
    many = [trade(bar, bar + 1, "end") for bar in range(1, 199, 2)]
    assert plan_checks(200, many, budget=60, seed=1).trade_bars == 30
    assert plan_checks(200, trades, budget=0, seed=1).bars == ()  # the setting turns it off


def test_an_untrusted_check_result_is_a_difference_unless_it_matches() -> None:
    plan = plan_checks(30, [], budget=30, seed=2)
    signals: list[dict[str, Any] | None] = [None] * 30
    bar = plan.bars[0]
    signals[bar] = {"action": "buy", "metadata": {"stop_loss_price": 9.5}}
    rest = [None] * (len(ORDER_KEYS) - 1)  # the order values after stop_loss_price
    rows = [[b, 0, ["hold", None, *rest]] for b in plan.bars if b != bar]
    matching = verdict_of(plan, signals, [*rows, [bar, 0, ["buy", 9.5, *rest]]], check_seconds=0)
    assert not matching.bias and matching.bars == []
    for forged in (["buy", math.nan, *rest], ["buy", "9.5", *rest], ["buy", 9.5], "buy", None):
        verdict = verdict_of(plan, signals, [*rows, [bar, 0, forged]], check_seconds=0)
        assert verdict.bias and verdict.bars == [bar]
    assert verdict_of(plan, signals, "all good", check_seconds=0).bars == list(plan.bars)


class Stored:
    def __init__(self, performance: dict[str, Any]) -> None:
        self.performance_metrics = performance


def test_require_trustworthy_refuses_only_a_biased_backtest() -> None:
    require_trustworthy(Stored({}))
    require_trustworthy(Stored({"trustworthy": True}))
    with pytest.raises(BadInput) as caught:
        require_trustworthy(Stored({"trustworthy": False, "lookAheadBars": [4, 9]}))
    assert caught.value.extensions["reason"] == "LOOK_AHEAD_BIAS"
    assert "bars 4, 9" in caught.value.message
    assert LookAheadVerdict((1, 2), 0, (), None, error="timeout").bars == [1, 2]


# --- through the API: the flag, the stored verdict, the refusal ------------------------------

BACKTEST = """mutation($id: UUID!) {
  backtestStrategy(id: $id, input: {sample: "trending_daily"}) {
    lookAheadBias lookAheadBars warmupBarsNeeded lookAheadCheck metrics
    strategy { performanceMetrics } } }"""
RUN = """mutation($id: UUID!, $data: MarketDataInput!) {
  runStrategy(id: $id, marketData: $data) { action } }"""


async def test_a_biased_backtest_is_flagged_stored_and_the_strategy_refused(
    database: str, settings: Settings, unguarded: Sandbox
) -> None:
    async with make_client(settings, sandbox=unguarded) as client:
        token, user_id = await register_user(client)
        ids = {}
        for name, code in (("cheat", cheat(FRAME_PEEK)), ("honest", SLOW_SMA)):
            strategy = await GeneratedStrategy.create(
                user_id=user_id,
                name=name,
                original_prompt="p",
                generated_code=code,
                status=StrategyStatus.VALIDATED,
            )
            ids[name] = str(strategy.id)
        cheat_body = await call_graphql(client, BACKTEST, {"id": ids["cheat"]}, token)
        honest_body = await call_graphql(client, BACKTEST, {"id": ids["honest"]}, token)
        columns = BARS.as_columns()
        data = {key: columns[key][:30] for key in ("open", "high", "low", "close", "volume")}
        refused = await call_graphql(client, RUN, {"id": ids["cheat"], "data": data}, token)
        allowed = await call_graphql(client, RUN, {"id": ids["honest"], "data": data}, token)
    flagged = cheat_body["data"]["backtestStrategy"]
    assert flagged["lookAheadBias"] is True and flagged["lookAheadBars"]
    assert flagged["metrics"]["trustworthy"] is False
    assert flagged["lookAheadCheck"]["differences"]
    stored = flagged["strategy"]["performanceMetrics"]
    assert stored["trustworthy"] is False and stored["lookAheadBias"] is True
    assert stored["lookAheadBars"] == flagged["lookAheadBars"]
    clean = honest_body["data"]["backtestStrategy"]
    assert clean["lookAheadBias"] is False and clean["lookAheadBars"] == []
    assert clean["warmupBarsNeeded"] == 200
    assert clean["strategy"]["performanceMetrics"]["trustworthy"] is True
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused["errors"][0]["extensions"]["reason"] == "LOOK_AHEAD_BIAS"
    assert "errors" not in allowed, allowed
    assert uuid.UUID(ids["cheat"])


def test_the_cli_says_which_verdict() -> None:
    from server.cli import look_ahead_lines

    biased = {
        "lookAheadBias": True,
        "lookAheadBars": [3, 8],
        "differences": [{"bar": 3, "full": "buy", "truncated": "hold"}],
        "warmupWarning": "signals need 200 bars of history before they stop changing",
    }
    lines = look_ahead_lines(biased)
    assert lines[0].startswith("LOOK-AHEAD BIAS: the metrics above are untrustworthy")
    assert "(bars 3, 8)" in lines[0] and "bar 3: full run buy, truncated hold" in lines[1]
    assert lines[-1] == "Warm-up: signals need 200 bars of history before they stop changing"
    clean = look_ahead_lines({"lookAheadBias": False, "checkedBars": 44, "checkSeconds": 0.03})
    assert clean == ["No look-ahead found: 44 bars re-run on truncated data in 0.03 s"]
    assert look_ahead_lines(None) == []
