"""Chaos: the real server on its own PostgreSQL and Redis (private ports, started and stopped
here, never the shared ones), which the tests kill, freeze and restart.

What is promised (docs/operations.md, "When a dependency fails"): a Redis outage costs no
request (limits are counted per process, with one warning and a metric) and never holds
one longer than REDIS_TIMEOUT_SECONDS; a PostgreSQL outage answers SERVICE_UNAVAILABLE with
retryAfterSeconds, logged once when it starts and once when it ends; a frozen PostgreSQL
holds no request past the configured bounds; /readyz reports both honestly.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import PASSWORD, REGISTER, error_codes
from tests.support.chaos import (
    PrivatePostgres,
    PrivateRedis,
    postgres_available,
    private_postgres,
    private_redis,
    redis_available,
)
from tests.support.server_process import ServerProcess
from tests.support.ws import GraphQLWS

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        not (postgres_available() and redis_available()),
        reason="needs PostgreSQL's binaries and redis-server on this machine",
    ),
]

# Small bounds, so the tests see them at work within seconds.
REDIS_TIMEOUT = 0.2
POOL_TIMEOUT = 1.0
QUERY_TIMEOUT = 1.0
CONNECT_TIMEOUT = 1.0
# A request may take its bounds plus scheduling on a busy 2-core machine, never the outage.
BOUND_SLACK = 2.0

ME = "{ me { id email } }"
GENERATE_PROGRESS = """subscription($input: GenerateStrategyInput!) {
  generateStrategyProgress(input: $input) { stage } }"""


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def redis() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis: PrivateRedis
) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("chaos"),
        DATABASE_URL=postgres.url,
        REDIS_URL=redis.url,
        REDIS_TIMEOUT_SECONDS=str(REDIS_TIMEOUT),
        REDIS_RETRY_SECONDS="0.5",
        DATABASE_POOL_TIMEOUT_SECONDS=str(POOL_TIMEOUT),
        DATABASE_QUERY_TIMEOUT_SECONDS=str(QUERY_TIMEOUT),
        DATABASE_CONNECT_TIMEOUT_SECONDS=str(CONNECT_TIMEOUT),
        SECRET_KEY="chaos-test-secret-key-0123456789abcdef",
        RATE_LIMIT_AUTH_BY_ADDRESS="10000/minute",
        RATE_LIMIT_LOGIN="10000/minute",
        LOG_FORMAT="json",
    )
    with process:
        yield process


@pytest.fixture
def healthy(postgres: PrivatePostgres, redis: PrivateRedis) -> Iterator[None]:
    """Whatever a test did to them, both run again afterwards."""
    yield
    for dependency in (postgres, redis):
        dependency.thaw()
        if dependency.process is None or dependency.process.poll() is not None:
            dependency.start()


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, **headers: str
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    return response.status_code, response.json()


async def register(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    email = f"chaos-{uuid.uuid4().hex[:10]}@example.com"
    return await graphql(client, REGISTER, {"email": email, "password": PASSWORD})


def log_lines(server: ServerProcess, offset: int) -> list[dict[str, Any]]:
    """The server's JSON log lines written after `offset` characters."""
    lines = []
    for line in server.output()[offset:].splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def outage_lines(lines: list[dict[str, Any]], dependency: str, phase: str) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if line.get("dependency") == dependency and line.get("outage") == phase
    ]


async def until_true(check: Any, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds}s for {what}")
        await asyncio.sleep(0.1)


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return None


# --- Redis ---------------------------------------------------------------------------------------


async def test_redis_down_keeps_rate_limited_operations_working_with_one_warning(
    server: ServerProcess, redis: PrivateRedis, healthy: None
) -> None:
    offset = len(server.output())
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        status, body = await register(client)
        assert error_codes(body) == [], body
        ready = (await client.get("/readyz")).json()
        assert ready["checks"]["redis"] == {"ok": True}

        redis.kill()
        for _ in range(5):
            status, body = await register(client)
            assert (status, error_codes(body)) == (200, []), body
        response = await client.get("/readyz")
        assert response.status_code == 200, "the database serves: ready, degraded"
        assert response.json()["status"] == "degraded"
        assert response.json()["checks"]["redis"]["ok"] is False
        metrics = (await client.get("/metrics")).text
        assert 'dependency_up{dependency="redis"} 0.0' in metrics
        assert (metric(metrics, "rate_limit_local_fallbacks_total") or 0) >= 5

        redis.start()
        await until_true(lambda: _redis_ready(client), "/readyz to report Redis again", seconds=10)
        status, body = await register(client)
        assert error_codes(body) == []
    lines = log_lines(server, offset)
    assert len(outage_lines(lines, "redis", "started")) == 1, lines
    assert len(outage_lines(lines, "redis", "ended")) == 1, lines
    assert not [line for line in lines if "exception" in line], "no traceback for an outage"


async def _redis_ready(client: httpx.AsyncClient) -> bool:
    body = (await client.get("/readyz")).json()
    return bool(body["checks"]["redis"]["ok"]) and body["status"] == "ok"


