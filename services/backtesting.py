"""The backtest engine: one strategy, one instrument, bar by bar, no look-ahead.

Two halves: `collect_signals` calls the strategy (in the sandbox's job process, so this module
is pure Python + numpy and does no I/O) and `simulate`, the engine, runs in the server on
signals it has checked itself (`unpack_signals`), so no number we store comes from the
strategy's process. The strategy at bar i sees read-only views of its look-back window (the
last `lookback` bars up to and with bar i) in buffers filled one bar at a time (their bytes
past bar i are NaN: no attribute reaches a later bar); its order fills at bar i + 1's open.
That alone proves nothing (code in a process can reach all of its memory):
services/lookahead.py re-runs sampled bars on truncated data to prove it.
Statistics follow backtesting.py's definitions (see `compute_metrics`), so results can be
cross-checked.

Position rules, kept deliberately simple:
  * all-in: an entry uses all cash, units = cash / (price * (1 + commission));
  * long-only by default: buy opens a long when flat, sell closes it;
  * with allow_short, sell opens a short when flat and buy closes it. A signal against an
    open position only closes it (no reversal in one order); a signal in the direction of
    the open position is ignored;
  * stop-loss / take-profit prices come from the metadata of the signal that opened the
    position and are checked intrabar from the fill bar on; if both are touched in one bar
    the stop counts (the pessimistic choice), and a gap through a level fills at the open;
  * a position still open on the last bar is closed at its close ("end of data");
  * equity is marked to market at every close; if it reaches zero or below (only possible
    for shorts) the position is liquidated at that close ("margin call") and trading stops.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.code_ast import parse_module
from services.code_rules import lookback_assignments
from services.market_data import Bars
from services.signals import InvalidSignal, normalise_signal

Strategy = Callable[[dict[str, Any], dict[str, Any]], object]
ProgressCallback = Callable[[int, int], None]

SECONDS_PER_YEAR = 365.25 * 86_400
DEFAULT_PERIODS_PER_YEAR = 252.0

_CHUNK_BARS = 4096

_FLAT, _LONG, _SHORT = 0, 1, -1
_OPEN_LONG, _OPEN_SHORT, _CLOSE = 1, -1, 2


@dataclass(frozen=True)
class BacktestOptions:
    """Account settings. commission_pct is a percent of traded value, paid on entry and exit."""

    initial_cash: float = 10_000.0
    commission_pct: float = 0.1
    allow_short: bool = False

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
        if not isinstance(self.allow_short, bool):
            raise ValueError(
                f"allow_short must be true or false; got {type(self.allow_short).__name__}"
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
    lookback: int | None = None,
    on_progress: ProgressCallback | None = None,
    progress_every: int = 500,
) -> dict[str, Any]:
    """Simulate `strategy` over `bars` (seeing `lookback` bars at a time, all when None);
    return JSON-safe metrics, equity curve and trades.

    In one process: `collect_signals` then `simulate`. The sandbox splits the two, the
    first in the untrusted job process and the second in the server (see
    services/sandbox/sandbox.py), so nothing a strategy computes becomes a number we store.
    Raises StrategyFailure (with bar index and cause) when the strategy raises or returns an
    invalid value, ValueError for bad options. Exceptions from `on_progress` pass through
    untouched, so a caller can use it to cancel.
    """
    options.check()
    signals = collect_signals(
        strategy,
        bars,
        params,
        lookback=lookback,
        on_progress=on_progress,
        progress_every=progress_every,
    )
    return simulate(bars, signals, options)


def collect_signals(
    strategy: Strategy,
    bars: Bars,
    params: Mapping[str, Any],
    *,
    lookback: int | None = None,
    on_progress: ProgressCallback | None = None,
    progress_every: int = 500,
) -> list[dict[str, Any] | None]:
    """Call `strategy` once per bar on the most recent `lookback` bars up to it (all of
    them when None); its normalised signals, None for a hold (a hold's confidence, reason
    and metadata change nothing in a backtest).

    The only part of a backtest that runs the strategy's code: the sandbox's job process
    does this and sends `pack_signals` of the result. With a window the cost of a bar does
    not grow with the history, and memory stays O(window) besides the bars themselves.
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
    window = n if lookback is None else min(check_lookback(lookback), n)
    base_params = dict(params)
    symbol, timeframe = bars.symbol, bars.timeframe
    # The strategy's arrays are views of buffers filled one bar at a time, so what they hold
    # past the current bar (through .base, the buffer protocol, ctypes...) is NaN, never a
    # later bar. A buffer holds two windows: when it is full, the last window-1 bars move to
    # its front and the rest becomes NaN again (one copy per `window` bars: O(1) a bar).
    size = n if window == n else 2 * window
    sources = [bars.open, bars.high, bars.low, bars.close, bars.volume]
    if bars.timestamp is not None:
        sources.append(bars.timestamp)
    buffers = [np.full(size, math.nan) for _ in sources]
    o_buf, h_buf, l_buf, c_buf, v_buf = buffers[:5]
    t_buf = buffers[5] if len(buffers) > 5 else np.full(0, math.nan)
    o_arr, h_arr, l_arr, c_arr, v_arr, t_arr = map(_read_only, (*buffers[:5], t_buf))
    has_time = len(buffers) > 5
    keep = window - 1
    signals: list[dict[str, Any] | None] = [None] * n
    next_progress = progress_every
    end = 0  # the buffers' fill: bars [end - visible, end) are the current window
    for chunk_start in range(0, n, _CHUNK_BARS):
        # Python floats a chunk at a time: cheaper stores than numpy scalars, bounded memory.
        chunk = [source[chunk_start : chunk_start + _CHUNK_BARS].tolist() for source in sources]
        o_src, h_src, l_src, c_src, v_src = chunk[:5]
        t_src = chunk[5] if has_time else []
        for k in range(len(o_src)):
            if end == size:
                for buffer in buffers:
                    buffer[:keep] = buffer[size - keep : size]
                    buffer[keep:] = math.nan
                end = keep
            o_buf[end], h_buf[end], l_buf[end] = o_src[k], h_src[k], l_src[k]
            c_buf[end], v_buf[end] = c_src[k], v_src[k]
            end += 1
            first = end - window if end > window else 0
            market_data: dict[str, Any] = {
                "open": o_arr[first:end],
                "high": h_arr[first:end],
                "low": l_arr[first:end],
                "close": c_arr[first:end],
                "volume": v_arr[first:end],
                "symbol": symbol,
                "timeframe": timeframe,
            }
            if has_time:
                t_buf[end - 1] = t_src[k]
                market_data["timestamp"] = t_arr[first:end]
            i = chunk_start + k
            try:
                signal = normalise_signal(strategy(market_data, dict(base_params)))
            except (Exception, SystemExit) as exc:  # sys.exit() in a strategy is its bug too
                raise StrategyFailure(i, exc) from exc
            if signal["action"] != "hold":
                signals[i] = signal
            if i + 1 == next_progress:
                next_progress += progress_every
                if on_progress is not None:
                    on_progress(i + 1, n)
    if on_progress is not None and n % progress_every:
        on_progress(n, n)
    return signals


