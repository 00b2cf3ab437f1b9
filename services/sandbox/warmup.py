"""Warm-up run in the fork server before it locks down.

numpy and pandas import many modules lazily, on first use. A job cannot read files once its
seccomp filter is loaded, so every lazy import an honest strategy is likely to trigger must
happen here, in the trusted fork server, where the jobs then inherit it for free.
"""

from __future__ import annotations

# Everything strategy code may import is loaded here, before any job is forked.
import collections  # noqa: F401
import functools  # noqa: F401
import itertools  # noqa: F401
import math  # noqa: F401
import pickle
import statistics  # noqa: F401
import typing  # noqa: F401
from typing import Any

import numpy as np
import pandas  # noqa: F401

from services import backtesting, lookahead, market_data, signals  # noqa: F401
from services.sandbox import child

# Code the Python guards accept (their static pass refuses what the validator refuses), so
# the warm-up runs all of it with the guards on, like a job.
WARMUP_CODE = """
import math
import statistics
from collections import Counter, OrderedDict, defaultdict, deque, namedtuple
from functools import lru_cache, partial, reduce
from itertools import accumulate, islice, pairwise
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

Point = namedtuple("Point", "x y")


@lru_cache(maxsize=8)
def _square(x):
    return x * x


def execute_strategy(market_data, strategy_params):
    if len(market_data["close"]) < 30:
        return {"action": "hold", "confidence": 0.0}
    close = pd.Series(market_data["close"])
    high = pd.Series(market_data["high"])
    low = pd.Series(market_data["low"])
    when = pd.to_datetime(market_data["timestamp"], unit="s")
    df = pd.DataFrame(
        {"close": close, "high": high, "low": low, "volume": market_data["volume"]}
    )
    df.index = when
    fast = close.rolling(5).mean()
    slow = close.rolling(20, min_periods=1).mean()
    ema = close.ewm(span=12, adjust=False).mean()
    macd = ema - close.ewm(span=26).mean()
    std = close.rolling(20).std()
    delta = close.diff()
    gain = delta.clip(lower=0).rolling(14).mean()
    loss = (-delta.clip(upper=0)).rolling(14).mean()
    rsi = 100 - 100 / (1 + gain / loss.replace(0, np.nan))
    prev = close.shift(1)
    tr = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    atr = tr.rolling(14).mean().bfill().ffill()
    ret = close.pct_change().fillna(0)
    logret = np.log(close / prev).dropna()
    z = (close - close.rolling(20).mean()) / std
    df["signal"] = np.where(fast > slow, 1, -1)
    df["rank"] = close.rank(pct=True)
    df.loc[df.index[-1], "extra"] = 1.0
    weekly = df["close"].resample("W").last().dropna()
    grouped = df.groupby("signal")["close"].agg(["mean", "std", "count"])
    counts = df["signal"].value_counts()
    roll_apply = close.rolling(10).apply(lambda w: w[-1] - w[0], raw=True)
    corr = close.rolling(20).corr(high)
    desc = df.describe()
    text = repr(df.tail(3)) + str(close.head()) + str(df) + repr(desc)
    frame = df.iloc[-5:].copy().reset_index(drop=True)
    merged = frame.merge(frame, left_index=True, right_index=True, suffixes=("_a", "_b"))
    records = frame.to_dict("records")
    listed = frame.values.tolist() + frame.to_numpy().tolist()
    _ = (close.expanding().max(), close.cummax(), close.idxmax(), close.quantile(0.9))
    _ = (close.median(), close.skew(), close.kurt(), ret.cumprod(), (1 + ret).prod())
    _ = (df.isna().sum(), df.fillna(0), df.interpolate(), close.between(1, 1e9).all())
    _ = (pd.Series(dtype=float).mean(), pd.Timestamp(0, unit="s"), pd.Timedelta(days=1))
    _ = (close.astype(int), close.round(2), close.where(close > 0), close.mask(close < 0))
    _ = (pd.cut(close, 3), pd.qcut(close, 4, duplicates="drop"), close.nlargest(3))
    _ = (close.to_numpy(), close.values, close.tolist(), close.iloc[-1], close.at[0])
    try:
        df["missing"]
    except KeyError as exc:
        _ = str(exc)
    arr = np.asarray(market_data["close"], dtype=float)
    x = np.arange(len(arr))
    slope, intercept = np.polyfit(x, arr, 1)
    _ = (np.mean(arr), np.std(arr), np.var(arr), np.median(arr), np.percentile(arr, [5, 95]))
    _ = (np.convolve(arr, np.ones(3) / 3, mode="valid"), np.linalg.norm(arr), np.corrcoef(arr, x))
    _ = (np.cumsum(arr), np.exp(np.log(arr)), np.sqrt(arr), np.nanmean(arr), np.argmax(arr))
    _ = (np.diff(arr), np.isnan(arr).any(), np.clip(arr, 0, 1), np.where(arr > 0)[0])
    _ = np.maximum.accumulate(arr)
    _ = (np.linalg.lstsq(np.vstack([x, np.ones_like(x)]).T, arr, rcond=None), np.fft.rfft(arr))
    _ = (np.linalg.inv(np.eye(3)), np.linalg.eig(np.eye(2)), np.dot(arr, arr), arr @ arr)
    _ = (np.histogram(arr, bins=5), np.quantile(arr, 0.5), np.unique(np.round(arr)))
    _ = (np.sort(arr), np.argsort(arr), np.roll(arr, 1), np.concatenate([arr, arr]))
    _ = (np.zeros(3), np.full(3, np.nan), np.isclose(1.0, 1.0), np.allclose(arr, arr))
    _ = (np.array2string(arr[:3]), repr(arr[:3]), str(np.float64(1.5)), f"{arr[0]:.2f}")
    _ = (np.polyval([1.0, 2.0], 3.0), np.gradient(arr), np.trapezoid(arr), np.ptp(arr))
    rng = np.random.default_rng(0)
    _ = (rng.normal(size=3), rng.integers(0, 5, 3), rng.choice(arr, 2))
    np.random.seed(0)
    _ = (np.random.rand(2), np.random.normal(size=2))
    values = list(arr[-30:])
    _ = (statistics.mean(values), statistics.stdev(values), statistics.median(values))
    _ = (statistics.pstdev(values), statistics.fmean(values), statistics.variance(values))
    _ = (math.log(2.0), math.isfinite(1.0), math.floor(2.5), math.sqrt(4.0), math.exp(1.0))
    _ = (Counter("abca"), OrderedDict(a=1), defaultdict(list), deque(values, maxlen=5))
    _ = (reduce(lambda a, b: a + b, values), partial(max, 0)(1), list(accumulate(values)))
    _ = (list(islice(values, 3)), list(pairwise(values[:4])), _square(3), Point(1, 2))
    _ = sorted(values, key=lambda v: -v)[:3]
    try:
        1 / 0
    except ZeroDivisionError as exc:
        _ = f"{exc!r} {exc}"
    last_rsi = float(rsi.iloc[-1]) if not math.isnan(rsi.iloc[-1]) else 50.0
    action = "buy" if fast.iloc[-1] > slow.iloc[-1] else "sell"
    return {
        "action": action,
        "confidence": 0.5,
        "reason": f"rsi {last_rsi:.1f} slope {slope:.3f} {len(text) > 0}",
        "metadata": {
            "rsi": np.float64(last_rsi),
            "atr": atr.iloc[-1],
            "z": z.iloc[-1],
            "macd": macd.tail(3).to_numpy(),
            "weekly": len(weekly),
            "groups": int(len(grouped)),
            "counts": int(counts.sum()),
            "corr": corr.iloc[-1],
            "roll": roll_apply.iloc[-1],
            "merged": int(merged.shape[1]),
            "records": len(records) + len(listed),
            "stop_loss_price": float(close.iloc[-1]) * 0.95,
        },
    }
"""

