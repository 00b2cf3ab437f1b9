"""The built-in provider: composes vetted strategy code from templates, no model needed.

It makes the service useful out of the box (no GEMINI_API_KEY) and gives the tests and
benchmarks a deterministic provider. Each indicator has one hand-written, reviewed body; the
prompt only chooses the body and fills in numbers, so the output is always valid code.
Indicators are computed over a bounded recent window so a backtest stays linear in bars.
"""

from __future__ import annotations

import json
import re
import time

from services.prompt_analysis import PromptIntent, analyse_prompt
from services.providers.base import Attempt, PartKind, ProviderResult, ResponsePart

TEMPLATE_MODEL = "templates-v1"
_UNSAFE_IN_DOCSTRING = re.compile(r"[^\w .,:;%()/+*=<>!?'-]|_{2,}")

_HELPERS = {
    "sma": '''
def _sma(values, period):
    """Simple moving average of the last `period` values."""
    return float(sum(values[-period:])) / period
''',
    "ema": '''
def _ema(values, period):
    """Exponential moving average, seeded with an SMA over a bounded warm-up window."""
    window = values[-period * 6:]
    average = float(sum(window[:period])) / period
    alpha = 2.0 / (period + 1)
    for value in window[period:]:
        average = alpha * float(value) + (1 - alpha) * average
    return average
''',
    "ema_series": '''
def _ema_series(values, period):
    """EMA of every value after an SMA seed (values is a plain list)."""
    average = sum(values[:period]) / period
    series = [average]
    alpha = 2.0 / (period + 1)
    for value in values[period:]:
        average = alpha * value + (1 - alpha) * average
        series.append(average)
    return series
''',
    "rsi": '''
def _rsi(values, period):
    """Wilder's RSI over a bounded warm-up window (10 periods converge closely)."""
    window = [float(v) for v in values[-(period * 10 + 1):]]
    changes = [b - a for a, b in zip(window[:-1], window[1:])]
    gain = sum(max(c, 0.0) for c in changes[:period]) / period
    loss = sum(max(-c, 0.0) for c in changes[:period]) / period
    for change in changes[period:]:
        gain = (gain * (period - 1) + max(change, 0.0)) / period
        loss = (loss * (period - 1) + max(-change, 0.0)) / period
    if loss == 0:
        return 100.0 if gain > 0 else 50.0
    return 100.0 - 100.0 / (1.0 + gain / loss)
''',
    "stdev": '''
def _stdev(values, period):
    """Population standard deviation of the last `period` values."""
    window = [float(v) for v in values[-period:]]
    mean = sum(window) / period
    return math.sqrt(sum((v - mean) ** 2 for v in window) / period)
''',
    "signal": '''
def _signal(action, confidence, reason, indicators, price, params, risk_level="medium"):
    """The contract's return shape; buys carry absolute stop-loss and take-profit prices."""
    metadata = {
        "indicators": {name: round(float(value), 6) for name, value in indicators.items()},
        "stop_loss_price": None,
        "take_profit_price": None,
        "risk_level": risk_level,
    }
    if action == "buy":
        metadata["stop_loss_price"] = round(price * (1 - params["stop_loss_pct"] / 100.0), 6)
        metadata["take_profit_price"] = round(price * (1 + params["take_profit_pct"] / 100.0), 6)
    confidence = min(1.0, max(0.0, confidence))
    return {"action": action, "confidence": round(confidence, 4), "reason": reason,
            "metadata": metadata}
''',
}

# One moving-average crossover for both averages: `avg` becomes sma or ema, `AVG` SMA or EMA.
_CROSSOVER_BODY = """
    fast, slow = int(params["fast_period"]), int(params["slow_period"])
    if len(closes) < slow + 1:
        return _signal("hold", 0.0, "Not enough bars for the slow average", {}, price, params)
    fast_now, slow_now = _avg(closes, fast), _avg(closes, slow)
    fast_prev, slow_prev = _avg(closes[:-1], fast), _avg(closes[:-1], slow)
    indicators = {"fast_avg": fast_now, "slow_avg": slow_now}
    spread = abs(fast_now - slow_now) / slow_now if slow_now else 0.0
    confidence = 0.6 + min(0.3, spread * 20)
    if fast_prev <= slow_prev and fast_now > slow_now:
        reason = f"Fast AVG({fast}) crossed above slow AVG({slow})"
        return _signal("buy", confidence, reason, indicators, price, params)
    if fast_prev >= slow_prev and fast_now < slow_now:
        reason = f"Fast AVG({fast}) crossed below slow AVG({slow})"
        return _signal("sell", confidence, reason, indicators, price, params)
    trend = "above" if fast_now > slow_now else "below"
    reason = f"No crossover; fast AVG is {trend} slow AVG"
    return _signal("hold", 0.5, reason, indicators, price, params)
"""


