"""Reading a trader's prompt: which template fits, with which numbers, and what it cannot do.

Used by the template provider to compose code, and to name and classify strategies. It is
honest by construction: the prompt is cut into clauses, each clause is either understood by
the chosen template, filler ("create a strategy"), or reported back as ignored in the user's
own words. A prompt with nothing buildable gets no template at all (the provider then says
what it supports) rather than a stand-in the user never asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_NUM = r"(?<![\d.])(\d{1,6}(?:\.\d{1,6})?)(?!\d)"  # bounded: linear on digit runs
_FLAGS = re.IGNORECASE

# Words for "below"/"above" and for an average, in English, German, Spanish and French.
_BELOW = r"below|under|unter(?:halb)?|(?:por\s+)?debajo\s+de(?:l)?|bajo|en\s+dessous\s+de|sous"
_ABOVE = r"above|over|über|ueber|oberhalb|(?:por\s+)?encima\s+de(?:l)?|au[- ]dessus\s+de"
_MEAN = (
    r"mean|average|moving\s+average|sma|ma|durchschnitts?|mittelwert(?:s)?|media(?:\s+móvil)?"
    r"|promedio|moyenne(?:\s+mobile)?"
)
_PERIOD_UNITS = (
    r"period|day|bar|hour|candle|tage?n?|perioden?|kerzen?|días?|dias?|periodos?|velas?"
    r"|jours?|périodes?|bougies?"
)

# The templates and the words that name them. The first one mentioned wins.
TEMPLATE_WORDS: dict[str, tuple[str, ...]] = {
    "squeeze": (r"squeeze",),
    "dip": (
        rf"{_NUM}\s*%\s*(?:{_BELOW})\s+(?:the\s+|el\s+|la\s+|le\s+|dem\s+|den\s+)?"
        rf"(?:\d{{1,3}}[- ]?(?:{_PERIOD_UNITS})s?[- ]?\s*)?(?:{_MEAN})\b",
        r"buy\s+the\s+dips?",
    ),
    "rsi": (
        r"\brsi\b",
        r"relative\s+strength",
        r"relativen?\s+stärke",
        r"fuerza\s+relativa",
        r"force\s+relative",
    ),
    "macd": (r"\bmacd\b",),
    "bollinger": (r"bollinger", r"\bbbands?\b"),
    "breakout": (
        r"break-?outs?",
        r"donchian",
        r"\bchannel",
        r"new\s+highs?",
        r"range\s+break",
        r"ausbruch",
        r"ruptura",
        r"cassure",
    ),
    "ema": (r"\bemas?\b", r"exponential\s+moving", r"exponentielle?n?", r"exponencial"),
    "sma": (
        r"\bsmas?\b",
        r"simple\s+moving",
        r"moving\s+averages?",
        r"gleitenden?\s+durchschnitt",
        r"gleitender\s+durchschnitt",
        r"medias?\s+móvil(?:es)?",
        r"medias?\s+movil(?:es)?",
        r"moyennes?\s+mobiles?",
        r"\b\d{1,3}\s*[- ]?mas?\b",
        r"\bmas?\s*\(?\d",
        r"\b(?:short|long|fast|slow)(?:er)?\s+mas?\b",
        r"golden\s+cross",
        r"death\s+cross",
        r"cross-?overs?",
        r"croisement",
        r"kreuzung",
        r"\bcruce\b",
    ),
}
STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "SCALPING": (r"scalp",),
    "ARBITRAGE": (r"arbitra", r"pairs?[\s-]+trad"),
    "GRID": (r"\bgrid\b", r"\bgitter", r"cuadrícula", r"\bgrille\b"),
    "MEAN_REVERSION": (
        r"mean[- ]reversion",
        r"\brevert",
        r"reversi[oó]n",
        r"rückkehr\s+zum\s+mittelwert",
        r"retour\s+à\s+la\s+moyenne",
    ),
    "BREAKOUT": (r"break-?out", r"ausbruch", r"ruptura", r"cassure"),
    "MOMENTUM": (r"momentum", r"impulso"),
    "TREND_FOLLOWING": (r"\btrend", r"tendencia", r"tendance"),
}
NATURAL_TYPE = {
    "sma": "TREND_FOLLOWING",
    "ema": "TREND_FOLLOWING",
    "macd": "MOMENTUM",
    "rsi": "MEAN_REVERSION",
    "bollinger": "MEAN_REVERSION",
    "breakout": "BREAKOUT",
    "dip": "MEAN_REVERSION",
    "squeeze": "BREAKOUT",
}
# Styles a template's code genuinely is (scalping: the short periods it then uses).
COMPATIBLE_TYPES = {
    "sma": {"TREND_FOLLOWING", "MOMENTUM", "SCALPING"},
    "ema": {"TREND_FOLLOWING", "MOMENTUM", "SCALPING"},
    "macd": {"MOMENTUM", "TREND_FOLLOWING", "SCALPING"},
    "rsi": {"MEAN_REVERSION", "SCALPING"},
    "bollinger": {"MEAN_REVERSION", "SCALPING"},
    "breakout": {"BREAKOUT", "MOMENTUM", "TREND_FOLLOWING"},
    "dip": {"MEAN_REVERSION"},
    "squeeze": {"BREAKOUT"},
}
# A style named without an indicator: the template that is that style.
TEMPLATE_OF_STYLE = {
    "TREND_FOLLOWING": "sma",
    "MEAN_REVERSION": "bollinger",
    "MOMENTUM": "macd",
    "BREAKOUT": "breakout",
}
# Templates whose long position lasts while one line is above another: the code can find
# the bar that opened it, so a trailing stop can be tracked in the code itself.
REGIME_TEMPLATES = frozenset({"sma", "ema", "macd"})

TEMPLATE_LABELS = {
    "sma": "SMA Crossover",
    "ema": "EMA Crossover",
    "rsi": "RSI",
    "macd": "MACD",
    "bollinger": "Bollinger Bands",
    "breakout": "Channel Breakout",
    "dip": "Mean Reversion Dip",
    "squeeze": "Bollinger Squeeze Breakout",
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

# Things traders ask for that no template implements; a match is reported as ignored.
UNSUPPORTED: tuple[str, ...] = (
    r"pairs?[\s-]+trad\w*(?:\s+\w+\s+(?:vs\.?|versus|and|against)\s+\w+)?",
    r"\w+\s+(?:vs\.?|versus|against)\s+[a-z]{2,}\b",
    r"arbitra\w*",
    r"\bgrid\w*",
    r"\bgitter\w*",
    r"cuadrícula",
    r"\bgrille\b",
    r"(?:long\s+|short\s+)?straddles?",
    r"(?:long\s+|short\s+)?strangles?",
    r"\boptions?\b(?:\s+\w+)?",
    r"(?:call|put)\s+options?",
    r"sentiment\w*(?:\s+\w+)?",
    r"\bnews\b(?:\s+\w+)?",
    r"nachrichten|noticias|actualités",
    r"machine\s+learning|neural\s+net\w*|deep\s+learning|artificial\s+intelligence|\bml\b",
    r"\bdca\b|dollar[\s-]+cost[\s-]+averag\w*",
    r"martingale?",
    r"hedg\w*",
    r"\d*\s*x?\s*leverage\w*|hebel\w*|apalancamiento|levier",
    r"position[\s-]+siz\w*(?:\s+(?:of\s+)?\d+(?:\.\d+)?\s*%)?",
    r"risk(?:ing)?\s+\d+(?:\.\d+)?\s*%(?:\s+(?:per|of|each)\s+\w+(?:\s+\w+)?)?",
    r"\d+(?:\.\d+)?\s*%\s+of\s+(?:the\s+|my\s+)?(?:portfolio|capital|equity|account|balance)",
    r"kelly(?:\s+criterion)?",
    r"short[\s-]+sell\w*|go(?:ing)?\s+short|\bshorting\b|short\s+positions?|leerverk\w*"
    r"|venta\s+en\s+corto|vente\s+à\s+découvert",
    r"stochastic\w*|ichimoku|\bvwap\b|\batr\b|\badx\b|fibonacci|parabolic\s+sar|\bsar\b|\bobv\b"
    r"|supertrend|keltner|williams\s+%?r|\bcci\b|pivot\s+points?|\bstoch\b",
    r"(?:on\s+)?(?:mondays?|tuesdays?|wednesdays?|thursdays?|fridays?|weekends?)",
    r"(?:at|before|after)\s+(?:the\s+)?market\s+(?:open|close)",
    r"divergen\w*",
    r"support(?:\s+and\s+resistance)?|resistance|unterstützung|widerstand|soporte|resistencia"
    r"|résistance",
    r"engulfing|\bdoji\b|\bhammer\b|candlestick\s+patterns?|heikin[\s-]*ashi",
    r"order\s*book|funding\s+rates?|open\s+interest",
    r"multiple\s+timeframes?|multi[\s-]+timeframe",
)

# Words that carry no requirement ("create a simple trading strategy for BTC"), by language.
_FILLER_WORDS = (
    "a an the my me i we you want need would like please simple basic strategy strategies "
    "trading trade trades trader bot system algorithm algo that which uses use using based on "
    "for of to in with and it is be should this create build write make give generate design "
    "develop implement code crypto bitcoin btc eth ethereum stock stocks forex spy daily hourly "
    "chart charts timeframe market markets includes include including when if buy buys sell "
    "sells signal signals entry entries exit exits also only then new some can could do does",
    "erstelle erstellen erstell eine ein einen einer strategie handelsstrategie für mit und der "
    "die das den dem des bitte kaufe kaufen verkaufe verkaufen wenn auf basierend basiert nutze "
    "nutzt benutze handel handeln",
    "crea crear créame una un estrategia de para con y el la los las que usa usando basada en "
    "por favor compra comprar vende vender cuando si del al",
    "crée créer créez créé une un stratégie de pour avec et le la les qui utilise utilisant "
    "basée sur en vous plaît achète acheter achat vends vendre vente quand si du des au aux d l s",
)
FILLER = frozenset(word for words in _FILLER_WORDS for word in words.split())

_CLAUSE_BREAK = re.compile(
    r"[;\n!?]|,(?!\d)|\.(?=\s|$)|:\s"
    r"|\s(?:with|mit|con|avec|but|aber|pero|mais|plus|then|dann|luego|puis)\s"
    r"|\s(?:and|und|y|et|also|sowie)\s(?!\d)",
    _FLAGS,
)


@dataclass(frozen=True)
class PromptIntent:
    """What the template provider will build, and what it will not."""

    template: str | None  # a key of TEMPLATE_WORDS; None: nothing buildable was recognised
    strategy_type: str  # a StrategyType member name
    params: dict[str, float | int] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()  # parts of the prompt the code will not implement
    understood: tuple[str, ...] = ()  # clauses the code implements, in the user's words
    defaults: tuple[str, ...] = ()  # parameters the prompt did not set

    @property
    def name(self) -> str:
        if self.template is None:
            return f"{STYLE_LABELS[self.strategy_type]} Strategy"
        label = TEMPLATE_LABELS[self.template]
        style = STYLE_LABELS[self.strategy_type]
        if style.split()[0].lower() in label.lower() or self.strategy_type == "TREND_FOLLOWING":
            return f"{label} Strategy"
        return f"{label} {style} Strategy"

    @property
    def interpretation(self) -> dict[str, Any]:
        """The structured account shown as GenerationLog.interpretation."""
        p = self.params
        exits: dict[str, Any] = {
            key: p[name]
            for key, name in (
                ("stopLossPct", "stop_loss_pct"),
                ("takeProfitPct", "take_profit_pct"),
                ("trailingStopPct", "trailing_stop_pct"),
            )
            if name in p
        }
        filters = {
            key: p[name]
            for key, name in (
                ("volumeMultiple", "volume_multiple"),
                ("volumePeriod", "volume_period"),
            )
            if name in p
        }
        special = {
            "stop_loss_pct",
            "take_profit_pct",
            "trailing_stop_pct",
            "volume_multiple",
            "volume_period",
        }
        thresholds = {
            k: v
            for k, v in p.items()
            if k not in special and not k.endswith(("period", "lookback"))
        }
        periods = {k: v for k, v in p.items() if k not in special and k not in thresholds}
        return {
            "template": self.template,
            "name": self.name,
            "strategyType": self.strategy_type,
            "indicators": [TEMPLATE_LABELS[self.template]] if self.template else [],
            "periods": periods,
            "thresholds": thresholds,
            "exits": exits,
            "filters": filters,
            "sizing": None,  # no template sizes positions: the backtest engine invests all cash
            "understood": list(self.understood),
            "defaultsUsed": list(self.defaults),
        }


def read_as(prompt: str) -> str:
    """The prompt as analysed (and quoted back): one line, decimal commas before a % as
    points ("1,5 %" -> "1.5%")."""
    text = " ".join(prompt.split())
    return re.sub(r"(\d),(\d+)\s*(?=%|\s*percent|\s*prozent|\s*por\s*ciento)", r"\1.\2", text)


def _first_match(text: str, patterns: tuple[str, ...]) -> re.Match[str] | None:
    matches = [m for p in patterns if (m := re.search(p, text, _FLAGS))]
    return min(matches, key=lambda m: m.start()) if matches else None


def _pick(text: str, table: dict[str, tuple[str, ...]]) -> str | None:
    found = {key: m.start() for key, words in table.items() if (m := _first_match(text, words))}
    return min(found, key=lambda k: found[k]) if found else None


def _percent(text: str, words: str) -> float | None:
    """`2% stop loss`, `stop loss of 2%`, `stop-loss at 2 %`, `SL 2%`."""
    for pattern in (
        rf"{_NUM}\s*%\s*(?:{words})",
        rf"(?:{words})[^\d%.,;]{{0,12}}?{_NUM}\s*(?:%|percent|prozent)",
        rf"{_NUM}\s*(?:percent|prozent|por\s*ciento)\s+(?:{words})",
    ):
        match = re.search(pattern, text, _FLAGS)
        if match:
            value = float(match[1])
            if 0 < value < 100:
                return value
    return None


_TRAIL_WORDS = (
    r"trailing(?:[\s-]*stop(?:[\s-]*loss)?)?|stop[\s-]+suiveur|nachlaufende[rn]?[\s-]+stopp?"
    r"|stop[\s-]+din[aá]mico"
)
_TRAILING = rf"{_NUM}\s*%\s*(?:{_TRAIL_WORDS})|(?:{_TRAIL_WORDS})[^\d%.,;]{{0,12}}?{_NUM}\s*%"
_STOP_WORDS = r"stop[\s-]*loss|stopp?\b|\bsl\b|verlustbegrenzung|stop[\s-]*de[\s-]*pérdidas"
_TAKE_WORDS = (
    r"take[\s-]*profits?|profit[\s-]*target|\btarget\b|\btp\b|gewinnmitnahme|kursziel"
    r"|toma\s+de\s+ganancias|tomar\s+ganancias|prise\s+de\s+bénéfices?|objectif"
)
_NAMED_STOP = r"stop[\s-]*loss|verlustbegrenzung|stop[\s-]*de[\s-]*pérdidas"
_NAMED_TAKE = (
    r"take[\s-]*profits?|profit[\s-]*target|gewinnmitnahme|toma\s+de\s+ganancias"
    r"|prise\s+de\s+bénéfices?"
)
_VOLUME = (
    rf"volume\D{{0,30}}?{_NUM}\s*(?:x\b|\u00d7|times|fach|veces|fois)"
    rf"|{_NUM}\s*(?:x\b|\u00d7|times|fach|veces|fois)\s+(?:the\s+|das\s+|el\s+|le\s+)?"
    r"(?:average\s+|durchschnittliche\s+|normal\s+)?(?:volume|volumen)"
)


def _periods(text: str) -> list[int]:
    """Look-back periods in the order written: `20 and 50 period`, `20/50`, `RSI(14)`."""
    found: list[tuple[int, int]] = []
    for match in re.finditer(
        r"(\d{1,3})\s*(?:/|and|und|y|et|&|,|vs\.?|-)\s*(\d{1,3})\s*[- ]?"
        rf"(?:{_PERIOD_UNITS}|ma\b|sma|ema|moving|mm\b)",
        text,
        _FLAGS,
    ):
        found += [(match.start(1), int(match[1])), (match.start(2), int(match[2]))]
    for match in re.finditer(r"(\d{1,3})\s*/\s*(\d{1,3})(?!\s*%)", text):
        found += [(match.start(1), int(match[1])), (match.start(2), int(match[2]))]
    sized = rf"(\d{{1,3}})\s*[- ]?(?:{_PERIOD_UNITS}|-?length|sma|ema|ma)s?\b"
    for match in re.finditer(sized, text, _FLAGS):
        found.append((match.start(1), int(match[1])))
    for match in re.finditer(
        r"(?:rsi|sma|ema|\bma|period|periode|periodo|période|length|lookback|look-back|window)"
        r"\s*[(=:]?\s*(\d{1,3})\b(?!\s*%)",
        text,
        _FLAGS,
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
    match = re.search(rf"(?:{words})\D{{0,20}}?{_NUM}(?!\s*%)", text, _FLAGS) or re.search(
        rf"{_NUM}\s*(?:{words})", text, _FLAGS
    )
    if match:
        value = float(match[1])
        if 0 < value < 100:
            return value
    return None


def analyse_prompt(prompt: str) -> PromptIntent:
    text = read_as(prompt)
    template = _pick(text, TEMPLATE_WORDS)
    style = _pick(text, STYLE_WORDS)
    if template is None and style in TEMPLATE_OF_STYLE:
        template = TEMPLATE_OF_STYLE[style]
    if template is None and style == "SCALPING":
        template = "ema"
    if re.search(r"squeeze", text, _FLAGS):
        # The band squeeze wins over the bands or breakout it is named with; "squeeze" alone
        # (a short squeeze?) is not it.
        banded = re.search(r"bollinger|break|band|ausbruch|ruptura", text, _FLAGS)
        template = "squeeze" if banded else (None if template == "squeeze" else template)
    if template is None:
        return PromptIntent(
            template=None,
            strategy_type=style or "CUSTOM",
            ignored=tuple(_clauses(text)) or (text,),
        )
    strategy_type = style if style in COMPATIBLE_TYPES[template] else NATURAL_TYPE[template]
    params, defaults = _parameters(text, template, strategy_type)
    understood, ignored = _sort_clauses(text, template, params, style, strategy_type)
    return PromptIntent(
        template=template,
        strategy_type=strategy_type,
        params=params,
        ignored=tuple(ignored),
        understood=tuple(understood),
        defaults=tuple(defaults),
    )


def _parameters(text: str, template: str, style: str) -> tuple[dict[str, float | int], list[str]]:
    """The template's parameters and the names of those the prompt did not set."""
    periods = _periods(text)
    scalping = style == "SCALPING"
    params: dict[str, float | int] = {}
    defaults: list[str] = []

    def put(name: str, value: float | int | None, default: float | int) -> None:
        if value is None:
            defaults.append(name)
            value = default
        params[name] = value

    if template in ("sma", "ema"):
        fast: int | None = None
        slow: int | None = None
        if len(periods) >= 2:
            fast, slow = sorted(periods[:2])
        elif len(periods) == 1:
            fast = periods[0]
        if fast is not None and slow is None:
            slow = max(13 if scalping else 50, fast * 2)
            put("fast_period", fast, 0)
            put("slow_period", None, slow)
        else:
            put("fast_period", fast, 5 if scalping else 20)
            put("slow_period", slow, 13 if scalping else 50)
        if params["fast_period"] == params["slow_period"]:
            params["slow_period"] = int(params["fast_period"]) * 2
    elif template == "rsi":
        put("rsi_period", periods[0] if periods else None, 7 if scalping else 14)
        below = rf"oversold|überverkauft|sobreventa|survendu|{_BELOW}|buy\s+(?:when|if|at)"
        above = rf"overbought|überkauft|sobrecompra|surachet\w*|{_ABOVE}|sell\s+(?:when|if|at)"
        oversold = _threshold(text, below)
        overbought = _threshold(text, above)
        if oversold is not None and overbought is not None and oversold >= overbought:
            oversold = overbought = None
        put("oversold", oversold, 25.0 if scalping else 30.0)
        put("overbought", overbought, 75.0 if scalping else 70.0)
    elif template == "macd":
        if len(periods) >= 3 and periods[0] < periods[1]:
            put("fast_period", periods[0], 12)
            put("slow_period", periods[1], 26)
            put("signal_period", periods[2], 9)
        else:
            put("fast_period", None, 12)
            put("slow_period", None, 26)
            put("signal_period", None, 9)
    elif template in ("bollinger", "squeeze"):
        put("period", periods[0] if periods else None, 20)
        match = re.search(
            rf"{_NUM}\s*(?:standard\s+deviations?|std|sd|sigma|desviaci\w+|écarts?)", text, _FLAGS
        )
        width = float(match[1]) if match and 0 < float(match[1]) <= 5 else None
        put("num_std", width, 2.0)
        if template == "squeeze":
            put("squeeze_lookback", None, 120)
    elif template == "breakout":
        put("lookback", periods[0] if periods else None, 20)
    elif template == "dip":
        match = re.search(TEMPLATE_WORDS["dip"][0], text, _FLAGS)
        put("period", periods[0] if periods else None, 20)
        put("entry_pct", float(match[1]) if match else None, 3.0)
        exit_match = re.search(
            rf"{_NUM}\s*%\s*(?:{_ABOVE})\s+(?:the\s+)?(?:{_MEAN}|it)\b", text, _FLAGS
        )
        put("exit_pct", float(exit_match[1]) if exit_match else None, 0.0)
    # An exit asked for without a size gets the template's default, reported in defaultsUsed.
    trailing = re.search(_TRAILING, text, _FLAGS) or re.search(_TRAIL_WORDS, text, _FLAGS)
    rest = text
    if trailing is not None:
        if template in REGIME_TEMPLATES:
            sized = trailing.lastindex is not None and (trailing[1] or trailing[2])
            put("trailing_stop_pct", float(sized) if sized else None, 2.0)
        rest = text[: trailing.start()] + text[trailing.end() :]
    stop = _percent(rest, _STOP_WORDS)
    if stop is not None or re.search(_NAMED_STOP, rest, _FLAGS):
        put("stop_loss_pct", stop, 2.0)
    take = _percent(rest, _TAKE_WORDS)
    if take is not None or re.search(_NAMED_TAKE, rest, _FLAGS):
        put("take_profit_pct", take, 5.0)
    volume = _volume_filter(text)
    if volume is not None:
        params["volume_multiple"] = volume
        match = re.search(
            rf"(\d{{1,3}})[- ]?(?:{_PERIOD_UNITS})s?\s+(?:average\s+)?volume", text, _FLAGS
        )
        put("volume_period", int(match[1]) if match else None, 20)
    return params, defaults


