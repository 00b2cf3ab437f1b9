"""Progress subscriptions over a real WebSocket (graphql-transport-ws) on a real TCP server.

The subscriptions do the work themselves: generateStrategyProgress streams a generation's
stages and ends with generateStrategy's payload; backtestStrategyProgress streams bars done
and ends with backtestStrategy's result. A generation survives its client's departure.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from models import GenerationStatus, StrategyGenerationLog, User
from server.app import create_app
from server.settings import Settings
from server.wiring import build_services
from services.accounts import RecentUsers
from services.container import Services
from services.generation import SHUTDOWN_MESSAGE, GenerationStage
from services.progress import Throttle
from services.providers.templates import TemplateProvider
from services.sandbox import Sandbox, SandboxSettings
from tests.support.api import call_graphql, error_codes, register_user, shared_analyser
from tests.support.gemini_standin import GeminiStandin, error
from tests.support.live import serve_over_tcp
from tests.support.ws import GraphQLWS

PROMPT = "SMA crossover 10/30 with a 2% stop loss and 5% take profit"
PAYLOAD_FIELDS = """
  processingTimeSeconds
  strategy { id name status generatedCode parameters }
  generationLog {
    id status provider model extractedCode errorMessage tokensUsed processingTimeSeconds
    strategy { id }
  }
