"""Reading a trader's plain-English prompt: which indicator, which style, which numbers.

Used to name and classify every generated strategy, and by the template provider to compose
code when no model is configured. Heuristic by design: it never fails, it only falls back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUMBER = r"(\d+(?:\.\d+)?)"

# Indicator families, each with the words that name it. The first one mentioned wins.
INDICATOR_WORDS: dict[str, tuple[str, ...]] = {
    "rsi": (r"\brsi\b", r"relative strength"),
    "macd": (r"\bmacd\b",),
    "bollinger": (r"bollinger", r"\bbbands?\b"),
    "breakout": (r"break-?outs?", r"donchian", r"channel", r"new highs?", r"range break"),
    "ema": (r"\bemas?\b", r"exponential moving"),
    "sma": (
        r"\bsmas?\b",
        r"simple moving",
        r"moving averages?",
        r"\bmas?\b",
        r"golden cross",
        r"death cross",
        r"cross-?overs?",
    ),
}
STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "SCALPING": (r"scalp",),
    "ARBITRAGE": (r"arbitrage",),
    "GRID": (r"\bgrid\b",),
    "MEAN_REVERSION": (r"mean[- ]reversion", r"revert", r"reversal", r"oversold", r"overbought"),
    "BREAKOUT": (r"break-?out",),
    "MOMENTUM": (r"momentum",),
    "TREND_FOLLOWING": (r"trend",),
}
STYLE_OF_INDICATOR = {
    "sma": "TREND_FOLLOWING",
    "ema": "TREND_FOLLOWING",
    "macd": "MOMENTUM",
    "rsi": "MEAN_REVERSION",
    "bollinger": "MEAN_REVERSION",
    "breakout": "BREAKOUT",
}
INDICATOR_LABELS = {
    "sma": "SMA Crossover",
    "ema": "EMA Crossover",
    "rsi": "RSI",
    "macd": "MACD",
    "bollinger": "Bollinger Bands",
    "breakout": "Channel Breakout",
}
STYLE_LABELS = {
    "TREND_FOLLOWING": "Trend Following",
    "MEAN_REVERSION": "Mean Reversion",
    "MOMENTUM": "Momentum",
    "BREAKOUT": "Breakout",
    "SCALPING": "Scalping",
    "ARBITRAGE": "Arbitrage",
    "GRID": "Grid",
    "CUSTOM": "Custom",
}


@dataclass(frozen=True)
class PromptIntent:
    indicator: str  # a key of INDICATOR_WORDS
    strategy_type: str  # a StrategyType member name
    params: dict[str, float | int] = field(default_factory=dict)
    indicator_named: bool = True  # False: nothing recognisable, SMA crossover chosen

    @property
    def name(self) -> str:
        label = INDICATOR_LABELS[self.indicator]
        style = STYLE_LABELS[self.strategy_type]
        if style.split()[0].lower() in label.lower() or self.strategy_type == "TREND_FOLLOWING":
            return f"{label} Strategy"
        return f"{label} {style} Strategy"


def _first_position(text: str, patterns: tuple[str, ...]) -> int | None:
    positions = [m.start() for p in patterns if (m := re.search(p, text))]
    return min(positions) if positions else None


def _pick(text: str, table: dict[str, tuple[str, ...]]) -> str | None:
    found = {
        key: pos
        for key, words in table.items()
        if (pos := _first_position(text, words)) is not None
    }
    return min(found, key=lambda k: found[k]) if found else None


def _percent(text: str, words: str) -> float | None:
    """`2% stop loss`, `stop loss of 2%`, `stop-loss at 2 %`, `SL 2%`."""
    for pattern in (
        rf"{_NUMBER}\s*%\s*(?:trailing\s+)?(?:{words})",
        rf"(?:{words})\s*(?:of|at|=|:|is)?\s*{_NUMBER}\s*(?:%|percent)",
        rf"{_NUMBER}\s*percent\s+(?:{words})",
    ):
        match = re.search(pattern, text)
        if match:
            value = float(match[1])
            if 0 < value < 100:
                return value
    return None


def _periods(text: str) -> list[int]:
    """Look-back periods in the order written: `20 and 50 period`, `20/50`, `RSI(14)`."""
    found: list[tuple[int, int]] = []
    for match in re.finditer(
        r"(\d{1,3})\s*(?:/|and|&|,|vs\.?|-)\s*(\d{1,3})\s*[- ]?"
        r"(?:period|day|bar|hour|candle|ma\b|sma|ema|moving)",
        text,
    ):
        found += [(match.start(1), int(match[1])), (match.start(2), int(match[2]))]
    for match in re.finditer(r"(\d{1,3})\s*(?:/)\s*(\d{1,3})(?!\s*%)", text):
        found += [(match.start(1), int(match[1])), (match.start(2), int(match[2]))]
    for match in re.finditer(r"(\d{1,3})\s*[- ]?(?:period|day|bar|hour|candle|-?length)s?\b", text):
        found.append((match.start(1), int(match[1])))
    for match in re.finditer(
        r"(?:rsi|sma|ema|ma|period|length|lookback|look-back|window)\s*[(=:]?\s*(\d{1,3})\b", text
    ):
        found.append((match.start(1), int(match[1])))
    seen: dict[int, int] = {}
    for position, value in sorted(found):
        if 1 < value <= 500 and position not in seen:
            seen[position] = value
    ordered: list[int] = []
    for value in seen.values():
        if value not in ordered:
            ordered.append(value)
    return ordered


def _threshold(text: str, words: str) -> float | None:
    match = re.search(rf"(?:{words})\D{{0,20}}?{_NUMBER}", text) or re.search(
        rf"{_NUMBER}\s*(?:{words})", text
    )
    if match:
        value = float(match[1])
        if 0 < value < 100:
            return value
    return None


def analyse_prompt(prompt: str) -> PromptIntent:
    text = " ".join(prompt.lower().split())
    indicator = _pick(text, INDICATOR_WORDS)
    named = indicator is not None
    indicator = indicator or "sma"
    style = _pick(text, STYLE_WORDS) or STYLE_OF_INDICATOR[indicator]
    if style == "MEAN_REVERSION" and indicator == "sma" and not named:
        indicator = "bollinger"  # "buy the dip" style prompts: bands suit reversion best
    params = _parameters(text, indicator, style)
    return PromptIntent(
        indicator=indicator, strategy_type=style, params=params, indicator_named=named
    )


def _parameters(text: str, indicator: str, style: str) -> dict[str, float | int]:
    periods = _periods(text)
    scalping = style == "SCALPING"
    params: dict[str, float | int] = {}
    if indicator in ("sma", "ema"):
        fast, slow = (5, 13) if scalping else (20, 50)
        if len(periods) >= 2:
            fast, slow = sorted(periods[:2])
        elif len(periods) == 1:
            fast = periods[0]
            slow = max(slow, fast * 2)
        if fast == slow:
            slow = fast * 2
        params.update(fast_period=fast, slow_period=slow)
    elif indicator == "rsi":
        params["rsi_period"] = periods[0] if periods else (7 if scalping else 14)
        oversold = _threshold(text, r"oversold|below|under|buy\s+(?:when|if|at)") or (
            25.0 if scalping else 30.0
        )
        overbought = _threshold(text, r"overbought|above|over|sell\s+(?:when|if|at)") or (
            75.0 if scalping else 70.0
        )
        if oversold >= overbought:
            oversold, overbought = 30.0, 70.0
        params.update(oversold=oversold, overbought=overbought)
    elif indicator == "macd":
        fast, slow, signal = (12, 26, 9)
        if len(periods) >= 3:
            fast, slow, signal = periods[:3]
        if fast >= slow:
            fast, slow = 12, 26
        params.update(fast_period=fast, slow_period=slow, signal_period=signal)
    elif indicator == "bollinger":
        params["period"] = periods[0] if periods else 20
        match = re.search(rf"{_NUMBER}\s*(?:standard deviations?|std|sd|sigma)", text)
        width = float(match[1]) if match else 2.0
        params["num_std"] = width if 0 < width <= 5 else 2.0
    elif indicator == "breakout":
        params["lookback"] = periods[0] if periods else 20
    stop = _percent(text, r"stop[\s-]*loss|stop|sl\b")
    take = _percent(text, r"take[\s-]*profits?|profit target|target|tp\b")
    params["stop_loss_pct"] = stop if stop is not None else (1.0 if scalping else 2.0)
    params["take_profit_pct"] = take if take is not None else (2.0 if scalping else 5.0)
    return params