def _crossover_body(average: str) -> str:
    return _CROSSOVER_BODY.replace("avg", average).replace("AVG", average.upper())


_BODIES = {
    "sma": (
        "Buys when the fast simple moving average crosses above the slow one and sells "
        "when it crosses below.",
        ("sma", "signal"),
        _crossover_body("sma"),
    ),
    "ema": (
        "Buys when the fast exponential moving average crosses above the slow one and "
        "sells when it crosses below.",
        ("ema", "signal"),
        _crossover_body("ema"),
    ),
    "rsi": (
        "Buys when RSI falls below the oversold level and sells when it rises above the "
        "overbought level.",
        ("rsi", "signal"),
        """
    period = int(params["rsi_period"])
    oversold, overbought = float(params["oversold"]), float(params["overbought"])
    if len(closes) < period + 1:
        return _signal("hold", 0.0, "Not enough bars for the RSI", {}, price, params)
    rsi = _rsi(closes, period)
    indicators = {"rsi": rsi}
    if rsi < oversold:
        confidence = 0.6 + min(0.35, (oversold - rsi) / 100.0 * 3)
        reason = f"RSI({period}) at {rsi:.1f} is below the oversold level {oversold:g}"
        return _signal("buy", confidence, reason, indicators, price, params)
    if rsi > overbought:
        confidence = 0.6 + min(0.35, (rsi - overbought) / 100.0 * 3)
        reason = f"RSI({period}) at {rsi:.1f} is above the overbought level {overbought:g}"
        return _signal("sell", confidence, reason, indicators, price, params, "high")
    reason = f"RSI({period}) at {rsi:.1f} is between {oversold:g} and {overbought:g}"
    return _signal("hold", 0.5, reason, indicators, price, params)
""",
    ),
    "macd": (
        "Buys when the MACD line crosses above its signal line and sells when it crosses below.",
        ("ema_series", "signal"),
        """
    fast, slow = int(params["fast_period"]), int(params["slow_period"])
    signal_period = int(params["signal_period"])
    needed = slow + signal_period + 1
    if len(closes) < needed:
        return _signal("hold", 0.0, "Not enough bars for MACD", {}, price, params)
    window = [float(v) for v in closes[-(needed + slow * 5):]]
    slow_ema = _ema_series(window, slow)
    fast_ema = _ema_series(window, fast)[slow - fast:]
    macd = [f - s for f, s in zip(fast_ema, slow_ema)]
    signal_line = _ema_series(macd, signal_period)
    macd_now, macd_prev = macd[-1], macd[-2]
    signal_now, signal_prev = signal_line[-1], signal_line[-2]
    indicators = {"macd": macd_now, "signal": signal_now, "histogram": macd_now - signal_now}
    strength = abs(macd_now - signal_now) / price if price else 0.0
    confidence = 0.6 + min(0.3, strength * 200)
    if macd_prev <= signal_prev and macd_now > signal_now:
        reason = "MACD crossed above its signal line"
        return _signal("buy", confidence, reason, indicators, price, params)
    if macd_prev >= signal_prev and macd_now < signal_now:
        reason = "MACD crossed below its signal line"
        return _signal("sell", confidence, reason, indicators, price, params)
    side = "above" if macd_now > signal_now else "below"
    return _signal("hold", 0.5, f"MACD is {side} its signal line", indicators, price, params)
""",
    ),
    "bollinger": (
        "Buys when the close drops below the lower Bollinger band and sells when it "
        "rises above the upper band.",
        ("sma", "stdev", "signal"),
        """
    period, num_std = int(params["period"]), float(params["num_std"])
    if len(closes) < period:
        return _signal("hold", 0.0, "Not enough bars for the bands", {}, price, params)
    middle = _sma(closes, period)
    width = _stdev(closes, period) * num_std
    lower, upper = middle - width, middle + width
    indicators = {"middle_band": middle, "upper_band": upper, "lower_band": lower}
    if price < lower:
        depth = (lower - price) / width if width else 0.0
        reason = f"Close {price:.4g} is below the lower band {lower:.4g}"
        return _signal("buy", 0.6 + min(0.3, depth), reason, indicators, price, params)
    if price > upper:
        depth = (price - upper) / width if width else 0.0
        reason = f"Close {price:.4g} is above the upper band {upper:.4g}"
        return _signal("sell", 0.6 + min(0.3, depth), reason, indicators, price, params)
    return _signal("hold", 0.5, "Close is inside the bands", indicators, price, params)
""",
    ),
    "breakout": (
        "Buys when the close breaks above the highest high of the look-back window "
        "and sells when it breaks below the lowest low.",
        ("signal",),
        """
    lookback = int(params["lookback"])
    if len(closes) < lookback + 1:
        return _signal("hold", 0.0, "Not enough bars for the channel", {}, price, params)
    highs, lows = market_data["high"], market_data["low"]
    channel_high = float(max(highs[-(lookback + 1):-1]))
    channel_low = float(min(lows[-(lookback + 1):-1]))
    indicators = {"channel_high": channel_high, "channel_low": channel_low}
    volumes = market_data["volume"]
    average_volume = float(sum(volumes[-(lookback + 1):-1])) / lookback
    volume_boost = 0.1 if average_volume and float(volumes[-1]) > 1.5 * average_volume else 0.0
    if price > channel_high:
        reason = f"Close broke above the {lookback}-bar high {channel_high:.4g}"
        return _signal("buy", 0.65 + volume_boost, reason, indicators, price, params)
    if price < channel_low:
        reason = f"Close broke below the {lookback}-bar low {channel_low:.4g}"
        return _signal("sell", 0.65 + volume_boost, reason, indicators, price, params)
    return _signal("hold", 0.5, "Close is inside the channel", indicators, price, params)
""",
    ),
}


