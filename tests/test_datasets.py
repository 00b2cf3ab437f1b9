"""Datasets: the import of each export format (services/bar_import.py), and the API
(uploadDataset, datasets, dataset, deleteDataset, backtests by datasetId) on the run's
database (SQLite, or PostgreSQL with TEST_DATABASE_URL), through docs/operations."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import Dataset, DatasetBars
from server.settings import Settings
from server.wiring import OPERATIONS_DIR
from services.bar_import import ImportOptions, import_csv, parse_timeframe
from services.datasets import decode_bars
from services.market_data import MarketDataError
from services.persisted_queries import read_operations
from services.samples import load_sample
from services.sandbox import Sandbox
from tests.support.api import GraphQLCall, call_graphql, error_codes, make_client, register_user


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def read(text: str, **options: Any) -> tuple[Any, dict[str, Any]]:
    bars, report = import_csv(text, ImportOptions(**options))
    return bars, report.as_dict()


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


# --- formats ------------------------------------------------------------------------------

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,187.149994,188.440002,183.889999,185.639999,184.735962,82488700
2024-01-03,184.220001,185.880005,183.429993,184.250000,183.352753,58414500
2024-01-04,null,null,null,null,null,null
2024-01-05,181.990005,182.759995,180.169998,181.179993,180.297684,62303300
2024-01-08,182.089996,185.600006,181.500000,185.559998,184.656387,59144500
"""

BINANCE_MS = (
    "1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68108,1704070799999,"
    "53957248.97,47134,682.57581,28957416.81,0\n"
    "1704070800000,42475.23,42775.00,42475.22,42613.56,1196.37856,1704074399999,"
    "50984893.92,45890,600.1,25500000.0,0\n"
    "1704074400000,42613.57,42638.00,42400.00,42500.00,900.00000,1704077999999,"
    "38250000.00,30000,450.0,19125000.0,0\n"
)


def test_yahoo_is_detected_with_null_rows_dropped_and_the_weekend_not_a_gap() -> None:
    bars, report = read(YAHOO, symbol="AAPL")
    assert (report["format"], report["rows"], report["bars"]) == ("yahoo", 5, 4)
    assert (report["emptyRows"], report["emptyRowExamples"]) == (1, ["line 4"])
    assert report["timeframe"] == "1d" and bars.timeframe == "1d" and bars.symbol == "AAPL"
    # Close, not Adj Close; Jan 3 -> Jan 5 misses the null day: a gap, shown, not filled.
    assert bars.close.tolist() == [185.639999, 184.25, 181.179993, 185.559998]
    assert (report["gaps"], report["missingBars"], report["weekendClosures"]) == (1, 1, 1)
    assert report["gapExamples"] == ["2024-01-03T00:00:00Z -> 2024-01-05T00:00:00Z (1 bar missing)"]
    assert bars.timestamp.tolist()[0] == utc("2024-01-02T00:00:00")


@pytest.mark.parametrize("scale", [1, 1000], ids=["milliseconds", "microseconds"])
def test_binance_klines_headerless_twelve_columns(scale: int) -> None:
    text = "\n".join(
        ",".join([str(int(row.split(",")[0]) * scale), *row.split(",")[1:]])
        for row in BINANCE_MS.strip().splitlines()
    )
    bars, report = read(text)
    assert report["format"] == "binance"
    assert bars.timestamp.tolist() == [1704067200.0, 1704070800.0, 1704074400.0]
    assert bars.volume.tolist() == [1271.68108, 1196.37856, 900.0]  # base volume, column 6
    assert report["timeframe"] == "1h"


def test_tradingview_export_with_indicator_columns() -> None:
    text = lines(
        "time,open,high,low,close,MA,Volume",
        "1704067200,1,2,0.5,1.5,9,10",
        "1704153600,1.5,2,1,1.2,9,11",
    )
    bars, report = read(text)
    assert report["format"] == "tradingview"
    assert bars.volume.tolist() == [10.0, 11.0]
    assert bars.close.tolist() == [1.5, 1.2]


def test_metatrader4_headerless_with_dotted_dates() -> None:
    text = lines(
        "2024.01.02,00:00,1.1040,1.1050,1.1030,1.1045,120",
        "2024.01.02,00:01,1.1045,1.1046,1.1040,1.1041,80",
    )
    bars, report = read(text)
    assert report["format"] == "metatrader"
    assert bars.timestamp.tolist() == [utc("2024-01-02T00:00"), utc("2024-01-02T00:01")]
    assert report["timeframe"] == "1m"


