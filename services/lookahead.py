"""Proof of no look-ahead, on every backtest (freqtrade's lookahead- and recursive-analysis).

A backtest's full run calls the strategy bar by bar; its arrays hold nothing past the current
bar (services/backtesting.py), but inside one process clever code can reach anything in its
memory, so that is no proof. The proof: re-run the strategy on data that ends at a sample of
bars (every bar where it traded, plus a random sample), in a separate sandbox job whose
process never receives the later bars, and compare each signal with the full run's. A signal
that differs depended on bars it should not have seen (look-ahead bias). The same job also
re-runs some bars with their history shortened: a signal that changes then needs that much
warm-up (a warning, not a fault).

Three parts: `plan_checks` (server: which bars, which shortened histories), `run_checks`
(the job process: pure Python + numpy, no I/O) and `verdict_of` (server: compares the
untrusted job's signals with the full run's). `LookAheadVerdict` is what a backtest reports
and stores; optimisation results and walk-forward folds are to carry the same verdict (call
`verdict_of` on their runs), and `require_trustworthy` is the one check that refuses a
strategy with a biased backtest.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from services.backtesting import Trade
from services.errors import BadInput
from services.signals import ORDER_KEYS

# Histories tried when shortening: a signal that agrees with the full run from one of these
# lengths on has warmed up by then.
WARMUP_LENGTHS = (10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000)
MIN_CHECK_CALLS = 40
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
# A signal as the check compares it: what changes a trade (the action and its order values,
# services/signals.py's ORDER_KEYS); ("error", type name) too.
Compared = tuple[Any, ...]
_ERROR = "error"
_NO_ORDERS = (None,) * len(ORDER_KEYS)


@dataclass(frozen=True)
class CheckPlan:
    """The bars to re-run on truncated data; for some, shorter histories to try too."""

    bars: tuple[int, ...]  # ascending
    warmup: Mapping[int, tuple[int, ...]]  # bar -> history lengths to try (each < bar + 1)
    trade_bars: int  # how many of `bars` are bars where the backtest traded

    @property
    def last_bar(self) -> int:
        return self.bars[-1] if self.bars else -1

    def as_job(self) -> list[list[Any]]:
        return [[bar, list(self.warmup.get(bar, ()))] for bar in self.bars]


def traded_bars(trades: Sequence[Trade]) -> list[int]:
    """The bars whose signal the engine acted on: the bar before each fill by signal."""
    bars = set()
    for trade in trades:
        bars.add(trade.entry_bar - 1)
        if trade.exit_reason.startswith("signal"):
            bars.add(trade.exit_bar - 1)
    return sorted(bar for bar in bars if bar >= 0)


def check_budget(bar_count: int, check_pct: float) -> int:
    """Strategy calls the check may make: `check_pct` percent of the backtest's (one per
    bar), at least MIN_CHECK_CALLS; none when `check_pct` is 0 (the check is off)."""
    if check_pct <= 0:
        return 0
    return max(MIN_CHECK_CALLS, math.ceil(bar_count * check_pct / 100))


def plan_checks(bar_count: int, trades: Sequence[Trade], *, budget: int, seed: int) -> CheckPlan:
    """At most `budget` strategy calls: every traded bar (a random half of the budget of them
    when there are more), a random tenth of the budget of other bars, and with what is left
    shortened histories at the random bars and as many traded ones. The last bar is never a
    look-ahead check (nothing follows it). A check is one call; MIN_CHECK_CALLS or more
    leave room for every traded bar of a few dozen trades."""
    rng = random.Random(seed)
    traded = traded_bars(trades)
    if len(traded) > budget // 2:
        traded = sorted(rng.sample(traded, budget // 2))
    others = sorted(set(range(max(0, bar_count - 1))) - set(traded))
    sampled = sorted(rng.sample(others, min(max(1, budget // 10) if budget else 0, len(others))))
    left = budget - len(traded) - len(sampled)
    warmup: dict[int, tuple[int, ...]] = {}
    # Traded bars first: their signals are buys and sells, which a short history changes.
    for bar in rng.sample(traded, min(len(sampled), len(traded))) + sampled:
        lengths = tuple(length for length in WARMUP_LENGTHS if length < bar + 1)
        if lengths and len(lengths) <= left:
            warmup[bar] = lengths
            left -= len(lengths)
    return CheckPlan(
        bars=tuple(sorted(set(traded) | set(sampled))), warmup=warmup, trade_bars=len(traded)
    )


def _compared(signal: Mapping[str, Any] | None) -> Compared:
    if signal is None or signal.get("action") == "hold":
        return ("hold", *_NO_ORDERS)
    meta = signal.get("metadata") or {}
    return (str(signal["action"]), *[meta.get(key) for key in ORDER_KEYS])


def run_checks(
    columns: dict[str, np.ndarray],
    checks: list[list[Any]],
    call: Callable[[dict[str, Any]], Mapping[str, Any]],
    labels: Mapping[str, Any],
) -> list[list[Any]]:
    """In the job process: the strategy's signal at each planned bar on data that ends there
    (and on each shortened history). `columns` are the only copy of the bars in the process
    and are overwritten with NaN past each bar before it runs, latest bar first, so no run
    can reach a later bar by any route. `call` runs the strategy in a fresh module namespace
    (no cache survives from one run to the next) and returns its normalised signal."""
    results: list[list[Any]] = []
    wiped_from = min((len(array) for array in columns.values()), default=0)
    for bar, lengths in sorted(checks, key=lambda check: -int(check[0])):
        bar = int(bar)
        for array in columns.values():
            array[bar + 1 : wiped_from] = math.nan
        wiped_from = min(wiped_from, bar + 1)
        for length in (0, *lengths):
            market_data: dict[str, Any] = dict(labels)
            for name, array in columns.items():
                if length == 0:  # the whole prefix: a view (its base is wiped past `bar`)
                    window = array[: bar + 1]
                else:  # a shortened history: its own memory, no .base to the earlier bars
                    window = array[bar + 1 - int(length) : bar + 1].copy()
                window.flags.writeable = False
                market_data[name] = window
            try:
                compared: list[Any] = list(_compared(call(market_data)))
            except Exception as exc:  # the strategy's failure on this data: a difference
                compared = [_ERROR, type(exc).__name__, *_NO_ORDERS[1:]]
            results.append([bar, length, compared])
    return results


@dataclass(frozen=True)
class LookAheadVerdict:
    """What the checks found; `as_json` is the form stored with the metrics."""

    checked_bars: tuple[int, ...]
    trade_bars_checked: int
    differences: tuple[dict[str, Any], ...]  # look-ahead: {"bar", "full", "truncated"}
    warmup_bars_needed: int | None
    differing_bars: tuple[int, ...] = ()  # all of them (`differences` shows the first ones)
    warmup_differences: tuple[dict[str, Any], ...] = ()  # {"bar", "history", ...}
    warmup_lengths_tried: tuple[int, ...] = ()
    check_seconds: float = 0.0
    error: str | None = None  # the check job failed as a whole (counts as a difference)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bias(self) -> bool:
        return bool(self.differing_bars) or self.error is not None

    @property
    def bars(self) -> list[int]:
        if self.error is not None and not self.differing_bars:
            return list(self.checked_bars)
        return list(self.differing_bars)

    @property
    def trustworthy(self) -> bool:
        return not self.bias

    @property
    def warmup_warning(self) -> str | None:
        tried = self.warmup_lengths_tried
        if not tried or not self.warmup_differences:
            return None
        if self.warmup_bars_needed is None:
            return (
                f"signals still changed with {max(tried):,} bars of history: an indicator that "
                "never warms up (over the whole series?); early and late bars trade differently"
            )
        return (
            f"signals need {self.warmup_bars_needed:,} bars of history before they stop "
            "changing: the first bars of a backtest trade on indicators still warming up"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "lookAheadBias": self.bias,
            "lookAheadBars": self.bars,
            "trustworthy": self.trustworthy,
            "differences": list(self.differences),
            "checkError": self.error,
            "checkedBars": len(self.checked_bars),
            "tradeBarsChecked": self.trade_bars_checked,
            "checkSeconds": self.check_seconds,
            "warmupBarsNeeded": self.warmup_bars_needed,
            "warmupWarning": self.warmup_warning,
            "warmupDifferences": list(self.warmup_differences),
            **self.extra,
        }


def _checked(value: object) -> Compared | None:
    """One untrusted compared signal, or None when it is not one (counts as a difference)."""
    if type(value) is not list or len(value) != 1 + len(ORDER_KEYS):
        return None
    action, *orders = value
    if action == _ERROR and isinstance(orders[0], str):
        return (_ERROR, orders[0][:100], *_NO_ORDERS[1:])
    if action not in ("buy", "sell", "hold"):
        return None
    for level in orders:
        if level is not None and not (type(level) is float and math.isfinite(level)):
            return None
    return (action, *orders)


def _shown(signal: Compared | None) -> str:
    if signal is None:
        return "malformed"
    action, *orders = signal
    if action == _ERROR:
        return f"error ({orders[0]})"
    levels = [f"{name} {value!r}" for name, value in zip(ORDER_KEYS, orders, strict=True) if value]
    return action + (f" ({', '.join(levels)})" if levels else "")


MAX_REPORTED = 50


def verdict_of(
    plan: CheckPlan,
    full_signals: Sequence[Mapping[str, Any] | None],
    results: object,
    *,
    check_seconds: float,
) -> LookAheadVerdict:
    """Compare the check job's signals (untrusted: anything missing or malformed counts as a
    difference) with the full run's checked signals."""
    found: dict[tuple[int, int], Compared | None] = {}
    expected = len(plan.bars) + sum(len(lengths) for lengths in plan.warmup.values())
    if isinstance(results, list):
        for row in results[: 2 * expected]:
            if type(row) is list and len(row) == 3 and type(row[0]) is int and type(row[1]) is int:
                found.setdefault((row[0], row[1]), _checked(row[2]))
    differences: list[dict[str, Any]] = []
    for bar in plan.bars:
        full = _compared(full_signals[bar])
        truncated = found.get((bar, 0))
        if truncated != full:
            differences.append({"bar": bar, "full": _shown(full), "truncated": _shown(truncated)})
    warm_differences: list[dict[str, Any]] = []
    failing: set[int] = set()
    tried: set[int] = set()
    for bar, lengths in plan.warmup.items():
        full = _compared(full_signals[bar])
        for length in lengths:
            tried.add(length)
            shortened = found.get((bar, length))
            if shortened != full:
                failing.add(length)
                warm_differences.append(
                    {
                        "bar": bar,
                        "history": length,
                        "full": _shown(full),
                        "shortened": _shown(shortened),
                    }
                )
    needed: int | None = None
    if tried:
        settled = [length for length in sorted(tried) if length > max(failing, default=0)]
        needed = settled[0] if settled else None
    return LookAheadVerdict(
        checked_bars=plan.bars,
        trade_bars_checked=plan.trade_bars,
        differences=tuple(differences[:MAX_REPORTED]),
        warmup_bars_needed=needed,
        differing_bars=tuple(d["bar"] for d in differences),
        warmup_differences=tuple(
            sorted(warm_differences, key=lambda d: (-d["history"], d["bar"]))[:MAX_REPORTED]
        ),
        warmup_lengths_tried=tuple(sorted(tried)),
        check_seconds=check_seconds,
    )