def _volume_filter(text: str) -> float | None:
    """A volume condition on entries; one that asks to *sell* on volume is not one."""
    for clause in _clauses(text):
        match = re.search(_VOLUME, clause, _FLAGS)
        if match is None or _is_sell_clause(clause):
            continue
        value = float(match[1] or match[2])
        if 0 < value <= 100:
            return value
    return None


def _is_sell_clause(clause: str) -> bool:
    sells = re.search(r"\bsell|\bexit|verkauf|vend|\bsalir|\bsortir", clause, _FLAGS)
    buys = re.search(r"\bbuy|\bentr|\bkauf|compra|achat|achète", clause, _FLAGS)
    return bool(sells) and not buys


def _clauses(text: str) -> list[str]:
    """The prompt's clauses in the user's words, fillers left out."""
    parts = [p.strip(" -*•'\"()") for p in _CLAUSE_BREAK.split(text)]
    return [p for p in parts if p and not _is_filler(p)]


def _is_filler(clause: str) -> bool:
    words = re.findall(r"[^\W\d_]+|\d+", clause.lower())
    if re.fullmatch(r"\s*\d{1,2}[.)]?\s*", clause):
        return True  # a list number: "1."
    return all(w in FILLER for w in words)


def _vocabulary(template: str, params: dict[str, Any], style: str | None, kept: str) -> list[str]:
    """Patterns of the phrases the chosen template implements."""
    words = list(TEMPLATE_WORDS[template])
    if template in ("sma", "ema", "macd"):
        words += [
            r"cross",
            r"kreuz",
            r"cruza",
            r"croise",
            r"\b(?:short|long|fast|slow)\w*\s+\w*\s*(?:ma|average|line)",
        ]
        words += [r"\bmas?\b", r"moving\s+averages?", r"signal\s+line"]
    if template in ("rsi", "dip", "bollinger"):
        words += [rf"(?:{_BELOW}|{_ABOVE})\s*\d", r"oversold|overbought|überverkauft|überkauft"]
        words += [r"sobreventa|sobrecompra|survendu|surachet\w*"]
    if template in ("bollinger", "squeeze"):
        words += [r"\bbands?\b", r"bänder|bandas?", r"std|standard\s+dev|sigma|desviaci|écart"]
        words += [*TEMPLATE_WORDS["bollinger"], r"break\w*"]
    if template == "dip":
        words += [rf"(?:{_MEAN})\b", r"\bdips?\b", rf"\d\s*%\s*(?:{_ABOVE}|{_BELOW})"]
    if template == "breakout":
        words += [r"\bhighs?\b", r"\blows?\b", r"\brange\b"]
    words += [rf"\d{{1,3}}\s*[- ]?(?:{_PERIOD_UNITS})s?\b", r"\d+\s*/\s*\d+"]
    if "stop_loss_pct" in params:
        words.append(_STOP_WORDS)
    if "take_profit_pct" in params:
        words.append(_TAKE_WORDS)
    if "trailing_stop_pct" in params:
        words.append(_TRAIL_WORDS)
    if "volume_multiple" in params:
        words.append(_VOLUME)
    if style is not None and style == kept:
        words += list(STYLE_WORDS[style])
    return words


