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
from dataclasses import dataclass, replace

from services.prompt_analysis import (
    NATURAL_TYPE,
    REFINEMENTS_SUPPORTED,
    TEMPLATE_LABELS,
    PromptIntent,
    analyse_prompt,
    refine_intent,
)
from services.providers.base import Attempt, PartKind, ProviderResult, Refinement, ResponsePart

TEMPLATE_MODEL = "templates-v1"
NOTHING_RECOGNISED = (
    "The built-in template provider found nothing it can build in this prompt. It builds: "
    "SMA or EMA crossovers, RSI thresholds, MACD crossovers, Bollinger band reversion, "
    "channel breakouts, dips a percentage below a moving average and Bollinger squeeze "
    "breakouts, with optional stop-loss, take-profit and trailing-stop percentages and a "
    "volume filter (the strategyTemplates query lists them with example prompts). To have a "
    "model write any strategy, the server operator configures one (GEMINI_API_KEY, "
    "OPENAI_API_KEY or OPENAI_BASE_URL, ANTHROPIC_API_KEY); the models query lists those "
    "configured and generateStrategy(input: {model}) picks one."
)
NOT_TEMPLATE_CODE = (
    "The built-in template provider can only refine code it composed itself, and this "
    "strategy's code is not (or no longer) one of its templates. Choose a model to refine it "
    "(the models query lists those configured), or edit the code with updateStrategy."
)
NOTHING_TO_REFINE = (
    "The built-in template provider cannot make this change. It can: "
    + REFINEMENTS_SUPPORTED
    + ". To have a model make any change, choose one (the models query lists those configured)."
)
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
    """The contract's return shape. A buy carries its stop-loss and take-profit in percent
    only when the strategy has them (stop_loss_pct, take_profit_pct): the backtest measures
    them from the fill price."""
    metadata = {
        "indicators": {name: round(float(value), 6) for name, value in indicators.items()},
        "stop_loss_pct": None,
        "take_profit_pct": None,
        "risk_level": risk_level,
    }
    if action == "buy" and params.get("stop_loss_pct"):
        metadata["stop_loss_pct"] = float(params["stop_loss_pct"])
    if action == "buy" and params.get("take_profit_pct"):
        metadata["take_profit_pct"] = float(params["take_profit_pct"])
    confidence = min(1.0, max(0.0, confidence))
    return {"action": action, "confidence": round(confidence, 4), "reason": reason,
            "metadata": metadata}
''',
    "volume_filter": '''
def _volume_filter(signal, market_data, price, params):
    """Lets a buy through only on a bar whose volume is volume_multiple times the average
    volume of the volume_period bars before it; otherwise the buy becomes a hold."""
    if signal["action"] != "buy":
        return signal
    period, multiple = int(params["volume_period"]), float(params["volume_multiple"])
    volumes = market_data["volume"]
    if len(volumes) < period + 1:
        return _signal("hold", 0.0, "Not enough bars for the volume average", {}, price, params)
    average = float(sum(volumes[-(period + 1):-1])) / period
    ratio = float(volumes[-1]) / average if average else 0.0
    indicators = {**signal["metadata"]["indicators"], "volume_ratio": ratio}
    if ratio >= multiple:
        reason = f"{signal['reason']}; volume is {ratio:.1f}x its {period}-bar average"
        return _signal("buy", signal["confidence"], reason, indicators, price, params)
    reason = (f"{signal['reason']}, but volume is only {ratio:.1f}x its {period}-bar average "
              f"(needs {multiple:g}x)")
    return _signal("hold", 0.4, reason, indicators, price, params)
''',
    "trailing_stop": '''
