"""Issue 13 §3 through the API: the operations of docs/operations/optimization.graphql, run
as written, against the app with the optimisation's job handlers under the in-test runner
(services/jobs.py's InProcessJobs); sandbox, engine and database real."""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse, print_ast

from bench.backtest_engine import execute_strategy as sma_cross
from models import Optimization
from server.app import create_app
from server.settings import Settings
from server.wiring import OPERATIONS_DIR, build_services
from services.container import Services
from services.jobs import InProcessJobs, JobRules
from services.optimization import FINISHED
from services.providers.templates import TemplateProvider
from services.samples import load_sample
from services.sandbox import Sandbox
from tests.support.api import call_graphql, error_codes, register_user, shared_analyser
from tests.support.live import serve_over_tcp
from tests.support.ws import GraphQLWS

DOCUMENT = (OPERATIONS_DIR / "optimization.graphql").read_text()
SMA_CODE = "from typing import Any\n\n" + inspect.getsource(sma_cross)
CREATE = """mutation($input: CreateStrategyInput!) { createStrategy(input: $input) {
  id version parameters } }"""
PARAMETERS = {"fast": 10, "slow": 30}
GRID = [{"name": "fast", "values": [5, 10]}, {"name": "slow", "min": 20, "max": 40, "step": 10}]


def _operation(name: str) -> str:
    """Operation `name` of the document with the fragments it uses, as a client sends it."""
    definitions = {d.name.value: d for d in parse(DOCUMENT).definitions}  # type: ignore[attr-defined]
    kept, pending = [name], [name]
    while pending:
        for used in re.findall(r"\.\.\.(\w+)", print_ast(definitions[pending.pop()])):
            if used not in kept:
                kept.append(used)
                pending.append(used)
    return "\n\n".join(print_ast(definitions[k]) for k in kept)


@pytest.fixture
async def app_services(
    database: str, settings: Settings, sandbox: Sandbox
) -> AsyncIterator[Services]:
    """The app's services with the real in-process job backend, polling briskly."""
    services = build_services(settings, TemplateProvider(), sandbox, shared_analyser())
    jobs = InProcessJobs(
        services.runner, JobRules(heartbeat_seconds=0.2, stale_seconds=1.0), poll_seconds=0.1
    )
    services.jobs = jobs
    assert services.optimizer is not None
    services.optimizer.submitter = jobs
    await jobs.start()
    yield services
    await jobs.aclose()