def test_metatrader5_tab_separated_uses_tick_volume_when_real_volume_is_zero() -> None:
    text = (
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2024.01.02\t00:00:00\t1.1\t1.2\t1.0\t1.15\t100\t0\t2\n"
        "2024.01.02\t01:00:00\t1.15\t1.2\t1.1\t1.1\t140\t0\t2\n"
    )
    bars, report = read(text, time_zone="Europe/Athens")  # brokers' servers: UTC+2/+3
    assert report["format"] == "metatrader"
    assert bars.volume.tolist() == [100.0, 140.0]
    assert "tick volume is used" in report["notes"][0]
    assert bars.timestamp.tolist()[0] == utc("2024-01-01T22:00")


def test_generic_csv_with_separate_date_and_time_columns_and_semicolons() -> None:
    text = lines(
        "Date;Time;Open;High;Low;Close;Vol",
        "2024-01-02;09:30;10;11;9;10.5;5",
        "2024-01-02;09:35;10.5;11;10;10.8;6",
    )
    bars, report = read(text)
    assert report["format"] == "generic"
    assert bars.timestamp.tolist() == [utc("2024-01-02T09:30"), utc("2024-01-02T09:35")]
    assert bars.volume.tolist() == [5.0, 6.0]
    assert report["timeframe"] == "5m"


# --- time zones ---------------------------------------------------------------------------


def test_naive_times_are_read_in_the_given_zone_and_stored_utc() -> None:
    text = lines(
        "Date,Open,High,Low,Close,Volume",
        "2024-01-02 09:30,1,2,0.5,1.5,1",
        "2024-07-02 09:30,1,2,0.5,1.5,1",
    )
    bars, report = read(text, time_zone="America/New_York")
    # EST (UTC-5) in January, EDT (UTC-4) in July.
    assert bars.timestamp.tolist() == [utc("2024-01-02T14:30"), utc("2024-07-02T13:30")]
    assert report["timeZone"] == "America/New_York"


def test_times_with_an_offset_or_unix_times_ignore_the_zone_and_say_so() -> None:
    aware = lines(
        "time,open,high,low,close",
        "2024-01-02T09:30:00-05:00,1,2,0.5,1",
        "2024-01-02T09:31:00-05:00,1,2,0.5,1",
    )
    bars, report = read(aware, time_zone="Asia/Tokyo")
    assert bars.timestamp.tolist()[0] == utc("2024-01-02T14:30")
    assert "was not applied" in report["notes"][0]


def test_the_repeated_autumn_hour_is_read_in_order_and_a_skipped_spring_time_refused() -> None:
    autumn = (
        "time,open,high,low,close\n"
        "2024-11-03 00:30,1,2,0.5,1\n2024-11-03 01:30,1,2,0.5,1\n"
        "2024-11-03 01:30,1,2,0.5,1.1\n2024-11-03 02:30,1,2,0.5,1\n"
    )
    bars, _ = read(autumn, time_zone="America/New_York")
    assert np.diff(bars.timestamp).tolist() == [3600.0, 3600.0, 3600.0]
    spring = "time,open,high,low,close\n2024-03-10 01:30,1,2,0.5,1\n2024-03-10 02:30,1,2,0.5,1\n"
    with pytest.raises(MarketDataError, match=r"line 3: 2024-03-10 02:30:00 does not exist"):
        read(spring, time_zone="America/New_York")
    with pytest.raises(MarketDataError, match="unknown time zone 'Mars/Olympus'"):
        read(spring, time_zone="Mars/Olympus")


# --- resampling, gaps, duplicates, order --------------------------------------------------