"""
GENERATE_PROGRESS = f"""
subscription($input: GenerateStrategyInput!) {{
  generateStrategyProgress(input: $input) {{
    stage elapsedSeconds message
    result {{ {PAYLOAD_FIELDS} }}
  }}
}}"""
GENERATE = f"""
mutation($input: GenerateStrategyInput!) {{
  generateStrategy(input: $input) {{ {PAYLOAD_FIELDS} }}
}}"""
LOG = """
query($id: UUID!) {
  generationLog(id: $id) {
    id status provider model extractedCode errorMessage tokensUsed processingTimeSeconds
    strategy { id }
  }
}"""
LOGS = "{ generationLogs { totalCount items { id status } } }"
RESULT_FIELDS = "bars metrics equityCurve trades strategy { id }"
BACKTEST_PROGRESS = f"""
subscription($id: UUID!, $input: BacktestInput!) {{
  backtestStrategyProgress(id: $id, input: $input) {{
    barsDone totalBars fraction elapsedSeconds
    result {{ {RESULT_FIELDS} }}
  }}
}}"""
BACKTEST = f"""
mutation($id: UUID!, $input: BacktestInput!) {{
  backtestStrategy(id: $id, input: $input) {{ {RESULT_FIELDS} }}
}}"""
ALL_STAGES = [stage.value for stage in GenerationStage]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def market_data(n: int) -> dict[str, list[float]]:
    """A wavy series, so an SMA crossover trades now and then."""
    close = [100 + 10 * math.sin(i / 40) + 3 * math.sin(i / 7) for i in range(n)]
    return {
        "open": close,
        "high": [c + 1 for c in close],
        "low": [c - 1 for c in close],
        "close": close,
        "volume": [1000.0] * n,
    }


@pytest.fixture
async def http(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        yield client


@pytest.fixture
async def user_token(http: httpx.AsyncClient) -> str:
    return (await register_user(http))[0]


async def query(http: httpx.AsyncClient, text: str, token: str, **variables: Any) -> Any:
    body = await call_graphql(http, text, variables, token)
    assert "errors" not in body, body
    return body["data"]


async def generated_strategy(http: httpx.AsyncClient, token: str) -> str:
    data = await query(http, GENERATE, token, input={"prompt": PROMPT})
    return str(data["generateStrategy"]["strategy"]["id"])


@asynccontextmanager
async def served(settings: Settings, sandbox: Sandbox) -> AsyncIterator[tuple[str, Services]]:
    """An app of our own (other settings, another provider) on a real TCP port."""
    services = build_services(settings, None, sandbox, shared_analyser())
    try:
        async with serve_over_tcp(create_app(settings, services)) as base_url:
            yield base_url, services
    finally:
        await services.generator.providers.aclose()


@pytest.fixture
def gemini_settings(
    database: str, settings: Settings, gemini_standin: GeminiStandin
) -> Iterator[Settings]:
    yield settings.model_copy(
        update={
            "gemini_api_key": "subscription-key",
            "gemini_base_url": gemini_standin.base_url,
            "gemini_model": "gemini-progress",
            "gemini_timeout_seconds": 5.0,
            "gemini_max_attempts": 2,
            "gemini_retry_base_seconds": 0.01,
        }
    )


# --- generation -------------------------------------------------------------------------


async def test_generation_streams_every_stage_then_the_stored_payload(
    live_url: str, http: httpx.AsyncClient, user_token: str
) -> None:
    async with GraphQLWS.connect(live_url, bearer(user_token)) as ws:
        outcome = await ws.collect(GENERATE_PROGRESS, {"input": {"prompt": PROMPT}})

    assert outcome.ended == "complete", outcome
    assert outcome.codes == []
    events = outcome.data
    assert [e["stage"] for e in events] == ALL_STAGES
    elapsed = [e["elapsedSeconds"] for e in events]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
    assert all(e["message"] for e in events)
    assert [e["result"] is not None for e in events] == [False] * 4 + [True]

    payload = events[-1]["result"]
    log = payload["generationLog"]
    assert log["status"] == "SUCCESS" and log["provider"] == "template"
    assert payload["strategy"]["id"] == log["strategy"]["id"]
    assert payload["strategy"]["generatedCode"] == log["extractedCode"]
    # What was streamed is what was stored.
    stored = (await query(http, LOG, user_token, id=log["id"]))["generationLog"]
    assert stored == log


async def test_generation_progress_names_the_chosen_model(
    gemini_settings: Settings, sandbox: Sandbox, gemini_standin: GeminiStandin
) -> None:
    async with (
        served(gemini_settings, sandbox) as (base_url, _),
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        token, _ = await register_user(http)
        async with GraphQLWS.connect(base_url, bearer(token)) as ws:
            variables = {"input": {"prompt": PROMPT, "model": "template:templates-v1"}}
            outcome = await ws.collect(GENERATE_PROGRESS, variables)
    assert outcome.ended == "complete" and outcome.codes == []
    events = outcome.data
    assert events[0]["message"] == "Prompt sent to template (templates-v1)"
    assert events[-1]["result"]["generationLog"]["provider"] == "template"
    assert gemini_standin.requests == []


async def test_generation_failure_streams_its_stages_and_ends_with_a_failure_log(
    gemini_settings: Settings, sandbox: Sandbox, gemini_standin: GeminiStandin
) -> None:
    gemini_standin.set_default(error(503, "overloaded"))
    async with (
        served(gemini_settings, sandbox) as (base_url, _),
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        token, _ = await register_user(http)
        async with GraphQLWS.connect(base_url, bearer(token)) as ws:
            outcome = await ws.collect(GENERATE_PROGRESS, {"input": {"prompt": PROMPT}})
        stored_logs = (await query(http, LOGS, token))["generationLogs"]

    assert outcome.ended == "complete" and outcome.codes == []
    events = outcome.data
    # No answer, so nothing to extract or validate.
    assert [e["stage"] for e in events] == ["SENT", "RECEIVED", "STORED"]
    assert "gemini-progress" in events[0]["message"]
    payload = events[-1]["result"]
    assert payload["strategy"] is None
    log = payload["generationLog"]
    assert log["status"] == "FAILURE" and log["provider"] == "gemini"
    assert log["errorMessage"] and events[-1]["message"].startswith("FAILURE: ")
    assert len(gemini_standin.requests) == 2  # both attempts made
    assert stored_logs == {"totalCount": 1, "items": [{"id": log["id"], "status": "FAILURE"}]}


@pytest.mark.parametrize("leave", ["disconnect", "unsubscribe"])
async def test_a_generation_whose_client_leaves_is_still_stored_and_logged(
    leave: str, gemini_settings: Settings, sandbox: Sandbox, gemini_standin: GeminiStandin
) -> None:
    gemini_standin.set_latency(1.0)
    async with (
        served(gemini_settings, sandbox) as (base_url, services),
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        token, _ = await register_user(http)
        async with GraphQLWS.connect(base_url, bearer(token)) as ws:
            operation = await ws.subscribe(GENERATE_PROGRESS, {"input": {"prompt": PROMPT}})
            sent = await ws.receive(operation)
            assert sent["payload"]["data"]["generateStrategyProgress"]["stage"] == "SENT"
            if leave == "unsubscribe":
                await ws.complete(operation)
                await asyncio.sleep(0.1)
        # The client is gone while the model is still thinking.
        assert services.generator.in_flight == 1
        assert (await query(http, LOGS, token))["generationLogs"]["totalCount"] == 0

        deadline = time.monotonic() + 15
        logs: dict[str, Any] = {"totalCount": 0}
        while time.monotonic() < deadline and logs["totalCount"] == 0:
            await asyncio.sleep(0.1)
            logs = (await query(http, LOGS, token))["generationLogs"]
        assert logs["totalCount"] == 1, "the abandoned generation was not logged"
        assert logs["items"][0]["status"] == "SUCCESS"
        assert services.generator.in_flight == 0


async def test_at_shutdown_an_unwatched_generation_is_logged_as_failure(
    gemini_settings: Settings, sandbox: Sandbox, gemini_standin: GeminiStandin
) -> None:
    """uvicorn closes WebSockets at once, waits the grace period for the work they leave, then
    cancels it: the generation is cancelled like an HTTP request's and logs itself FAILURE."""
    gemini_standin.set_latency(5.0)
    services = build_services(gemini_settings, None, sandbox, shared_analyser())
    config = uvicorn.Config(
        create_app(gemini_settings, services),
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="error",
        ws="websockets-sansio",
        timeout_graceful_shutdown=0.5,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done()
            await asyncio.sleep(0.01)
        base_url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            token, user_id = await register_user(http)
        async with GraphQLWS.connect(base_url, bearer(token)) as ws:
            operation = await ws.subscribe(GENERATE_PROGRESS, {"input": {"prompt": PROMPT}})
            assert (await ws.receive(operation))["payload"]["data"] is not None  # SENT
            started = time.monotonic()
            server.should_exit = True
            await asyncio.wait_for(serving, 10)
        assert time.monotonic() - started < 4, "the model's answer was awaited"
        assert await services.generator.drain()  # what the app's lifespan does next
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        await services.generator.providers.aclose()
    logs = await StrategyGenerationLog.filter(user_id=user_id)
    assert [(log.status, log.error_message) for log in logs] == [
        (GenerationStatus.FAILURE, SHUTDOWN_MESSAGE)
    ]


async def test_generation_rate_limit_applies_to_the_subscription(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    limited = settings.model_copy(update={"rate_limit_generate": "1/minute"})
    services = build_services(limited, TemplateProvider(), sandbox, shared_analyser())
    async with (
        serve_over_tcp(create_app(limited, services)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        token, _ = await register_user(http)
        async with GraphQLWS.connect(base_url, bearer(token)) as ws:
            first = await ws.collect(GENERATE_PROGRESS, {"input": {"prompt": PROMPT}})
            second = await ws.collect(GENERATE_PROGRESS, {"input": {"prompt": PROMPT}})
    assert first.ended == "complete" and first.codes == []
    assert second.ended == "error" and second.codes == ["RATE_LIMITED"], second
    assert second.errors is not None and second.errors[0]["extensions"]["retryAfterSeconds"] > 0


# --- backtest ---------------------------------------------------------------------------


async def test_backtest_progress_is_monotonic_and_ends_with_the_mutations_result(
    live_url: str, http: httpx.AsyncClient, user_token: str
) -> None:
    strategy_id = await generated_strategy(http, user_token)
    bars = 30_000
    backtest_input = {"marketData": market_data(bars), "commissionPct": 0.1}
    async with GraphQLWS.connect(live_url, bearer(user_token)) as ws:
        outcome = await ws.collect(BACKTEST_PROGRESS, {"id": strategy_id, "input": backtest_input})

    assert outcome.ended == "complete" and outcome.codes == [], outcome.codes
    events = outcome.data
    assert events[0]["barsDone"] == 0
    assert {e["totalBars"] for e in events} == {bars}
    done = [e["barsDone"] for e in events]
    assert done == sorted(set(done)), "progress must only go forward"
    assert any(0 < d < bars for d in done), "no progress between start and end"
    assert len(events) <= 102  # throttled: 1% steps at most, plus start and end
    assert [e["fraction"] for e in events] == [d / bars for d in done]
    assert done[-1] == bars and events[-1]["fraction"] == 1.0
    assert [e["result"] is not None for e in events] == [False] * (len(events) - 1) + [True]
    elapsed = [e["elapsedSeconds"] for e in events]
    assert elapsed == sorted(elapsed)

    mutation = await query(http, BACKTEST, user_token, id=strategy_id, input=backtest_input)
    assert events[-1]["result"] == mutation["backtestStrategy"]
    assert mutation["backtestStrategy"]["bars"] == bars


BUSY_CODE = """\
def execute_strategy(market_data, strategy_params):
    \"\"\"Reads every close so far on each bar: quadratic, so long runs take long.\"\"\"
    total = 0.0
    for value in market_data["close"]:
        total += value
    return {"action": "hold", "confidence": 0.5, "reason": "busy", "metadata": {}}
"""
UPDATE_CODE = """
mutation($id: UUID!, $code: String!) {
  updateStrategy(id: $id, input: {generatedCode: $code}) { id status }
}"""


async def test_unsubscribing_stops_the_backtest(database: str, settings: Settings) -> None:
    """One sandbox slot and no queue: while the backtest runs, another is refused; once the
    client unsubscribes, the slot is free again long before the backtest could have ended."""
    async with Sandbox(SandboxSettings(max_concurrent_jobs=1, max_queue=0)) as one_slot:
        services = build_services(settings, TemplateProvider(), one_slot, shared_analyser())
        async with (
            serve_over_tcp(create_app(settings, services)) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
        ):
            token, _ = await register_user(http)
            strategy_id = await generated_strategy(http, token)
            await query(http, UPDATE_CODE, token, id=strategy_id, code=BUSY_CODE)
            small = {"id": strategy_id, "input": {"sample": "trending_daily"}}
            async with GraphQLWS.connect(base_url, bearer(token)) as ws:
                operation = await ws.subscribe(
                    BACKTEST_PROGRESS,
                    {"id": strategy_id, "input": {"marketData": market_data(20_000)}},
                )
                while True:  # until the job runs in the sandbox
                    event = (await ws.receive(operation))["payload"]["data"]
                    if event["backtestStrategyProgress"]["barsDone"] > 0:
                        break
                busy = await call_graphql(http, BACKTEST, small, token)
                assert error_codes(busy) == ["RATE_LIMITED"], busy
                await ws.complete(operation)
                deadline = time.monotonic() + 3
                while error_codes(body := await call_graphql(http, BACKTEST, small, token)):
                    assert time.monotonic() < deadline, f"the backtest ran on: {body}"
                    await asyncio.sleep(0.05)
            assert body["data"]["backtestStrategy"]["bars"] == 1000


FAILING_CODE = """\
LOOKBACK = 1000  # more than the default window, so the history it sees grows past 600 bars


def execute_strategy(market_data, strategy_params):
    \"\"\"Holds, then fails on bar 600.\"\"\"
    if len(market_data["close"]) > 600:
        raise ValueError("no more")
    return {"action": "hold", "confidence": 0.5, "reason": "wait", "metadata": {}}
"""


async def test_a_backtest_failing_once_started_ends_with_errors_in_next(
    live_url: str, http: httpx.AsyncClient, user_token: str
) -> None:
    strategy_id = await generated_strategy(http, user_token)
    await query(http, UPDATE_CODE, user_token, id=strategy_id, code=FAILING_CODE)
    async with GraphQLWS.connect(live_url, bearer(user_token)) as ws:
        outcome = await ws.collect(
            BACKTEST_PROGRESS, {"id": strategy_id, "input": {"sample": "trending_daily"}}
        )
    assert outcome.ended == "complete" and outcome.errors is None
    # Progress reports before the failure depend on how fast the job ran: any number of them.
    started, *progress, failed = outcome.payloads
    assert started["data"]["backtestStrategyProgress"]["barsDone"] == 0
    done = [p["data"]["backtestStrategyProgress"]["barsDone"] for p in progress]
    assert done == sorted(done) and all(0 < bars <= 600 for bars in done), done
    assert failed["data"] is None
    [error] = failed["errors"]
    assert error["extensions"]["code"] == "STRATEGY_ERROR"
    assert error["extensions"]["reason"] == "RUNTIME_ERROR"
    assert "no more" in error["message"] and "Traceback" not in error["message"]


async def test_backtest_errors_carry_contract_codes(
    live_url: str, http: httpx.AsyncClient, user_token: str
) -> None:
    strategy_id = await generated_strategy(http, user_token)
    other_token, _ = await register_user(http)
    async with GraphQLWS.connect(live_url, bearer(user_token)) as ws:
        unknown_sample = await ws.collect(
            BACKTEST_PROGRESS, {"id": strategy_id, "input": {"sample": "no_such_sample"}}
        )
        two_sources = await ws.collect(
            BACKTEST_PROGRESS,
            {"id": strategy_id, "input": {"sample": "trending_daily", "csv": "a,b\n1,2\n"}},
        )
    async with GraphQLWS.connect(live_url, bearer(other_token)) as ws:
        not_yours = await ws.collect(
            BACKTEST_PROGRESS, {"id": strategy_id, "input": {"sample": "trending_daily"}}
        )
    for outcome, code in [
        (unknown_sample, "BAD_USER_INPUT"),
        (two_sources, "BAD_USER_INPUT"),
        (not_yours, "NOT_FOUND"),
    ]:
        assert outcome.ended == "error" and outcome.codes == [code], outcome
        assert outcome.payloads == []
        assert "Traceback" not in str(outcome.errors)


async def test_backtest_on_a_small_sample_is_start_and_end(
    live_url: str, http: httpx.AsyncClient, user_token: str
) -> None:
    strategy_id = await generated_strategy(http, user_token)
    async with GraphQLWS.connect(live_url, bearer(user_token)) as ws:
        outcome = await ws.collect(
            BACKTEST_PROGRESS, {"id": strategy_id, "input": {"sample": "trending_daily"}}
        )
    events = outcome.data
    assert outcome.ended == "complete"
    assert (events[0]["barsDone"], events[0]["totalBars"]) == (0, 1000)
    assert events[-1]["barsDone"] == 1000 and events[-1]["result"]["bars"] == 1000


# --- authentication and input -----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        (None, None),
        ({}, None),
        ({"Authorization": "Bearer not-a-token"}, None),
        ({"Authorization": "Token abc"}, None),
        (None, {"Authorization": "Bearer not-a-token"}),
    ],
    ids=["no-payload", "empty", "bad-token", "not-bearer", "bad-header"],
)
async def test_subscribing_without_valid_credentials_is_unauthenticated(
    live_url: str, payload: dict[str, str] | None, headers: dict[str, str] | None
) -> None:
    async with GraphQLWS.connect(live_url, payload, headers) as ws:
        generation = await ws.collect(GENERATE_PROGRESS, {"input": {"prompt": PROMPT}})
        backtest = await ws.collect(
            BACKTEST_PROGRESS,
            {"id": "00000000-0000-0000-0000-000000000000", "input": {"sample": "trending_daily"}},
        )
    for outcome in (generation, backtest):
        assert outcome.ended == "error" and outcome.codes == ["UNAUTHENTICATED"], outcome
        assert outcome.payloads == []


@pytest.mark.parametrize(
    "credentials",
    ["payload", "lowercase-payload", "header", "payload-over-header"],
)
async def test_credentials_in_connection_init_or_the_upgrade_request(
    credentials: str, live_url: str, http: httpx.AsyncClient, user_token: str
) -> None:
    payload, headers = {
        "payload": (bearer(user_token), None),
        "lowercase-payload": ({"authorization": f"Bearer {user_token}"}, None),
        "header": (None, bearer(user_token)),
        # connection_init wins: a stale header does not matter.
        "payload-over-header": (bearer(user_token), {"Authorization": "Bearer stale"}),
    }[credentials]
    strategy_id = await generated_strategy(http, user_token)
    async with GraphQLWS.connect(live_url, payload, headers) as ws:
        outcome = await ws.collect(
            BACKTEST_PROGRESS, {"id": strategy_id, "input": {"sample": "trending_daily"}}
        )
    assert outcome.ended == "complete" and outcome.codes == [], outcome


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"input": {"prompt": "   "}}, "prompt must not be empty"),
        ({"input": {"prompt": "x" * 4001}}, "at most 4000 characters"),
        ({"input": {"prompt": PROMPT, "name": ""}}, "name must be"),
        ({"input": {"prompt": PROMPT, "strategyType": "NOPE"}}, "NOPE"),
        ({"input": {}}, "prompt"),
        ({"input": {"prompt": "nul\x00"}}, "NUL"),
    ],
    ids=["blank", "too-long", "empty-name", "bad-enum", "missing", "nul"],
)
async def test_invalid_generation_input_is_bad_user_input(
    variables: dict[str, Any],
    message: str,
    live_url: str,
    http: httpx.AsyncClient,
    user_token: str,
) -> None:
    async with GraphQLWS.connect(live_url, bearer(user_token)) as ws:
        outcome = await ws.collect(GENERATE_PROGRESS, variables)
    # Refused before the generation starts: an `error` message (checks made as execution
    # starts, like the NUL one, come as a `next` without data instead).
    assert outcome.codes == ["BAD_USER_INPUT"], outcome
    assert not any(payload.get("data") for payload in outcome.payloads)
    assert message in outcome.all_errors[0]["message"]
    # Nothing was generated, so nothing was logged.
    assert (await query(http, LOGS, user_token))["generationLogs"]["totalCount"] == 0


