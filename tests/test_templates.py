"""The built-in template provider: prompt reading and the code it composes.

Template code is ours and trusted, so these tests run it in-process on synthetic bars to show
every family trades both ways and always returns the contract's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.extraction import extract_code
from services.prompt_analysis import analyse_prompt, read_as
from services.providers.templates import TemplateProvider, compose
from services.validation import extract_default_params, validate_code


@pytest.mark.parametrize(
    ("prompt", "indicator", "strategy_type", "expected"),
    [
        (
            "Create a simple moving average strategy that: 1. Uses 20 and 50 period MAs "
            "2. Buys when short MA crosses above long MA 3. Sells when short MA crosses below "
            "long MA 4. Includes 2% stop loss and 5% take profit",
            "sma",
            "TREND_FOLLOWING",
            {"fast_period": 20, "slow_period": 50, "stop_loss_pct": 2.0, "take_profit_pct": 5.0},
        ),
        (
            "RSI scalping, 2% stop loss, 5% take profit",
            "rsi",
            "SCALPING",
            {"rsi_period": 7, "stop_loss_pct": 2.0, "take_profit_pct": 5.0},
        ),
        ("Create a RSI-based strategy for scalping", "rsi", "SCALPING", {"rsi_period": 7}),
        (
            "RSI(21) mean reversion: buy below 25, sell above 80",
            "rsi",
            "MEAN_REVERSION",
            {"rsi_period": 21, "oversold": 25.0, "overbought": 80.0},
        ),
        (
            "EMA 9/21 crossover with stop loss of 1.5%",
            "ema",
            "TREND_FOLLOWING",
            {"fast_period": 9, "slow_period": 21, "stop_loss_pct": 1.5},
        ),
        (
            "MACD momentum strategy",
            "macd",
            "MOMENTUM",
            {"fast_period": 12, "slow_period": 26, "signal_period": 9},
        ),
        (
            "Bollinger band 30 period, 2.5 std mean reversion",
            "bollinger",
            "MEAN_REVERSION",
            {"period": 30, "num_std": 2.5},
        ),
        (
            "Donchian channel breakout on 55-day highs, take profit 10%",
            "breakout",
            "BREAKOUT",
            {"lookback": 55, "take_profit_pct": 10.0},
        ),
        ("Buy low, sell high", None, "CUSTOM", {}),
    ],
)
def test_prompts_are_read(
    prompt: str, indicator: str, strategy_type: str, expected: dict[str, Any]
) -> None:
    intent = analyse_prompt(prompt)
    assert (intent.template, intent.strategy_type) == (indicator, strategy_type)
    assert expected.items() <= intent.params.items(), intent.params


def test_names_read_well() -> None:
    assert analyse_prompt("RSI scalping").name == "RSI Scalping Strategy"
    assert analyse_prompt("SMA 20/50").name == "SMA Crossover Strategy"
    assert analyse_prompt("MACD momentum").name == "MACD Momentum Strategy"
    assert analyse_prompt("breakout of 20 bar range").name == "Channel Breakout Strategy"


def bars(n: int = 600) -> dict[str, Any]:
    """A trending, oscillating, read-only series like the sandbox hands to strategies."""
    t = np.arange(n, dtype=float)
    close = 100 + 0.02 * t + 8 * np.sin(t / 15) + 3 * np.sin(t / 4.3)
    opens = np.concatenate([[close[0]], close[:-1]])
    data = {
        "open": opens,
        "high": np.maximum(opens, close) + 0.3,
        "low": np.minimum(opens, close) - 0.3,
        "close": close,
        "volume": 1000 + 500 * (np.sin(t / 7) + 1),
    }
    for array in data.values():
        array.flags.writeable = False
    return data


PROMPTS = {
    "sma": "SMA 10/30 crossover",
    "ema": "EMA 9/21 crossover",
    "rsi": "RSI 14 mean reversion 35/65",
    "macd": "MACD momentum",
    "bollinger": "Bollinger band 20 period 1.5 std",
    "breakout": "20 bar channel breakout",
    "dip": "buy the dip 3% below the 20-day mean, 2% stop loss",
    "squeeze": "Bollinger squeeze breakout",
    "sma+trailing": "SMA 10/30 crossover with a 2% trailing stop",
    "ema+trailing": "EMA 9/21 crossover with a 3% trailing stop",
    "macd+trailing": "MACD crossover with 1.5% trailing stop",
    "ema+volume": "EMA 9/21 crossover, only buy when volume is 1.2x the 20-bar average volume",
}


@pytest.mark.parametrize("indicator", sorted(PROMPTS))
def test_every_template_is_valid_and_trades_both_ways(indicator: str) -> None:
    prompt = PROMPTS[indicator]
    intent = analyse_prompt(prompt)
    assert intent.template == indicator.split("+")[0] and intent.ignored == ()
    code = compose(intent, prompt)
    report = validate_code(code)
    assert report.valid, report.errors
    assert report.warnings == ()
    assert extract_default_params(code) == intent.params

    namespace: dict[str, Any] = {}
    exec(compile(code, f"<{indicator}>", "exec"), namespace)  # trusted template code
    execute = namespace["execute_strategy"]
    data = bars()
    actions: list[str] = []
    reasons: list[str] = []
    for i in range(1, len(data["close"]) + 1):
        window = {key: values[:i] for key, values in data.items()}
        signal = execute(window, {})
        assert set(signal) == {"action", "confidence", "reason", "metadata"}
        assert signal["action"] in ("buy", "sell", "hold")
        assert 0.0 <= signal["confidence"] <= 1.0
        assert isinstance(signal["reason"], str) and signal["reason"]
        if signal["action"] == "buy":
            meta = signal["metadata"]
            # Issue 13: in percent, which the backtest measures from the fill price.
            assert meta["stop_loss_pct"] == intent.params.get("stop_loss_pct")
            assert "stop_loss_price" not in meta
            assert meta["take_profit_pct"] == intent.params.get("take_profit_pct")
        actions.append(signal["action"])
        reasons.append(signal["reason"])
    assert actions[0] == "hold", "too few bars must give a hold"
    assert "buy" in actions and "sell" in actions
    if "trailing" in indicator:
        assert any(r.startswith("Trailing stop") for r in reasons)
    if "volume" in indicator:
        assert any("volume is only" in r for r in reasons)
        assert all("volume is" in r for a, r in zip(actions, reasons, strict=True) if a == "buy")


def test_parameters_override_defaults() -> None:
    code = compose(analyse_prompt("SMA 5/10"), "SMA 5/10")
    namespace: dict[str, Any] = {}
    exec(compile(code, "<sma>", "exec"), namespace)
    short = {key: values[:12] for key, values in bars().items()}
    assert namespace["execute_strategy"](short, {})["confidence"] > 0
    assert namespace["execute_strategy"](short, {"slow_period": 50})["confidence"] == 0.0


def test_hostile_prompt_text_stays_inert_in_the_docstring() -> None:
    prompt = 'RSI """ + __import__("os").system("id") + """ \\x00 strategy'
    code = compose(analyse_prompt(prompt), prompt)
    report = validate_code(code)
    assert report.valid, report.errors
    assert "__import__" not in code and '"""' not in code.split('"""')[1]


async def test_provider_answer_is_extractable() -> None:
    result = await TemplateProvider().generate("RSI scalping, 2% stop loss, 5% take profit")
    assert result.error is None and result.provider == "template"
    code = extract_code(result.parts)
    assert code is not None and validate_code(code).valid
    assert result.raw_response is not None and "execute_strategy" in result.raw_response


_WORDS = st.sampled_from(
    [
        "RSI",
        "MACD",
        "SMA",
        "EMA",
        "Bollinger",
        "squeeze",
        "breakout",
        "dip",
        "below",
        "above",
        "mean",
        "20-day",
        "3%",
        "1.5%",
        "2x",
        "volume",
        "trailing",
        "stop",
        "loss",
        "take",
        "profit",
        "grid",
        "pairs",
        "options",
        "and",
        "with,",
        ".",
        ";",
        "buy",
        "sell",
        "when",
        "crosses",
        "Kaufe",
        "unter",
        "über",
        "Stop-Loss",
        "media",
        "móvil",
        "moyenne",
        "mobile",
        "sous",
        "stop",
        "suiveur",
        "10/30",
        "banana",
    ]
)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(st.one_of(_WORDS, st.text(max_size=8)), max_size=25).map(" ".join))
def test_any_prompt_gets_an_honest_reading(prompt: str) -> None:
    """Never raises; what it ignores is quoted from the prompt; what it builds is valid code
    whose parameters are the ones it reports."""
    intent = analyse_prompt(prompt)
    text = read_as(prompt)
    for phrase in intent.ignored:
        assert phrase in text, (phrase, prompt)
    if intent.template is None:
        assert intent.params == {}
        return
    assert intent.ignored or intent.understood
    code = compose(intent, prompt)
    report = validate_code(code)
    assert report.valid, report.errors
    assert extract_default_params(code) == intent.params
