"""The engine: hand-computed fills, commissions, stops, shorts, metrics; no look-ahead; errors
carry the bar index; and one cross-check against backtesting.py."""

from __future__ import annotations

import json
import math
import pickle
import re
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from services.backtesting import (
    BacktestOptions,
    BacktestReport,
    StrategyFailure,
    annualisation,
    camel_case_json,
    compute_metrics,
    metrics_json,
    report_json,
    run_backtest,
)
from services.market_data import Bars, bars_from_columns
from services.samples import load_sample
from services.signals import InvalidSignal
from tests.support.reference_backtest import sma_cross_with_backtesting_py

# (open, high, low, close)
BASE = [
    (100.0, 101.0, 99.0, 100.0),
    (100.0, 103.0, 99.0, 102.0),
    (104.0, 106.0, 103.0, 105.0),
    (105.0, 108.0, 104.0, 107.0),
    (108.0, 109.0, 100.0, 101.0),
    (101.0, 102.0, 98.0, 99.0),
]
NO_FEES = BacktestOptions(commission_pct=0.0)
DAY = 86_400.0


def make_bars(rows: list[tuple[float, float, float, float]], *, timestamps: bool = False) -> Bars:
    cols: dict[str, Any] = {
        "open": [r[0] for r in rows],
        "high": [r[1] for r in rows],
        "low": [r[2] for r in rows],
        "close": [r[3] for r in rows],
        "volume": [1000.0] * len(rows),
    }
    if timestamps:
        cols["timestamp"] = [1_704_067_200.0 + DAY * i for i in range(len(rows))]
    return bars_from_columns(cols, symbol="T", timeframe="1d")


Script = dict[int, str | dict[str, Any]]