# --- throttling -------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttle_admits_one_percent_steps_at_most_twenty_a_second() -> None:
    clock = FakeClock()
    throttle = Throttle(min_interval=0.05, min_step=0.01, clock=clock)
    assert throttle.admit(0, 10_000)
    assert not throttle.admit(50, 10_000)  # under 1%, and too soon
    clock.now = 1.0
    assert not throttle.admit(99, 10_000)  # late enough, but under 1%
    assert throttle.admit(100, 10_000)
    clock.now = 1.04
    assert not throttle.admit(5_000, 10_000)  # a big step, but too soon
    clock.now = 1.05
    assert throttle.admit(5_000, 10_000)


def test_throttle_drops_reports_that_go_back_or_change_the_total() -> None:
    clock = FakeClock()
    throttle = Throttle(min_interval=0.0, min_step=0.0, clock=clock)
    assert throttle.admit(0, 1_000)
    assert throttle.admit(500, 1_000)
    assert not throttle.admit(400, 1_000)
    assert not throttle.admit(500, 1_000)
    assert not throttle.admit(600, 5_000)
    assert throttle.admit(600, 1_000)


async def test_an_open_connection_checks_the_account_for_each_operation(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    """A WebSocket can stay open for hours: staff rights or the account itself must not be
    remembered for its whole life, only as long as over HTTP (RecentUsers)."""
    services = build_services(settings, TemplateProvider(), sandbox, shared_analyser())
    services.recent_users = RecentUsers(ttl_seconds=0.05)
    async with serve_over_tcp(create_app(settings, services)) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            token, user_id = await register_user(client)
        async with GraphQLWS.connect(base_url, bearer(token)) as ws:
            first = await ws.collect(GENERATE_PROGRESS, {"input": {"prompt": PROMPT}})
            assert first.ended == "complete" and first.codes == [], first
            await User.filter(id=user_id).delete()
            await asyncio.sleep(0.1)
            second = await ws.collect(GENERATE_PROGRESS, {"input": {"prompt": PROMPT}})
    assert second.ended == "error" and second.codes == ["UNAUTHENTICATED"], second
    assert "no longer exists" in second.all_errors[0]["message"]


async def test_a_malformed_document_closes_the_socket_with_4400(
    live_url: str, user_token: str
) -> None:
    """graphql-transport-ws: a document that does not parse closes the connection, 4400."""
    async with GraphQLWS.connect(live_url, bearer(user_token)) as ws:
        await ws.subscribe("subscription { generateStrategyProgress(input: {prompt: ")
        await asyncio.wait_for(ws.socket.wait_closed(), 10)
        assert ws.socket.close_code == 4400
        assert "Syntax Error" in (ws.socket.close_reason or "")