FAILING_CODE = """
def execute_strategy(market_data, strategy_params):
    import os
    return {"action": "hold", "confidence": 0.0}
"""

RAISING_CODE = """
def helper(depth):
    return helper(depth + 1) if depth < 5 else {}["missing"]

def execute_strategy(market_data, strategy_params):
    return helper(0)
"""


def sample_bars(n: int = 300) -> Any:
    """Deterministic synthetic bars for warm-up and tests."""
    from services.market_data import bars_from_columns

    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0.0, 0.004, n)) * close
    return bars_from_columns(
        {
            "timestamp": 1_700_000_000.0 + 86_400.0 * np.arange(n),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1e3, 1e4, n),
        },
        symbol="WARM",
        timeframe="1d",
    )


def _job(kind: str, code: str, bars: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "code": code,
        "bars": bars.to_bytes(),
        "params": {},
        "guards": True,
        "max_output_bytes": 1 << 22,
        "progress": True,
        "progress_every": 50,
    }


def run() -> list[str]:
    """Run honest and failing samples through the same code path a job uses; return the
    problems (an honest sample that did not succeed), for the start-up probe's report."""
    bars, short = sample_bars(), sample_bars(40)
    problems = []
    for kind, code, data in (
        ("signal", WARMUP_CODE, bars),
        ("backtest", WARMUP_CODE, short),
        ("signal", FAILING_CODE, bars),
        ("signal", RAISING_CODE, bars),
        ("backtest", RAISING_CODE, short),
        ("signal", "def execute_strategy(:", bars),
    ):
        job = pickle.loads(pickle.dumps(_job(kind, code, data)))
        frame = child.run_job(job, lambda: None, lambda _message: None)
        if code is WARMUP_CODE and b'"t":"ok"' not in frame[:64]:
            problems.append(f"warm-up {kind} failed: {frame[4:300].decode(errors='replace')}")
    return problems
