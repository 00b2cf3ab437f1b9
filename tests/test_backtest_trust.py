"""Issue 10, item 3: the strategy's process sends signals and nothing else, and no stored or
served JSON holds a non-finite number.

The forging samples run with the Python guards off: the job process is then exactly as
powerful as code that got past them, and writes its own frames on the result pipe (fd 3).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from tortoise import Tortoise

from models import GeneratedStrategy, StrategyStatus, User
from server.db import dialect_of
from server.settings import Settings
from services.backtesting import BacktestOptions, metrics_json, report_json, run_backtest
from services.execution import (
    MAX_BACKTEST_BARS,
    OHLCV,
    BacktestRequest,
    MarketDataColumns,
    StrategyRunner,
)
from services.providers.templates import TemplateProvider
from services.samples import synthetic_bars
from services.sandbox import (
    InvalidStrategyOutput,
    Sandbox,
    SandboxSettings,
    SandboxViolation,
)
from services.sandbox.warmup import sample_bars
from services.signals import ORDER_KEYS
from tests.support.api import make_client, register_user

BARS = sample_bars(120)
OPTIONS = BacktestOptions()
BUY_AT, SELL_AT = 10, 60


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, as a browser's JSON.parse does."""

    def refuse(token: str) -> float:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def honest(market_data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    bar = len(market_data["close"]) - 1
    action = {BUY_AT: "buy", SELL_AT: "sell"}.get(bar, "hold")
    return {"action": action, "confidence": 0.5, "reason": "r"}


def honest_stream(**changes: Any) -> dict[str, Any]:
    """What an honest job process sends for `honest` (one action letter per bar, then for
    each buy or sell an index into a table of [confidence, reason, {order key: value}]), with
    the table's row edited by `changes`."""
    actions = ["h"] * len(BARS)
    actions[BUY_AT], actions[SELL_AT] = "b", "s"
    row: dict[str, Any] = {"confidence": 0.5, "reason": "r"}
    orders = {key: changes.pop(key) for key in ORDER_KEYS if key in changes}
    row.update(changes)
    return {"actions": "".join(actions), "details": [0, 0], "table": [[*row.values(), orders]]}


def forging(value: object) -> str:
    """Strategy code that writes `value` as its own final frame (NaN allowed) and exits."""
    body = json.dumps({"t": "ok", "value": value}).encode()
    return f"""
import os

def execute_strategy(market_data, strategy_params):
    body = {body!r}
    os.write(3, len(body).to_bytes(4, "big") + body)
    os._exit(0)
"""


FORGED_RESULT = {
    "metrics": {"finalEquity": 1e12, "sharpeRatio": math.nan, "numTrades": 99},
    "equityCurve": [math.inf] * len(BARS),
    "trades": [],
    "bars": len(BARS),
}


@pytest_asyncio.fixture(scope="module")
async def unguarded() -> AsyncIterator[Sandbox]:
    settings = SandboxSettings(python_guards=False, max_concurrent_jobs=1, memory_limit_mb=256)
    async with Sandbox(settings) as box:
        yield box


# --- the job process sends signals; the server computes every number ------------------------


async def test_a_forged_engine_result_is_refused(unguarded: Sandbox) -> None:
    with pytest.raises(SandboxViolation) as caught:
        await unguarded.run_backtest(forging(FORGED_RESULT), BARS, {}, OPTIONS)
    assert caught.value.extensions["layer"] == "protocol"
    assert "signal stream" in caught.value.message


async def test_forged_signals_are_only_signals_the_server_recomputes(unguarded: Sandbox) -> None:
    result = await unguarded.run_backtest(forging(honest_stream()), BARS, {}, OPTIONS)
    # Its look-ahead check job forges the same frame, which is no check result (issue 18).
    assert result.look_ahead is not None and result.look_ahead["lookAheadBias"] is True
    assert metrics_json(result)["trustworthy"] is False
    assert metrics_json(result)["lookAheadBias"] is True
    assert replace(result, look_ahead=None) == run_backtest(honest, BARS, {}, OPTIONS)
    assert result.stats.num_trades == 1
    json.dumps(report_json(result), allow_nan=False)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"confidence": math.nan}, "confidence must be a number between 0 and 1"),
        ({"confidence": 7}, "confidence must be a number between 0 and 1"),
        ({"stop_loss_price": math.inf}, "stop_loss_price must be a finite positive price"),
        ({"take_profit_price": -math.inf}, "take_profit_price must be a finite positive price"),
        ({"stop_loss_price": 10 * 10**400}, "stop_loss_price must be a finite positive price"),
        ({"stop_loss_price": 1e9}, "stop_loss_price 1000000000.0 is above the close"),
        ({"reason": ["not", "text"]}, "reason must be a string"),
    ],
)
async def test_every_forged_signal_is_checked_and_named_by_bar(
    unguarded: Sandbox, changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidStrategyOutput) as caught:
        await unguarded.run_backtest(forging(honest_stream(**changes)), BARS, {}, OPTIONS)
    assert caught.value.extensions["barIndex"] == BUY_AT
    assert problem in caught.value.message
    assert caught.value.message.endswith(f"(bar {BUY_AT})")


