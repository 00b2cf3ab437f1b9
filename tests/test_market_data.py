"""Bars: validation messages, CSV parsing, transport forms, and the built-in samples."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from services.market_data import Bars, MarketDataError, bars_from_columns, bars_from_csv
from services.samples import (
    SAMPLE_NAMES,
    UnknownSample,
    load_sample,
    sample_description,
    synthetic_bars,
)


def columns(n: int = 4, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "open": [10.0 + i for i in range(n)],
        "high": [11.0 + i for i in range(n)],
        "low": [9.0 + i for i in range(n)],
        "close": [10.5 + i for i in range(n)],
        "volume": [100.0] * n,
    }
    base.update(overrides)
    return base


def rejects(cols: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(MarketDataError) as info:
        bars_from_columns(cols, **kwargs)
    return str(info.value)


def test_columns_become_read_only_float_arrays() -> None:
    bars = bars_from_columns(
        columns(timestamp=[1, 2, 3, 4], open=[10, 11, 12, 13]), symbol="X", timeframe="1d"
    )
    assert len(bars) == 4
    assert bars.symbol == "X" and bars.timeframe == "1d"
    for array in (bars.timestamp, bars.open, bars.high, bars.low, bars.close, bars.volume):
        assert isinstance(array, np.ndarray)
        assert array.dtype == np.float64
        assert not array.flags.writeable
    assert bars.as_columns() == {
        "timestamp": [1.0, 2.0, 3.0, 4.0],
        "open": [10.0, 11.0, 12.0, 13.0],
        "high": [11.0, 12.0, 13.0, 14.0],
        "low": [9.0, 10.0, 11.0, 12.0],
        "close": [10.5, 11.5, 12.5, 13.5],
        "volume": [100.0] * 4,
    }


def test_arrays_can_never_be_made_writeable() -> None:
    bars = bars_from_columns(columns())
    view = bars.close[:2]
    with pytest.raises(ValueError):
        view[0] = 1.0
    for array in (view, view.base, bars.close):
        with pytest.raises(ValueError):
            array.flags.writeable = True  # type: ignore[union-attr]


def test_input_arrays_are_copied_not_frozen_in_place() -> None:
    close = np.array([10.5, 11.5, 12.5, 13.5])
    bars = bars_from_columns(columns(close=close))
    close[0] = 99.0
    assert close.flags.writeable
    assert bars.close[0] == 10.5


def test_volume_and_timestamp_are_optional_and_keys_case_insensitive() -> None:
    cols = columns()
    del cols["volume"]
    bars = bars_from_columns({k.upper(): v for k, v in cols.items()})
    assert bars.timestamp is None
    assert bars.volume.tolist() == [0.0] * 4


def test_time_aliases_and_iso_strings() -> None:
    bars = bars_from_columns(columns(2, date=["2024-01-01", "2024-01-01T01:00:00Z"]))
    assert bars.timestamp is not None
    assert bars.timestamp.tolist() == [1704067200.0, 1704070800.0]


def test_millisecond_timestamps_are_recognised() -> None:
    bars = bars_from_columns(columns(2, timestamp=[1704067200000, 1704070800000]))
    assert bars.timestamp is not None
    assert bars.timestamp.tolist() == [1704067200.0, 1704070800.0]


@pytest.mark.parametrize(
    ("cols", "message"),
    [
        (columns(10, close=[11.0] * 9), "ragged input: open has 10 values, close has 9"),
        (columns(volume=[1.0] * 3), "ragged input: open has 4 values, volume has 3"),
        ({"open": [1.0], "high": [1.0], "low": [1.0]}, "missing column close"),
        (columns(0), "no bars: at least 1 is needed"),
        (columns(close=[10.5, math.nan, 12.5, 13.5]), "close is NaN at index 1"),
        (columns(high=[11.0, 12.0, math.inf, 14.0]), "high is infinite at index 2"),
        (columns(open=[10.0, 11.0, "x", 13.0]), "open at index 2 is not a number: 'x'"),
        (columns(open=[10.0, None, 12.0, 13.0]), "open at index 1 is not a number: None"),
        (columns(open=[10.0, True, 12.0, 13.0]), "open at index 1 is not a number: True"),
        (columns(open="10,11"), "column open must be a list of numbers"),
        (
            columns(high=[11.0, 11.0, 13.0, 12.0]),
            "inconsistent bar at index 1: high 11.0 is below max(open, close) 11.5",
        ),
        (
            columns(low=[9.0, 10.0, 12.6, 13.9]),
            "inconsistent bar at index 2: low 12.6 is above min(open, close) 12.0",
        ),
        (columns(low=[9.0, 0.0, 11.0, 12.0]), "low must be positive; got 0.0 at index 1"),
        (columns(volume=[1.0, 1.0, -1.0, 1.0]), "volume must not be negative; got -1.0 at index 2"),
        (
            columns(timestamp=[1, 2, 2, 3]),
            "timestamps must be strictly increasing: 2.0 at index 2 is not after 2.0",
        ),
        (columns(timestamp=[1, 2, "yesterday", 3]), "neither unix seconds nor an ISO-8601 date"),
    ],
)
def test_invalid_columns_are_named(cols: dict[str, Any], message: str) -> None:
    assert message in rejects(cols)


def test_first_offending_index_is_reported() -> None:
    # Index 1 has a bad high and index 3 a bad low: index 1 is named.
    cols = columns(high=[11.0, 11.0, 13.0, 14.0], low=[9.0, 10.0, 11.0, 13.8])
    assert "at index 1:" in rejects(cols)


def test_max_bars() -> None:
    assert rejects(columns(5), max_bars=4) == "too many bars: 5 (at most 4)"
    assert len(bars_from_columns(columns(4), max_bars=4)) == 4


CSV = """Date,Open,High,Low,Close,Volume,Adj Close
2024-01-01,10,11,9,10.5,100,1
2024-01-02,10.5,12,10,11.5,200,1

