"""The backtest engine: one strategy, one instrument, bar by bar, no look-ahead.

Two halves: `collect_signals` calls the strategy (in the sandbox's job process, so this module
is pure Python + numpy and does no I/O) and `simulate`, the engine, runs in the server on
signals it has checked itself (`unpack_signals`), so no number we store comes from the
strategy's process. The strategy at bar i sees read-only views `buf[: i + 1]` of buffers
filled one bar at a time (their bytes past bar i are NaN: no attribute reaches a later bar);
its order fills at bar i + 1's open. That alone proves nothing (code in a process can reach
all of its memory): services/lookahead.py re-runs sampled bars on truncated data to prove it.
Statistics follow backtesting.py's definitions (see `compute_metrics`), so results can be
cross-checked.

Position rules (docs/backtesting.md has them for users):
  * one position at a time; an entry spends `size_fraction` of the cash (default: all of it)
    or buys `units`, never more than the cash affords after commission;
  * long-only by default: buy opens a long when flat, sell closes it;
  * with allow_short, sell opens a short when flat and buy closes it. A signal against an
    open position only closes it (no reversal in one order); a signal in the direction of
    the open position is ignored;
  * market fills (entries, exits by signal, stops, end of data) move against the trader by
    `slippage_bps`; a take-profit is a limit order and fills at its price or better;
  * stops and targets come from the metadata of the signal that opened the position:
    absolute prices, or percents measured from the fill; a trailing stop follows the best
    price since the fill (the highest high of the bars before, for a long). They are
    checked intrabar from the fill bar on; if stop and target are both touched in one bar
    the stop counts (the pessimistic choice), and a gap through a level fills at the open;
  * a position still open on the last bar is closed at its close ("end of data"; its open
    with end_of_data_fill="open", as backtesting.py's finalize_trades does);
  * equity is marked to market at every close; if it reaches zero or below (only possible
    for shorts) the position is liquidated at that close ("margin call") and trading stops.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from services.market_data import Bars
from services.signals import ORDER_KEYS, InvalidSignal, normalise_signal

Strategy = Callable[[dict[str, Any], dict[str, Any]], object]
ProgressCallback = Callable[[int, int], None]

SECONDS_PER_YEAR = 365.25 * 86_400
DEFAULT_PERIODS_PER_YEAR = 252.0

END_OF_DATA_FILLS = ("close", "open")

_FLAT, _LONG, _SHORT = 0, 1, -1
_OPEN_LONG, _OPEN_SHORT, _CLOSE = 1, -1, 2


@dataclass(frozen=True)
class BacktestOptions:
    """Account settings. commission_pct is a percent of traded value, paid on entry and exit;
    slippage_bps moves every market fill against the trader (buys up, sells down) by that
    many hundredths of a percent; whole_units rounds each entry down to whole units (as
    backtesting.py's `Backtest` does; its `FractionalBacktest` does not); end_of_data_fill
    says where a position still open after the last bar is closed: at its "close" (ours) or
    its "open" (backtesting.py's `finalize_trades=True`)."""

    initial_cash: float = 10_000.0
    commission_pct: float = 0.1
    allow_short: bool = False
    slippage_bps: float = 0.0
    whole_units: bool = False
    end_of_data_fill: str = "close"

    def check(self) -> None:
        """Raise ValueError naming the first setting that cannot be simulated."""
        cash = self.initial_cash
        if isinstance(cash, bool) or not isinstance(cash, int | float):
            raise ValueError(f"initial_cash must be a number; got {type(cash).__name__}")
        if not (math.isfinite(cash) and cash > 0):
            raise ValueError(f"initial_cash must be a finite number above 0; got {cash!r}")
        fee = self.commission_pct
        if isinstance(fee, bool) or not isinstance(fee, int | float):
            raise ValueError(f"commission_pct must be a number; got {type(fee).__name__}")
        if not 0 <= fee < 100:  # also rejects NaN
            raise ValueError(f"commission_pct must be at least 0 and below 100; got {fee!r}")
        for name in ("allow_short", "whole_units"):
            flag = getattr(self, name)
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be true or false; got {type(flag).__name__}")
        slip = self.slippage_bps
        if isinstance(slip, bool) or not isinstance(slip, int | float):
            raise ValueError(f"slippage_bps must be a number; got {type(slip).__name__}")
        if not 0 <= slip < 10_000:  # also rejects NaN; 10,000 bps would be 100%
            raise ValueError(f"slippage_bps must be at least 0 and below 10000; got {slip!r}")
        if self.end_of_data_fill not in END_OF_DATA_FILLS:
            raise ValueError(
                f"end_of_data_fill must be one of {', '.join(END_OF_DATA_FILLS)}; "
                f"got {self.end_of_data_fill!r}"
            )


class StrategyFailure(Exception):
    """The strategy raised, or returned something invalid, at `bar_index`.

    `original` is the strategy's exception (also `__cause__`, with its traceback), so the
    sandbox can point at the user's line.
    """

    def __init__(self, bar_index: int, original: BaseException) -> None:
        self.bar_index = bar_index
        self.original = original
        super().__init__(f"at bar {bar_index}: {type(original).__name__}: {original}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.bar_index, self.original))


def run_backtest(
    strategy: Strategy,
    bars: Bars,
    params: Mapping[str, Any],
    options: BacktestOptions,
    *,
    on_progress: ProgressCallback | None = None,
    progress_every: int = 500,
) -> BacktestReport:
    """Simulate `strategy` over `bars`: its statistics, trades and equity curve.

    In one process: `collect_signals` then `simulate`. The sandbox splits the two, the
    first in the untrusted job process and the second in the server (see
    services/sandbox/sandbox.py), so nothing a strategy computes becomes a number we store.
    Raises StrategyFailure (with bar index and cause) when the strategy raises or returns an
    invalid value, ValueError for bad options. Exceptions from `on_progress` pass through
    untouched, so a caller can use it to cancel.
    """
    options.check()
    signals = collect_signals(
        strategy, bars, params, on_progress=on_progress, progress_every=progress_every
    )
    return simulate(bars, signals, options)


def collect_signals(
    strategy: Strategy,
    bars: Bars,
    params: Mapping[str, Any],
    *,
    on_progress: ProgressCallback | None = None,
    progress_every: int = 500,
) -> list[dict[str, Any] | None]:
    """Call `strategy` once per bar on the prefix it may see; its normalised signals, None
    for a hold (a hold's confidence, reason and metadata change nothing in a backtest).

    The only part of a backtest that runs the strategy's code: the sandbox's job process
    does this and sends `pack_signals` of the result.
    """
    if not callable(strategy):
        raise TypeError(f"strategy must be callable; got {type(strategy).__name__}")
    if not isinstance(bars, Bars):
        raise TypeError(f"bars must be Bars; got {type(bars).__name__}")
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict; got {type(params).__name__}")
    if isinstance(progress_every, bool) or not isinstance(progress_every, int):
        raise ValueError("progress_every must be a positive integer")
    if progress_every < 1:
        raise ValueError(f"progress_every must be a positive integer; got {progress_every}")
    n = len(bars)
    if n == 0:
        raise ValueError("bars is empty: at least 1 bar is needed")
    base_params = dict(params)
    symbol, timeframe = bars.symbol, bars.timeframe
    # The strategy's arrays are views of buffers filled one bar at a time, so what they hold
    # past the current bar (through .base, the buffer protocol, ctypes...) is NaN, never a
    # later bar. Six float stores per bar, from lists (cheaper than numpy scalars).
    o_buf, h_buf, l_buf, c_buf, v_buf = (np.full(n, math.nan) for _ in range(5))
    o_src, h_src, l_src = bars.open.tolist(), bars.high.tolist(), bars.low.tolist()
    c_src, v_src = bars.close.tolist(), bars.volume.tolist()
    o_arr, h_arr, l_arr, c_arr, v_arr = map(_read_only, (o_buf, h_buf, l_buf, c_buf, v_buf))
    has_time = bars.timestamp is not None
    t_buf = np.full(n if has_time else 0, math.nan)
    t_src = bars.timestamp.tolist() if bars.timestamp is not None else []
    t_arr = _read_only(t_buf)
    signals: list[dict[str, Any] | None] = [None] * n
    next_progress = progress_every
    for i in range(n):
        end = i + 1
        o_buf[i], h_buf[i], l_buf[i] = o_src[i], h_src[i], l_src[i]
        c_buf[i], v_buf[i] = c_src[i], v_src[i]
        market_data: dict[str, Any] = {
            "open": o_arr[:end],
            "high": h_arr[:end],
            "low": l_arr[:end],
            "close": c_arr[:end],
            "volume": v_arr[:end],
            "symbol": symbol,
            "timeframe": timeframe,
        }
        if has_time:
            t_buf[i] = t_src[i]
            market_data["timestamp"] = t_arr[:end]
        try:
            signal = normalise_signal(strategy(market_data, dict(base_params)))
        except (Exception, SystemExit) as exc:  # sys.exit() in a strategy is its bug too
            raise StrategyFailure(i, exc) from exc
        if signal["action"] != "hold":
            signals[i] = signal
        if end == next_progress:
            next_progress += progress_every
            if on_progress is not None:
                on_progress(end, n)
    if on_progress is not None and n % progress_every:
        on_progress(n, n)
    return signals


def _read_only(buffer: np.ndarray) -> np.ndarray:
    view = buffer.view()
    view.flags.writeable = False
    return view


# A signal stream travels from the job process as one action letter per bar plus, for each
# buy or sell, an index into a table of the distinct [confidence, reason, orders], where
# orders holds the signal's order instructions (services/signals.py's ORDER_KEYS) that are set.
_LETTER_OF = {"hold": "h", "buy": "b", "sell": "s"}
_ACTION_OF_LETTER = {letter: action for action, letter in _LETTER_OF.items()}
# What a stream may cost per bar on top of the sandbox's output cap: the letter and an index
# (at most 7 characters) always fit; the rest is room for varying reasons.
STREAM_BYTES_PER_BAR = 64
_ORDER_KEY_SET = frozenset(ORDER_KEYS)


def pack_signals(signals: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The compact, JSON-safe form of `collect_signals`' output (see `unpack_signals`)."""
    letters: list[str] = []
    details: list[int] = []
    table: list[list[Any]] = []
    index_of: dict[tuple[Any, ...], int] = {}
    for signal in signals:
        if signal is None:
            letters.append("h")
            continue
        letters.append(_LETTER_OF[signal["action"]])
        meta = signal["metadata"]
        orders = tuple((key, meta[key]) for key in ORDER_KEYS if meta.get(key) is not None)
        row = (signal["confidence"], signal["reason"], orders)
        index = index_of.get(row)
        if index is None:
            index = index_of[row] = len(table)
            table.append([row[0], row[1], dict(orders)])
        details.append(index)
    return {"actions": "".join(letters), "details": details, "table": table}


class MalformedSignalStream(ValueError):
    """A packed signal stream that no honest job process sends."""


def unpack_signals(packed: object, bar_count: int) -> list[dict[str, Any] | None]:
    """Check a packed stream from the untrusted job process and return one signal per bar.

    Every buy or sell goes through `normalise_signal` again, here in the server, so the
    engine only ever sees signals that obey the contract: a bad one raises StrategyFailure
    naming its bar, a stream of the wrong shape MalformedSignalStream.
    """
    if not isinstance(packed, dict):
        raise MalformedSignalStream("the signal stream is not an object")
    actions, details, table = packed.get("actions"), packed.get("details"), packed.get("table")
    if type(actions) is not str or len(actions) != bar_count:
        raise MalformedSignalStream(f"the signal stream does not have {bar_count} actions")
    if type(details) is not list or type(table) is not list:
        raise MalformedSignalStream("the signal stream has no details or no table")
    signals: list[dict[str, Any] | None] = [None] * bar_count
    checked: dict[tuple[str, int], dict[str, Any]] = {}
    rows = len(table)
    position = 0
    for bar, letter in enumerate(actions):
        if letter == "h":
            continue
        action = _ACTION_OF_LETTER.get(letter)
        if action is None:
            raise MalformedSignalStream(f"unknown action {letter!r} at bar {bar}")
        if position >= len(details):
            raise MalformedSignalStream("the signal stream has fewer details than signals")
        index = details[position]
        position += 1
        if type(index) is not int or not 0 <= index < rows:
            raise MalformedSignalStream(f"bad table index at bar {bar}")
        key = (action, index)
        signal = checked.get(key)
        if signal is None:
            signal = checked[key] = _checked_row(action, table[index], bar)
        signals[bar] = signal
    if position != len(details):
        raise MalformedSignalStream("the signal stream has more details than signals")
    return signals


def _checked_row(action: str, row: object, bar: int) -> dict[str, Any]:
    if type(row) is not list or len(row) != 3 or type(row[2]) is not dict:
        raise MalformedSignalStream(f"bad table row for bar {bar}")
    confidence, reason, orders = row
    if not orders.keys() <= _ORDER_KEY_SET:
        raise MalformedSignalStream(f"unknown order keys in the table row for bar {bar}")
    raw = {"action": action, "confidence": confidence, "reason": reason, "metadata": orders}
    try:
        return normalise_signal(raw)
    except InvalidSignal as exc:
        raise StrategyFailure(bar, exc) from exc


@dataclass(frozen=True)
class Trade:
    """One round trip. Bars are indices into the backtest's bars; times are their unix
    seconds (None when the bars have no timestamps). Prices are fills, slippage included."""

    entry_bar: int
    exit_bar: int
    entry_time: float | None
    exit_time: float | None
    side: str  # "long" or "short"
    entry_price: float
    exit_price: float
    size: float  # units held
    pnl: float  # in cash, after commission and slippage
    return_pct: float  # pnl over the entry value, in percent
    commission: float  # paid on entry and exit
    slippage: float  # what slippage cost on entry and exit, in cash
    stop_loss_price: float | None  # the stop as placed at the fill (before any trailing)
    take_profit_price: float | None
    trailing_stop_pct: float | None
    entry_reason: str
    exit_reason: str  # "signal: ...", "stop loss", "trailing stop", "take profit", ...


@dataclass(frozen=True)
class EquityPoint:
    """Equity marked at a bar's close."""

    bar: int
    timestamp: float | None  # unix seconds; None when the bars have no timestamps
    equity: float


@dataclass(frozen=True)
class BacktestStats:
    """A backtest's statistics, with backtesting.py's definitions (see `compute_metrics`);
    None where undefined or not finite. Percents are percent; drawdowns are negative."""

    start_equity: float
    final_equity: float | None
    equity_peak: float | None
    total_return_pct: float | None
    buy_and_hold_return_pct: float | None
    buy_and_hold_max_drawdown_pct: float | None
    excess_return_pct: float | None  # total return minus buy-and-hold's, in points
    cagr_pct: float | None
    annual_return_pct: float | None
    volatility_pct: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    calmar_ratio: float | None
    max_drawdown_pct: float | None
    avg_drawdown_pct: float | None
    max_drawdown_duration_bars: int
    avg_drawdown_duration_bars: float | None
    num_trades: int
    win_rate_pct: float | None
    best_trade_pct: float | None
    worst_trade_pct: float | None
    avg_trade_pct: float | None
    profit_factor: float | None
    expectancy: float | None
    expectancy_pct: float | None
    sqn: float | None
    avg_trade_duration_bars: float | None
    max_trade_duration_bars: int | None
    exposure_pct: float | None
    commissions_paid: float | None
    slippage_paid: float | None
    periods_per_year: float | None
    bar_spacing_seconds: float | None
    annualisation: str
    years: float | None


@dataclass(frozen=True)
class BacktestReport:
    """What `simulate` returns: statistics, trades and the equity at every bar's close.

    `look_ahead` is set by the sandbox after its look-ahead check (services/lookahead.py):
    its verdict as stored JSON, None when no check ran.
    """

    stats: BacktestStats
    trades: list[Trade]
    equity: list[float]  # at each bar's close
    timestamps: list[float] | None  # each bar's unix seconds, when the bars have them
    look_ahead: dict[str, Any] | None = None

    @property
    def bars(self) -> int:
        return len(self.equity)

    def equity_points(self, max_points: int | None = None) -> list[EquityPoint]:
        """The equity curve, whole or at most `max_points` points (see `curve_bars`)."""
        times = self.timestamps
        return [
            EquityPoint(bar, times[bar] if times else None, self.equity[bar])
            for bar in curve_bars(self.equity, max_points)
        ]

    def trade_slice(self, limit: int | None = None, offset: int = 0) -> list[Trade]:
        """The trades from `offset`, at most `limit` of them (all when None)."""
        if offset < 0:
            raise ValueError(f"offset must be at least 0; got {offset}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be at least 0; got {limit}")
        return self.trades[offset : None if limit is None else offset + limit]

    def equity_curve(self, max_points: int | None = None) -> list[float]:
        if max_points is None or max_points >= self.bars:
            return list(self.equity)
        return [self.equity[bar] for bar in curve_bars(self.equity, max_points)]


def curve_bars(equity: list[float], max_points: int | None) -> list[int]:
    """The bars a curve of at most `max_points` points (at least 2) keeps: every bar when
    there are no more than that; else the first and the last, and of the bars between, cut
    into (max_points - 2) // 2 equal runs, each run's lowest and highest point, so every
    peak and trough deeper than a run survives (min-max decimation, as chart libraries do).
    ValueError for a `max_points` below 2."""
    count = len(equity)
    if max_points is None or max_points >= count:
        return list(range(count))
    if max_points < 2:
        raise ValueError(f"maxPoints must be at least 2; got {max_points}")
    runs = (max_points - 2) // 2
    kept = {0, count - 1}
    if runs:
        values = np.asarray(equity[1:-1], dtype=np.float64)
        edges = np.linspace(0, len(values), runs + 1).round().astype(np.int64)
        for start, end in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
            if end > start:
                run = values[start:end]
                kept.add(1 + start + int(run.argmin()))
                kept.add(1 + start + int(run.argmax()))
    return sorted(kept)


def camel_case_json(record: Any) -> dict[str, Any]:
    """A stats or trade record as stored JSON (performanceMetrics, the API's JSON fields,
    the CLI's --json): its field names in camelCase, the one naming rule for both."""
    return {_camel(item.name): getattr(record, item.name) for item in fields(record)}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def report_json(report: BacktestReport) -> dict[str, Any]:
    """The JSON form of a report: what the CLI's --json prints and the API's JSON fields
    carry. The metrics say whether they are trustworthy when the look-ahead check ran."""
    out: dict[str, Any] = {
        "metrics": metrics_json(report),
        "equityCurve": list(report.equity),
        "trades": [camel_case_json(trade) for trade in report.trades],
        "bars": report.bars,
    }
    if report.look_ahead is not None:
        out["lookAhead"] = report.look_ahead
    return out


def trades_csv(trades: list[Trade]) -> str:
    """The trades as CSV text with a header row: the JSON form's camelCase names and values
    (times in unix seconds, empty for None), one trade a line, oldest first."""
    buffer = io.StringIO()
    names = [item.name for item in fields(Trade)]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_camel(name) for name in names])
    for trade in trades:
        writer.writerow(["" if (v := getattr(trade, name)) is None else v for name in names])
    return buffer.getvalue()


def metrics_json(report: BacktestReport) -> dict[str, Any]:
    """The statistics as JSON; with `trustworthy` and `lookAheadBias` once the look-ahead
    check ran, so every reader of the numbers (stored performanceMetrics too) sees them."""
    metrics = camel_case_json(report.stats)
    if report.look_ahead is not None:
        metrics["trustworthy"] = report.look_ahead.get("trustworthy", True)
        metrics["lookAheadBias"] = bool(report.look_ahead.get("lookAheadBias", False))
    return metrics


_SIDE_NAME = {_LONG: "long", _SHORT: "short"}


def simulate(
    bars: Bars, signals: list[dict[str, Any] | None], options: BacktestOptions
) -> BacktestReport:
    """The engine: fills, stops, trades, equity and metrics from checked signals (one per
    bar, None for hold; see services/signals.py for the order keys of their metadata).
    Trusted code only; every number it returns is computed here. A pure function of its
    arguments: optimisation and walk-forward call it on slices of bars."""
    options.check()
    n = len(bars)
    if n == 0:
        raise ValueError("bars is empty: at least 1 bar is needed")
    if len(signals) != n:
        raise ValueError(f"{len(signals)} signals for {n} bars")
    last = n - 1
    fee = float(options.commission_pct) / 100.0
    slip = float(options.slippage_bps) / 10_000.0
    allow_short = options.allow_short
    whole_units = options.whole_units
    exit_at_open = options.end_of_data_fill == "open"
    ts_arr = bars.timestamp
    # Python floats for the scalar work: indexing a list is several times cheaper than numpy.
    opens, highs, lows = bars.open.tolist(), bars.high.tolist(), bars.low.tolist()
    closes = bars.close.tolist()
    times: list[float] | None = ts_arr.tolist() if ts_arr is not None else None

    cash = float(options.initial_cash)
    equity = [0.0] * n
    trades: list[Trade] = []
    side = _FLAT
    units = entry_price = entry_fee = entry_slip = 0.0
    entry_bar = 0
    entry_reason = ""
    stop: float | None = None  # the fixed stop
    target: float | None = None
    trail_pct: float | None = None
    extreme = 0.0  # the highest high (long) or lowest low (short) since the fill
    pending = 0
    pending_signal: dict[str, Any] = {}
    bankrupt_at = -1

    def close_position(bar: int, quoted: float, reason: str, slipped: bool = True) -> None:
        """Exit at `quoted`, moved against us by the slippage unless `slipped` is False (a
        take-profit is a limit order: it fills at its price or better)."""
        nonlocal cash, side
        if side == _LONG:
            price = quoted * (1.0 - slip) if slipped else quoted
            exit_fee = units * price * fee
            cash += units * price - exit_fee
            gross = units * (price - entry_price)
        else:
            price = quoted * (1.0 + slip) if slipped else quoted
            exit_fee = units * price * fee
            cash -= units * price + exit_fee
            gross = units * (entry_price - price)
        pnl = gross - entry_fee - exit_fee
        trades.append(
            Trade(
                entry_bar=entry_bar,
                exit_bar=bar,
                entry_time=times[entry_bar] if times is not None else None,
                exit_time=times[bar] if times is not None else None,
                side=_SIDE_NAME[side],
                entry_price=entry_price,
                exit_price=price,
                size=units,
                pnl=pnl,
                return_pct=pnl / (units * entry_price) * 100.0,
                commission=entry_fee + exit_fee,
                slippage=entry_slip + units * abs(quoted - price),
                stop_loss_price=stop,
                take_profit_price=target,
                trailing_stop_pct=trail_pct,
                entry_reason=entry_reason,
                exit_reason=reason,
            )
        )
        side = _FLAT

    for i in range(n):
        if not i & 1023:
            time.sleep(0)  # hand the GIL over: the server's event loop runs beside the engine
        if pending:
            quoted = opens[i]
            if pending == _CLOSE:
                close_position(i, quoted, "signal: " + pending_signal["reason"])
            else:
                price = quoted * (1.0 + slip) if pending == _OPEN_LONG else quoted * (1.0 - slip)
                meta = pending_signal["metadata"]
                size = _order_units(cash, price, fee, meta, whole_units)
                if size > 0:
                    side = pending
                    units = size
                    entry_fee = units * price * fee
                    entry_slip = units * abs(price - quoted)
                    if side == _LONG:
                        cash -= units * price + entry_fee
                    else:
                        cash += units * price - entry_fee
                    entry_price = extreme = price
                    entry_bar = i
                    entry_reason = pending_signal["reason"]
                    stop, target = _levels(side, price, meta)
                    trail_pct = meta.get("trailing_stop_pct")
            pending = 0

        if side:
            if side == _LONG:
                level, reason = stop, "stop loss"
                if trail_pct is not None:
                    trailing = extreme * (1.0 - trail_pct / 100.0)
                    if level is None or trailing > level:
                        level, reason = trailing, "trailing stop"
                if level is not None and lows[i] <= level:
                    close_position(i, min(opens[i], level), reason)
                elif target is not None and highs[i] >= target:
                    close_position(i, max(opens[i], target), "take profit", slipped=False)
                elif highs[i] > extreme:
                    extreme = highs[i]
            else:
                level, reason = stop, "stop loss"
                if trail_pct is not None:
                    trailing = extreme * (1.0 + trail_pct / 100.0)
                    if level is None or trailing < level:
                        level, reason = trailing, "trailing stop"
                if level is not None and highs[i] >= level:
                    close_position(i, max(opens[i], level), reason)
                elif target is not None and lows[i] <= target:
                    close_position(i, min(opens[i], target), "take profit", slipped=False)
                elif lows[i] < extreme:
                    extreme = lows[i]
            if side and i == last:
                close_position(i, opens[i] if exit_at_open else closes[i], "end of data")

        if side == _LONG:
            mark = cash + units * closes[i]
        elif side == _SHORT:
            mark = cash - units * closes[i]
            if mark <= 0:
                close_position(i, closes[i], "margin call")
                mark = cash
        else:
            mark = cash
        equity[i] = mark
        if mark <= 0 and side == _FLAT and cash <= 0:
            bankrupt_at = i
            break

        signal = signals[i]
        if signal is None:
            continue
        action = signal["action"]
        if action != "hold" and i != last:
            if side == _FLAT:
                if action == "buy":
                    pending = _OPEN_LONG
                elif allow_short:
                    pending = _OPEN_SHORT
            elif (side == _LONG) == (action == "sell"):  # the opposite side's action
                pending = _CLOSE
            if pending:
                pending_signal = signal
                if pending != _CLOSE:
                    _check_levels(i, pending, signal["metadata"], closes[i])

    if bankrupt_at >= 0:
        for j in range(bankrupt_at + 1, n):
            equity[j] = cash

    stats = compute_metrics(equity, trades, bars, float(options.initial_cash))
    return BacktestReport(stats=stats, trades=trades, equity=equity, timestamps=times)


def _order_units(
    cash: float, price: float, fee: float, metadata: dict[str, Any], whole_units: bool
) -> float:
    """Units an entry buys (or sells short) at `price`: `units` if the signal gives them,
    else `size_fraction` (default 1) of what the cash affords after commission; never more
    than the cash affords; rounded down to whole units when asked. 0: no trade."""
    if not cash > 0:
        return 0.0
    affordable = cash / (price * (1.0 + fee))
    wanted = metadata.get("units")
    if wanted is None:
        fraction = metadata.get("size_fraction")
        wanted = affordable if fraction is None else affordable * fraction
    size = min(wanted, affordable)
    if whole_units:
        size = float(math.floor(size))
    # No position so small or large that its value is 0 or inf.
    return size if 0.0 < size * price < math.inf else 0.0


def _levels(side: int, fill: float, metadata: dict[str, Any]) -> tuple[float | None, float | None]:
    """The stop and target of a position filled at `fill`: the signal's percents measured
    from the fill, or else the absolute prices it gave."""
    stop = metadata.get("stop_loss_price")
    target = metadata.get("take_profit_price")
    stop_pct = metadata.get("stop_loss_pct")
    target_pct = metadata.get("take_profit_pct")
    direction = 1.0 if side == _LONG else -1.0
    if stop_pct is not None:
        stop = fill * (1.0 - direction * stop_pct / 100.0)
    if target_pct is not None:
        target = fill * (1.0 + direction * target_pct / 100.0)
    return stop, target


def _check_levels(bar: int, direction: int, metadata: dict[str, Any], close: float) -> None:
    """A stop or target on the wrong side of the price is a bug in the strategy, not a trade.
    (A price that a percent overrides is not checked: it is not used.)"""
    stop = metadata.get("stop_loss_price") if metadata.get("stop_loss_pct") is None else None
    target = metadata.get("take_profit_price") if metadata.get("take_profit_pct") is None else None
    problem = ""
    if direction == _OPEN_LONG:
        if stop is not None and stop > close:
            problem = f"stop_loss_price {stop!r} is above the close {close!r} of a buy signal"
        elif target is not None and target < close:
            problem = f"take_profit_price {target!r} is below the close {close!r} of a buy signal"
    else:
        if stop is not None and stop < close:
            problem = f"stop_loss_price {stop!r} is below the close {close!r} of a short sale"
        elif target is not None and target > close:
            problem = f"take_profit_price {target!r} is above the close {close!r} of a short sale"
        elif (metadata.get("take_profit_pct") or 0.0) >= 100.0:
            problem = (
                "take_profit_pct of a short sale must be below 100 (the price cannot go below 0)"
            )
    if problem:
        error = InvalidSignal(problem)
        raise StrategyFailure(bar, error) from error


def annualisation(bars: Bars) -> tuple[float, float | None, str]:
    """Bars per year, median bar spacing in seconds, and how the first was chosen.

    Like backtesting.py: daily data counts 365 days a year when weekends trade and 252 when
    they do not; intraday data counts bars per calendar day times that; coarser data counts
    calendar time.
    """
    ts = bars.timestamp
    if ts is None or len(ts) < 2:
        return DEFAULT_PERIODS_PER_YEAR, None, "no timestamps: 252 bars per year assumed"
    spacing = float(np.median(np.diff(ts)))
    days = spacing / 86_400
    weekday = (np.floor(ts / 86_400).astype(np.int64) + 3) % 7  # 0 = Monday (1970-01-01: Thu)
    weekends = float(np.mean(weekday >= 5)) > 2 / 7 * 0.6
    trading_days = 365.0 if weekends else 252.0
    calendar = "calendar days (weekends trade)" if weekends else "252 trading days"
    if days < 0.99:
        # The median day's count ignores the partial first and last days.
        _, counts = np.unique(np.floor(ts / 86_400), return_counts=True)
        per_day = float(np.median(counts))
        return per_day * trading_days, spacing, f"intraday: {per_day:.4g} bars/day x {calendar}"
    if days < 1.5:
        return trading_days, spacing, f"daily: {calendar}"
    return SECONDS_PER_YEAR / spacing, spacing, f"{days:.4g}-day bars: calendar time"


def _finite(value: float | np.floating | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _power(base: float, exponent: float) -> float:
    """base ** exponent for a positive base; inf where Python's float power would raise
    OverflowError (a 2% gain over one hour of minute bars, annualised)."""
    try:
        return base**exponent
    except OverflowError:
        return math.inf


def _geometric_mean(returns: np.ndarray) -> float:
    """backtesting.py's: compounded mean return; 0 when any period loses everything."""
    if len(returns) == 0:
        return math.nan
    growth = returns + 1.0
    if np.any(growth <= 0):
        return 0.0
    return float(np.exp(np.log(growth).sum() / len(growth)) - 1.0)


def compute_metrics(
    equity: list[float], trades: list[Trade], bars: Bars, initial_cash: float
) -> BacktestStats:
    """Statistics with backtesting.py's definitions; undefined or non-finite values are None
    (backtesting.py shows NaN or inf there, which JSON cannot carry).

    Differences, all deliberate: returns are per bar (backtesting.py resamples intraday data
    to days first); drawdowns are negative percentages as there; profitFactor is, as there,
    the sum of winning trade returns over the sum of losing ones; `expectancy` is the mean
    P&L per trade in cash (backtesting.py's percentage is `expectancyPct`).
    """
    eq = np.asarray(equity, dtype=np.float64)
    n = len(eq)
    close = bars.close
    periods, spacing, basis = annualisation(bars)
    final = float(eq[-1])

    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.nan_to_num(eq[1:] / eq[:-1] - 1.0, nan=0.0, posinf=0.0, neginf=0.0)
    annual_return = volatility = sharpe = sortino = calmar = None
    gmean = _geometric_mean(rets)
    if len(rets) >= 1:
        with np.errstate(over="ignore", invalid="ignore"):
            annual_return = _finite(_power(1.0 + gmean, periods) - 1.0)
            if len(rets) >= 2:
                var = float(rets.var(ddof=1))
                spread = _power(var + (1.0 + gmean) ** 2, periods) - _power(
                    1.0 + gmean, 2 * periods
                )
                volatility = _finite(math.sqrt(max(spread, 0.0)))
            downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2)) * math.sqrt(periods))
        if annual_return is not None:
            if volatility:
                sharpe = _finite(annual_return / volatility)
            if downside > 0:
                sortino = _finite(annual_return / downside)

    peak = np.maximum.accumulate(eq)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.nan_to_num(1.0 - eq / peak, nan=0.0, posinf=0.0, neginf=0.0)
    max_dd = float(dd.max())
    if annual_return is not None and max_dd > 0:
        calmar = _finite(annual_return / max_dd)
    flags = np.concatenate(([0], (dd > 0).astype(np.int8), [0]))
    edges = np.diff(flags)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    avg_dd = avg_dd_bars = None
    max_dd_bars = 0
    if len(starts):
        depths = np.maximum.reduceat(dd, starts)
        durations = np.minimum(ends + 1, n - 1) - (starts - 1)
        avg_dd = -float(depths.mean()) * 100.0
        max_dd_bars = int(durations.max())
        avg_dd_bars = float(durations.mean())

    if bars.timestamp is not None and n > 1:
        years = float(bars.timestamp[-1] - bars.timestamp[0]) / SECONDS_PER_YEAR
    else:
        years = (n - 1) / periods
    cagr = None
    if years > 0:
        cagr = (
            -100.0 if final <= 0 else _finite((_power(final / initial_cash, 1 / years) - 1) * 100)
        )

    count = len(trades)
    exposure = commissions = slippage = 0.0
    win_rate = best = worst = avg_trade = profit_factor = None
    expectancy = expectancy_pct = sqn = avg_duration = None
    max_duration: int | None = None
    if count:
        pnl = np.array([t.pnl for t in trades])
        returns = np.array([t.return_pct for t in trades]) / 100.0
        entry = np.array([t.entry_bar for t in trades])
        exit_ = np.array([t.exit_bar for t in trades])
        held = np.zeros(n + 1, dtype=np.int64)
        np.add.at(held, entry, 1)
        np.add.at(held, exit_ + 1, -1)
        exposure = float(np.mean(np.cumsum(held)[:n] > 0)) * 100.0
        commissions = float(sum(t.commission for t in trades))
        slippage = float(sum(t.slippage for t in trades))
        losses = float(-returns[returns < 0].sum())
        std = float(pnl.std(ddof=1)) if count > 1 else 0.0
        durations = exit_ - entry
        win_rate = float(np.mean(pnl > 0)) * 100.0
        best = float(returns.max()) * 100.0
        worst = float(returns.min()) * 100.0
        avg_trade = _finite(_geometric_mean(returns) * 100.0)
        profit_factor = _finite(returns[returns > 0].sum() / losses) if losses else None
        expectancy = float(pnl.mean())
        expectancy_pct = float(returns.mean()) * 100.0
        sqn = _finite(math.sqrt(count) * pnl.mean() / std) if std > 0 else None
        avg_duration = float(durations.mean())
        max_duration = int(durations.max())

    total_return = (final / initial_cash - 1.0) * 100.0
    hold_return, hold_drawdown = buy_and_hold(close)
    excess = total_return - hold_return
    # Extreme inputs (prices or cash near the float range) can still overflow a ratio.
    return BacktestStats(
        start_equity=initial_cash,
        final_equity=_finite(final),
        equity_peak=_finite(peak.max()),
        total_return_pct=_finite(total_return),
        buy_and_hold_return_pct=_finite(hold_return),
        buy_and_hold_max_drawdown_pct=_finite(hold_drawdown),
        excess_return_pct=_finite(excess),
        cagr_pct=_finite(cagr),
        annual_return_pct=None if annual_return is None else _finite(annual_return * 100.0),
        volatility_pct=None if volatility is None else _finite(volatility * 100.0),
        sharpe_ratio=sharpe,
        sortino_ratio=sortino,
        calmar_ratio=calmar,
        max_drawdown_pct=_finite(-max_dd * 100.0),
        avg_drawdown_pct=_finite(avg_dd),
        max_drawdown_duration_bars=max_dd_bars,
        avg_drawdown_duration_bars=_finite(avg_dd_bars),
        num_trades=count,
        win_rate_pct=win_rate,
        best_trade_pct=_finite(best),
        worst_trade_pct=_finite(worst),
        avg_trade_pct=avg_trade,
        profit_factor=profit_factor,
        expectancy=_finite(expectancy),
        expectancy_pct=_finite(expectancy_pct),
        sqn=sqn,
        avg_trade_duration_bars=avg_duration,
        max_trade_duration_bars=max_duration,
        exposure_pct=exposure,
        commissions_paid=_finite(commissions),
        slippage_paid=_finite(slippage),
        periods_per_year=_finite(periods),
        bar_spacing_seconds=_finite(spacing),
        annualisation=basis,
        years=_finite(years),
    )


def buy_and_hold(close: np.ndarray) -> tuple[float, float]:
    """The benchmark over the same bars, as backtesting.py's "Buy & Hold Return": the
    return from the first close to the last, in percent, and the deepest fall of the close
    from its running peak (negative percent). No commission or slippage: a reference line."""
    prices = np.asarray(close, dtype=np.float64)
    peak = np.maximum.accumulate(prices)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = float(np.nan_to_num(1.0 - prices / peak, nan=0.0).max())
        total = float(prices[-1] / prices[0] - 1.0)
    return total * 100.0, -drawdown * 100.0