def _sort_clauses(
    text: str, template: str, params: dict[str, Any], style: str | None, kept_style: str
) -> tuple[list[str], list[str]]:
    """Each clause is understood (the template does it) or ignored (reported back)."""
    vocabulary = _vocabulary(template, params, style, kept_style)
    foreign = [
        pattern
        for key, patterns in TEMPLATE_WORDS.items()
        if key != template
        and not (template == "squeeze" and key in ("bollinger", "breakout"))
        and not (template == "dip" and key == "sma")
        for pattern in patterns
    ]
    unwanted = list(UNSUPPORTED)
    if style is not None and style != kept_style:
        unwanted += list(STYLE_WORDS[style])
    if "trailing_stop_pct" not in params:
        unwanted.append(rf"(?:{_NUM}\s*%\s*)?(?:{_TRAIL_WORDS})(?:[^\d%.,;]{{0,12}}?{_NUM}\s*%)?")
    understood: list[str] = []
    ignored: list[str] = []
    for clause in _clauses(text):
        known = any(re.search(p, clause, _FLAGS) for p in vocabulary)
        problems = [m for p in unwanted if (m := re.search(p, clause, _FLAGS)) is not None]
        if not problems and not known:
            # Another template's words in a clause of their own: a combination we do not build.
            problems = [m for p in foreign if (m := re.search(p, clause, _FLAGS)) is not None]
        if known:
            problems += _foreign_phrases(clause, foreign, vocabulary)
        if problems and known:
            ignored += [m.group(0).strip() for m in problems]
            understood.append(clause)
        elif problems or not known:
            ignored.append(clause)
        else:
            understood.append(clause)
    unique: list[str] = []
    for phrase in ignored:
        if phrase and phrase not in unique:
            unique.append(phrase)
    return understood, unique