2024-01-03T00:00:00Z,11.5,12.5,11,12,300,1
"""


def test_csv_with_iso_dates_and_extra_columns() -> None:
    bars = bars_from_csv(CSV, symbol="ABC", timeframe="1d")
    assert len(bars) == 3
    assert bars.symbol == "ABC"
    assert bars.as_columns() == {
        "timestamp": [1704067200.0, 1704153600.0, 1704240000.0],
        "open": [10.0, 10.5, 11.5],
        "high": [11.0, 12.0, 12.5],
        "low": [9.0, 10.0, 11.0],
        "close": [10.5, 11.5, 12.0],
        "volume": [100.0, 200.0, 300.0],
    }


def test_csv_with_unix_seconds_semicolons_and_no_volume() -> None:
    text = "\ufefftime;OPEN;high;low;close\n1700000000;1;2;0.5;1.5\n1700000060;1.5;2;1;1\n"
    bars = bars_from_csv(text)
    assert bars.timestamp is not None
    assert bars.timestamp.tolist() == [1700000000.0, 1700000060.0]
    assert bars.volume.tolist() == [0.0, 0.0]


def test_csv_without_time_column() -> None:
    bars = bars_from_csv("open,high,low,close\n1,2,0.5,1.5\n")
    assert bars.timestamp is None and len(bars) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "CSV is empty"),
        ("open,high,low,close\n", "no bars: the CSV has a header but no data rows"),
        ("date,open,high,close\n1,1,1,1\n", "line 1: the header lacks low"),
        ("open,high,low,close\n1,2,0.5,1\n1,2,0.5\n", "line 3: expected 4 fields, got 3"),
        ("open,high,low,close\n1,2,0.5,1\n\n1,2,abc,1\n", "line 4: low is not a number: 'abc'"),
        ("open,high,low,close\n1,2,0.5,1\n1,2,0.5,nan\n", "close is NaN at line 3"),
        (
            "date,open,high,low,close\n2024-01-01,1,2,0.5,1\n2024-13-01,1,2,0.5,1\n",
            "line 3: date is neither unix seconds nor an ISO-8601 date: '2024-13-01'",
        ),
        (
            "t,open,high,low,close\nx,1,2,0.5,1\n",
            "line 1: the header lacks",  # "t" is not a time alias, so nothing is missing but...
        ),
        (
            "date,open,high,low,close\n2024-01-02,1,2,0.5,1\n2024-01-01,1,2,0.5,1\n",
            "timestamps must be strictly increasing: 1704067200.0 at line 3 is not after",
        ),
        ("open,high,low,close\n1,0.9,0.5,1\n", "inconsistent bar at line 2: high 0.9 is below"),
        ("open,open,high,low,close\n1,1,2,0.5,1\n", "line 1: column open appears twice"),
    ],
)
def test_csv_errors_name_the_line(text: str, message: str) -> None:
    if message == "line 1: the header lacks":
        # An unknown column is ignored, so this file is valid: guard against over-strictness.
        assert len(bars_from_csv(text)) == 1
        return
    with pytest.raises(MarketDataError) as info:
        bars_from_csv(text)
    assert message in str(info.value)


def test_csv_max_bars() -> None:
    text = "open,high,low,close\n" + "1,2,0.5,1\n" * 6
    with pytest.raises(MarketDataError, match="too many bars: more than 5"):
        bars_from_csv(text, max_bars=5)


def _same(a: Bars, b: Bars) -> None:
    assert a.as_columns() == b.as_columns()
    assert (a.symbol, a.timeframe, len(a)) == (b.symbol, b.timeframe, len(b))


@pytest.mark.parametrize("with_time", [True, False])
def test_payload_round_trip_is_exact_and_json_safe(with_time: bool) -> None:
    cols = columns(close=[10.1, 11.2, 12.3, 13.4])
    if with_time:
        cols["timestamp"] = [1.5, 2.5, 3.5, 4.5]
    bars = bars_from_columns(cols, symbol="S", timeframe="1h")
    payload = json.loads(json.dumps(bars.to_payload()))
    _same(Bars.from_payload(payload), bars)
    _same(Bars.from_bytes(bars.to_bytes()), bars)


def test_payload_accepts_plain_lists() -> None:
    _same(Bars.from_payload({"columns": columns()}), bars_from_columns(columns()))


def test_payload_is_revalidated() -> None:
    payload = bars_from_columns(columns()).to_payload()
    payload["columns"]["high"] = payload["columns"]["low"]
    with pytest.raises(MarketDataError, match="inconsistent bar at index 0"):
        Bars.from_payload(payload)
    with pytest.raises(MarketDataError, match="says 5 bars but holds 4"):
        Bars.from_payload({**bars_from_columns(columns()).to_payload(), "bars": 5})


def test_corrupt_bytes_are_rejected() -> None:
    data = bars_from_columns(columns()).to_bytes()
    with pytest.raises(MarketDataError, match="bad magic"):
        Bars.from_bytes(b"XXXX" + data[4:])
    with pytest.raises(MarketDataError, match="does not match"):
        Bars.from_bytes(data[:-8])
    mangled = bytearray(data)
    mangled[-8:] = np.array([math.nan]).tobytes()
    with pytest.raises(MarketDataError, match="volume is NaN at index 3"):
        Bars.from_bytes(bytes(mangled))


def test_bytes_round_trip_needs_no_copy() -> None:
    bars = Bars.from_bytes(load_sample("trending_daily").to_bytes())
    assert not bars.close.flags.writeable
    with pytest.raises(ValueError):
        bars.close.flags.writeable = True


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_samples_are_consistent_synthetic_bars(name: str) -> None:
    bars = load_sample(name)
    daily = name.endswith("_daily")
    assert len(bars) == (1000 if daily else 2000)
    assert bars.symbol == "SYNTH"
    assert bars.timeframe == ("1d" if daily else "1h")
    assert bars.timestamp is not None
    assert set(np.diff(bars.timestamp).tolist()) == {86400.0 if daily else 3600.0}
    assert np.all(bars.high >= np.maximum(bars.open, bars.close))
    assert np.all(bars.low <= np.minimum(bars.open, bars.close))
    assert np.all(bars.low > 0) and np.all(bars.volume > 0)
    assert "Synthetic" in sample_description(name)
    assert load_sample(name) is bars  # cached


def test_samples_have_their_character() -> None:
    trend = load_sample("trending_daily").close
    assert trend[-1] > 2 * trend[0]
    crash = load_sample("crash_daily").close
    drawdown = 1 - crash / np.maximum.accumulate(crash)
    assert drawdown.max() > 0.5
    ranging = load_sample("ranging_hourly").close
    assert ranging.max() / ranging.min() < 1.25


def test_samples_are_deterministic() -> None:
    a = synthetic_bars("crash", 500, timeframe="1h", seed=3)
    b = synthetic_bars("crash", 500, timeframe="1h", seed=3)
    assert a.as_columns() == b.as_columns()
    assert a.as_columns() != synthetic_bars("crash", 500, timeframe="1h", seed=4).as_columns()
    # Pinned values: a change of generator or schedule must be a deliberate decision.
    assert round(float(load_sample("trending_daily").close[-1]), 6) == 331.116091


def test_unknown_sample_lists_the_names() -> None:
    with pytest.raises(KeyError) as info:
        load_sample("bitcoin")
    assert isinstance(info.value, UnknownSample)
    assert str(info.value) == (
        "unknown sample data set 'bitcoin'; choose one of " + ", ".join(SAMPLE_NAMES)
    )