def test_resampling_aggregates_ohlcv_into_utc_buckets() -> None:
    rows = ["time,open,high,low,close,volume"]
    for minute in range(120):
        price = 100 + minute
        stamp = datetime.fromtimestamp(utc("2024-01-02T00:00") + 60 * minute, UTC)
        rows.append(f"{stamp:%Y-%m-%d %H:%M},{price},{price + 5},{price - 5},{price + 1},{minute}")
    bars, report = read("\n".join(rows), resample_to="1h")
    assert len(bars) == 2 and bars.timeframe == "1h"
    assert bars.open.tolist() == [100.0, 160.0]
    assert bars.high.tolist() == [164.0, 224.0]
    assert bars.low.tolist() == [95.0, 155.0]
    assert bars.close.tolist() == [160.0, 220.0]
    assert bars.volume.tolist() == [sum(range(60)), sum(range(60, 120))]
    assert report["resampledFrom"] == {"bars": 120, "timeframe": "1m"}
    with pytest.raises(MarketDataError, match="not coarser than the data's 1m"):
        read("\n".join(rows), resample_to="30s")
    with pytest.raises(MarketDataError, match="not a timeframe"):
        read("\n".join(rows), resample_to="1 month")
    with pytest.raises(MarketDataError, match="months are not supported"):
        read("\n".join(rows), resample_to="1M")


def test_weekly_resampling_starts_on_monday() -> None:
    bars = load_sample("trending_daily")
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [
        f"{t:.0f},{o},{h},{lo},{c},{v}"
        for t, o, h, lo, c, v in zip(
            bars.timestamp[:30],
            bars.open,
            bars.high,
            bars.low,
            bars.close,
            bars.volume,
            strict=False,
        )
    ]
    weekly, _ = read("\n".join(rows), resample_to="1w")
    assert {datetime.fromtimestamp(t, UTC).weekday() for t in weekly.timestamp} == {0}
    assert parse_timeframe("1w") == 604_800


def test_identical_duplicates_are_dropped_with_a_report_and_conflicting_ones_refused() -> None:
    head = "time,open,high,low,close\n"
    same = head + "2024-01-02,1,2,0.5,1\n2024-01-02,1,2,0.5,1\n2024-01-03,1,2,0.5,1\n"
    bars, report = read(same)
    assert len(bars) == 2 and report["duplicatesDropped"] == 1
    assert report["duplicateExamples"] == ["line 3 repeats line 2 (2024-01-02T00:00:00Z)"]
    differ = head + "2024-01-02,1,2,0.5,1\n2024-01-02,1,2,0.5,1.2\n2024-01-03,1,2,0.5,1\n"
    with pytest.raises(MarketDataError, match=r"different values.*lines 2 and 3 at 2024-01-02"):
        read(differ)


def test_newest_first_is_turned_and_disorder_refused_with_lines() -> None:
    head = "time,open,high,low,close\n"
    bars, report = read(head + "2024-01-03,1,2,0.5,1.3\n2024-01-02,1,2,0.5,1.2\n")
    assert report["reversed"] and bars.close.tolist() == [1.2, 1.3]
    with pytest.raises(
        MarketDataError, match=r"line 4: time 2024-01-01T00:00:00Z is before line 3"
    ):
        read(head + "2024-01-02,1,2,0.5,1\n2024-01-03,1,2,0.5,1\n2024-01-01,1,2,0.5,1\n")


def test_gaps_are_counted_against_the_declared_timeframe() -> None:
    text = "time,open,high,low,close\n" + "\n".join(
        f"2024-01-02 {hour:02d}:00,1,2,0.5,1" for hour in (0, 1, 2, 5, 6, 9)
    )
    bars, report = read(text, timeframe="60m")
    assert len(bars) == 6 and report["timeframe"] == "1h" and report["notes"] == []
    assert (report["gaps"], report["missingBars"]) == (2, 4)
    assert (
        report["gapExamples"][0] == "2024-01-02T02:00:00Z -> 2024-01-02T05:00:00Z (2 bars missing)"
    )
    _, daily = read(text, timeframe="1d")
    assert daily["gaps"] == 0 and "most bars are 1h apart, not 1d" in daily["notes"][0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV is empty"),
        ("time,open,high,low,close\n", "no data rows"),
        ("a,b,c\n1,2,3\n", "line 1: the header lacks open, high, low, close"),
        ("1,2,3,4,5\n", "line 1: no header, and not a Binance kline row"),
        (
            "time,open,high,low,close\n2024-01-02,1,2,0.5,1\n2024-01-03,1,2,0.5\n",
            "line 3: expected 5",
        ),
        ("time,open,high,low,close\n2024-01-02,1,2,0.5,abc\n", "line 2: close is not a number"),
        (
            "time,open,high,low,close\n2024-31-02,1,2,0.5,1\n",
            "line 2: time '2024-31-02' is not a date",
        ),
        ("time,open,high,low,close\n2024-01-02,1,2,0.5,3\n", "inconsistent bar at line 2"),
        ("time,open,high,low,close\n2024-01-02,-1,2,0.5,1\n", "open must be positive"),
        ("2024.01.02,1.1,1.2,1.0,1.1,5\n", "line 1: no header, and not a MetaTrader 4 row"),
        ("time,open,high,low,close\n2024-01-02 2024-01-03,1,2,0.5,1\n", "line 2: time"),
        (BINANCE_MS + "1704078000000,1,2,0.5,1,5\n", "line 4: expected 12 fields, got 6"),
        ("2024.01.02,00:00,1,2,0.5,1,5\n2024.01.02,00:01,1,2\n", "line 2: expected 7 fields"),
    ],
)
def test_bad_input_names_the_line(text: str, message: str) -> None:
    with pytest.raises(MarketDataError, match=message.replace("(", r"\(")):
        read(text)