def _foreign_phrases(clause: str, foreign: list[str], vocabulary: list[str]) -> list[re.Match[str]]:
    """Other templates' words in an understood clause ("RSI plus MACD"), unless the chosen
    template's own words cover them ("MACD crossover", "exponential moving average")."""
    own = [m.span() for p in vocabulary for m in re.finditer(p, clause, _FLAGS)]
    found = []
    for pattern in foreign:
        for match in re.finditer(pattern, clause, _FLAGS):
            start, end = match.span()
            if not any(s < end and start < e for s, e in own):
                found.append(match)
    return found


# What the template provider can change in code it built (TemplateProvider.refine).
REFINEMENTS_SUPPORTED = (
    "make the stop trailing or add a trailing stop of N% (SMA, EMA and MACD crossovers), "
    "add a volume filter (optionally Nx the average volume), set a stop loss or take profit "
    "of N%, and remove the stop loss, take profit, trailing stop or volume filter"
)
_REMOVE = (
    r"\b(?:remove|drop|delete|without|no|disable|entfern\w*|ohne|quita\w*|sin|supprim\w*|sans)\b"
)
_VOLUME_WORDS = r"\bvolume|\bvolumen"
_CHANGES: dict[str, tuple[str, ...]] = {
    "trailing": ("trailing_stop_pct",),
    "stop": ("stop_loss_pct",),
    "take": ("take_profit_pct",),
    "volume": ("volume_multiple", "volume_period"),
}


