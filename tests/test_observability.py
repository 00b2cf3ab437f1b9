"""Monitoring: /metrics, /readyz, request ids and JSON logs, all through real requests.

The metrics registry is process-wide and shared with every other test: each test compares
values before and after what it does, never absolute ones.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from server.logging_setup import configure_logging, make_handler
from server.observability import RequestObservability
from server.settings import Settings
from services.providers.templates import TemplateProvider
from services.samples import load_sample
from services.sandbox import (
    ExecutionTimeout,
    MemoryLimitExceeded,
    Sandbox,
    SandboxSettings,
    SandboxUnavailable,
)
from services.telemetry import REGISTRY
from tests.support.api import ROOT, GraphQLCall, error_codes, make_client, register_user
from tests.support.gemini_standin import GeminiStandin, code_answer, error, hang
from tests.support.server_process import ServerProcess
from tests.support.strategy_code import SPIN

GENERATE = """mutation($p: String!) { generateStrategy(input: {prompt: $p}) {
  strategy { id } generationLog { status provider tokensUsed } } }"""
RUN = """mutation($id: UUID!, $data: MarketDataInput!) {
  runStrategy(id: $id, marketData: $data) { action } }"""
BACKTEST = """mutation($id: UUID!) {
  backtestStrategy(id: $id, input: {sample: "trending_daily"}) { bars } }"""
VALIDATE = """mutation($code: String!) { validateCode(code: $code, smokeTest: true) {
  valid errors } }"""
CRASHING = """
def execute_strategy(market_data, strategy_params):
    return 1 / 0
"""
MEMORY_BOMB = """
def execute_strategy(market_data, strategy_params):
    hoard = []
    while True:
        hoard.append(bytearray(10_000_000))
"""
HEX_ID = re.compile(r"[0-9a-f]{32}")
UNREACHABLE_DATABASE = "postgres://postgres@127.0.0.1:1/unreachable"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def market_data(n: int = 60) -> dict[str, Any]:
    columns = load_sample("trending_daily").as_columns()
    return {key: values[:n] for key, values in columns.items()}


async def wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """JSON log lines of everything logged during the test, as the server would print them."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --- request ids ------------------------------------------------------------------------------


async def test_request_ids_are_generated_or_taken_from_a_sane_header(
    client: httpx.AsyncClient,
) -> None:
    first, second = await client.get("/healthz"), await client.get("/healthz")
    assert HEX_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]

    echoed = await client.get("/healthz", headers={"X-Request-ID": "edge-7f.3:retry_1"})
    assert echoed.headers.get_list("x-request-id") == ["edge-7f.3:retry_1"]

    for insane in ["x" * 129, "two words", "<script>", "a;b", ""]:
        response = await client.get("/healthz", headers={"X-Request-ID": insane})
        assert HEX_ID.fullmatch(response.headers["x-request-id"]), insane


async def test_refused_bodies_and_404s_get_a_request_id_too(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"/nothing/{uuid.uuid4().hex}")
    assert missing.status_code == 404
    assert HEX_ID.fullmatch(missing.headers["x-request-id"])
    too_big = await client.post("/graphql", content=b"x" * (17 * 1024 * 1024))
    assert too_big.status_code == 413
    assert HEX_ID.fullmatch(too_big.headers["x-request-id"])


async def test_a_crash_outside_graphql_is_a_500_with_the_request_id(
    json_log: io.StringIO,
) -> None:
    async def crashing(_: Any) -> Any:
        raise RuntimeError("secret internals")

    observed = [Middleware(RequestObservability)]
    app = Starlette(routes=[Route("/boom", crashing)], middleware=observed)
    # Raising app exceptions: the middleware answers and does not raise on, so the server
    # (uvicorn) does not log the traceback a second time, without the request id.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/boom", headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "crash-1"
    assert "secret" not in response.text
    tracebacks = [line for line in log_lines(json_log) if "exception" in line]
    assert len(tracebacks) == 1
    assert tracebacks[0]["request_id"] == "crash-1"
    assert "RuntimeError: secret internals" in tracebacks[0]["exception"]
    lines = [line for line in log_lines(json_log) if line.get("request_id") == "crash-1"]
    assert lines[-1]["status"] == 500 and lines[-1]["route"] == "/boom"


async def test_websocket_handshake_carries_a_request_id(live_url: str) -> None:
    websockets = pytest.importorskip("websockets.asyncio.client")
    url = live_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url, subprotocols=["graphql-transport-ws"], additional_headers={"X-Request-ID": "ws-1"}
    ) as ws:
        assert ws.response.headers["x-request-id"] == "ws-1"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        assert HEX_ID.fullmatch(ws.response.headers["x-request-id"])