def test_too_many_bars_is_refused() -> None:
    text = "timestamp,open,high,low,close\n" + "\n".join(
        f"{1_700_000_000 + 60 * i},1,2,0.5,1" for i in range(150)
    )
    with pytest.raises(MarketDataError, match="too many"):
        read(text, max_bars=100)


# --- the API ------------------------------------------------------------------------------

OPERATIONS = read_operations(OPERATIONS_DIR)


def operation(name: str) -> str:
    """The document of docs/operations' operation `name` (with its fragments)."""
    pattern = re.compile(rf"^(query|mutation) {name}\b", re.M)
    for document in OPERATIONS.values():
        if pattern.search(document):
            return document
    raise AssertionError(f"no operation {name} in docs/operations")


def daily_csv(n: int = 300, sample: str = "trending_daily") -> str:
    bars = load_sample(sample)
    rows = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for i in range(n):
        day = datetime.fromtimestamp(float(bars.timestamp[i]), UTC)
        o, h, lo, c = (float(getattr(bars, k)[i]) for k in ("open", "high", "low", "close"))
        rows.append(f"{day:%Y-%m-%d},{o!r},{h!r},{lo!r},{c!r},{c!r},{int(bars.volume[i])}")
    return "\n".join(rows) + "\n"


async def upload(gql: GraphQLCall, token: str, **fields: Any) -> dict[str, Any]:
    variables = {"input": {"name": f"set-{uuid.uuid4().hex[:8]}", "csv": daily_csv(), **fields}}
    return await gql(operation("UploadDataset"), variables, token=token)