@dataclass(frozen=True)
class Refined:
    """A template intent after a refinement instruction, and how the instruction was read."""

    intent: PromptIntent
    changed: bool
    understood: tuple[str, ...]
    ignored: tuple[str, ...]


def refine_intent(current: PromptIntent, instruction: str) -> Refined:
    """`current` changed as `instruction` asks, clause by clause: each clause is one of the
    REFINEMENTS_SUPPORTED (understood) or reported back in the user's words (ignored)."""
    assert current.template is not None
    params = dict(current.params)
    defaults = list(current.defaults)
    understood: list[str] = []
    ignored: list[str] = []
    for clause in _clauses(read_as(instruction)):
        if _refine_clause(current.template, params, defaults, clause):
            understood.append(clause)
        else:
            ignored.append(clause)
    intent = PromptIntent(
        template=current.template,
        strategy_type=current.strategy_type,
        params=params,
        ignored=(),
        understood=(*current.understood, *understood),
        defaults=tuple(dict.fromkeys(d for d in defaults if d in params)),
    )
    return Refined(intent, params != current.params, tuple(understood), tuple(ignored))


def _refine_clause(
    template: str, params: dict[str, float | int], defaults: list[str], clause: str
) -> bool:
    """Apply one clause to `params`; False when it asks for nothing the templates can do."""
    topics = [
        topic
        for topic, pattern in (
            ("trailing", _TRAIL_WORDS),
            ("volume", _VOLUME_WORDS),
            ("stop", _STOP_WORDS),
            ("take", _TAKE_WORDS),
        )
        if re.search(pattern, clause, _FLAGS)
    ]
    if "trailing" in topics and "stop" in topics and not re.search(_NAMED_STOP, clause, _FLAGS):
        topics.remove("stop")  # "make the stop trailing": the stop is the trailing one
    if not topics:
        return False
    if re.search(_REMOVE, clause, _FLAGS):
        for topic in topics:
            for name in _CHANGES[topic]:
                params.pop(name, None)
        return True
    if "trailing" in topics:
        if template not in REGIME_TEMPLATES:
            return False
        sized = re.search(_TRAILING, clause, _FLAGS)
        value = (sized[1] or sized[2]) if sized else None
        if value is not None:
            params["trailing_stop_pct"] = float(value)
        elif "stop_loss_pct" in params:
            params["trailing_stop_pct"] = params["stop_loss_pct"]  # the same stop, trailing
        else:
            params["trailing_stop_pct"] = 2.0
            defaults.append("trailing_stop_pct")
        params.pop("stop_loss_pct", None)  # a trailing stop replaces the fixed one
        topics.remove("trailing")
    for topic, words, default in (("stop", _STOP_WORDS, 2.0), ("take", _TAKE_WORDS, 5.0)):
        if topic in topics:
            name = _CHANGES[topic][0]
            value = _percent(clause, words)
            if value is None and name in params:
                continue  # named without a size: kept as it is
            params[name] = value if value is not None else default
            if value is None:
                defaults.append(name)
    if "volume" in topics:
        multiple = _volume_filter(clause)
        if multiple is None and _is_sell_clause(clause):
            return False
        params["volume_multiple"] = multiple if multiple is not None else 1.5
        if multiple is None:
            defaults.append("volume_multiple")
        match = re.search(
            rf"(\d{{1,3}})[- ]?(?:{_PERIOD_UNITS})s?\s+(?:average\s+)?volume", clause, _FLAGS
        )
        if match:
            params["volume_period"] = int(match[1])
        elif "volume_period" not in params:
            params["volume_period"] = 20
            defaults.append("volume_period")
    return True