def scripted(script: Script) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    """A strategy that plays `script` (bar index -> action or full signal) and holds otherwise."""

    def strategy(market_data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        i = len(market_data["close"]) - 1
        step = script.get(i, "hold")
        if isinstance(step, dict):
            return step
        return {"action": step, "confidence": 1.0, "reason": f"{step}@{i}"}

    return strategy


def levels(action: str, stop: float | None = None, take: float | None = None) -> dict[str, Any]:
    return {
        "action": action,
        "confidence": 1.0,
        "reason": f"{action} with levels",
        "metadata": {"stop_loss_price": stop, "take_profit_price": take},
    }


def run(
    script: Script,
    rows: list[tuple[float, float, float, float]] = BASE,
    options: BacktestOptions = NO_FEES,
    **kwargs: Any,
) -> dict[str, Any]:
    result = run_backtest(scripted(script), make_bars(rows, **kwargs), {}, options)
    json.dumps(report_json(result), allow_nan=False)  # always JSON-safe
    return result


def test_long_trade_fills_next_open_and_pays_commission_both_ways() -> None:
    result = run({1: "buy", 3: "sell"}, options=BacktestOptions(commission_pct=1.0))
    units = 10_000 / (104 * 1.01)  # all-in at bar 2's open, entry commission included
    entry_fee = units * 104 * 0.01
    exit_fee = units * 108 * 0.01  # sold at bar 4's open
    pnl = units * (108 - 104) - entry_fee - exit_fee
    (trade,) = result.trades
    assert trade.entry_bar == 2 and trade.exit_bar == 4
    assert trade.side == "long"
    assert trade.entry_price == 104.0 and trade.exit_price == 108.0
    assert trade.size == pytest.approx(units, rel=1e-12)
    assert trade.commission == pytest.approx(entry_fee + exit_fee, rel=1e-12)
    assert trade.pnl == pytest.approx(pnl, rel=1e-12)
    assert trade.return_pct == pytest.approx(pnl / (units * 104) * 100, rel=1e-12)
    assert trade.entry_reason == "buy@1"
    assert trade.exit_reason == "signal: sell@3"
    assert trade.entry_time is None and trade.exit_time is None
    assert result.equity == pytest.approx(
        [10_000, 10_000, units * 105, units * 107, 10_000 + pnl, 10_000 + pnl], rel=1e-12
    )
    assert result.bars == 6
    assert result.stats.final_equity == pytest.approx(10_000 + pnl, rel=1e-12)
    assert result.stats.commissions_paid == pytest.approx(entry_fee + exit_fee)


def test_trade_times_come_from_timestamps() -> None:
    (trade,) = run({1: "buy", 3: "sell"}, timestamps=True).trades
    assert trade.entry_time == 1_704_067_200.0 + 2 * DAY
    assert trade.exit_time == 1_704_067_200.0 + 4 * DAY


def test_repeated_buys_and_sells_while_flat_are_ignored_long_only() -> None:
    result = run({0: "sell", 1: "buy", 2: "buy", 3: "buy"})
    (trade,) = result.trades
    assert trade.entry_bar == 2  # the first buy; later buys while long do nothing
    assert trade.exit_reason == "end of data"


def test_open_position_is_closed_at_the_last_close() -> None:
    (trade,) = run({3: "buy"}).trades
    assert (trade.entry_bar, trade.exit_bar) == (4, 5)
    assert (trade.entry_price, trade.exit_price) == (108.0, 99.0)
    assert trade.exit_reason == "end of data"


def test_end_of_data_close_pays_commission_and_the_curve_ends_in_cash() -> None:
    result = run({3: "buy"}, options=BacktestOptions(commission_pct=0.5))
    units = 10_000 / (108 * 1.005)
    final = units * 99 * (1 - 0.005)
    assert result.equity[-1] == pytest.approx(final, rel=1e-12)
    assert result.stats.final_equity == pytest.approx(final, rel=1e-12)


def test_a_signal_on_the_last_bar_does_nothing() -> None:
    result = run({5: "buy"})
    assert result.trades == []
    assert result.equity == [10_000.0] * 6


def test_stop_loss_hit_in_a_gap_fills_at_the_open() -> None:
    rows = [*BASE[:3], (90.0, 92.0, 88.0, 91.0), *BASE[4:]]  # bar 3 opens below the stop
    (trade,) = run({1: levels("buy", stop=95.0)}, rows).trades
    assert (trade.entry_bar, trade.exit_bar) == (2, 3)
    assert trade.exit_price == 90.0
    assert trade.exit_reason == "stop loss"
    assert trade.stop_loss_price == 95.0
    assert trade.entry_reason == "buy with levels"


def test_stop_loss_touched_intrabar_fills_at_the_stop() -> None:
    (trade,) = run({1: levels("buy", stop=100.5)}).trades
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (4, 100.5, "stop loss")


def test_stop_is_checked_on_the_fill_bar() -> None:
    (trade,) = run({2: levels("buy", stop=104.5)}).trades  # bar 3: open 105, low 104
    assert (trade.entry_bar, trade.exit_bar, trade.exit_price) == (3, 3, 104.5)


# Bar 3 stays inside 104..106.5, then bar 4 gaps up to open at 108.
GAP_UP = [*BASE[:3], (105.0, 106.5, 104.0, 106.0), *BASE[4:]]


def test_take_profit_touched_and_gapped() -> None:
    (touched,) = run({1: levels("buy", take=107.5)}).trades
    assert (touched.exit_bar, touched.exit_price, touched.exit_reason) == (
        3,
        107.5,
        "take profit",
    )
    (gapped,) = run({2: levels("buy", take=107.5)}, GAP_UP).trades
    assert (gapped.entry_bar, gapped.exit_bar, gapped.exit_price) == (3, 4, 108.0)


def test_stop_counts_first_when_both_levels_are_hit_in_one_bar() -> None:
    # Bar 4 spans 100..109: both the stop (101) and the target (108.5) are inside it.
    (trade,) = run({2: levels("buy", stop=101.0, take=108.5)}).trades
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (4, 101.0, "stop loss")


def test_short_trade_with_allow_short() -> None:
    options = BacktestOptions(commission_pct=1.0, allow_short=True)
    result = run({1: "sell", 4: "buy"}, options=options)
    units = 10_000 / (104 * 1.01)
    pnl = units * (104 - 101) - units * 104 * 0.01 - units * 101 * 0.01
    (trade,) = result.trades
    assert trade.side == "short"
    assert (trade.entry_bar, trade.exit_bar) == (2, 5)
    assert (trade.entry_price, trade.exit_price) == (104.0, 101.0)
    assert trade.pnl == pytest.approx(pnl, rel=1e-12)
    assert trade.exit_reason == "signal: buy@4"
    # Short equity: cash holds the proceeds, the position is a liability marked at the close.
    assert result.equity[2] == pytest.approx(
        10_000 - units * 104 * 0.01 - units * (105 - 104), rel=1e-12
    )
    assert result.stats.final_equity == pytest.approx(10_000 + pnl, rel=1e-12)


def test_short_stop_and_target_mirror_the_long_rules() -> None:
    options = BacktestOptions(commission_pct=0.0, allow_short=True)
    (stopped,) = run({1: levels("sell", stop=105.5)}, options=options).trades
    assert (stopped.exit_bar, stopped.exit_price, stopped.exit_reason) == (
        2,
        105.5,
        "stop loss",
    )
    (gapped,) = run({2: levels("sell", stop=107.5)}, GAP_UP, options=options).trades
    assert (gapped.exit_bar, gapped.exit_price, gapped.exit_reason) == (4, 108.0, "stop loss")
    (target,) = run({3: levels("sell", take=100.5)}, options=options).trades
    assert (target.exit_bar, target.exit_price, target.exit_reason) == (
        4,
        100.5,
        "take profit",
    )


def test_a_buy_while_short_only_closes() -> None:
    options = BacktestOptions(commission_pct=0.0, allow_short=True)
    trades = run({1: "sell", 2: "buy", 3: "buy"}, options=options).trades
    assert [(t.side, t.entry_bar, t.exit_bar) for t in trades] == [
        ("short", 2, 3),
        ("long", 4, 5),
    ]


def test_short_selling_is_off_by_default() -> None:
    assert run({1: "sell"}).trades == []


def test_a_short_that_loses_everything_is_liquidated() -> None:
    rows = [(100.0, 101.0, 99.0, 100.0)] * 2 + [(100.0, 260.0, 99.0, 250.0)] * 3
    options = BacktestOptions(commission_pct=0.0, allow_short=True)
    result = run({0: "sell"}, rows, options=options)
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (
        2,
        250.0,
        "margin call",
    )
    assert result.equity == pytest.approx([10_000, 10_000, -5_000, -5_000, -5_000])


def test_strategy_sees_growing_read_only_prefixes_and_never_the_future() -> None:
    bars = make_bars(BASE, timestamps=True)
    seen: list[int] = []

    def strategy(market_data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        i = len(market_data["close"])
        seen.append(i)
        for key in ("open", "high", "low", "close", "volume", "timestamp"):
            array = market_data[key]
            assert len(array) == i
            assert not array.flags.writeable
            assert array.tolist() == getattr(bars, key)[:i].tolist()
            # Issue 18: the bars' own memory is out of reach, and whatever the view's base
            # holds past this bar is NaN, never a later bar.
            assert not np.shares_memory(array, getattr(bars, key))
            base = array
            while base.base is not None:
                base = base.base
            assert np.isnan(np.asarray(base)[i:]).all()
        assert market_data["symbol"] == "T" and market_data["timeframe"] == "1d"
        assert market_data["close"][-1] == bars.close[i - 1]
        return {"action": "hold", "confidence": 0.0}

    run_backtest(strategy, bars, {}, NO_FEES)
    assert seen == [1, 2, 3, 4, 5, 6]


def test_writing_into_market_data_is_an_error_at_that_bar() -> None:
    def strategy(market_data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if len(market_data["close"]) == 3:
            market_data["close"][-1] = 1e9
        return {"action": "hold", "confidence": 0.0}

    bars = make_bars(BASE)
    with pytest.raises(StrategyFailure) as info:
        run_backtest(strategy, bars, {}, NO_FEES)
    assert info.value.bar_index == 2
    assert isinstance(info.value.original, ValueError)
    assert str(info.value) == "at bar 2: ValueError: assignment destination is read-only"
    assert bars.close[2] == 105.0


def test_strategy_exceptions_carry_bar_index_and_traceback() -> None:
    def execute_strategy(market_data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if len(market_data["close"]) == 5:
            return {"action": "hold", "confidence": 1 / 0}
        return {"action": "hold", "confidence": 0.0}

    with pytest.raises(StrategyFailure) as info:
        run_backtest(execute_strategy, make_bars(BASE), {}, NO_FEES)
    failure = info.value
    assert failure.bar_index == 4
    assert str(failure) == "at bar 4: ZeroDivisionError: division by zero"
    assert failure.__cause__ is failure.original
    frames = traceback.extract_tb(failure.original.__traceback__)
    assert frames[-1].name == "execute_strategy"
    assert "1 / 0" in (frames[-1].line or "")


def test_invalid_return_values_carry_the_bar_index() -> None:
    bad = {"action": "buy", "confidence": 1.7, "reason": ""}
    with pytest.raises(StrategyFailure) as info:
        run({3: bad})
    assert info.value.bar_index == 3
    assert isinstance(info.value.original, InvalidSignal)
    assert str(info.value) == (
        "at bar 3: InvalidSignal: confidence must be a number between 0 and 1; got 1.7"
    )
    with pytest.raises(StrategyFailure, match="at bar 0: InvalidSignal: the strategy must "):
        run_backtest(lambda m, p: None, make_bars(BASE), {}, NO_FEES)


def test_levels_on_the_wrong_side_are_a_strategy_error() -> None:
    with pytest.raises(StrategyFailure) as info:
        run({1: levels("buy", stop=103.0)})  # close of bar 1 is 102
    assert info.value.bar_index == 1
    assert "stop_loss_price 103.0 is above the close 102.0 of a buy signal" in str(info.value)
    options = BacktestOptions(allow_short=True)
    with pytest.raises(StrategyFailure) as short:
        run({1: levels("sell", take=103.0)}, options=options)
    assert "take_profit_price 103.0 is above the close 102.0 of a short sale" in str(short.value)


def test_sys_exit_in_a_strategy_is_a_strategy_failure() -> None:
    def strategy(market_data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        raise SystemExit(3)

    with pytest.raises(StrategyFailure, match="at bar 0: SystemExit: 3"):
        run_backtest(strategy, make_bars(BASE), {}, NO_FEES)


def test_strategy_failure_pickles() -> None:
    failure = StrategyFailure(7, ZeroDivisionError("division by zero"))
    copy = pickle.loads(pickle.dumps(failure))
    assert (copy.bar_index, str(copy)) == (7, str(failure))


def test_each_bar_gets_a_fresh_copy_of_params() -> None:
    seen: list[dict[str, Any]] = []

    def strategy(market_data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(params))
        params["period"] = -1
        params["extra"] = True
        return {"action": "hold", "confidence": 0.0}

    given = {"period": 14}
    run_backtest(strategy, make_bars(BASE), given, NO_FEES)
    assert seen == [{"period": 14}] * 6
    assert given == {"period": 14}


def test_progress_is_reported_every_n_bars_and_at_the_end() -> None:
    calls: list[tuple[int, int]] = []
    bars = make_bars(BASE)
    hold = scripted({})
    run_backtest(
        hold, bars, {}, NO_FEES, on_progress=lambda d, t: calls.append((d, t)), progress_every=4
    )
    assert calls == [(4, 6), (6, 6)]
    calls.clear()
    run_backtest(
        hold, bars, {}, NO_FEES, on_progress=lambda d, t: calls.append((d, t)), progress_every=3
    )
    assert calls == [(3, 6), (6, 6)]


def test_progress_callback_can_cancel() -> None:
    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        run_backtest(
            scripted({}), make_bars(BASE), {}, NO_FEES, on_progress=cancel, progress_every=2
        )


def test_empty_bars_are_refused() -> None:
    empty = np.array([], dtype=np.float64)
    bars = Bars(timestamp=None, open=empty, high=empty, low=empty, close=empty, volume=empty)
    with pytest.raises(ValueError, match="bars is empty"):
        run_backtest(scripted({}), bars, {}, NO_FEES)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (BacktestOptions(initial_cash=0), "initial_cash must be a finite number above 0; got 0"),
        (BacktestOptions(initial_cash=math.inf), "initial_cash must be a finite number above 0"),
        (BacktestOptions(commission_pct=-0.1), "commission_pct must be at least 0 and below 100"),
        (BacktestOptions(commission_pct=100), "commission_pct must be at least 0 and below 100"),
        (BacktestOptions(commission_pct=math.nan), "commission_pct must be at least 0"),
    ],
)
def test_options_are_checked(options: BacktestOptions, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        options.check()
    with pytest.raises(ValueError):
        run_backtest(scripted({}), make_bars(BASE), {}, options)


# Two trades without commission, for metrics worked out by hand.
METRIC_ROWS = [
    (100.0, 101.0, 99.0, 100.0),
    (100.0, 102.0, 99.0, 101.0),  # buy signal
    (102.0, 103.0, 101.0, 102.0),  # long at 102
    (103.0, 111.0, 102.0, 110.0),  # sell signal
    (110.0, 112.0, 100.0, 104.0),  # out at 110 (+7.84%); buy signal
    (105.0, 106.0, 95.0, 97.0),  # long at 105; sell signal
    (96.0, 98.0, 94.0, 95.0),  # out at 96 (-8.57%)
    (95.0, 96.0, 94.0, 95.0),
]


def test_trade_metrics_by_hand() -> None:
    result = run({1: "buy", 3: "sell", 4: "buy", 5: "sell"}, METRIC_ROWS)
    m = metrics_json(result)
    first, second = 110 / 102 - 1, 96 / 105 - 1
    after_first = 10_000 * 110 / 102
    final = after_first * 96 / 105
    pnls = [after_first - 10_000, final - after_first]
    assert m["numTrades"] == 2
    assert m["finalEquity"] == pytest.approx(final, rel=1e-12)
    assert m["totalReturnPct"] == pytest.approx((final / 10_000 - 1) * 100, rel=1e-12)
    assert m["buyAndHoldReturnPct"] == pytest.approx(-5.0)
    assert m["winRatePct"] == 50.0
    assert m["bestTradePct"] == pytest.approx(first * 100)
    assert m["worstTradePct"] == pytest.approx(second * 100)
    assert m["avgTradePct"] == pytest.approx((math.sqrt((1 + first) * (1 + second)) - 1) * 100)
    assert m["profitFactor"] == pytest.approx(first / -second)
    assert m["expectancy"] == pytest.approx(sum(pnls) / 2)
    assert m["expectancyPct"] == pytest.approx((first + second) / 2 * 100)
    assert m["exposurePct"] == pytest.approx(5 / 8 * 100)  # bars 2-4 and 5-6
    assert m["commissionsPaid"] == 0.0
    assert m["avgTradeDurationBars"] == 1.5 and m["maxTradeDurationBars"] == 2
    # Peak 10784.31 at bar 3's close, never regained: a -8.57% drawdown over bars 4..7.
    assert m["maxDrawdownPct"] == pytest.approx(-(1 - 96 / 105) * 100)
    assert m["avgDrawdownPct"] == pytest.approx(m["maxDrawdownPct"])
    assert m["maxDrawdownDurationBars"] == 3
    assert m["equityPeak"] == pytest.approx(after_first)
    assert m["sqn"] == pytest.approx(math.sqrt(2) * np.mean(pnls) / np.std(pnls, ddof=1))


def test_return_and_risk_metrics_by_hand() -> None:
    bars = make_bars(BASE[:4])  # no timestamps: 252 periods a year
    equity = [100.0, 110.0, 99.0, 108.9]
    m = camel_case_json(compute_metrics(equity, [], bars, 100.0))
    returns = np.array([0.1, -0.1, 0.1])
    g = (1.1 * 0.9 * 1.1) ** (1 / 3) - 1
    annual = (1 + g) ** 252 - 1
    var = returns.var(ddof=1)
    vol = math.sqrt((var + (1 + g) ** 2) ** 252 - (1 + g) ** (2 * 252))
    downside = math.sqrt(0.01 / 3) * math.sqrt(252)
    assert m["periodsPerYear"] == 252.0 and m["barSpacingSeconds"] is None
    assert m["annualReturnPct"] == pytest.approx(annual * 100, rel=1e-9)
    assert m["volatilityPct"] == pytest.approx(vol * 100, rel=1e-9)
    assert m["sharpeRatio"] == pytest.approx(annual / vol, rel=1e-9)
    assert m["sortinoRatio"] == pytest.approx(annual / downside, rel=1e-9)
    assert m["maxDrawdownPct"] == pytest.approx(-10.0)
    assert m["calmarRatio"] == pytest.approx(annual / 0.1, rel=1e-9)
    assert m["years"] == pytest.approx(3 / 252)
    assert m["cagrPct"] == pytest.approx((1.089 ** (252 / 3) - 1) * 100, rel=1e-9)
    assert m["numTrades"] == 0 and m["winRatePct"] is None and m["profitFactor"] is None


def test_drawdown_episodes_by_hand() -> None:
    bars = make_bars([*BASE, BASE[-1]])
    m = camel_case_json(
        compute_metrics([100.0, 90.0, 95.0, 100.0, 120.0, 60.0, 130.0], [], bars, 100.0)
    )
    assert m["maxDrawdownPct"] == pytest.approx(-50.0)
    assert m["avgDrawdownPct"] == pytest.approx(-30.0)  # episodes of 10% and 50%
    assert m["maxDrawdownDurationBars"] == 3  # peak at bar 0, regained at bar 3
    assert m["avgDrawdownDurationBars"] == pytest.approx(2.5)


def test_undefined_metrics_are_none_never_nan() -> None:
    result = run({})
    m = metrics_json(result)
    assert m["totalReturnPct"] == 0.0 and m["maxDrawdownPct"] == 0.0
    for key in ("sharpeRatio", "sortinoRatio", "calmarRatio", "avgDrawdownPct", "winRatePct"):
        assert m[key] is None, key
    assert m["exposurePct"] == 0.0 and m["numTrades"] == 0
    single = run_backtest(scripted({}), make_bars(BASE[:1]), {}, NO_FEES)
    assert single.stats.cagr_pct is None and single.stats.sharpe_ratio is None
    json.dumps(report_json(single), allow_nan=False)


def _bars_at(spacing: float, n: int, start: float = 1_704_067_200.0) -> Bars:
    rows = [BASE[0]] * n
    cols: dict[str, Any] = {
        k: [r[j] for r in rows] for j, k in enumerate(("open", "high", "low", "close"))
    }
    cols["timestamp"] = [start + spacing * i for i in range(n)]
    return bars_from_columns(cols)


def test_annualisation_follows_the_bar_spacing() -> None:
    assert annualisation(_bars_at(DAY, 30))[0] == 365.0  # weekends trade
    weekdays = [1_704_067_200.0 + DAY * d for d in range(60) if (d % 7) < 5]  # 2024-01-01: Mon
    cols: dict[str, Any] = {k: [100.0] * len(weekdays) for k in ("open", "high", "low", "close")}
    assert annualisation(bars_from_columns({**cols, "timestamp": weekdays}))[0] == 252.0
    # 24/7 hourly bars starting mid-day: the partial first and last days do not count.
    assert annualisation(_bars_at(3600.0, 24 * 20, start=1_704_067_200.0 + 13 * 3600))[0] == (
        24 * 365
    )
    # Hourly bars of a weekday session, 7 a day: 7 x 252.
    session = [
        1_704_067_200.0 + DAY * d + 3600.0 * (14 + h)
        for d in range(28)
        if d % 7 < 5
        for h in range(7)
    ]
    cols = {k: [100.0] * len(session) for k in ("open", "high", "low", "close")}
    assert annualisation(bars_from_columns({**cols, "timestamp": session}))[0] == 7 * 252
    assert annualisation(_bars_at(7 * DAY, 20))[0] == pytest.approx(365.25 / 7)


def _sma_cross(market_data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    close = market_data["close"]
    fast, slow = params["fast"], params["slow"]
    if len(close) < slow + 1:
        return {"action": "hold", "confidence": 0.0, "reason": "warm-up"}
    f_now, s_now = close[-fast:].mean(), close[-slow:].mean()
    f_then, s_then = close[-fast - 1 : -1].mean(), close[-slow - 1 : -1].mean()
    if f_then < s_then and f_now > s_now:
        return {"action": "buy", "confidence": 1.0, "reason": "fast crossed above slow"}
    if f_then > s_then and f_now < s_now:
        return {"action": "sell", "confidence": 1.0, "reason": "fast crossed below slow"}
    return {"action": "hold", "confidence": 0.5, "reason": ""}


def test_matches_backtesting_py_on_an_sma_crossover() -> None:
    """Same fills (next open, all-in, commission on entry and exit) in both engines."""
    pytest.importorskip(
        "backtesting", reason="backtesting.py is a dev/bench dependency (pip install backtesting)"
    )
    bars = load_sample("trending_daily")
    fast, slow, fee = 10, 30, 0.001
    stats = sma_cross_with_backtesting_py(
        bars, fast, slow, cash=10_000, commission=fee, finalize_trades=False
    )
    ours = run_backtest(
        _sma_cross, bars, {"fast": fast, "slow": slow}, BacktestOptions(commission_pct=fee * 100)
    )
    trades = ours.trades
    # backtesting.py leaves a position open at the end out of its trades and marks it at the
    # last close without the exit commission; we close it. Compare like with like.
    open_at_end = trades[-1].exit_reason == "end of data"
    closed = trades[:-1] if open_at_end else trades
    final = ours.stats.final_equity
    if open_at_end:
        final += trades[-1].exit_price * trades[-1].size * fee
    theirs = stats["_trades"]
    assert len(closed) >= 10
    assert len(theirs) == len(closed)
    assert theirs["EntryBar"].tolist() == [t.entry_bar for t in closed]
    assert theirs["ExitBar"].tolist() == [t.exit_bar for t in closed]
    assert theirs["EntryPrice"].to_numpy() == pytest.approx([t.entry_price for t in closed])
    assert theirs["ExitPrice"].to_numpy() == pytest.approx([t.exit_price for t in closed])
    assert stats["Equity Final [$]"] == pytest.approx(final, rel=1e-6)
    if not open_at_end:  # the statistics then describe the same equity curve
        m = metrics_json(ours)
        for theirs_key, our_key in [
            ("Return (Ann.) [%]", "annualReturnPct"),
            ("Volatility (Ann.) [%]", "volatilityPct"),
            ("CAGR [%]", "cagrPct"),
            ("Sharpe Ratio", "sharpeRatio"),
            ("Sortino Ratio", "sortinoRatio"),
            ("Calmar Ratio", "calmarRatio"),
            ("Max. Drawdown [%]", "maxDrawdownPct"),
            ("Avg. Drawdown [%]", "avgDrawdownPct"),
            ("Exposure Time [%]", "exposurePct"),
            ("Win Rate [%]", "winRatePct"),
            ("Best Trade [%]", "bestTradePct"),
            ("Worst Trade [%]", "worstTradePct"),
            ("Avg. Trade [%]", "avgTradePct"),
            ("Profit Factor", "profitFactor"),
            ("Expectancy [%]", "expectancyPct"),
            ("SQN", "sqn"),
            ("Commissions [$]", "commissionsPaid"),
        ]:
            assert m[our_key] == pytest.approx(float(stats[theirs_key]), rel=1e-6), our_key
        assert m["maxDrawdownDurationBars"] == stats["Max. Drawdown Duration"].days


# --- issue 10, item 3: every number the engine returns is finite ------------------------------


def strict_json(value: object) -> None:
    if isinstance(value, BacktestReport):
        value = report_json(value)
    json.dumps(value, allow_nan=False)


def test_a_big_intraday_gain_annualises_to_none_not_an_overflow() -> None:
    """A 25% gain over one hour of minute bars compounds past the float range per year."""
    n = 60
    close = [100.0 * 1.25 ** (i / (n - 1)) for i in range(n)]
    bars = bars_from_columns(
        {
            "timestamp": [1_704_067_200.0 + 60.0 * i for i in range(n)],
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": [1.0] * n,
        }
    )
    result = run_backtest(scripted({0: "buy"}), bars, {}, NO_FEES)
    metrics = metrics_json(result)
    strict_json(result)
    assert metrics["totalReturnPct"] > 20
    assert metrics["cagrPct"] is None  # (1.25 ** 8,900 per year)


def test_a_position_too_small_to_hold_is_not_opened() -> None:
    """Cash so small beside the price that the position would be worth exactly 0."""
    rows = [(1e200, 1e200, 1e200, 1e200)] * 4
    result = run_backtest(
        scripted({0: "buy", 2: "sell"}), make_bars(rows), {}, BacktestOptions(initial_cash=1e-300)
    )
    strict_json(result)
    assert result.trades == []
    assert result.stats.final_equity == 1e-300


def test_flat_curves_and_losing_free_trades_have_finite_or_null_metrics() -> None:
    flat = make_bars([(100.0, 100.0, 100.0, 100.0)] * 10)
    metrics = metrics_json(run_backtest(scripted({1: "buy", 5: "sell"}), flat, {}, NO_FEES))
    strict_json(metrics)
    assert metrics["sharpeRatio"] is None and metrics["sortinoRatio"] is None
    assert metrics["volatilityPct"] == 0.0
    winners = metrics_json(run({0: "buy", 2: "sell"}))
    assert winners["numTrades"] == 1 and winners["profitFactor"] is None
    strict_json(winners)