async def test_upload_list_get_backtest_and_delete(gql: GraphQLCall, token: str) -> None:
    body = await upload(gql, token, symbol="SYNTH", name="my daily bars")
    assert "errors" not in body, body
    created = body["data"]["uploadDataset"]
    assert (created["name"], created["symbol"], created["timeframe"]) == (
        "my daily bars",
        "SYNTH",
        "1d",
    )
    assert created["bars"] == 300 and created["importReport"]["format"] == "yahoo"
    assert created["start"].startswith("2019-01-01T00:00:00")
    stored = await Dataset.get(id=created["id"])
    blob = await DatasetBars.get(dataset_id=stored.id)
    assert created["storedBytes"] == len(blob.data) < 300 * 6 * 8  # compressed
    bars = decode_bars(bytes(blob.data))
    expected = load_sample("trending_daily")
    assert bars.close.tolist() == expected.close[:300].tolist()  # exact round trip

    listed = (await gql(operation("Datasets"), token=token))["data"]["datasets"]
    assert [d["id"] for d in listed] == [created["id"]]
    one = (await gql(operation("Dataset"), {"id": created["id"]}, token=token))["data"]
    assert one["dataset"]["importReport"]["format"] == "yahoo"

    from tests.test_execution_api import new_strategy

    strategy_id = await new_strategy(gql, token)
    by_id = await gql(
        operation("BacktestDataset"), {"id": strategy_id, "datasetId": created["id"]}, token=token
    )
    assert "errors" not in by_id, by_id
    inline = await gql(
        """mutation($id: UUID!, $input: BacktestInput!) {
             backtestStrategy(id: $id, input: $input) { bars metrics } }""",
        {"id": strategy_id, "input": {"csv": daily_csv()}},
        token=token,
    )
    got, want = by_id["data"]["backtestStrategy"], inline["data"]["backtestStrategy"]
    assert got["bars"] == want["bars"] == 300
    assert got["metrics"]["finalEquity"] == want["metrics"]["finalEquity"]
    assert got["metrics"]["numTrades"] == want["metrics"]["numTrades"] > 0

    backtest = """mutation($id: UUID!, $input: BacktestInput!) {
             backtestStrategy(id: $id, input: $input) { bars strategy { performanceMetrics } } }"""
    weekly = await gql(
        backtest,
        {"id": strategy_id, "input": {"datasetId": created["id"], "resampleTo": "1w"}},
        token=token,
    )
    assert "errors" not in weekly, weekly
    # 2019-01-01 was a Tuesday: 6 days of a first week, then 42 whole weeks from Monday.
    weeks = {(t - 4 * 86_400) // 604_800 for t in expected.timestamp[:300].tolist()}
    assert weekly["data"]["backtestStrategy"]["bars"] == len(weeks) == 43
    stored_metrics = weekly["data"]["backtestStrategy"]["strategy"]["performanceMetrics"]
    assert stored_metrics["data"] == f"dataset:{created['id']}@1w"
    for wrong, message in (
        ({"datasetId": created["id"], "resampleTo": "1h"}, "not coarser than the data's 1d"),
        ({"sample": "trending_daily", "resampleTo": "1w"}, "applies to a stored dataset"),
    ):
        refused = await gql(backtest, {"id": strategy_id, "input": wrong}, token=token)
        assert error_codes(refused) == ["BAD_USER_INPUT"], refused
        assert message in refused["errors"][0]["message"]

    deleted = await gql(operation("DeleteDataset"), {"id": created["id"]}, token=token)
    assert deleted["data"]["deleteDataset"] is True
    assert not await DatasetBars.filter(dataset_id=created["id"]).exists()
    assert (await gql(operation("Datasets"), token=token))["data"]["datasets"] == []


async def test_another_users_dataset_is_not_found(
    gql: GraphQLCall, token: str, client: httpx.AsyncClient
) -> None:
    created = (await upload(gql, token))["data"]["uploadDataset"]
    other, _ = await register_user(client)
    from tests.test_execution_api import new_strategy

    theirs = await new_strategy(gql, other)
    backtest = await gql(
        operation("BacktestDataset"), {"id": theirs, "datasetId": created["id"]}, token=other
    )
    assert error_codes(backtest) == ["NOT_FOUND"]
    assert (await gql(operation("Dataset"), {"id": created["id"]}, token=other))["data"] == {
        "dataset": None
    }
    assert (await gql(operation("Datasets"), token=other))["data"]["datasets"] == []
    deleted = await gql(operation("DeleteDataset"), {"id": created["id"]}, token=other)
    assert error_codes(deleted) == ["NOT_FOUND"]
    assert await Dataset.exists(id=created["id"])
    anonymous = await gql(operation("Datasets"))
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]


async def test_bad_csv_is_bad_input_naming_the_line_and_stores_nothing(
    gql: GraphQLCall, token: str
) -> None:
    broken = daily_csv(5).replace("null", "x").splitlines()
    broken[3] = broken[3].rsplit(",", 3)[0] + ",oops,1,1"
    body = await upload(gql, token, csv="\n".join(broken))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"] == "csv: line 4: close is not a number: 'oops'"
    zone = await upload(gql, token, timeZone="Nowhere/City")
    assert (
        error_codes(zone) == ["BAD_USER_INPUT"]
        and "unknown time zone" in zone["errors"][0]["message"]
    )
    assert (await gql(operation("Datasets"), token=token))["data"]["datasets"] == []


async def test_names_are_unique_per_user_and_backtests_take_exactly_one_source(
    gql: GraphQLCall, token: str
) -> None:
    first = await upload(gql, token, name="same")
    again = await upload(gql, token, name="same")
    assert "errors" not in first
    assert (
        error_codes(again) == ["BAD_USER_INPUT"] and "already have" in again["errors"][0]["message"]
    )
    from tests.test_execution_api import new_strategy

    strategy_id = await new_strategy(gql, token)
    both = await gql(
        """mutation($id: UUID!, $input: BacktestInput!) {
             backtestStrategy(id: $id, input: $input) { bars } }""",
        {
            "id": strategy_id,
            "input": {
                "sample": "trending_daily",
                "datasetId": first["data"]["uploadDataset"]["id"],
            },
        },
        token=token,
    )
    assert error_codes(both) == ["BAD_USER_INPUT"]
    assert "exactly one of marketData, sample, csv or datasetId" in both["errors"][0]["message"]


