"""Issue 13 §4: backtests at any length, at linear cost, through a bounded look-back window.

A strategy sees the most recent bars (LOOKBACK_BARS, or its own `LOOKBACK = N` up to
LOOKBACK_MAX_BARS), so a bar costs the same however long the history; what lies past the
current bar in the memory behind its arrays is still NaN; the built-in templates decide the
same with the window as with the whole history; the look-ahead check re-runs only the windows
it needs and agrees with the full run; and a 1,000,000-bar backtest runs through the sandbox.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from server.settings import Settings
from services.backtesting import (
    BacktestOptions,
    collect_signals,
    declared_lookback,
    lookback_for,
    report_json,
    simulate,
)
from services.code_rules import DEFAULT_LOOKBACK
from services.lookahead import plan_checks, run_checks
from services.market_data import Bars
from services.prompt_analysis import analyse_prompt
from services.providers.prompting import SYSTEM_INSTRUCTION
from services.providers.templates import compose
from services.samples import load_sample, synthetic_bars
from services.sandbox import Sandbox, SandboxSettings
from services.sandbox.sandbox import check_windows
from services.signals import normalise_signal
from services.validation import validate_code


def _root(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def test_a_strategy_sees_its_window_and_no_later_bar_behind_it() -> None:
    bars = load_sample("trending_daily")
    seen: list[tuple[int, float, bool, bool]] = []

    def strategy(market_data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        close = market_data["close"]
        root = _root(close)
        after = (close.ctypes.data - root.ctypes.data) // 8 + len(close)
        same = all(len(market_data[k]) == len(close) for k in ("open", "timestamp", "volume"))
        seen.append((len(close), float(close[0]), same, bool(np.isnan(root[after:]).all())))
        return {"action": "hold", "confidence": 0.5, "reason": ""}

    collect_signals(strategy, bars, {}, lookback=64)
    assert len(seen) == len(bars)
    for i, (length, first, same, nothing_after) in enumerate(seen):
        assert length == min(64, i + 1)
        assert first == bars.close[max(0, i - 63)]  # the window ends at the current bar
        assert same and nothing_after


def test_the_window_is_the_strategys_own_lookback_up_to_the_cap() -> None:
    assert declared_lookback("LOOKBACK = 120\n\ndef execute_strategy(m, p):\n    pass\n") == 120
    assert declared_lookback("LOOKBACK: int = 30\n") == 30
    for code in (
        "def execute_strategy(m, p):\n    LOOKBACK = 9\n",  # not module level
        "LOOKBACK = '9'\n",
        "LOOKBACK = 0\n",
        "LOOKBACK = 2 * 9\n",  # only a literal: the server never evaluates the code
        "def broken(:\n",
    ):
        assert declared_lookback(code) is None, code
    assert lookback_for("x = 1\n", 500, 10_000) == 500
    assert lookback_for("LOOKBACK = 7\nLOOKBACK = 9\n", 500, 10_000) == 7  # the first one
    assert lookback_for("LOOKBACK = 2000\n", 500, 10_000) == 2000
    assert lookback_for("LOOKBACK = 50_000\n", 500, 10_000) == 10_000


def test_models_are_told_of_the_window_and_how_to_ask_for_more() -> None:
    assert f"the most recent {DEFAULT_LOOKBACK} bars" in SYSTEM_INSTRUCTION
    assert "`LOOKBACK = N`" in SYSTEM_INSTRUCTION
    assert Settings.model_fields["lookback_bars"].default == DEFAULT_LOOKBACK
    assert SandboxSettings().lookback_bars == DEFAULT_LOOKBACK


def test_validation_says_when_a_lookback_is_ignored() -> None:
    body = "\n\ndef execute_strategy(market_data, strategy_params):\n    return {}\n"
    ignored = validate_code("LOOKBACK = '1000'" + body)
    assert any("LOOKBACK must be a positive whole number" in w for w in ignored.warnings)
    assert not any("LOOKBACK" in w for w in validate_code("LOOKBACK = 1000" + body).warnings)


SEES = """
LOOKBACK = 40

def execute_strategy(market_data, strategy_params):
    n = len(market_data["close"])
    if n > LOOKBACK:
        raise ValueError(f"saw {n} bars")
    action = "buy" if n == LOOKBACK and market_data["close"][-1] > market_data["close"][0] \\
        else "sell"
    return {"action": action, "confidence": 0.5, "reason": str(n)}