def failed_verdict(plan: CheckPlan, message: str, check_seconds: float) -> LookAheadVerdict:
    """The check job itself failed (timed out, ran out of memory, broke a rule) where the full
    run did not: the strategy behaves differently without the later bars."""
    return LookAheadVerdict(
        checked_bars=plan.bars,
        trade_bars_checked=plan.trade_bars,
        differences=(),
        warmup_bars_needed=None,
        check_seconds=check_seconds,
        error=message,
    )


class HasPerformance(Protocol):
    performance_metrics: dict[str, Any]


def require_trustworthy(strategy: HasPerformance, what: str = "strategy") -> None:
    """Refuse (BAD_USER_INPUT, reason LOOK_AHEAD_BIAS) a strategy whose stored backtest
    showed look-ahead bias. Running it live (runStrategy) calls this first; optimising and
    sharing, when they exist, are to call it too."""
    performance = strategy.performance_metrics
    if isinstance(performance, Mapping) and performance.get("trustworthy") is False:
        bars = performance.get("lookAheadBars") or []
        shown = ", ".join(str(bar) for bar in list(bars)[:10])
        raise BadInput(
            f"This {what}'s last backtest showed look-ahead bias (its signals changed when the "
            f"bars after them were removed{': bars ' + shown if shown else ''}): fix its code "
            "and backtest it again",
            reason="LOOK_AHEAD_BIAS",
        )
