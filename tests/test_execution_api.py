"""runStrategy, backtestStrategy, sampleDatasets and validateCode's trial run, over HTTP.

Everything runs in the real sandbox (tests/test_sandbox*.py prove its containment).
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest

from services.samples import SAMPLE_NAMES, load_sample
from tests.support.api import GraphQLCall, error_codes, register_user

GENERATE = """mutation($p: String!) { generateStrategy(input: {prompt: $p}) {
  strategy { id parameters } } }"""
UPDATE = """mutation($id: UUID!, $code: String!) {
  updateStrategy(id: $id, input: {generatedCode: $code}) { id status } }"""
RUN = """mutation($id: UUID!, $data: MarketDataInput!, $params: JSON) {
  runStrategy(id: $id, marketData: $data, parameters: $params) {
    action confidence reason metadata } }"""
BACKTEST = """mutation($id: UUID!, $input: BacktestInput!) {
  backtestStrategy(id: $id, input: $input) {
    strategy { id performanceMetrics usageCount }
    metrics equityCurve trades bars elapsedSeconds } }"""
STRATEGY = "query($id: UUID!) { strategy(id: $id) { usageCount performanceMetrics } }"
VALIDATE = """mutation($code: String!, $smoke: Boolean) {
  validateCode(code: $code, smokeTest: $smoke) { valid errors } }"""

REQUIRED_METRICS = {
    "totalReturnPct",
    "maxDrawdownPct",
    "sharpeRatio",
    "winRatePct",
    "numTrades",
    "exposurePct",
    "finalEquity",
    "buyAndHoldReturnPct",
    "cagrPct",
    "volatilityPct",
    "sortinoRatio",
    "calmarRatio",
    "avgDrawdownPct",
    "bestTradePct",
    "worstTradePct",
    "avgTradePct",
    "profitFactor",
    "expectancy",
    "commissionsPaid",
}


def market_data(n: int = 120, sample: str = "trending_daily") -> dict[str, Any]:
    bars = load_sample(sample)
    columns = bars.as_columns()
    return {key: values[:n] for key, values in columns.items()} | {"symbol": "SYNTH"}


async def new_strategy(gql: GraphQLCall, token: str, prompt: str = "SMA 5/20 crossover") -> str:
    body = await gql(GENERATE, {"p": prompt}, token=token)
    return str(body["data"]["generateStrategy"]["strategy"]["id"])


async def with_code(gql: GraphQLCall, token: str, code: str) -> str:
    strategy_id = await new_strategy(gql, token)
    body = await gql(UPDATE, {"id": strategy_id, "code": code}, token=token)
    assert "errors" not in body, body
    return strategy_id


SIGNAL = "{'action': 'hold', 'confidence': 0.5, 'reason': 'r', 'metadata': {}}"


async def test_run_strategy_returns_a_signal_and_counts_usage(gql: GraphQLCall, token: str) -> None:
    strategy_id = await new_strategy(gql, token)
    for _ in range(2):
        body = await gql(RUN, {"id": strategy_id, "data": market_data()}, token=token)
        assert "errors" not in body, body
        signal = body["data"]["runStrategy"]
        assert signal["action"] in ("BUY", "SELL", "HOLD")
        assert 0 <= signal["confidence"] <= 1
        assert "SMA" in signal["reason"]
        assert set(signal["metadata"]["indicators"]) == {"fast_sma", "slow_sma"}
    stored = (await gql(STRATEGY, {"id": strategy_id}, token=token))["data"]["strategy"]
    assert stored["usageCount"] == 2


async def test_parameters_override_the_strategy_defaults(gql: GraphQLCall, token: str) -> None:
    strategy_id = await new_strategy(gql, token)
    body = await gql(
        RUN,
        {"id": strategy_id, "data": market_data(), "params": {"slow_period": 500}},
        token=token,
    )
    signal = body["data"]["runStrategy"]
    assert (signal["action"], signal["confidence"]) == ("HOLD", 0.0)
    assert "Not enough bars" in signal["reason"]
    bad = await gql(RUN, {"id": strategy_id, "data": market_data(), "params": [1, 2]}, token=token)
    assert error_codes(bad) == ["BAD_USER_INPUT"]


async def test_bad_market_data_is_refused_clearly(
    client: Any, gql: GraphQLCall, token: str
) -> None:
    strategy_id = await new_strategy(gql, token)
    ragged = market_data()
    ragged["close"] = ragged["close"][:-1]
    inverted = market_data()
    inverted["high"][3] = inverted["low"][3] - 1
    empty = {key: [] for key in ("open", "high", "low", "close", "volume")}
    for data, message in [(ragged, "ragged"), (inverted, "index 3"), (empty, "at least 1")]:
        body = await gql(RUN, {"id": strategy_id, "data": data}, token=token)
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert message in body["errors"][0]["message"]
    # JSON has no infinity, but 1e309 parses as one: it must not get through.
    data = market_data(1)
    data["close"] = ["__BIG__"]
    text = json.dumps({"query": RUN, "variables": {"id": strategy_id, "data": data}})
    response = await client.post(
        "/graphql",
        content=text.replace('"__BIG__"', "1e309"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert error_codes(response.json()) == ["BAD_USER_INPUT"], response.text
    assert "inf" in response.json()["errors"][0]["message"]
    stored = (await gql(STRATEGY, {"id": strategy_id}, token=token))["data"]["strategy"]
    assert stored["usageCount"] == 0, "refused runs are not counted"


async def test_invalid_strategies_and_other_users_strategies_are_refused(
    client: Any, gql: GraphQLCall, token: str
) -> None:
    broken = await with_code(
        gql,
        token,
        "import os\ndef execute_strategy(market_data, strategy_params):\n    return {}\n",
    )
    body = await gql(RUN, {"id": broken, "data": market_data()}, token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "status ERROR" in body["errors"][0]["message"]

    mine = await new_strategy(gql, token)
    intruder, _ = await register_user(client)
    for some_id in (mine, str(uuid.uuid4())):
        run = await gql(RUN, {"id": some_id, "data": market_data()}, token=intruder)
        test = await gql(
            BACKTEST, {"id": some_id, "input": {"sample": SAMPLE_NAMES[0]}}, token=intruder
        )
        assert error_codes(run) == error_codes(test) == ["NOT_FOUND"]


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        ("x = 0\nwhile x >= 0:\n    x += 1\n" + f"return {SIGNAL}", "TIMEOUT", "longer than 2 s"),
        (
            "return {'action': 'to' + 'the moon', 'confidence': 0.5, 'reason': '', 'metadata': {}}",
            "INVALID_OUTPUT",
            "action",
        ),
        (
            "closes = market_data['close']\nratio = len(closes) / 0\n" + f"return {SIGNAL}",
            "RUNTIME_ERROR",
            "ZeroDivisionError",
        ),
        ("market_data['close'][0] = 1.0\n" + f"return {SIGNAL}", "RUNTIME_ERROR", "read-only"),
    ],
)
async def test_strategy_failures_are_typed_and_contained(
    gql: GraphQLCall, token: str, body: str, reason: str, message: str
) -> None:
    lines = "\n".join("    " + line for line in body.splitlines())
    code = f"def execute_strategy(market_data, strategy_params):\n{lines}\n"
    strategy_id = await with_code(gql, token, code)
    result = await gql(RUN, {"id": strategy_id, "data": market_data()}, token=token)
    # Its own code failed: a code of its own, so clients tell it from a bad argument.
    assert error_codes(result) == ["STRATEGY_ERROR"], result
    error = result["errors"][0]
    assert error["extensions"]["reason"] == reason
    assert message in error["message"]
    assert "Traceback" not in str(result)
    still_up = await gql("{ me { id } }", token=token)
    assert "errors" not in still_up


async def test_backtest_on_a_sample_stores_its_metrics(gql: GraphQLCall, token: str) -> None:
    strategy_id = await new_strategy(gql, token, "SMA 10/30 crossover, 2% stop loss")
    body = await gql(
        BACKTEST,
        {"id": strategy_id, "input": {"sample": "trending_daily", "commissionPct": 0.05}},
        token=token,
    )
    assert "errors" not in body, body
    result = body["data"]["backtestStrategy"]
    bars = len(load_sample("trending_daily"))
    assert result["bars"] == bars
    assert len(result["equityCurve"]) == bars
    assert set(result["metrics"]) >= REQUIRED_METRICS
    assert result["metrics"]["numTrades"] == len(result["trades"]) > 0
    assert math.isclose(result["metrics"]["finalEquity"], result["equityCurve"][-1])
    trade = result["trades"][0]
    assert {
        "entryBar",
        "exitBar",
        "entryPrice",
        "exitPrice",
        "pnl",
        "entryReason",
        "exitReason",
    } <= set(trade)
    assert trade["exitBar"] > trade["entryBar"]
    assert result["elapsedSeconds"] > 0

    stored = (await gql(STRATEGY, {"id": strategy_id}, token=token))["data"]["strategy"]
    metrics = stored["performanceMetrics"]
    assert metrics["finalEquity"] == result["metrics"]["finalEquity"]
    assert (metrics["data"], metrics["bars"], metrics["commissionPct"]) == (
        "sample:trending_daily",
        bars,
        0.05,
    )
    assert result["strategy"]["performanceMetrics"] == metrics


TYPED_BACKTEST = """mutation($id: UUID!, $input: BacktestInput!) {
  backtestStrategy(id: $id, input: $input) {
    metrics trades bars
    statistics { finalEquity numTrades buyAndHoldReturnPct buyAndHoldMaxDrawdownPct
                 excessReturnPct totalReturnPct slippagePaid commissionsPaid sharpeRatio }
    tradeCount
    firstTwo: tradeLog(limit: 2) { entryBar exitBar entryTime exitTime side entryPrice
                                   exitPrice size pnl slippage exitReason }
    rest: tradeLog(offset: 2) { entryBar }
    equityPoints(maxPoints: 20) { bar timestamp equity }
    coarse: equityCurve(maxPoints: 20)
    equityCurve
    strategy { performanceMetrics } } }"""


async def test_backtest_typed_results_with_slippage(gql: GraphQLCall, token: str) -> None:
    """Issue 11's typed results and issue 13's benchmark, resolution, paging and slippage."""
    strategy_id = await new_strategy(gql, token, "SMA 10/30 crossover")
    results = {}
    for slippage in (0, 25):
        input_ = {"sample": "trending_daily", "slippageBps": slippage}
        body = await gql(TYPED_BACKTEST, {"id": strategy_id, "input": input_}, token=token)
        assert "errors" not in body, body
        results[slippage] = body["data"]["backtestStrategy"]
    plain, slipped = results[0], results[25]
    stats, metrics = slipped["statistics"], slipped["metrics"]
    for key, value in stats.items():  # the typed fields and the JSON agree
        assert metrics[key] == value, key
    assert stats["slippagePaid"] > 0 and plain["statistics"]["slippagePaid"] == 0
    assert stats["finalEquity"] < plain["statistics"]["finalEquity"]
    closes = load_sample("trending_daily").close
    assert stats["buyAndHoldReturnPct"] == pytest.approx((closes[-1] / closes[0] - 1) * 100)
    assert stats["buyAndHoldMaxDrawdownPct"] < 0
    assert stats["excessReturnPct"] == pytest.approx(
        stats["totalReturnPct"] - stats["buyAndHoldReturnPct"]
    )
    stored = slipped["strategy"]["performanceMetrics"]
    assert stored["buyAndHoldMaxDrawdownPct"] == stats["buyAndHoldMaxDrawdownPct"]
    assert stored["slippageBps"] == 25
    assert slipped["tradeCount"] == stats["numTrades"] == len(slipped["trades"]) > 2
    typed = slipped["firstTwo"] + slipped["rest"]
    assert [t["entryBar"] for t in typed] == [t["entryBar"] for t in slipped["trades"]]
    first = slipped["firstTwo"][0]
    assert first["entryTime"] is not None and first["exitTime"] > first["entryTime"]
    assert {k: first[k] for k in first} == {k: slipped["trades"][0][k] for k in first}
    points = slipped["equityPoints"]
    assert len(points) <= 20 and points[0]["bar"] == 0 and points[-1]["bar"] == slipped["bars"] - 1
    assert [p["equity"] for p in points] == slipped["coarse"]
    assert all(slipped["equityCurve"][p["bar"]] == p["equity"] for p in points)
    assert all(p["timestamp"] is not None for p in points)
    assert len(slipped["equityCurve"]) == slipped["bars"]


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ("equityPoints(maxPoints: 1) { bar }", "maxPoints must be at least 2"),
        ("equityCurve(maxPoints: 0)", "maxPoints must be at least 2"),
        ("tradeLog(offset: -1) { entryBar }", "offset must be at least 0"),
        ("tradeLog(limit: -1) { entryBar }", "limit must be at least 0"),
    ],
)
async def test_backtest_typed_field_arguments_are_checked(
    gql: GraphQLCall, token: str, selection: str, message: str
) -> None:
    strategy_id = await new_strategy(gql, token)
    query = (
        'mutation($id: UUID!) { backtestStrategy(id: $id, input: {sample: "trending_daily"})'
        f" {{ bars {selection} }} }}"
    )
    body = await gql(query, {"id": strategy_id}, token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert message in body["errors"][0]["message"]


async def test_backtest_on_uploaded_bars_and_csv(gql: GraphQLCall, token: str) -> None:
    strategy_id = await new_strategy(gql, token, "SMA 5/20")
    data = market_data(300)
    by_columns = await gql(
        BACKTEST, {"id": strategy_id, "input": {"marketData": data}}, token=token
    )
    assert "errors" not in by_columns, by_columns
    rows = ["timestamp,open,high,low,close,volume"] + [
        ",".join(str(data[k][i]) for k in ("timestamp", "open", "high", "low", "close", "volume"))
        for i in range(300)
    ]
    by_csv = await gql(
        BACKTEST, {"id": strategy_id, "input": {"csv": "\n".join(rows)}}, token=token
    )
    assert "errors" not in by_csv, by_csv
    first, second = by_columns["data"]["backtestStrategy"], by_csv["data"]["backtestStrategy"]
    assert first["metrics"]["finalEquity"] == pytest.approx(second["metrics"]["finalEquity"])
    assert second["strategy"]["performanceMetrics"]["data"] == "csv"


@pytest.mark.parametrize(
    ("backtest_input", "message"),
    [
        ({}, "exactly one of marketData, sample, csv or datasetId"),
        ({"sample": "trending_daily", "csv": "a,b"}, "exactly one"),
        ({"sample": "moon"}, "Unknown sample 'moon'"),
        ({"sample": "trending_daily", "initialCash": -5}, "initial_cash"),
        ({"sample": "trending_daily", "commissionPct": 150}, "commission"),
        ({"csv": "open,high\n1,2"}, "csv:"),
        ({"sample": "trending_daily", "slippageBps": -1}, "slippage_bps"),
    ],
)
async def test_backtest_input_errors(
    gql: GraphQLCall, token: str, backtest_input: dict[str, Any], message: str
) -> None:
    strategy_id = await new_strategy(gql, token)
    body = await gql(BACKTEST, {"id": strategy_id, "input": backtest_input}, token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert message in body["errors"][0]["message"]
    stored = (await gql(STRATEGY, {"id": strategy_id}, token=token))["data"]["strategy"]
    assert stored["performanceMetrics"] == {}, "a refused backtest stores nothing"


async def test_sample_datasets(gql: GraphQLCall, token: str) -> None:
    body = await gql(
        "{ sampleDatasets sampleDatasetDetails { name description bars } }", token=token
    )
    assert body["data"]["sampleDatasets"] == list(SAMPLE_NAMES)
    assert len(SAMPLE_NAMES) >= 6
    for details in body["data"]["sampleDatasetDetails"]:
        assert "synthetic" in details["description"].lower()
        assert details["bars"] >= 500


async def test_validate_code_trial_runs_in_the_sandbox(gql: GraphQLCall, token: str) -> None:
    crashing = (
        "def execute_strategy(market_data, strategy_params):\n"
        "    closes = market_data['close']\n"
        "    level = len(closes) // (len(closes) - len(closes))\n"
        f"    return {SIGNAL}\n"
    )
    checked = (await gql(VALIDATE, {"code": crashing}, token=token))["data"]["validateCode"]
    assert checked["valid"] is False
    assert any(
        "Trial run" in e and "ZeroDivisionError" in e and "line 3" in e for e in checked["errors"]
    ), checked
    skipped = await gql(VALIDATE, {"code": crashing, "smoke": False}, token=token)
    assert skipped["data"]["validateCode"] == {"valid": True, "errors": []}