@pytest.fixture
async def api(settings: Settings, app_services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings, app_services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _finished(job_id: str, seconds: float = 60) -> Optimization:
    """The optimisation once it has ended, read from its row as any client would see it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = await Optimization.get(id=job_id)
        if row.status in FINISHED:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"optimization {job_id} did not end in {seconds} s")


async def _run(
    client: httpx.AsyncClient, name: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    return await call_graphql(client, _operation(name), variables, token)


async def _strategy(client: httpx.AsyncClient, token: str) -> str:
    body = await call_graphql(
        client,
        CREATE,
        {
            "input": {
                "name": "SMA",
                "generatedCode": SMA_CODE,
                "parameters": {"fast": 10, "slow": 30},
            }
        },
        token,
    )
    assert "errors" not in body, body
    return str(body["data"]["createStrategy"]["id"])


async def test_optimize_follow_read_and_apply(api: httpx.AsyncClient):
    token, _ = await register_user(api)
    strategy_id = await _strategy(api, token)
    started = await _run(
        api,
        "OptimizeStrategy",
        {
            "id": strategy_id,
            "input": {
                "sample": "trending_daily",
                "parameters": GRID,
                "walkForward": {"folds": 2, "outOfSamplePct": 25},
            },
        },
        token,
    )
    assert "errors" not in started, started
    summary = started["data"]["optimizeStrategy"]
    assert summary["status"] in ("QUEUED", "RUNNING")
    assert summary["trialsTotal"] == 12 and summary["method"] == "GRID"
    await _finished(summary["id"])

    detail = (await _run(api, "Optimization", {"id": summary["id"]}, token))["data"]
    found = detail["optimization"]
    assert found["status"] == "SUCCEEDED" and found["trialsDone"] == 12
    assert [f["index"] for f in found["folds"]] == [0, 1]
    assert found["bestParameters"] == found["folds"][-1]["bestParameters"]
    assert found["strategy"]["id"] == strategy_id and found["lookAheadBias"] is False
    assert found["outOfSampleMetrics"]["numTrades"] == sum(
        f["outOfSample"]["numTrades"] for f in found["folds"]
    )
    assert isinstance(found["walkForwardEfficiency"], float | None)

    trials = (await _run(api, "OptimizationTrials", {"id": summary["id"]}, token))["data"]
    numbers = [t["number"] for t in trials["optimization"]["trials"]]
    assert numbers == list(range(12))
    assert {t["fold"] for t in trials["optimization"]["trials"]} == {0, 1}

    listed = await _run(api, "Optimizations", {"strategyId": strategy_id}, token)
    assert [o["id"] for o in listed["data"]["optimizations"]["items"]] == [summary["id"]]

    # The optimisation's job, as its owner sees it; nobody else sees it.
    jobs = (await _run(api, "Jobs", {"status": "SUCCEEDED"}, token))["data"]["jobs"]
    assert [(j["id"], j["kind"], j["status"]) for j in jobs] == [
        (summary["id"], "optimization", "SUCCEEDED")
    ]
    assert jobs[0]["attempts"] == 1 and jobs[0]["worker"] and jobs[0]["finishedAt"]
    assert jobs[0]["progress"]["trialsDone"] == 12
    job = (await _run(api, "Job", {"id": summary["id"]}, token))["data"]["job"]
    assert job["status"] == "SUCCEEDED"
    other, _ = await register_user(api)
    assert (await _run(api, "Job", {"id": summary["id"]}, other))["data"]["job"] is None
    assert (await _run(api, "Jobs", {}, other))["data"]["jobs"] == []
    refused = await call_graphql(api, "{ jobs(limit: 0) { id } }", {}, token)
    assert error_codes(refused) == ["BAD_USER_INPUT"]

    applied = await _run(api, "ApplyOptimization", {"id": summary["id"], "fold": 0}, token)
    assert "errors" not in applied, applied
    strategy = applied["data"]["applyOptimization"]
    assert strategy["version"] == 2
    assert strategy["parameters"] == found["folds"][0]["bestParameters"]


async def test_market_data_input(api: httpx.AsyncClient):
    token, _ = await register_user(api)
    strategy_id = await _strategy(api, token)
    bars = load_sample("ranging_daily")
    market_data = {
        key: list(map(float, getattr(bars, key)))
        for key in ("open", "high", "low", "close", "volume")
    }
    started = await _run(
        api,
        "OptimizeStrategy",
        {
            "id": strategy_id,
            "input": {
                "marketData": market_data,
                "parameters": GRID,
                "method": "RANDOM",
                "maxTrials": 4,
                "objective": "totalReturnPct",
                "maxDrawdownPct": 50,
            },
        },
        token,
    )
    assert "errors" not in started, started
    job_id = started["data"]["optimizeStrategy"]["id"]
    await _finished(job_id)
    found = (await _run(api, "OptimizationTrials", {"id": job_id}, token))["data"]["optimization"]
    assert len(found["trials"]) == 4
    for trial in found["trials"]:
        if trial["value"] is not None:
            assert trial["value"] == trial["metrics"]["totalReturnPct"]
            assert trial["metrics"]["maxDrawdownPct"] >= -50


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"parameters": [{"name": "period", "values": [1, 2]}]}, "Unknown parameter 'period'"),
        ({"parameters": [{"name": "fast", "min": 9, "max": 3, "step": 1}]}, "range is empty"),
        ({"objective": "luck"}, "Unknown objective"),
        ({"walkForward": {"folds": 20, "outOfSamplePct": 5}}, "fewer folds"),
        ({"sample": None}, "exactly one of"),
    ],
)
async def test_bad_input_is_a_clear_error(
    api: httpx.AsyncClient, change: dict[str, Any], message: str
):
    token, _ = await register_user(api)
    strategy_id = await _strategy(api, token)
    variables = {
        "id": strategy_id,
        "input": {"sample": "trending_daily", "parameters": GRID, **change},
    }
    body = await _run(api, "OptimizeStrategy", variables, token)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert message in body["errors"][0]["message"]
    listed = await _run(api, "Optimizations", {"strategyId": strategy_id}, token)
    assert listed["data"]["optimizations"]["totalCount"] == 0


async def test_another_users_optimization_is_invisible(api: httpx.AsyncClient):
    owner, _ = await register_user(api)
    other, _ = await register_user(api)
    strategy_id = await _strategy(api, owner)
    started = await _run(
        api,
        "OptimizeStrategy",
        {"id": strategy_id, "input": {"sample": "trending_daily", "parameters": GRID}},
        owner,
    )
    job_id = started["data"]["optimizeStrategy"]["id"]
    await _finished(job_id)
    assert (await _run(api, "Optimization", {"id": job_id}, other))["data"]["optimization"] is None
    listed = await _run(api, "Optimizations", {}, other)
    assert listed["data"]["optimizations"]["totalCount"] == 0
    for name in ("CancelOptimization", "ApplyOptimization"):
        assert error_codes(await _run(api, name, {"id": job_id}, other)) == ["NOT_FOUND"]
    foreign = await _run(
        api,
        "OptimizeStrategy",
        {"id": strategy_id, "input": {"sample": "trending_daily", "parameters": GRID}},
        other,
    )
    assert error_codes(foreign) == ["NOT_FOUND"]


async def test_progress_subscription_follows_to_the_end(settings: Settings, app_services: Services):
    app = create_app(settings, app_services)
    async with serve_over_tcp(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            token, _ = await register_user(client)
            strategy_id = await _strategy(client, token)
            started = await _run(
                client,
                "OptimizeStrategy",
                {
                    "id": strategy_id,
                    "input": {
                        "sample": "trending_daily",
                        "parameters": [{"name": "fast", "min": 2, "max": 31, "step": 1}],
                    },
                },
                token,
            )
            job_id = started["data"]["optimizeStrategy"]["id"]
        async with GraphQLWS.connect(base_url, {"Authorization": f"Bearer {token}"}) as ws:
            outcome = await ws.collect(_operation("OptimizationProgress"), {"id": job_id})
    assert outcome.ended == "complete", outcome
    events = outcome.data
    assert events[-1]["status"] == "SUCCEEDED" and events[-1]["trialsDone"] == 30
    done = [event["trialsDone"] for event in events]
    assert done == sorted(done) and len(events) >= 2


async def test_cancel_through_the_api(api: httpx.AsyncClient):
    token, _ = await register_user(api)
    strategy_id = await _strategy(api, token)
    wide = [{"name": "fast", "min": 2, "max": 41, "step": 1}, {"name": "slow", "values": [50, 60]}]
    started = await _run(
        api,
        "OptimizeStrategy",
        {"id": strategy_id, "input": {"sample": "trending_hourly", "parameters": wide}},
        token,
    )
    job_id = started["data"]["optimizeStrategy"]["id"]
    cancelled = await _run(api, "CancelOptimization", {"id": job_id}, token)
    assert "errors" not in cancelled, cancelled
    row = await _finished(job_id)
    assert row.status.value == "cancelled" and row.trials_done < 80
    again = await _run(api, "CancelOptimization", {"id": job_id}, token)  # ended: as it is
    assert again["data"]["cancelOptimization"]["status"] == "CANCELLED"
    refused = await _run(api, "ApplyOptimization", {"id": job_id}, token)
    assert error_codes(refused) == ["BAD_USER_INPUT"]