"""


async def test_backtests_and_runs_give_the_strategy_its_window(sandbox: Sandbox) -> None:
    bars = load_sample("ranging_daily")
    result = report_json(await sandbox.run_backtest(SEES, bars, {}, BacktestOptions()))
    assert result["metrics"]["lookbackBars"] == 40
    assert result["metrics"]["numTrades"] > 3
    assert result["lookAhead"]["lookAheadBias"] is False
    signal = await sandbox.run_signal(SEES, bars, {})
    assert signal["reason"] == "40"  # runStrategy decides on the same window
    default = await sandbox.run_signal(SEES.replace("LOOKBACK = 40", "LOOKBACK = 10**6"), bars, {})
    assert default["reason"] == "500"  # not a literal: the default window


TEMPLATE_PROMPTS = [
    "SMA 10/30 crossover",
    "EMA 9/21 crossover with 2% stop loss and 5% take profit",
    "RSI 14 mean reversion 35/65",
    "MACD momentum with a 3% trailing stop",
    "Bollinger band 20 period 1.5 std",
    "20 bar channel breakout, volume above 1.5x average",
    "SMA 20/50 crossover with a 3% trailing stop",
    "buy dips 5% below the 50 day moving average",
]


def _entrypoint(code: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(code, "<template>", "exec"), namespace)
    return namespace["execute_strategy"]


@pytest.mark.parametrize("prompt", TEMPLATE_PROMPTS)
def test_templates_decide_the_same_with_the_window_as_with_the_whole_history(
    prompt: str,
) -> None:
    intent = analyse_prompt(prompt)
    assert intent.template is not None, prompt
    strategy = _entrypoint(compose(intent, prompt))
    bars = load_sample("trending_hourly")
    windowed = collect_signals(strategy, bars, {}, lookback=500)
    whole = collect_signals(strategy, bars, {})
    assert sum(s is not None for s in whole) > 5
    assert windowed == whole


WINDOW_SMA = """
def execute_strategy(market_data, strategy_params):
    close = market_data["close"]
    if len(close) < 31:
        return {"action": "hold", "confidence": 0.0, "reason": "warming up"}
    fast, slow = close[-10:].sum() / 10, close[-30:].sum() / 30
    fast_then, slow_then = close[-11:-1].sum() / 10, close[-31:-1].sum() / 30
    if fast_then < slow_then and fast > slow:
        return {"action": "buy", "confidence": 1.0, "reason": "up"}
    if fast_then > slow_then and fast < slow:
        return {"action": "sell", "confidence": 1.0, "reason": "down"}
    return {"action": "hold", "confidence": 0.5, "reason": "none"}
"""


def test_the_check_job_gets_only_the_windows_it_reruns_and_agrees_with_the_full_run() -> None:
    bars = synthetic_bars("trending", 20_000, seed=5)
    strategy = _entrypoint(WINDOW_SMA)
    signals = collect_signals(strategy, bars, {}, lookback=100)
    trades = simulate(bars, signals, BacktestOptions()).trades
    plan = plan_checks(len(bars), trades, budget=400, seed=3, lookback=100)
    windows, checks = check_windows(bars, plan)
    assert len(windows) <= len(plan.bars) * 100  # a part of the data only
    assert len(windows) < 0.75 * len(bars)
    assert windows.timestamp is not None and bars.timestamp is not None
    assert windows.timestamp[-1] == bars.timestamp[plan.last_bar]  # nothing after the last
    for bar, lengths, at, size in checks:
        assert size == min(100, bar + 1) and all(length < size for length in lengths)
        original = bars.close[bar + 1 - size : bar + 1]
        assert np.array_equal(windows.close[at + 1 - size : at + 1], original)
    columns = {
        name: np.array(getattr(windows, name))
        for name in ("timestamp", "open", "high", "low", "close", "volume")
    }
    results = run_checks(columns, checks, lambda m: normalise_signal(strategy(m, {})), {})
    assert len(results) == len(plan.bars) + sum(len(v) for v in plan.warmup.values())
    for bar, length, compared in results:
        if length == 0:
            full = signals[bar]
            assert compared[0] == ("hold" if full is None else full["action"]), bar


def _crossover_trades(close: np.ndarray) -> int:
    """Long-only trades of WINDOW_SMA, its averages computed vectorised, then walked."""
    windows = np.lib.stride_tricks.sliding_window_view(close, 31)  # bars 30 ... n-1
    fast, slow = windows[:, -10:].sum(axis=1) / 10, windows[:, -30:].sum(axis=1) / 30
    fast_then, slow_then = windows[:, -11:-1].sum(axis=1) / 10, windows[:, :-1].sum(axis=1) / 30
    ups = ((fast_then < slow_then) & (fast > slow)).tolist()
    downs = ((fast_then > slow_then) & (fast < slow)).tolist()
    trades, long = 0, False
    for up, down in zip(ups[:-1], downs[:-1], strict=True):  # the last signal is never filled
        if up and not long:
            long, trades = True, trades + 1
        elif down and long:
            long = False
    return trades


@pytest.mark.process
async def test_a_million_bars_backtest_through_the_sandbox(sandbox: Sandbox) -> None:
    bars: Bars = synthetic_bars("trending", 1_000_000, seed=21)
    result = report_json(
        await sandbox.run_backtest(
            WINDOW_SMA, bars, {}, BacktestOptions(commission_pct=0.0), timeout_seconds=300
        )
    )
    metrics = result["metrics"]
    assert result["bars"] == 1_000_000 and len(result["equityCurve"]) == 1_000_000
    assert metrics["lookbackBars"] == 500
    # Sums in another order may differ in the last bit, and so flip a crossover where the
    # two averages are equal to within rounding: a few trades at most.
    expected = _crossover_trades(np.asarray(bars.close))
    assert abs(metrics["numTrades"] - expected) <= max(2, expected // 10_000)
    assert expected > 1000
    check = result["lookAhead"]
    assert check["lookAheadBias"] is False and check["checkError"] is None
    assert check["checkedBars"] >= 10_000  # 2% of a million calls, half of them traded bars
    assert math.isfinite(metrics["finalEquity"])