async def test_upload_options_resample_zone_and_report(gql: GraphQLCall, token: str) -> None:
    body = await upload(gql, token, resampleTo="1w", timeZone="America/New_York")
    assert "errors" not in body, body
    created = body["data"]["uploadDataset"]
    assert created["timeframe"] == "1w" and created["timeZone"] == "America/New_York"
    report = created["importReport"]
    assert (report["resampledFromBars"], report["resampledFromTimeframe"]) == (300, "1d")
    assert created["bars"] == report["bars"] < 300


@pytest.mark.parametrize("quota", ["count", "bytes"])
async def test_quotas_per_user_are_clear_errors(
    database: str, settings: Settings, sandbox: Sandbox, quota: str
) -> None:
    limits = (
        {"max_datasets_per_user": 2}
        if quota == "count"
        else {"max_dataset_storage_bytes_per_user": 300 * 6 * 8}
    )
    async with make_client(settings.model_copy(update=limits), sandbox=sandbox) as client:
        token, _ = await register_user(client)

        async def call(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
            return await call_graphql(client, query, variables, token)

        outcomes = []
        for _ in range(3):
            outcomes.append(await upload(call_as(call), token))
        codes = [error_codes(outcome) for outcome in outcomes]
        assert codes[0] == [] and ["BAD_USER_INPUT"] in codes
        refused = next(o for o in outcomes if o.get("errors"))["errors"][0]["message"]
        expected = "MAX_DATASETS_PER_USER" if quota == "count" else "remain; delete a dataset"
        assert expected in refused


def call_as(call: Any) -> GraphQLCall:
    async def run(query: str, variables: dict[str, Any] | None = None, token: str | None = None):
        return await call(query, variables)

    return run


async def test_a_large_upload_passes_the_body_limit_for_a_signed_in_user(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    """MAX_DATASET_BYTES, not MAX_REQUEST_BYTES, bounds a signed-in user's upload."""
    small = settings.model_copy(update={"max_request_bytes": 64 * 1024})
    async with make_client(small, sandbox=sandbox) as client:
        token, _ = await register_user(client)
        csv = daily_csv(1000)
        assert len(json.dumps(csv)) > 64 * 1024
        body = await call_graphql(
            client, operation("UploadDataset"), {"input": {"name": "big", "csv": csv}}, token
        )
        assert "errors" not in body, body
        anonymous = await client.post(
            "/graphql",
            json={
                "query": operation("UploadDataset"),
                "variables": {"input": {"name": "x", "csv": csv}},
            },
        )
        assert anonymous.status_code == 413


def test_compact_and_day_first_dotted_dates() -> None:
    compact = lines(
        "Date,Open,High,Low,Close,Volume", "20240102,1,2,0.5,1,5", "20240103,1,2,0.5,1,5"
    )
    bars, report = read(compact)
    assert bars.timestamp.tolist() == [utc("2024-01-02T00:00"), utc("2024-01-03T00:00")]
    assert report["timeframe"] == "1d"
    dukascopy = lines(
        "Gmt time,Open,High,Low,Close,Volume",
        "02.01.2024 00:00:00.000,1.1,1.2,1.0,1.15,100",
        "02.01.2024 01:00:00.000,1.15,1.2,1.1,1.1,80",
    )
    bars, report = read(dukascopy)
    assert report["format"] == "generic"
    assert bars.timestamp.tolist() == [utc("2024-01-02T00:00"), utc("2024-01-02T01:00")]


def big_csv(n: int = 8000) -> list[str]:
    bars = load_sample("trending_hourly")
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(n):
        j = i % len(bars)
        t = 1_700_000_000 + 3600 * i
        o, h, lo, c = (float(getattr(bars, k)[j]) for k in ("open", "high", "low", "close"))
        rows.append(f"{t},{o!r},{h!r},{lo!r},{c!r},{int(bars.volume[j])}")
    return rows


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (None, None),
        ((4321, "{t},1,2,0.5,abc,5"), "line 4322: close is not a number: 'abc'"),
        ((4321, "{t},1,2,0.5,1"), "line 4322: expected 6 fields, got 5"),
        ((4321, "{t},1,2,0.5,3,5"), "inconsistent bar at line 4322"),
        ((4321, "{t},null,null,null,null,null"), None),
        ((4321, "{t},1,2,0.5,1,5\n"), None),  # a blank line
    ],
    ids=["clean", "not-a-number", "ragged", "inconsistent", "null-row", "blank-line"],
)
def test_large_files_read_fast_give_what_the_exact_reader_gives(
    monkeypatch: pytest.MonkeyPatch, change: tuple[int, str] | None, message: str | None
) -> None:
    """Past 256 KiB, simple files go through pandas' C parser; anything it cannot vouch for
    (and every error, for its line number) is read again by the exact reader."""
    from services import bar_import

    rows = big_csv()
    if change is not None:
        at, row = change
        rows[at] = row.format(t=rows[at].split(",")[0])
    text = "\n".join(rows) + "\n"
    assert len(text) > bar_import._FAST_FROM_BYTES
    if change is None:
        assert bar_import._fast_table(text, 10**6) is not None, "the fast reader is not used"

    def both() -> list[Any]:
        outcomes: list[Any] = []
        for threshold in (bar_import._FAST_FROM_BYTES, 10**12):  # fast, then exact only
            monkeypatch.setattr(bar_import, "_FAST_FROM_BYTES", threshold)
            try:
                bars, report = read(text)
                outcomes.append((bars.as_columns(), report))
            except MarketDataError as exc:
                outcomes.append(str(exc))
        return outcomes

    fast, exact = both()
    assert fast == exact
    if message is not None:
        assert isinstance(fast, str) and message in fast
    else:
        assert isinstance(fast, tuple)


