"""generationStats: figures over a window, checked against the logs the test itself creates.

Expected values are computed here from what the mutations returned (statuses, tokens,
processingTimeSeconds), never from the database. Staff-wide figures use a window that only
this test's rows fall in (tests of a session run one after another).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from models import GenerationStatus, StrategyGenerationLog, User
from server.settings import Settings
from services.sandbox import Sandbox
from tests.support.api import GraphQLCall, call_graphql, error_codes, make_client, register_user
from tests.support.gemini_standin import GeminiStandin, code_answer, error

STATS = """
query($since: DateTime, $until: DateTime, $allUsers: Boolean! = false) {
  generationStats(since: $since, until: $until, allUsers: $allUsers) {
    since until allUsers totalGenerations successCount partialCount failureCount successRate
    averageProcessingTimeSeconds p95ProcessingTimeSeconds tokensUsed activeUsers
    tokensByModel { provider model generations tokensUsed }
    popularStrategyTypes { strategyType count }
    daily { day generations successes tokensUsed }
  }
}"""
GENERATE = """
mutation($input: GenerateStrategyInput!) {
  generateStrategy(input: $input) {
    strategy { strategyType }
    generationLog { status provider model tokensUsed processingTimeSeconds }
  }
}"""
INVALID_CODE = "import os\n\ndef execute_strategy(market_data, strategy_params):\n    return {}\n"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def generate(
    client: httpx.AsyncClient, token: str, prompt: str, strategy_type: str | None = None
) -> dict[str, Any]:
    variables = {"input": {"prompt": prompt, "strategyType": strategy_type}}
    body = await call_graphql(client, GENERATE, variables, token)
    assert "errors" not in body, body
    return dict(body["data"]["generateStrategy"])


async def stats(
    gql: GraphQLCall, token: str, since: datetime | str | None = None, **variables: Any
) -> dict[str, Any]:
    if isinstance(since, datetime):
        since = iso(since)
    if isinstance(variables.get("until"), datetime):
        variables["until"] = iso(variables["until"])
    body = await gql(STATS, {"since": since, **variables}, token=token)
    assert "errors" not in body, body
    return dict(body["data"]["generationStats"])


def utc_days(since: datetime, until: datetime) -> list[str]:
    last = (until - timedelta(microseconds=1)).date()
    return [
        (since.date() + timedelta(days=n)).isoformat()
        for n in range((last - since.date()).days + 1)
    ]


def expected_figures(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """What generationStats must say about exactly these generations."""
    logs = [p["generationLog"] for p in payloads]
    statuses = Counter(log["status"] for log in logs)
    times = sorted(log["processingTimeSeconds"] for log in logs)
    by_model: dict[tuple[str, str], list[int]] = {}
    for log in logs:
        entry = by_model.setdefault((log["provider"], log["model"]), [0, 0])
        entry[0] += 1
        entry[1] += log["tokensUsed"]
    types = Counter(p["strategy"]["strategyType"] for p in payloads if p["strategy"])
    return {
        "totalGenerations": len(logs),
        "successCount": statuses["SUCCESS"],
        "partialCount": statuses["PARTIAL"],
        "failureCount": statuses["FAILURE"],
        "successRate": statuses["SUCCESS"] / len(logs),
        "average": sum(times) / len(times),
        "p95": times[math.ceil(0.95 * len(times)) - 1],
        "tokensUsed": sum(log["tokensUsed"] for log in logs),
        "tokensByModel": [
            {"provider": p, "model": m, "generations": n, "tokensUsed": t}
            for (p, m), (n, t) in sorted(
                by_model.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0])
            )
        ],
        "popularStrategyTypes": [
            {"strategyType": t, "count": n}
            for t, n in sorted(types.items(), key=lambda kv: (-kv[1], kv[0].lower()))
        ],
    }


def assert_figures(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key in (
        "totalGenerations",
        "successCount",
        "partialCount",
        "failureCount",
        "tokensUsed",
        "tokensByModel",
        "popularStrategyTypes",
    ):
        assert got[key] == want[key], key
    assert got["successRate"] == pytest.approx(want["successRate"])
    assert got["averageProcessingTimeSeconds"] == pytest.approx(want["average"])
    assert got["p95ProcessingTimeSeconds"] == want["p95"]
    assert sum(d["generations"] for d in got["daily"]) == want["totalGenerations"]
    assert sum(d["successes"] for d in got["daily"]) == want["successCount"]
    assert sum(d["tokensUsed"] for d in got["daily"]) == want["tokensUsed"]


async def register_staff(client: httpx.AsyncClient) -> tuple[str, str]:
    """Promoted before the token is first used (the server remembers users for a moment)."""
    token, user_id = await register_user(client)
    await User.filter(id=user_id).update(is_staff=True)
    return token, user_id


@pytest.fixture
async def gemini_client(
    database: str, settings: Settings, sandbox: Sandbox, gemini_standin: GeminiStandin
) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={
            "gemini_api_key": "test-gemini-key",
            "gemini_base_url": gemini_standin.base_url,
            "gemini_model": "gemini-stats-model",
            "gemini_timeout_seconds": 5.0,
            "gemini_max_attempts": 1,
            "generation_repair_rounds": 0,  # one scripted answer per generation
        }
    )
    async with make_client(configured, sandbox=sandbox) as client:
        yield client


async def test_own_figures_over_mixed_generations(
    client: httpx.AsyncClient,
    gql: GraphQLCall,
    gemini_client: httpx.AsyncClient,
    gemini_standin: GeminiStandin,
) -> None:
    token, _ = await register_user(client)
    since = now()
    gemini_standin.script(
        code_answer(tokens=(100, 400)),
        code_answer(tokens=(60, 240)),
        code_answer(INVALID_CODE, in_="text", tokens=(50, 150)),
        error(400, "Request contains an invalid argument."),
    )
    payloads = [
        await generate(gemini_client, token, "SMA crossover 5/20", "MOMENTUM"),
        await generate(gemini_client, token, "SMA crossover 10/50", "MOMENTUM"),
        await generate(gemini_client, token, "Channel breakout", "BREAKOUT"),
        await generate(gemini_client, token, "Anything", "GRID"),
        await generate(client, token, "RSI 14 below 30 buy", "MOMENTUM"),
    ]
    until = now() + timedelta(milliseconds=1)
    statuses = [p["generationLog"]["status"] for p in payloads]
    assert statuses == ["SUCCESS", "SUCCESS", "PARTIAL", "FAILURE", "SUCCESS"]
    assert payloads[0]["generationLog"]["tokensUsed"] == 500, "the stand-in's token count"

    got = await stats(gql, token, since, until=until)
    want = expected_figures(payloads)
    assert_figures(got, want)
    assert want["tokensUsed"] == 1000 and want["successRate"] == 0.6
    assert [t["strategyType"] for t in got["popularStrategyTypes"]] == ["MOMENTUM", "BREAKOUT"]
    assert {m["provider"] for m in got["tokensByModel"]} == {"gemini", "template"}
    assert got["activeUsers"] == 1
    assert got["allUsers"] is False
    assert [d["day"] for d in got["daily"]] == utc_days(since, until)

    # The default window (the last 30 days) holds all of a new user's generations.
    assert_figures(await stats(gql, token), want)
    # Outside the window nothing counts: [since, until) ends before the first generation.
    before = await stats(gql, token, since - timedelta(hours=1), until=since)
    assert before["totalGenerations"] == 0


async def test_p95_is_the_nearest_rank_and_no_rows_reach_other_users(
    client: httpx.AsyncClient, gql: GraphQLCall
) -> None:
    token, _ = await register_user(client)
    other, _ = await register_user(client)
    since = now()
    # 21 generations: the nearest rank of p95 is the 20th, not simply the slowest.
    payloads = [await generate(client, token, f"SMA crossover {n}/{n + 20}") for n in range(21)]
    until = now() + timedelta(milliseconds=1)
    times = sorted(p["generationLog"]["processingTimeSeconds"] for p in payloads)

    got = await stats(gql, token, since, until=until)
    assert_figures(got, expected_figures(payloads))
    assert got["p95ProcessingTimeSeconds"] == times[19]
    assert got["averageProcessingTimeSeconds"] == pytest.approx(sum(times) / 21)

    theirs = await stats(gql, other, since, until=until)
    assert theirs["totalGenerations"] == 0 and theirs["tokensByModel"] == []


async def test_staff_see_everyone_only_when_asking(
    client: httpx.AsyncClient, gql: GraphQLCall
) -> None:
    first, _ = await register_user(client)
    second, _ = await register_user(client)
    staff, _ = await register_staff(client)
    since = now()
    payloads = [
        await generate(client, first, "MACD momentum", "MOMENTUM"),
        await generate(client, first, "MACD momentum again", "MOMENTUM"),
        await generate(client, second, "SMA crossover 5/20", "GRID"),
    ]
    until = now() + timedelta(milliseconds=1)

    everyone = await stats(gql, staff, since, until=until, allUsers=True)
    assert_figures(everyone, expected_figures(payloads))
    assert everyone["activeUsers"] == 2
    assert everyone["allUsers"] is True
    assert everyone["popularStrategyTypes"] == [
        {"strategyType": "MOMENTUM", "count": 2},
        {"strategyType": "GRID", "count": 1},
    ]

    own = await stats(gql, staff, since, until=until)
    assert own["totalGenerations"] == 0 and own["activeUsers"] == 0
    assert own["successRate"] is None

    mine = await stats(gql, first, since, until=until)
    assert_figures(mine, expected_figures(payloads[:2]))

    refused = await gql(STATS, {"allUsers": True}, token=first)
    assert error_codes(refused) == ["FORBIDDEN"]
    assert "staff" in refused["errors"][0]["message"]
    assert refused["data"] is None


async def test_empty_window_has_null_rates_and_a_zero_filled_daily_series(
    gql: GraphQLCall, token: str
) -> None:
    got = await stats(gql, token, "2020-01-01T12:00:00Z", until="2020-01-04T00:00:00Z")
    assert got["totalGenerations"] == 0
    assert got["successRate"] is None
    assert got["averageProcessingTimeSeconds"] is None
    assert got["p95ProcessingTimeSeconds"] is None
    assert got["tokensUsed"] == 0
    assert got["tokensByModel"] == [] and got["popularStrategyTypes"] == []
    assert got["daily"] == [
        {"day": day, "generations": 0, "successes": 0, "tokensUsed": 0}
        for day in ("2020-01-01", "2020-01-02", "2020-01-03")
    ]


async def test_offsets_are_normalised_to_utc(gql: GraphQLCall, token: str) -> None:
    got = await stats(gql, token, "2020-01-01T23:30:00-01:00", until="2020-01-03T00:00:00+02:00")
    assert datetime.fromisoformat(got["since"]) == datetime(2020, 1, 2, 0, 30, tzinfo=UTC)
    assert datetime.fromisoformat(got["until"]) == datetime(2020, 1, 2, 22, 0, tzinfo=UTC)
    assert [d["day"] for d in got["daily"]] == ["2020-01-02"]


async def test_a_date_alone_is_midnight_utc(gql: GraphQLCall, token: str) -> None:
    """What people type: `since: "2026-11-01"`."""
    got = await stats(gql, token, "2020-01-01", until="2020-01-03")
    assert datetime.fromisoformat(got["since"]) == datetime(2020, 1, 1, tzinfo=UTC)
    assert datetime.fromisoformat(got["until"]) == datetime(2020, 1, 3, tzinfo=UTC)
    assert [d["day"] for d in got["daily"]] == ["2020-01-01", "2020-01-02"]


async def test_default_window_is_the_last_30_days(gql: GraphQLCall, token: str) -> None:
    before = now()
    got = await stats(gql, token)
    after = now()
    since, until = datetime.fromisoformat(got["since"]), datetime.fromisoformat(got["until"])
    assert before <= until <= after
    assert until - since == timedelta(days=30)
    assert len(got["daily"]) == len(utc_days(since, until))

    # Only `until`: the 30 days before it.
    got = await stats(gql, token, until="2021-03-01T00:00:00Z")
    assert got["since"].startswith("2021-01-30T00:00:00")
    assert got["daily"][0]["day"] == "2021-01-30" and got["daily"][-1]["day"] == "2021-02-28"


async def test_a_366_day_window_is_the_longest(gql: GraphQLCall, token: str) -> None:
    got = await stats(gql, token, "2020-01-01T00:00:00Z", until="2021-01-01T00:00:00Z")
    assert len(got["daily"]) == 366  # 2020 is a leap year
    assert got["daily"][-1]["day"] == date(2020, 12, 31).isoformat()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "earlier than"),
        ({"since": "2024-01-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "earlier than"),
        ({"since": "2999-01-01T00:00:00Z"}, "until defaults to now"),
        ({"since": "2020-01-01T00:00:00Z", "until": "2021-01-01T00:00:01Z"}, "366 days"),
        ({"since": "2024-01-01T09:30:00"}, "time zone offset"),
        ({"since": "2024-01-01T00:00:00Z", "until": "2024-01-02T00:00:01"}, "time zone offset"),
        ({"since": "0001-01-01T00:00:00+01:00", "until": "2024-01-01T00:00:00Z"}, "range"),
        ({"until": "0001-01-05T00:00:00Z"}, "range"),
        ({"since": "last tuesday"}, ""),
    ],
)
async def test_bad_windows_are_refused(
    gql: GraphQLCall, token: str, variables: dict[str, Any], message: str
) -> None:
    body = await gql(STATS, variables, token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert message in body["errors"][0]["message"]


async def test_stats_need_a_token(gql: GraphQLCall) -> None:
    assert error_codes(await gql(STATS)) == ["UNAUTHENTICATED"]


async def test_token_sums_beyond_32_bits(client: httpx.AsyncClient, gql: GraphQLCall) -> None:
    token, user_id = await register_user(client)
    since = now()
    for _ in range(3):  # 3 x 2,000,000,000 tokens: past Int's 2,147,483,647
        await StrategyGenerationLog.create(
            user_id=user_id,
            prompt="big",
            status=GenerationStatus.SUCCESS,
            provider="gemini",
            model="gemini-2.5-pro",
            processing_time_seconds=1.0,
            tokens_used=2_000_000_000,
            attempts=[],
        )
    figures = await stats(gql, token, since=since, until=now() + timedelta(seconds=1))
    assert figures["tokensUsed"] == 6_000_000_000
    assert figures["tokensByModel"][0]["tokensUsed"] == 6_000_000_000
    assert sum(day["tokensUsed"] for day in figures["daily"]) == 6_000_000_000