# --- /metrics ---------------------------------------------------------------------------------


async def test_metrics_is_prometheus_text_of_the_same_registry(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    healthz_count = value("http_requests_total", method="GET", route="/healthz", status="200")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    expected = {
        "http_requests": "counter",
        "http_request_duration_seconds": "histogram",
        "http_requests_in_progress": "gauge",
        "graphql_operations": "counter",
        "graphql_errors": "counter",
        "strategy_generations": "counter",
        "strategy_generation_duration_seconds": "histogram",
        "strategy_generation_tokens": "counter",
        "strategy_generations_in_flight": "gauge",
        "sandbox_jobs": "counter",
        "sandbox_job_duration_seconds": "histogram",
        "sandbox_kills": "counter",
        "sandbox_jobs_running": "gauge",
        "sandbox_jobs_queued": "gauge",
        "process_resident_memory_bytes": "gauge",
    }
    assert {name: families[name].type for name in expected if name in families} == expected
    scraped = [
        sample.value
        for sample in families["http_requests"].samples
        if sample.labels == {"method": "GET", "route": "/healthz", "status": "200"}
    ]
    assert scraped == [healthz_count]


async def test_http_metrics_label_the_route_template_not_the_path(
    client: httpx.AsyncClient, gql: GraphQLCall
) -> None:
    labels = {"method": "POST", "route": "/graphql"}
    requests = value("http_requests_total", **labels, status="200")
    timed = value("http_request_duration_seconds_count", **labels)
    await gql("{ __typename }")
    assert value("http_requests_total", **labels, status="200") == requests + 1
    assert value("http_request_duration_seconds_count", **labels) == timed + 1

    raw = f"/no/such/{uuid.uuid4().hex}"
    unmatched = value("http_requests_total", method="GET", route="unmatched", status="404")
    assert (await client.get(raw)).status_code == 404
    assert value("http_requests_total", method="GET", route="unmatched", status="404") == (
        unmatched + 1
    )
    odd = value("http_requests_total", method="OTHER", route="/healthz", status="405")
    assert (await client.request("BREW", "/healthz")).status_code == 405
    assert value("http_requests_total", method="OTHER", route="/healthz", status="405") == odd + 1
    text = (await client.get("/metrics")).text
    assert raw not in text and 'method="BREW"' not in text


async def test_graphql_operations_and_error_codes_are_counted(
    client: httpx.AsyncClient, gql: GraphQLCall
) -> None:
    def counts() -> tuple[float, ...]:
        return (
            value("graphql_operations_total", operation_type="query"),
            value("graphql_operations_total", operation_type="mutation"),
            value("graphql_operations_total", operation_type="unknown"),
            value("graphql_errors_total", code="UNAUTHENTICATED"),
            value("graphql_errors_total", code="BAD_USER_INPUT"),
        )

    before = counts()
    await gql("{ __typename }")
    assert error_codes(await gql("{ strategies { totalCount } }")) == ["UNAUTHENTICATED"]
    unparsable = await client.post("/graphql", json={"query": "{ strategies("})
    assert error_codes(unparsable.json()) == ["BAD_USER_INPUT"]
    await register_user(client)
    after = counts()
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1, 1, 1]


RECORD = """
import sys
from services import telemetry
telemetry.record_generation("success", "gemini", int(sys.argv[1]), 0.5)
telemetry.SANDBOX_JOBS_RUNNING.inc()
"""
SCRAPE = """
import sys
from services import telemetry
sys.stdout.write(telemetry.exposition()[0].decode())
"""