_CELLS = st.sampled_from(
    [
        "", " ", "1", "2.5", "-3", "1e3", "nan", "inf", "null", "abc", "2024-01-02",
        "2024.01.02", "02.01.2024", "00:00", "2024-01-02T00:00:00Z", "1704067200000",
        "20240102", "<DATE>", "<TIME>", "time", "open", "high", "low", "close", "volume",
        "Adj Close", '"', "\ufeff", "\x00x",
    ]
)  # fmt: skip
_ROWS = st.lists(st.lists(_CELLS, min_size=0, max_size=13), min_size=0, max_size=12)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_ROWS, st.sampled_from([",", ";", "\t"]), st.sampled_from(["UTC", "Europe/London"]))
def test_any_text_imports_or_is_refused_with_a_market_data_error(
    rows: list[list[str]], delimiter: str, zone: str
) -> None:
    """Whatever the upload holds, the import returns bars or a MarketDataError (never an
    IndexError or the like, which the API would answer as INTERNAL)."""
    text = "\n".join(delimiter.join(row) for row in rows)
    try:
        bars, report = import_csv(text, ImportOptions(time_zone=zone))
    except MarketDataError:
        return
    assert len(bars) == report.bars > 0


_HEADERS = st.sampled_from(
    [
        [],
        ["time", "open", "high", "low", "close"],
        ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"],
        ["Date", "Time", "Open", "High", "Low", "Close", "Vol"],
        ["<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>", "<VOL>"],
    ]
)
_GOOD = st.sampled_from(
    ["1", "2", "1.5", "0.5", "2024-01-02", "2024-01-03", "2024.01.02", "00:00", "01:00",
     "1704067200", "1704070800", "1704067200000", "null", "20240102", "2024-03-31 02:30"]
)  # fmt: skip


@st.composite
def _near_valid(draw: st.DrawFn) -> str:
    header = draw(_HEADERS)
    width = len(header) or draw(st.sampled_from([7, 12]))
    rows = draw(st.lists(st.lists(_GOOD, min_size=width, max_size=width), min_size=1, max_size=8))
    return "\n".join(",".join(row) for row in [header, *rows] if row)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    _near_valid(),
    st.sampled_from(["UTC", "Europe/London", "America/New_York"]),
    st.sampled_from([None, "1h", "1d", "1w"]),
)
def test_near_valid_files_import_or_are_refused_with_a_market_data_error(
    text: str, zone: str, resample_to: str | None
) -> None:
    try:
        bars, report = import_csv(text, ImportOptions(time_zone=zone, resample_to=resample_to))
    except MarketDataError:
        return
    assert len(bars) == report.bars > 0