@pytest.mark.parametrize(
    "stream",
    [
        {"actions": "h" * (len(BARS) - 1), "details": [], "table": []},
        {"actions": "x" * len(BARS), "details": [], "table": []},
        {"actions": "b" + "h" * (len(BARS) - 1), "details": [3], "table": [[0.5, "", {}]]},
        {"actions": "b" + "h" * (len(BARS) - 1), "details": [], "table": []},
        {"actions": "h" * len(BARS), "details": [0], "table": [[0.5, "", {}]]},
        {"actions": "b" + "h" * (len(BARS) - 1), "details": [0], "table": [[0.5]]},
        {"actions": "b" + "h" * (len(BARS) - 1), "details": [0], "table": [[0.5, "", {"x": 1}]]},
        [1, 2, 3],
    ],
)
async def test_a_malformed_signal_stream_is_a_protocol_violation(
    unguarded: Sandbox, stream: object
) -> None:
    with pytest.raises(SandboxViolation) as caught:
        await unguarded.run_backtest(forging(stream), BARS, {}, OPTIONS)
    assert caught.value.extensions["layer"] == "protocol"


async def test_stored_metrics_are_the_servers_own(database: str, unguarded: Sandbox) -> None:
    user = await User.create(email=f"trust-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
    runner = StrategyRunner(unguarded)
    strategies = []
    for value in (FORGED_RESULT, honest_stream()):
        strategies.append(
            await GeneratedStrategy.create(
                user=user,
                name="forger",
                original_prompt="p",
                generated_code=forging(value),
                status=StrategyStatus.VALIDATED,
            )
        )
    columns = BARS.as_columns()
    data = MarketDataColumns(**{key: columns[key] for key in (*OHLCV, "timestamp")})
    request = BacktestRequest(market_data=data)
    with pytest.raises(SandboxViolation):
        await runner.backtest(user, strategies[0].id, request)
    outcome = await runner.backtest(user, strategies[1].id, request)
    honest_metrics = metrics_json(run_backtest(honest, BARS, {}, OPTIONS))
    forged, recomputed = [await GeneratedStrategy.get(id=strategy.id) for strategy in strategies]
    assert forged.performance_metrics == {}
    stored = recomputed.performance_metrics
    assert {key: stored[key] for key in honest_metrics} == json.loads(json.dumps(honest_metrics))
    served = dict(metrics_json(outcome.result))
    # A forger's look-ahead check forges too: flagged (issue 18).
    assert served.pop("trustworthy") is False and stored["trustworthy"] is False
    assert served.pop("lookAheadBias") is True
    assert served == honest_metrics


CHEAP_ROUND_TRIPS = """
def execute_strategy(market_data, strategy_params):
    bar = len(market_data["close"])
    action = {1: "buy", 500: "sell"}.get(bar % 1000, "hold")
    return {"action": action, "confidence": 0.5, "reason": f"{action} at {bar}"}
"""


async def test_a_100k_bar_backtest_fits_the_output_cap(sandbox: Sandbox) -> None:
    """The result (equity curve and trades) no longer crosses the pipe, only the signals: the
    longest backtest the API accepts stays well inside the default cap."""
    bars = synthetic_bars("trending", MAX_BACKTEST_BARS, timeframe="1h", seed=5)
    result = await sandbox.run_backtest(CHEAP_ROUND_TRIPS, bars, {}, OPTIONS, timeout_seconds=120)
    assert result.bars == MAX_BACKTEST_BARS
    assert len(result.equity) == MAX_BACKTEST_BARS
    assert result.stats.num_trades == 100
    json.dumps(report_json(result), allow_nan=False)


# --- the last line: stored and served JSON ----------------------------------------------------


async def test_stored_json_never_holds_a_non_finite_number(database: str) -> None:
    user = await User.create(email=f"nan-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
    strategy = await GeneratedStrategy.create(
        user=user,
        name="n",
        original_prompt="p",
        generated_code="c",
        performance_metrics={"sharpeRatio": math.nan, "curve": [1.0, math.inf, -math.inf]},
        parameters={"nested": {"x": math.nan}, "ok": 1.5},
    )
    stored = await GeneratedStrategy.get(id=strategy.id)
    assert stored.performance_metrics == {"sharpeRatio": None, "curve": [1.0, None, None]}
    assert stored.parameters == {"nested": {"x": None}, "ok": 1.5}
    # The path a backtest stores its summary by.
    await GeneratedStrategy.filter(id=strategy.id).update(performance_metrics={"p": -math.inf})
    assert (await GeneratedStrategy.get(id=strategy.id)).performance_metrics == {"p": None}


STRATEGIES = "{ strategies { items { id performanceMetrics } } }"


async def test_a_stored_non_finite_number_is_served_as_valid_json(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    """Rows written before the encoder refused NaN (SQLite's text column kept the token) are
    still served as JSON. PostgreSQL's jsonb never held such a value."""
    if dialect_of(database) == "postgres":
        pytest.skip("PostgreSQL's jsonb cannot hold NaN: no such row can exist there")
    async with make_client(settings, TemplateProvider(), sandbox=sandbox) as client:
        token, user_id = await register_user(client)
        strategy = await GeneratedStrategy.create(
            user_id=user_id, name="n", original_prompt="p", generated_code="c"
        )
        await Tortoise.get_connection("default").execute_query(
            "UPDATE generated_strategies SET performance_metrics = ? WHERE id = ?",
            ['{"sharpeRatio": NaN, "profitFactor": Infinity, "x": [-Infinity]}', str(strategy.id)],
        )
        response = await client.post(
            "/graphql", json={"query": STRATEGIES}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200
    body = strict_json(response.text)
    (item,) = body["data"]["strategies"]["items"]
    assert item["performanceMetrics"] == {"sharpeRatio": None, "profitFactor": None, "x": [None]}


def test_response_encoding_is_strict_json_and_unchanged_when_finite() -> None:
    from models.fields import dumps_finite_json

    finite = {"a": [1, 2.5, None, "NaN"], "b": {"c": True}}
    assert dumps_finite_json(finite) == json.dumps(finite, separators=(",", ":"))
    assert strict_json(dumps_finite_json({"a": (math.nan, 1.0)})) == {"a": [None, 1.0]}