@pytest.mark.process
def test_worker_processes_share_their_metrics_through_the_multiprocess_directory(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for tokens in ("100", "23"):
        subprocess.run([sys.executable, "-c", RECORD, tokens], env=env, check=True, timeout=60)
    # A worker still running holds one sandbox job; the two above have exited.
    running = subprocess.Popen(
        [sys.executable, "-c", RECORD + "print('ready', flush=True)\nsys.stdin.read()\n", "0"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert running.stdout is not None and running.stdout.readline() == b"ready\n"
        during = scrape(env)
    finally:
        running.communicate(timeout=60)
    after = scrape(env)

    gemini = (("provider", "gemini"),)
    assert during[("strategy_generation_tokens_total", gemini)] == 123
    assert during[("strategy_generation_duration_seconds_count", gemini)] == 3
    # Live gauges count only processes that are running: not the exited ones, whose files go.
    assert during[("sandbox_jobs_running", ())] == 1
    assert after.get(("sandbox_jobs_running", ()), 0) == 0
    assert after[("strategy_generation_duration_seconds_count", gemini)] == 3, "counters stay"


def scrape(env: dict[str, str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    scraped = subprocess.run(
        [sys.executable, "-c", SCRAPE], env=env, check=True, timeout=60, capture_output=True
    ).stdout.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }


async def test_metrics_token_is_required_when_set(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    guarded = settings.model_copy(update={"metrics_token": "scrape-secret"})
    async with make_client(guarded, TemplateProvider(), sandbox=sandbox) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "http_requests" not in wrong.text
        for header in ("Bearer scrape-secret", "bearer scrape-secret"):
            allowed = await client.get("/metrics", headers={"Authorization": header})
            assert allowed.status_code == 200
            assert "# TYPE http_requests_total counter" in allowed.text
    disabled = settings.model_copy(update={"metrics_enabled": False})
    async with make_client(disabled, TemplateProvider(), sandbox=sandbox) as client:
        assert (await client.get("/metrics")).status_code == 404


# --- generations --------------------------------------------------------------------------------


async def test_template_generations_are_counted_and_timed(gql: GraphQLCall, token: str) -> None:
    succeeded = value("strategy_generations_total", status="success", provider="template")
    timed = value("strategy_generation_duration_seconds_count", provider="template")
    body = await gql(GENERATE, {"p": "RSI scalping, 2% stop loss"}, token=token)
    assert body["data"]["generateStrategy"]["generationLog"]["status"] == "SUCCESS"
    assert value("strategy_generations_total", status="success", provider="template") == (
        succeeded + 1
    )
    assert value("strategy_generation_duration_seconds_count", provider="template") == timed + 1


async def test_gemini_generations_count_status_tokens_and_in_flight(
    database: str, settings: Settings, sandbox: Sandbox, gemini_standin: GeminiStandin
) -> None:
    configured = settings.model_copy(
        update={
            "gemini_api_key": "test-gemini-key",
            "gemini_base_url": gemini_standin.base_url,
            "gemini_timeout_seconds": 5.0,
            "gemini_max_attempts": 1,
        }
    )
    succeeded = value("strategy_generations_total", status="success", provider="gemini")
    failed = value("strategy_generations_total", status="failure", provider="gemini")
    tokens = value("strategy_generation_tokens_total", provider="gemini")
    in_flight = value("strategy_generations_in_flight")
    gemini_standin.script(hang(0.3, code_answer(tokens=(100, 23))), error(400, "bad request"))
    async with make_client(configured, sandbox=sandbox) as client:
        token, _ = await register_user(client)
        slow = asyncio.create_task(
            client.post(
                "/graphql",
                json={"query": GENERATE, "variables": {"p": "SMA 5/20"}},
                headers={"Authorization": f"Bearer {token}"},
            )
        )
        await wait_until(lambda: value("strategy_generations_in_flight") == in_flight + 1)
        log = (await slow).json()["data"]["generateStrategy"]["generationLog"]
        assert (log["status"], log["provider"], log["tokensUsed"]) == ("SUCCESS", "gemini", 123)
        assert value("strategy_generations_in_flight") == in_flight
        body = (
            await client.post(
                "/graphql",
                json={"query": GENERATE, "variables": {"p": "SMA 5/20"}},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
        assert body["data"]["generateStrategy"]["generationLog"]["status"] == "FAILURE"
    assert value("strategy_generations_total", status="success", provider="gemini") == (
        succeeded + 1
    )
    assert value("strategy_generations_total", status="failure", provider="gemini") == failed + 1
    assert value("strategy_generation_tokens_total", provider="gemini") == tokens + 123


# --- sandbox ------------------------------------------------------------------------------------


async def test_sandbox_jobs_are_counted_by_kind_and_outcome(gql: GraphQLCall, token: str) -> None:
    body = await gql(GENERATE, {"p": "SMA crossover 5/20"}, token=token)
    strategy_id = body["data"]["generateStrategy"]["strategy"]["id"]
    runs = value("sandbox_jobs_total", kind="run", outcome="ok")
    backtests = value("sandbox_jobs_total", kind="backtest", outcome="ok")
    trial_crashes = value("sandbox_jobs_total", kind="trial_run", outcome="runtime_error")
    timed = value("sandbox_job_duration_seconds_count", kind="backtest")
    checks = value("sandbox_jobs_total", kind="lookahead", outcome="ok")

    ran = await gql(RUN, {"id": strategy_id, "data": market_data()}, token=token)
    assert "errors" not in ran, ran
    backtested = await gql(BACKTEST, {"id": strategy_id}, token=token)
    assert "errors" not in backtested, backtested
    checked = await gql(VALIDATE, {"code": CRASHING}, token=token)
    assert checked["data"]["validateCode"]["valid"] is False

    assert value("sandbox_jobs_total", kind="run", outcome="ok") == runs + 1
    assert value("sandbox_jobs_total", kind="backtest", outcome="ok") == backtests + 1
    assert value("sandbox_job_duration_seconds_count", kind="backtest") == timed + 1
    assert value("sandbox_jobs_total", kind="lookahead", outcome="ok") == checks + 1
    assert (
        value("sandbox_jobs_total", kind="trial_run", outcome="runtime_error") == trial_crashes + 1
    )


async def test_sandbox_timeouts_memory_and_cancellations(sandbox: Sandbox) -> None:
    bars = load_sample("trending_daily")
    timeouts = value("sandbox_jobs_total", kind="run", outcome="timeout")
    killed = value("sandbox_kills_total", kind="run", reason="timeout")
    memory = value("sandbox_jobs_total", kind="run", outcome="memory_limit")
    cancelled = value("sandbox_kills_total", kind="run", reason="cancelled")

    with pytest.raises(ExecutionTimeout):
        await sandbox.run_signal(SPIN, bars, {}, timeout_seconds=0.3)
    with pytest.raises(MemoryLimitExceeded):
        await sandbox.run_signal(MEMORY_BOMB, bars, {}, timeout_seconds=10)
    job = asyncio.create_task(sandbox.run_signal(SPIN, bars, {}, timeout_seconds=30))
    await wait_until(lambda: value("sandbox_jobs_running") >= 1)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job

    assert value("sandbox_jobs_total", kind="run", outcome="timeout") == timeouts + 1
    assert value("sandbox_kills_total", kind="run", reason="timeout") == killed + 1
    assert value("sandbox_jobs_total", kind="run", outcome="memory_limit") == memory + 1
    assert value("sandbox_kills_total", kind="run", reason="cancelled") == cancelled + 1


async def test_sandbox_running_and_queued_gauges(sandbox: Sandbox) -> None:
    bars = load_sample("trending_daily")
    slots = sandbox.settings.max_concurrent_jobs
    running, queued = value("sandbox_jobs_running"), value("sandbox_jobs_queued")
    jobs = [  # one owner each: an owner may hold all slots but one
        asyncio.create_task(sandbox.run_signal(SPIN, bars, {}, timeout_seconds=0.5, owner=f"o{k}"))
        for k in range(slots + 1)
    ]
    await wait_until(
        lambda: (
            value("sandbox_jobs_running") == running + slots
            and value("sandbox_jobs_queued") == queued + 1
        )
    )
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert all(isinstance(result, ExecutionTimeout) for result in results)
    assert (value("sandbox_jobs_running"), value("sandbox_jobs_queued")) == (running, queued)


# --- /readyz ------------------------------------------------------------------------------------


async def test_readyz_reports_database_and_sandbox_layers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    sandbox = body["checks"]["sandbox"]
    assert sandbox["ok"] is True and sandbox["isolated"] is True
    assert "rlimits" in sandbox["layers"]
    assert any(layer == "seccomp" or layer.startswith("namespaces:") for layer in sandbox["layers"])


async def test_without_isolation_readyz_is_degraded_and_internal_errors_carry_the_request_id(
    database: str, settings: Settings, json_log: io.StringIO
) -> None:
    unisolated = Sandbox(SandboxSettings(namespaces="none", seccomp=False, landlock=False))
    with pytest.raises(SandboxUnavailable):
        await unisolated.start()
    try:
        async with make_client(settings, TemplateProvider(), sandbox=unisolated) as client:
            response = await client.get("/readyz")
            assert response.status_code == 200
            body = response.json()
            assert body["status"] == "degraded"
            assert body["checks"]["database"]["ok"] is True
            assert body["checks"]["sandbox"]["executionDisabled"] is True
            assert body["checks"]["sandbox"]["reason"] == "NO_ISOLATION"

            token, _ = await register_user(client)
            created = await client.post(
                "/graphql",
                json={"query": GENERATE, "variables": {"p": "SMA 5/20"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            strategy_id = created.json()["data"]["generateStrategy"]["strategy"]["id"]
            unavailable = value("sandbox_jobs_total", kind="run", outcome="unavailable")
            internal = value("graphql_errors_total", code="INTERNAL")
            ran = await client.post(
                "/graphql",
                json={"query": RUN, "variables": {"id": strategy_id, "data": market_data()}},
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": "quote-me-42"},
            )
    finally:
        await unisolated.close()
    error_body = ran.json()["errors"][0]
    assert error_body["extensions"]["code"] == "INTERNAL"
    assert error_body["extensions"]["requestId"] == "quote-me-42"
    assert "Traceback" not in ran.text
    assert value("sandbox_jobs_total", kind="run", outcome="unavailable") == unavailable + 1
    assert value("graphql_errors_total", code="INTERNAL") == internal + 1
    lines = [line for line in log_lines(json_log) if line.get("request_id") == "quote-me-42"]
    assert any("cannot isolate" in line["message"] for line in lines), lines


# --- logs ---------------------------------------------------------------------------------------


async def test_access_lines_are_json_with_the_request_id(
    client: httpx.AsyncClient, json_log: io.StringIO
) -> None:
    await client.get("/readyz", headers={"X-Request-ID": "probe-1"})  # DEBUG: not shown
    await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "access-1"}
    )
    lines = log_lines(json_log)
    assert not [line for line in lines if line.get("request_id") == "probe-1"]
    (access,) = [line for line in lines if line.get("request_id") == "access-1"]
    assert access["logger"] == "server.access"
    assert access["level"] == "INFO"
    assert (access["method"], access["path"], access["route"], access["status"]) == (
        "POST",
        "/graphql",
        "/graphql",
        200,
    )
    assert access["client"] == "127.0.0.1"
    assert access["duration_ms"] >= 0
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", access["timestamp"])
    assert '"POST /graphql" 200' in access["message"]


def logging_settings(log_format: str) -> Settings:
    return Settings(_env_file=None, log_format=log_format, log_level="info")  # type: ignore[call-arg]


def test_configure_logging_routes_uvicorn_and_formats_exceptions() -> None:
    root = logging.getLogger()
    uvicorn_error = logging.getLogger("uvicorn.error")
    saved = (list(root.handlers), root.level, list(uvicorn_error.handlers), uvicorn_error.propagate)
    uvicorn_error.addHandler(logging.StreamHandler(io.StringIO()))  # as uvicorn's config would
    uvicorn_error.propagate = False
    json_stream, text_stream = io.StringIO(), io.StringIO()
    try:
        configure_logging(logging_settings("json"), json_stream)
        configure_logging(logging_settings("JSON"), json_stream)
        uvicorn_error.info("Started server process")
        logging.getLogger("services.x").debug("below the level")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("services.x").exception("it failed")
        configure_logging(logging_settings("text"), text_stream)
        logging.getLogger("services.x").warning("plain %s", "words")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        uvicorn_error.handlers[:] = saved[2]
        uvicorn_error.propagate = saved[3]
    started, failed = log_lines(json_stream)  # once each: reconfiguring does not add handlers
    assert (started["logger"], started["level"], started["message"]) == (
        "uvicorn.error",
        "INFO",
        "Started server process",
    )
    assert "request_id" not in started
    assert failed["message"] == "it failed"
    assert "ValueError: boom" in failed["exception"]
    assert text_stream.getvalue().rstrip().endswith("WARNING services.x [-] plain words")


# --- the real process ---------------------------------------------------------------------------


@pytest.mark.process
def test_served_process_without_database_is_not_ready_and_logs_json(tmp_path: Path) -> None:
    # Not migrated: nothing answers on that database. The log holds what it wrote to stdout
    # and stderr; its log lines are JSON, the default (LOG_* of this environment not passed on).
    server = ServerProcess(
        tmp_path,
        DATABASE_URL=UNREACHABLE_DATABASE,
        SECRET_KEY="observability-test-secret-key-0123456789",
    )
    try:
        server.start(timeout=60, migrate=False)
        response = httpx.get(f"{server.base}/readyz", headers={"X-Request-ID": "e2e-1"}, timeout=10)
    finally:
        server.stop()
    # Out of process on purpose: initialising Tortoise on another database inside the test
    # session would rebind the models' SQL dialect for every later test.
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert "Traceback" not in response.text and "127.0.0.1" not in response.text
    assert response.headers["x-request-id"] == "e2e-1"
    lines = [json.loads(line) for line in server.output().splitlines() if line.strip()]  # all JSON
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    mine = [line for line in lines if line.get("request_id") == "e2e-1"]
    # The outage is logged once, by whoever saw it first (services/outages.py): the request,
    # or the in-process job dispatcher's first look for queued jobs (services/jobs.py).
    assert len([line for line in lines if line["logger"] == "services.outages"]) == 1
    assert "server.access" in {line["logger"] for line in mine}
    (access,) = [line for line in mine if line["logger"] == "server.access"]
    assert access["status"] == 503