def compose(intent: PromptIntent, prompt: str) -> str:
    """The complete module for `intent`: docstring, DEFAULT_PARAMS, helpers, entrypoint."""
    summary, helpers, body = _BODIES[intent.indicator]
    risk = (
        f"Buys carry a stop loss {intent.params['stop_loss_pct']:g}% below and a take profit "
        f"{intent.params['take_profit_pct']:g}% above the entry price."
    )
    # The prompt is quoted in the docstring: keep it inert (no quotes, escapes or dunders).
    request = _UNSAFE_IN_DOCSTRING.sub(" ", " ".join(prompt.split()))[:300]
    imports = "import math\n\n" if "stdev" in helpers else ""
    params = json.dumps(intent.params, indent=4)
    helper_code = "".join(_HELPERS[h] for h in helpers)
    return (
        f'"""{intent.name}\n\nGenerated by the built-in template provider for: {request}\n"""\n\n'
        f"{imports}"
        f"DEFAULT_PARAMS = {params}\n\n"
        f"{helper_code}\n\n"
        "def execute_strategy(market_data, strategy_params):\n"
        f'    """{summary} {risk}"""\n'
        "    params = {**DEFAULT_PARAMS, **(strategy_params or {})}\n"
        '    closes = market_data["close"]\n'
        "    price = float(closes[-1]) if len(closes) else 0.0\n"
        f"{body.lstrip(chr(10))}"
    )


class TemplateProvider:
    name = "template"
    model = TEMPLATE_MODEL

    async def generate(self, prompt: str) -> ProviderResult:
        started = time.perf_counter()
        intent = analyse_prompt(prompt)
        code = compose(intent, prompt)
        note = (
            ""
            if intent.indicator_named
            else ("No indicator was named, so a moving-average crossover was chosen.\n\n")
        )
        text = f"{note}```python\n{code}```\n"
        raw = json.dumps(
            {
                "template": intent.indicator,
                "strategyType": intent.strategy_type,
                "parameters": intent.params,
                "text": text,
            }
        )
        return ProviderResult(
            provider=self.name,
            model=self.model,
            parts=[ResponsePart(PartKind.TEXT, text)],
            raw_response=raw,
            tokens_used=0,
            attempts=[Attempt(number=1, duration_seconds=time.perf_counter() - started)],
        )