VALIDATE = """mutation($code: String!) { validateCode(code: $code, smokeTest: false) { valid } }"""
CODE = (
    "def execute_strategy(market_data, strategy_params):\n"
    "    return {'action': 'hold', 'confidence': 0.5, 'reason': 'flat', 'metadata': {}}\n"
)


async def test_frozen_redis_holds_no_request_longer_than_its_timeout(
    server: ServerProcess, redis: PrivateRedis, healthy: None
) -> None:
    """validateCode is rate-limited (KiB of code per user) and cheap: its time is Redis's."""
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        _, body = await register(client)
        auth = {"Authorization": f"Bearer {body['data']['register']['token']}"}

        async def validations() -> tuple[float, list[list[str]]]:
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(graphql(client, VALIDATE, {"code": CODE}, **auth) for _ in range(10))
            )
            return time.monotonic() - started, [error_codes(body) for _, body in outcomes]

        baseline, _ = await validations()
        redis.freeze()
        try:
            elapsed, codes = await validations()
            ready = await client.get("/readyz")
        finally:
            redis.thaw()
    assert codes == [[]] * 10
    assert elapsed < baseline + REDIS_TIMEOUT + BOUND_SLACK, (
        f"10 validations took {elapsed:.1f} s with Redis frozen, {baseline:.1f} s before"
    )
    assert ready.json()["checks"]["redis"]["ok"] is False


# --- PostgreSQL ----------------------------------------------------------------------------------


async def test_postgres_down_answers_service_unavailable_logged_once_per_outage(
    server: ServerProcess, postgres: PrivatePostgres, healthy: None
) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        status, body = await register(client)
        token = body["data"]["register"]["token"]
        auth = {"Authorization": f"Bearer {token}"}
        offset = len(server.output())

        postgres.kill()
        answers = [await graphql(client, ME, **auth) for _ in range(20)]
        answers.append(await register(client))
        ready = await client.get("/readyz")
        async with GraphQLWS.connect(server.base, auth) as ws:
            subscription = await ws.collect(GENERATE_PROGRESS, {"input": {"prompt": "SMA 10/30"}})

        postgres.start()

        async def answers_again() -> bool:
            return error_codes((await graphql(client, ME, **auth))[1]) == []

        await until_true(answers_again, "the database to answer again")
    for status, body in answers:
        assert status == 200
        escaped = [line for line in log_lines(server, offset) if line.get("exception")]
        assert error_codes(body) == ["SERVICE_UNAVAILABLE"], (body, escaped)
        extensions = body["errors"][0]["extensions"]
        assert extensions["retryAfterSeconds"] > 0
        assert "127.0.0.1" not in json.dumps(body) and "asyncpg" not in json.dumps(body)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["ok"] is False
    assert subscription.ended == "error" and subscription.codes == ["SERVICE_UNAVAILABLE"]
    assert subscription.all_errors[0]["extensions"]["retryAfterSeconds"] > 0
    lines = log_lines(server, offset)
    assert len(outage_lines(lines, "database", "started")) == 1, lines
    assert len(outage_lines(lines, "database", "ended")) == 1, lines
    assert not [line for line in lines if "exception" in line], "no traceback per request"
    assert not [line for line in lines if line.get("logger") == "server.errors"]


async def test_frozen_postgres_holds_requests_only_as_long_as_the_bounds(
    server: ServerProcess, postgres: PrivatePostgres, healthy: None
) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
        _, body = await register(client)
        auth = {"Authorization": f"Bearer {body['data']['register']['token']}"}
        offset = len(server.output())
        postgres.freeze()
        try:
            started = time.monotonic()
            answers = await asyncio.gather(*(graphql(client, ME, **auth) for _ in range(40)))
            elapsed = time.monotonic() - started
            ready_started = time.monotonic()
            ready = await client.get("/readyz")
            ready_elapsed = time.monotonic() - ready_started
        finally:
            postgres.thaw()

        async def answers_again() -> bool:
            return error_codes((await graphql(client, ME, **auth))[1]) == []

        await until_true(answers_again, "the database to answer again")
    # 40 requests on a pool of 20: some wait for a connection (POOL_TIMEOUT), the others for
    # their statement (QUERY_TIMEOUT); none for the outage.
    assert elapsed < POOL_TIMEOUT + QUERY_TIMEOUT + BOUND_SLACK, f"took {elapsed:.1f} s"
    assert {tuple(error_codes(body)) for _, body in answers} == {("SERVICE_UNAVAILABLE",)}
    assert ready.status_code == 503 and ready_elapsed < 2 + BOUND_SLACK
    lines = log_lines(server, offset)
    assert len(outage_lines(lines, "database", "started")) == 1, lines
    assert not [line for line in lines if "exception" in line], "no traceback per request"


def test_private_instances_leave_no_process_behind(tmp_path: Path) -> None:
    """The chaos fixtures clean up even when the test fails inside them."""
    with pytest.raises(RuntimeError), private_redis() as redis:
        pid = redis.process.pid if redis.process else 0
        raise RuntimeError("a failing test")
    assert redis.process is not None and redis.process.poll() is not None
    assert pid