def _trailing_stop(signal, market_data, price, params, long_regime):
    """Sells on the first close trailing_stop_pct below the highest close since the fill of
    the buy that opened the current long regime (the bar after its crossover signal).
    long_regime holds, for the last bars, whether the fast line was above the slow one."""
    if signal["action"] != "hold" or not long_regime or not long_regime[-1]:
        return signal
    start = len(long_regime) - 1
    while start > 0 and long_regime[start - 1]:
        start -= 1
    if start == 0:
        return signal  # the regime began before the window: its entry is unknown
    closes = market_data["close"]
    fill = len(closes) - len(long_regime) + start + 1
    pct = float(params["trailing_stop_pct"])
    peak = 0.0
    for index in range(fill, len(closes)):
        close = float(closes[index])
        peak = max(peak, close)
        if close <= peak * (1 - pct / 100.0):
            if index < len(closes) - 1:
                return signal  # already stopped out on an earlier bar
            reason = (f"Trailing stop: close {close:.4g} is {pct:g}% or more below the "
                      f"highest close {peak:.4g} since the entry")
            indicators = {**signal["metadata"]["indicators"], "trailing_peak": peak}
            return _signal("sell", 0.7, reason, indicators, price, params)
    return signal
''',
    "sma_regime": '''
def _sma_regime(closes, fast, slow, bars):
    """For each of the last `bars` bars: was the fast SMA above the slow one?"""
    window = [float(v) for v in closes[-(bars + slow):]]
    sums = [0.0]
    for value in window:
        sums.append(sums[-1] + value)
    return [
        (sums[i] - sums[i - fast]) / fast > (sums[i] - sums[i - slow]) / slow
        for i in range(slow, len(window) + 1)
    ]
''',
    "ema_regime": '''
def _ema_regime(closes, fast, slow, bars):
    """For each of the last `bars` bars: was the fast EMA above the slow one?"""
    window = [float(v) for v in closes[-(bars + slow * 6):]]
    slow_ema = _ema_series(window, slow)
    fast_ema = _ema_series(window, fast)[slow - fast:]
    return [f > s for f, s in zip(fast_ema, slow_ema)][-bars:]
''',
    "macd_regime": '''
def _macd_regime(closes, fast, slow, signal_period, bars):
    """For each of the last `bars` bars: was the MACD line above its signal line?"""
    window = [float(v) for v in closes[-(bars + slow * 6 + signal_period):]]
    slow_ema = _ema_series(window, slow)
    fast_ema = _ema_series(window, fast)[slow - fast:]
    macd = [f - s for f, s in zip(fast_ema, slow_ema)]
    signal_line = _ema_series(macd, signal_period)
    return [m > s for m, s in zip(macd[signal_period - 1:], signal_line)][-bars:]
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
    "dip": (
        "Buys when the close is entry_pct percent or more below its period-bar simple moving "
        "average and sells when it is back at exit_pct percent above that average.",
        ("sma", "signal"),
        """
    period = int(params["period"])
    entry_pct, exit_pct = float(params["entry_pct"]), float(params["exit_pct"])
    if len(closes) < period:
        return _signal("hold", 0.0, "Not enough bars for the average", {}, price, params)
    mean = _sma(closes, period)
    gap_pct = (price - mean) / mean * 100.0 if mean else 0.0
    indicators = {"mean": mean, "gap_pct": gap_pct}
    if gap_pct <= -entry_pct:
        reason = f"Close is {-gap_pct:.2f}% below its {period}-bar mean (entry at {entry_pct:g}%)"
        confidence = 0.6 + min(0.3, (-gap_pct - entry_pct) / 10.0)
        return _signal("buy", confidence, reason, indicators, price, params)
    if gap_pct >= exit_pct:
        reason = f"Close is {gap_pct:.2f}% from its {period}-bar mean (exit at {exit_pct:g}%)"
        return _signal("sell", 0.6, reason, indicators, price, params)
    return _signal("hold", 0.5, "Close is below its mean but above the entry level",
                   indicators, price, params)
""",
    ),
    "squeeze": (
        "Buys when the close breaks above the upper Bollinger band right after a squeeze (the "
        "band width of the previous bar the narrowest of the last squeeze_lookback bars, within "
        "10%) and sells when the close falls back below the middle band.",
        ("sma", "stdev", "signal"),
        """
    period, num_std = int(params["period"]), float(params["num_std"])
    lookback = int(params["squeeze_lookback"])
    if len(closes) < period + lookback:
        return _signal("hold", 0.0, "Not enough bars for the squeeze", {}, price, params)
    window = [float(v) for v in closes[-(lookback + period):]]
    sums, squares = [0.0], [0.0]
    for value in window:
        sums.append(sums[-1] + value)
        squares.append(squares[-1] + value * value)
    widths = []  # relative band width of each of the lookback bars before the current one
    for end in range(period, period + lookback):
        mean = (sums[end] - sums[end - period]) / period
        variance = max(0.0, (squares[end] - squares[end - period]) / period - mean * mean)
        widths.append(2 * num_std * math.sqrt(variance) / mean if mean else 0.0)
    middle = _sma(closes, period)
    width = _stdev(closes, period) * num_std
    upper = middle + width
    squeeze = widths[-1] <= min(widths) * 1.1
    indicators = {"middle_band": middle, "upper_band": upper, "previous_width": widths[-1],
                  "narrowest_width": min(widths)}
    if squeeze and price > upper:
        reason = f"Close {price:.4g} broke above the upper band {upper:.4g} after a squeeze"
        return _signal("buy", 0.7, reason, indicators, price, params)
    if price < middle:
        reason = f"Close {price:.4g} is below the middle band {middle:.4g}"
        return _signal("sell", 0.6, reason, indicators, price, params)
    state = "in a squeeze" if squeeze else "not in a squeeze"
    return _signal("hold", 0.5, f"No breakout; the bands are {state}", indicators, price, params)
""",
    ),
}


