"""Durability of generations when the real server process dies or is stopped mid-burst.

The server runs as `python -m server` (after `python -m server migrate`) against the run's
database and the stand-in Gemini; the client records what it was told, the database is then
read directly. The promises checked: a generation a client saw succeed survives a SIGKILL;
a strategy never exists without its log and a log is never half-filled; a SIGTERM lets
in-flight generations finish, or logs them as FAILURE when the grace period runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from server.db import dialect_of
from server.settings import Settings
from services.generation import SHUTDOWN_MESSAGE, GenerationRequest, Generator
from services.providers.gemini import GeminiProvider
from tests.support.api import PASSWORD, REGISTER, shared_analyser
from tests.support.gemini_standin import GeminiStandin, ReceivedRequest, Reply, hang
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.process

API_KEY = "durability-key"
MODEL = "gemini-durability"
GENERATE = """mutation($prompt: String!) { generateStrategy(input: {prompt: $prompt}) {
  strategy { id generatedCode } generationLog { id status strategy { id } } } }"""
FETCH = """query($sid: UUID!, $lid: UUID!) {
  strategy(id: $sid) { id generatedCode }
  generationLog(id: $lid) { id status provider model processingTimeSeconds strategy { id } } }"""
COUNT = "{ strategies { totalCount } }"


@dataclass(frozen=True)
class SlowAnswer:
    """A valid code answer after a random delay, so completions spread over the burst."""

    low: float
    high: float

    def reply_to(self, request: ReceivedRequest, standin: GeminiStandin) -> Reply:
        return hang(random.uniform(self.low, self.high))


def server_process(
    workdir: Path, database_url: str, gemini_url: str, **extra: str
) -> ServerProcess:
    """`python -m server` on the given database, talking to the stand-in Gemini."""
    return ServerProcess(
        workdir,
        DATABASE_URL=database_url,
        SECRET_KEY="durability-secret-key-0123456789-0123456789",
        GEMINI_API_KEY=API_KEY,
        GEMINI_BASE_URL=gemini_url,
        GEMINI_MODEL=MODEL,
        GEMINI_TIMEOUT_SECONDS="20",
        RATE_LIMIT_GENERATE="100000/minute",
        LOG_LEVEL="info",
        **extra,
    )


@dataclass
class Burst:
    """What the clients were told, per unique prompt."""

    succeeded: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    token: dict[str, str] = field(default_factory=dict)


async def register(http: httpx.AsyncClient, count: int) -> list[str]:
    tokens = []
    for _ in range(count):
        email = f"durable-{uuid.uuid4().hex[:10]}@example.com"
        body = (
            await http.post(
                "/graphql",
                json={"query": REGISTER, "variables": {"email": email, "password": PASSWORD}},
            )
        ).json()
        assert "errors" not in body, body
        tokens.append(body["data"]["register"]["token"])
    return tokens


async def generate(http: httpx.AsyncClient, token: str, prompt: str, burst: Burst) -> None:
    burst.token[prompt] = token
    try:
        response = await http.post(
            "/graphql",
            json={"query": GENERATE, "variables": {"prompt": prompt}},
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.TransportError as exc:
        burst.failed[prompt] = type(exc).__name__
        return
    if response.status_code != 200:
        burst.failed[prompt] = f"HTTP {response.status_code}"
        return
    body = response.json()
    payload = (body.get("data") or {}).get("generateStrategy")
    if payload is None:
        burst.failed[prompt] = json.dumps(body.get("errors"))
        return
    if payload["generationLog"]["status"] == "SUCCESS":
        burst.succeeded[prompt] = payload


async def rows(database_url: str, sql: str) -> list[dict[str, Any]]:
    """Read straight from the database, past the ORM and the API (no parameters needed)."""
    if dialect_of(database_url) == "sqlite":
        path = database_url.split("://", 1)[1].split("?", 1)[0]
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql)]
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        return [dict(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def stored(database_url: str, user_ids: set[str]) -> tuple[list[dict], list[dict]]:
    """(logs, strategies) of the given users, as the database holds them."""
    logs = await rows(
        database_url,
        "SELECT id, user_id, strategy_id, prompt, status, provider, model,"
        " processing_time_seconds, error_message FROM strategy_generation_logs",
    )
    strategies = await rows(database_url, "SELECT id, user_id FROM generated_strategies")
    keep = [
        {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in row.items()}
        for row in logs + strategies
    ]
    logs, strategies = keep[: len(logs)], keep[len(logs) :]
    return (
        [log for log in logs if log["user_id"] in user_ids],
        [s for s in strategies if s["user_id"] in user_ids],
    )


def assert_consistent(logs: list[dict], strategies: list[dict]) -> None:
    """Every log complete, every SUCCESS/PARTIAL log with its strategy, no orphan strategy."""
    strategy_ids = {s["id"] for s in strategies}
    for log in logs:
        assert log["status"] in ("success", "failure", "partial"), log
        assert log["provider"] == "gemini" and log["model"] == MODEL, log
        assert log["processing_time_seconds"] > 0, log
        if log["status"] in ("success", "partial"):
            assert log["strategy_id"] in strategy_ids, f"log without its strategy: {log}"
        else:
            assert log["strategy_id"] is None and log["error_message"], log
    logged = {log["strategy_id"] for log in logs}
    orphans = strategy_ids - logged
    assert not orphans, f"strategies without a generation log: {orphans}"


async def user_ids(http: httpx.AsyncClient, tokens: list[str]) -> set[str]:
    ids = set()
    for token in tokens:
        body = (
            await http.post(
                "/graphql",
                json={"query": "{ me { id } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
        ids.add(body["data"]["me"]["id"])
    return ids


async def assert_visible(http: httpx.AsyncClient, burst: Burst) -> None:
    """Every generation a client saw succeed: its strategy and log, by id, through the API."""
    for prompt, payload in burst.succeeded.items():
        sid, lid = payload["strategy"]["id"], payload["generationLog"]["id"]
        body = (
            await http.post(
                "/graphql",
                json={"query": FETCH, "variables": {"sid": sid, "lid": lid}},
                headers={"Authorization": f"Bearer {burst.token[prompt]}"},
            )
        ).json()
        assert "errors" not in body, body
        assert body["data"]["strategy"] == payload["strategy"], f"lost: {prompt}"
        log = body["data"]["generationLog"]
        assert log["status"] == "SUCCESS" and log["strategy"] == {"id": sid}, log
        assert log["provider"] == "gemini" and log["processingTimeSeconds"] > 0, log


def started_prompts(standin: GeminiStandin, prompts: list[str]) -> set[str]:
    """The prompts whose generation reached the model (the stand-in saw the request)."""
    seen = " ".join(json.dumps(r.body) for r in standin.requests)
    return {p for p in prompts if p in seen}


async def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def client(base: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    return httpx.AsyncClient(base_url=base, timeout=30, limits=limits)


async def test_sigkill_mid_burst_loses_no_acknowledged_generation(
    database: str, tmp_path: Path, gemini_standin: GeminiStandin
) -> None:
    gemini_standin.set_default(SlowAnswer(0.3, 0.5))
    server = await server_process(tmp_path, database, gemini_standin.base_url).start_async()
    try:
        async with client(server.base) as http:
            tokens = await register(http, 4)
            ids = await user_ids(http, tokens)
            burst = Burst()
            tag = uuid.uuid4().hex[:8]
            prompts = [f"SMA crossover 5/20 with 2% stop loss, burst {tag} #{i}" for i in range(40)]

            async def fire(i: int) -> None:
                await asyncio.sleep(i * 0.03)  # staggered: some finish while others wait
                await generate(http, tokens[i % len(tokens)], prompts[i], burst)

            tasks = [asyncio.create_task(fire(i)) for i in range(len(prompts))]
            await wait_for(lambda: len(burst.succeeded) >= 12, 20, "a third of the burst")
            server.send(signal.SIGKILL)
            await asyncio.gather(*tasks)
        assert await server.wait_async(10) == -signal.SIGKILL
    finally:
        await server.stop_async(signal.SIGKILL)

    assert len(burst.succeeded) >= 12, burst.failed
    assert burst.failed, "the kill came too late: every request had already been answered"
    in_flight = started_prompts(gemini_standin, prompts) - set(burst.succeeded)
    assert in_flight, "the kill should catch generations waiting on the model"

    restarted = await server_process(tmp_path, database, gemini_standin.base_url).start_async()
    try:
        async with client(restarted.base) as http:
            await assert_visible(http, burst)
            logs, strategies = await stored(database, ids)
            assert_consistent(logs, strategies)
            assert {log["prompt"] for log in logs} >= set(burst.succeeded)
            assert not {log["prompt"] for log in logs} - set(prompts)

            # ... and it serves normally: a new generation, and the counts agree.
            gemini_standin.set_default(SlowAnswer(0.0, 0.01))
            await generate(http, tokens[0], "RSI scalping after restart", after := Burst())
            assert after.succeeded, after
            total = 0
            for token in tokens:
                body = (
                    await http.post(
                        "/graphql",
                        json={"query": COUNT},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                ).json()
                total += body["data"]["strategies"]["totalCount"]
            assert total == len(strategies) + 1
    finally:
        await restarted.stop_async()


async def sigterm_burst(
    database: str, tmp_path: Path, standin: GeminiStandin, count: int, **env: str
) -> tuple[Burst, list[str], set[str], set[str], int]:
    """Start `count` generations, SIGTERM once all reached the model, collect what happened."""
    server = await server_process(tmp_path, database, standin.base_url, **env).start_async()
    try:
        async with client(server.base) as http:
            tokens = await register(http, 3)
            ids = await user_ids(http, tokens)
            tag = uuid.uuid4().hex[:8]
            prompts = [f"EMA 12/26 trend following, shutdown {tag} #{i}" for i in range(count)]
            burst = Burst()
            tasks = [
                asyncio.create_task(generate(http, tokens[i % 3], p, burst))
                for i, p in enumerate(prompts)
            ]
            await wait_for(
                lambda: len(started_prompts(standin, prompts)) == count, 10, "all to start"
            )
            server.send(signal.SIGTERM)
            await asyncio.gather(*tasks)
        returncode = await server.wait_async(20)
    finally:
        await server.stop_async(signal.SIGKILL)
    return burst, prompts, started_prompts(standin, prompts), ids, returncode


async def test_sigterm_lets_in_flight_generations_finish(
    database: str, tmp_path: Path, gemini_standin: GeminiStandin
) -> None:
    gemini_standin.set_latency(2.0)
    burst, prompts, started, ids, returncode = await sigterm_burst(
        database, tmp_path, gemini_standin, 12
    )
    assert returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once done
    assert started == set(prompts)
    assert set(burst.succeeded) == set(prompts), burst.failed

    gemini_standin.set_latency(0.0)
    restarted = await server_process(tmp_path, database, gemini_standin.base_url).start_async()
    try:
        async with client(restarted.base) as http:
            await assert_visible(http, burst)
    finally:
        await restarted.stop_async()
    logs, strategies = await stored(database, ids)
    assert_consistent(logs, strategies)
    assert sorted(log["prompt"] for log in logs) == sorted(prompts)
    assert {log["status"] for log in logs} == {"success"}


async def test_sigterm_past_the_grace_period_logs_failures(
    database: str, tmp_path: Path, gemini_standin: GeminiStandin
) -> None:
    """Generations still waiting on the model when the grace period ends: FAILURE logs."""
    gemini_standin.set_latency(5.0)
    burst, prompts, started, ids, returncode = await sigterm_burst(
        database, tmp_path, gemini_standin, 8, SHUTDOWN_GRACE_SECONDS="0.5"
    )
    assert returncode in (0, -signal.SIGTERM)
    assert started == set(prompts)
    assert not burst.succeeded, "the grace period should have run out first"

    logs, strategies = await stored(database, ids)
    assert_consistent(logs, strategies)
    assert sorted(log["prompt"] for log in logs) == sorted(prompts), "a generation left no log"
    for log in logs:
        assert log["status"] == "failure" and log["error_message"] == SHUTDOWN_MESSAGE, log


async def test_cancelled_generation_is_logged_as_failure(
    database: str, settings: Settings, gemini_standin: GeminiStandin
) -> None:
    """What uvicorn does past the grace period, in-process: cancel the request's task."""
    from services import accounts

    user = await accounts.register(f"cancel-{uuid.uuid4().hex[:10]}@example.com", PASSWORD)
    provider = GeminiProvider(api_key=API_KEY, model=MODEL, base_url=gemini_standin.base_url)
    generator = Generator(provider, shared_analyser())
    gemini_standin.set_latency(5.0)
    prompt = f"MACD momentum, cancelled {uuid.uuid4().hex[:8]}"
    try:
        task = asyncio.create_task(generator.generate(user, GenerationRequest(prompt)))
        await wait_for(lambda: started_prompts(gemini_standin, [prompt]), 5, "the request")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await provider.aclose()
    logs, strategies = await stored(database, {str(user.id)})
    assert strategies == []
    assert len(logs) == 1, logs
    assert logs[0]["status"] == "failure" and logs[0]["error_message"] == SHUTDOWN_MESSAGE
    assert logs[0]["processing_time_seconds"] > 0