def check_lookback(lookback: object) -> int:
    """A look-back window is a whole number of bars, at least 1."""
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 1:
        raise ValueError(f"lookback must be a positive integer; got {lookback!r}")
    return lookback


def declared_lookback(code: str) -> int | None:
    """The strategy's own `LOOKBACK = N` (a module-level integer literal), or None.

    Read from the syntax tree, never by running the code: the server plans the look-ahead
    check with it, so the untrusted job process must not be the one to say it.
    """
    try:
        tree = parse_module(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    found = lookback_assignments(tree)
    return found[0][1] if found else None


def lookback_for(code: str, default: int, cap: int) -> int:
    """The window a backtest of `code` uses: its `LOOKBACK` if declared, else `default`; at
    most `cap`."""
    declared = declared_lookback(code)
    return max(1, min(declared if declared is not None else default, cap))


def _read_only(buffer: np.ndarray) -> np.ndarray:
    view = buffer.view()
    view.flags.writeable = False
    return view


# A signal stream travels from the job process as one action letter per bar plus, for each
# buy or sell, an index into a table of the distinct [confidence, reason, stop, target].
_LETTER_OF = {"hold": "h", "buy": "b", "sell": "s"}
_ACTION_OF_LETTER = {letter: action for action, letter in _LETTER_OF.items()}
# What a stream may cost per bar on top of the sandbox's output cap: the letter and an index
# (at most 7 characters) always fit; the rest is room for varying reasons.
STREAM_BYTES_PER_BAR = 64


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
        row = (
            signal["confidence"],
            signal["reason"],
            meta.get("stop_loss_price"),
            meta.get("take_profit_price"),
        )
        index = index_of.get(row)
        if index is None:
            index = index_of[row] = len(table)
            table.append(list(row))
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
    if type(row) is not list or len(row) != 4:
        raise MalformedSignalStream(f"bad table row for bar {bar}")
    confidence, reason, stop, target = row
    raw = {
        "action": action,
        "confidence": confidence,
        "reason": reason,
        "metadata": {"stop_loss_price": stop, "take_profit_price": target},
    }
    try:
        return normalise_signal(raw)
    except InvalidSignal as exc:
        raise StrategyFailure(bar, exc) from exc


def simulate(
    bars: Bars, signals: list[dict[str, Any] | None], options: BacktestOptions
) -> dict[str, Any]:
    """The engine: fills, stops, trades, equity and metrics from checked signals (one per
    bar, None for hold). Trusted code only; every number it returns is computed here."""
    options.check()
    n = len(bars)
    if n == 0:
        raise ValueError("bars is empty: at least 1 bar is needed")
    if len(signals) != n:
        raise ValueError(f"{len(signals)} signals for {n} bars")
    last = n - 1
    fee = float(options.commission_pct) / 100.0
    allow_short = options.allow_short
    ts_arr = bars.timestamp
    # Python floats for the scalar work: indexing a list is several times cheaper than numpy.
    opens, highs, lows = bars.open.tolist(), bars.high.tolist(), bars.low.tolist()
    closes = bars.close.tolist()
    times: list[float] | None = ts_arr.tolist() if ts_arr is not None else None

    cash = float(options.initial_cash)
    equity = [0.0] * n
    trades: list[dict[str, Any]] = []
    side = _FLAT
    units = entry_price = entry_fee = 0.0
    entry_bar = 0
    entry_reason = ""
    stop: float | None = None
    target: float | None = None
    pending = 0
    pending_signal: dict[str, Any] = {}
    bankrupt_at = -1

    def close_position(bar: int, price: float, reason: str) -> None:
        nonlocal cash, side
        exit_fee = units * price * fee
        if side == _LONG:
            cash += units * price - exit_fee
            gross = units * (price - entry_price)
        else:
            cash -= units * price + exit_fee
            gross = units * (entry_price - price)
        pnl = gross - entry_fee - exit_fee
        trades.append(
            {
                "entryBar": entry_bar,
                "exitBar": bar,
                "entryTime": times[entry_bar] if times is not None else None,
                "exitTime": times[bar] if times is not None else None,
                "side": "long" if side == _LONG else "short",
                "entryPrice": entry_price,
                "exitPrice": price,
                "size": units,
                "pnl": pnl,
                "returnPct": pnl / (units * entry_price) * 100.0,
                "commission": entry_fee + exit_fee,
                "stopLossPrice": stop,
                "takeProfitPrice": target,
                "entryReason": entry_reason,
                "exitReason": reason,
            }
        )
        side = _FLAT

    for i in range(n):
        if not i & 1023:
            time.sleep(0)  # hand the GIL over: the server's event loop runs beside the engine
        if pending:
            price = opens[i]
            if pending == _CLOSE:
                close_position(i, price, "signal: " + pending_signal["reason"])
            elif cash > 0 and 0.0 < cash / (price * (1.0 + fee)) * price < math.inf:
                # (the second test: no position so small or large that its value is 0 or inf)
                side = pending
                units = cash / (price * (1.0 + fee))
                entry_fee = units * price * fee
                if side == _LONG:
                    cash -= units * price + entry_fee
                else:
                    cash += units * price - entry_fee
                entry_price = price
                entry_bar = i
                entry_reason = pending_signal["reason"]
                meta = pending_signal["metadata"]
                stop = meta.get("stop_loss_price")
                target = meta.get("take_profit_price")
            pending = 0

        if side:
            if side == _LONG:
                if stop is not None and lows[i] <= stop:
                    close_position(i, min(opens[i], stop), "stop loss")
                elif target is not None and highs[i] >= target:
                    close_position(i, max(opens[i], target), "take profit")
            else:
                if stop is not None and highs[i] >= stop:
                    close_position(i, max(opens[i], stop), "stop loss")
                elif target is not None and lows[i] <= target:
                    close_position(i, min(opens[i], target), "take profit")
            if side and i == last:
                close_position(i, closes[i], "end of data")

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

    metrics = compute_metrics(equity, trades, bars, float(options.initial_cash))
    return {"metrics": metrics, "equityCurve": equity, "trades": trades, "bars": n}


def _check_levels(bar: int, direction: int, metadata: dict[str, Any], close: float) -> None:
    """A stop or target on the wrong side of the price is a bug in the strategy, not a trade."""
    stop = metadata.get("stop_loss_price")
    target = metadata.get("take_profit_price")
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
    equity: list[float], trades: list[dict[str, Any]], bars: Bars, initial_cash: float
) -> dict[str, Any]:
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
    exposure = 0.0
    trade_stats: dict[str, Any] = {
        "winRatePct": None,
        "bestTradePct": None,
        "worstTradePct": None,
        "avgTradePct": None,
        "profitFactor": None,
        "expectancy": None,
        "expectancyPct": None,
        "sqn": None,
        "avgTradeDurationBars": None,
        "maxTradeDurationBars": None,
    }
    commissions = 0.0
    if count:
        pnl = np.array([t["pnl"] for t in trades])
        returns = np.array([t["returnPct"] for t in trades]) / 100.0
        entry = np.array([t["entryBar"] for t in trades])
        exit_ = np.array([t["exitBar"] for t in trades])
        held = np.zeros(n + 1, dtype=np.int64)
        np.add.at(held, entry, 1)
        np.add.at(held, exit_ + 1, -1)
        exposure = float(np.mean(np.cumsum(held)[:n] > 0)) * 100.0
        commissions = float(sum(t["commission"] for t in trades))
        losses = float(-returns[returns < 0].sum())
        std = float(pnl.std(ddof=1)) if count > 1 else 0.0
        durations = exit_ - entry
        trade_stats = {
            "winRatePct": float(np.mean(pnl > 0)) * 100.0,
            "bestTradePct": float(returns.max()) * 100.0,
            "worstTradePct": float(returns.min()) * 100.0,
            "avgTradePct": _finite(_geometric_mean(returns) * 100.0),
            "profitFactor": _finite(returns[returns > 0].sum() / losses) if losses else None,
            "expectancy": float(pnl.mean()),
            "expectancyPct": float(returns.mean()) * 100.0,
            "sqn": _finite(math.sqrt(count) * pnl.mean() / std) if std > 0 else None,
            "avgTradeDurationBars": float(durations.mean()),
            "maxTradeDurationBars": int(durations.max()),
        }

    metrics = {
        "startEquity": initial_cash,
        "finalEquity": final,
        "equityPeak": float(peak.max()),
        "totalReturnPct": (final / initial_cash - 1.0) * 100.0,
        "buyAndHoldReturnPct": (float(close[-1]) / float(close[0]) - 1.0) * 100.0,
        "cagrPct": cagr,
        "annualReturnPct": None if annual_return is None else annual_return * 100.0,
        "volatilityPct": None if volatility is None else volatility * 100.0,
        "sharpeRatio": sharpe,
        "sortinoRatio": sortino,
        "calmarRatio": calmar,
        "maxDrawdownPct": -max_dd * 100.0,
        "avgDrawdownPct": avg_dd,
        "maxDrawdownDurationBars": max_dd_bars,
        "avgDrawdownDurationBars": avg_dd_bars,
        "numTrades": count,
        **trade_stats,
        "exposurePct": exposure,
        "commissionsPaid": commissions,
        "periodsPerYear": periods,
        "barSpacingSeconds": spacing,
        "annualisation": basis,
        "years": years,
    }
    # Extreme inputs (prices or cash near the float range) can still overflow a ratio.
    return {
        key: _finite(value) if isinstance(value, float) else value for key, value in metrics.items()
    }
