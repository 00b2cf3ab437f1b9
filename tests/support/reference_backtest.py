"""backtesting.py running the SMA crossover we cross-check our engine against (tests, bench).

Its settings mirror our engine's: fills at the next bar's open, all-in, commission on entry
and exit, near-continuous position sizing.
"""

from __future__ import annotations

import warnings
from typing import Any

from services.market_data import Bars


def sma_cross_with_backtesting_py(
    bars: Bars,
    fast: int,
    slow: int,
    *,
    cash: float,
    commission: float,
    finalize_trades: bool,
    whole_units: bool = False,
) -> Any:
    """The stats Series backtesting.py returns (ImportError when it is not installed):
    `FractionalBacktest` by default, its `Backtest` (whole units) with `whole_units`."""
    import pandas as pd
    from backtesting import Strategy

    def sma(values: Any, n: int) -> Any:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, fast)
            self.slow = self.I(sma, self.data.Close, slow)

        def next(self) -> None:
            f, s = self.fast, self.slow
            if f[-2] < s[-2] and f[-1] > s[-1] and not self.position:
                self.buy()
            elif f[-2] > s[-2] and f[-1] < s[-1] and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return backtest_with(
            bars, SmaCross, cash, commission, finalize_trades, whole_units=whole_units
        ).run()


def backtest_with(
    bars: Bars,
    strategy: Any,
    cash: float,
    commission: float,
    finalize_trades: bool,
    whole_units: bool = False,
) -> Any:
    """backtesting.py's Backtest of `strategy` on `bars`, set up as our engine runs:
    `FractionalBacktest` by default, its `Backtest` (whole units) with `whole_units`."""
    import pandas as pd
    from backtesting import Backtest
    from backtesting.lib import FractionalBacktest

    frame = pd.DataFrame(
        {
            "Open": bars.open,
            "High": bars.high,
            "Low": bars.low,
            "Close": bars.close,
            "Volume": bars.volume,
        },
        index=pd.to_datetime(bars.timestamp, unit="s"),
    )
    settings: dict[str, Any] = {
        "cash": cash,
        "commission": commission,
        "trade_on_close": False,
        "exclusive_orders": True,
        "finalize_trades": finalize_trades,
    }
    if whole_units:
        return Backtest(frame, strategy, **settings)
    return FractionalBacktest(frame, strategy, fractional_unit=1e-9, **settings)