def _regime_call(intent: PromptIntent) -> str:
    if intent.template == "macd":
        return (
            '_macd_regime(closes, int(params["fast_period"]), int(params["slow_period"]), '
            'int(params["signal_period"]), 250)'
        )
        # (the MACD window needs the slow EMA's warm-up on top of the bars looked at)
    kind = intent.template
    return f'_{kind}_regime(closes, int(params["fast_period"]), int(params["slow_period"]), 250)'


def _exits_sentence(params: dict[str, float | int]) -> str:
    parts = []
    if "stop_loss_pct" in params:
        parts.append(f"a stop loss {params['stop_loss_pct']:g}% below")
    if "take_profit_pct" in params:
        parts.append(f"a take profit {params['take_profit_pct']:g}% above")
    sentence = ""
    if parts:
        sentence += f" Buys carry {' and '.join(parts)} the signal bar's close."
    if "trailing_stop_pct" in params:
        sentence += (
            f" A trailing stop sells on the first close {params['trailing_stop_pct']:g}% below "
            "the highest close since the entry."
        )
    if "volume_multiple" in params:
        sentence += (
            f" Buys need volume {params['volume_multiple']:g}x the average of the previous "
            f"{params['volume_period']} bars."
        )
    return sentence


def describe_rule(intent: PromptIntent) -> str:
    """What the composed code does, in a trader's words (its entrypoint's docstring)."""
    assert intent.template is not None
    return _BODIES[intent.template][0] + _exits_sentence(intent.params)


def compose(intent: PromptIntent, prompt: str) -> str:
    """The complete module for `intent`: docstring, DEFAULT_PARAMS, helpers, entrypoint."""
    assert intent.template is not None
    _, helpers, body = _BODIES[intent.template]
    extra: list[str] = []
    if "volume_multiple" in intent.params:
        extra.append("volume_filter")
    trailing = "trailing_stop_pct" in intent.params
    if trailing:
        extra += ["trailing_stop", f"{intent.template}_regime"]
        if intent.template in ("ema", "macd"):
            extra.append("ema_series")
    names = list(dict.fromkeys((*helpers, *extra)))
    # The prompt is quoted in the docstring: keep it inert (no quotes, escapes or dunders).
    request = _UNSAFE_IN_DOCSTRING.sub(" ", " ".join(prompt.split()))[:300]
    imports = "import math\n\n" if "stdev" in names else ""
    params = json.dumps(intent.params, indent=4)
    helper_code = "".join(_HELPERS[h] for h in names)
    wrappers = ""
    if "volume_multiple" in intent.params:
        wrappers += "    signal = _volume_filter(signal, market_data, price, params)\n"
    if trailing:
        wrappers += (
            "    signal = _trailing_stop(signal, market_data, price, params, "
            f"{_regime_call(intent)})\n"
        )
    return (
        f'"""{intent.name}\n\nGenerated by the built-in template provider for: {request}\n"""\n\n'
        f"{imports}"
        f"DEFAULT_PARAMS = {params}\n\n"
        f"{helper_code}\n\n"
        "def _decide(market_data, params, closes, price):\n"
        f'    """The {TEMPLATE_LABELS[intent.template]} rule alone."""\n'
        f"{body.lstrip(chr(10))}\n\n"
        "def execute_strategy(market_data, strategy_params):\n"
        f'    """{describe_rule(intent)}"""\n'
        "    params = {**DEFAULT_PARAMS, **(strategy_params or {})}\n"
        '    closes = market_data["close"]\n'
        "    price = float(closes[-1]) if len(closes) else 0.0\n"
        "    signal = _decide(market_data, params, closes, price)\n"
        f"{wrappers}"
        "    return signal\n"
    )


# compose() writes DEFAULT_PARAMS as json.dumps(indent=4): one key per line, "}" alone.
_PARAMS_BLOCK = re.compile(r"^DEFAULT_PARAMS = (\{\n(?:    [^\n]*\n)*\})\n", re.MULTILINE)


def _without_docstring(code: str) -> str:
    return code.split('\n"""\n', 1)[-1]


def recognise(code: str) -> PromptIntent | None:
    """The template intent `code` was composed from (its module docstring aside), or None
    when the code is not exactly a template's: edited, or written by a model or a person."""
    match = _PARAMS_BLOCK.search(code)
    if match is None:
        return None
    try:
        params = json.loads(match[1])
    except ValueError:
        return None
    if not isinstance(params, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in params.values()
    ):
        return None
    body = _without_docstring(code)
    for key in _BODIES:
        intent = PromptIntent(template=key, strategy_type=NATURAL_TYPE[key], params=params)
        if _without_docstring(compose(intent, "")) == body:
            return intent
    return None


class TemplateProvider:
    name = "template"
    model = TEMPLATE_MODEL

    async def refine(self, refinement: Refinement) -> ProviderResult:
        """Rebuild the strategy's template with the instruction's changes (REFINEMENTS_SUPPORTED);
        a FAILURE naming what it can do when the instruction asks for nothing of it, or the
        code is not a template's."""
        started = time.perf_counter()
        current = recognise(refinement.code)
        if current is None:
            return self._failed(started, NOT_TEMPLATE_CODE, {}, [refinement.instruction])
        # The strategy's own values of the template's parameters (a user may have tuned them).
        tuned = {
            name: value
            for name, value in refinement.parameters.items()
            if name in current.params
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        }
        current = replace(current, params={**current.params, **tuned})
        refined = refine_intent(current, refinement.instruction)
        intent = refined.intent
        ignored = list(refined.ignored)
        interpretation = {
            **intent.interpretation,
            "instruction": refinement.instruction,
            "changes": list(refined.understood),
        }
        if not refined.changed:
            message = NOTHING_TO_REFINE
            if refined.understood:
                message = "The strategy already does what was asked: nothing changed"
            return self._failed(started, message, interpretation, ignored)
        prompt = f"{refinement.prompt}; {refinement.instruction}"
        return self._composed(started, intent, prompt, interpretation, ignored)

    def _failed(
        self,
        started: float,
        message: str,
        interpretation: dict[str, object],
        ignored: list[str],
    ) -> ProviderResult:
        raw = json.dumps({"interpretation": interpretation, "ignoredRequirements": ignored})
        return ProviderResult(
            provider=self.name,
            model=self.model,
            raw_response=raw,
            attempts=[Attempt(number=1, duration_seconds=time.perf_counter() - started)],
            error=message,
            interpretation=dict(interpretation),
            ignored_requirements=ignored,
        )

    def _composed(
        self,
        started: float,
        intent: PromptIntent,
        prompt: str,
        interpretation: dict[str, object],
        ignored: list[str],
    ) -> ProviderResult:
        code = compose(intent, prompt)
        interpretation["rule"] = describe_rule(intent)
        note = "".join(f"Not implemented: {phrase}\n" for phrase in ignored)
        text = f"{note}```python\n{code}```\n"
        raw = json.dumps(
            {
                "template": intent.template,
                "strategyType": intent.strategy_type,
                "parameters": intent.params,
                "interpretation": interpretation,
                "ignoredRequirements": ignored,
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
            interpretation=dict(interpretation),
            ignored_requirements=ignored,
        )

    async def generate(self, prompt: str) -> ProviderResult:
        started = time.perf_counter()
        intent = analyse_prompt(prompt)
        interpretation = intent.interpretation
        ignored = list(intent.ignored)
        if intent.template is None:
            return self._failed(started, NOTHING_RECOGNISED, interpretation, ignored)
        return self._composed(started, intent, prompt, interpretation, ignored)


@dataclass(frozen=True)
class TemplateInfo:
    """One built-in template as the strategyTemplates query lists it."""

    key: str
    name: str
    strategy_type: str
    description: str
    parameters: dict[str, dict[str, float | int]]
    example_prompts: tuple[str, ...]


def _range(default: float | int, low: float | int, high: float | int) -> dict[str, float | int]:
    return {"default": default, "min": low, "max": high}


_EXITS = {
    "stop_loss_pct": _range(2.0, 0.1, 50.0),
    "take_profit_pct": _range(5.0, 0.1, 100.0),
}
_EXTRAS = {
    "volume_multiple": _range(1.5, 1.0, 20.0),
    "volume_period": _range(20, 2, 500),
}
_TRAILING = {"trailing_stop_pct": _range(2.0, 0.1, 50.0)}
_CATALOGUE: tuple[tuple[str, dict[str, dict[str, float | int]], tuple[str, ...]], ...] = (
    (
        "sma",
        {"fast_period": _range(20, 2, 200), "slow_period": _range(50, 3, 500), **_TRAILING},
        ("SMA 20/50 crossover with 2% stop loss", "SMA 10/30 crossover with a 3% trailing stop"),
    ),
    (
        "ema",
        {"fast_period": _range(20, 2, 200), "slow_period": _range(50, 3, 500), **_TRAILING},
        ("EMA 9/21 crossover", "EMA 12/26 crossover, only buy when volume is 2x its average"),
    ),
    (
        "rsi",
        {
            "rsi_period": _range(14, 2, 100),
            "oversold": _range(30.0, 1.0, 50.0),
            "overbought": _range(70.0, 50.0, 99.0),
        },
        ("RSI(14): buy below 30, sell above 70", "RSI scalping, 1% stop loss"),
    ),
    (
        "macd",
        {
            "fast_period": _range(12, 2, 100),
            "slow_period": _range(26, 3, 200),
            "signal_period": _range(9, 2, 100),
            **_TRAILING,
        },
        ("MACD crossover", "MACD crossover with 1.5% trailing stop"),
    ),
    (
        "bollinger",
        {"period": _range(20, 2, 200), "num_std": _range(2.0, 0.5, 5.0)},
        ("Bollinger band 20 period, 2 std mean reversion",),
    ),
    (
        "breakout",
        {"lookback": _range(20, 2, 500)},
        ("Donchian channel breakout on 55-day highs, take profit 10%",),
    ),
    (
        "dip",
        {
            "period": _range(20, 2, 500),
            "entry_pct": _range(3.0, 0.1, 50.0),
            "exit_pct": _range(0.0, -50.0, 50.0),
        },
        ("buy the dip 3% below the 20-day mean", "buy 5% below the 50-day average"),
    ),
    (
        "squeeze",
        {
            "period": _range(20, 2, 200),
            "num_std": _range(2.0, 0.5, 5.0),
            "squeeze_lookback": _range(120, 10, 1000),
        },
        ("Bollinger squeeze breakout",),
    ),
)


def template_catalogue() -> list[TemplateInfo]:
    """The built-in templates: each one's parameters (optional exits and filters included)
    with defaults and ranges, and prompts it builds as asked."""
    return [
        TemplateInfo(
            key=key,
            name=f"{TEMPLATE_LABELS[key]} Strategy",
            strategy_type=NATURAL_TYPE[key],
            description=_BODIES[key][0],
            parameters={**params, **_EXITS, **_EXTRAS},
            example_prompts=examples,
        )
        for key, params, examples in _CATALOGUE
    ]
