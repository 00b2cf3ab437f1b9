"""Rate limits and the staff-only admin view: the RATE_LIMITED and FORBIDDEN codes."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from models import User
from server.settings import Settings
from services.sandbox import Sandbox
from tests.support.api import ROOT, GraphQLCall, call_graphql, error_codes, make_client
from tests.support.api import register_user as register

GENERATE = """mutation($p: String!) { generateStrategy(input: {prompt: $p}) {
  generationLog { status } } }"""
ALL_STRATEGIES = "{ strategies(allUsers: true) { totalCount items { id } } }"
ALL_LOGS = "{ generationLogs(allUsers: true) { totalCount items { id strategy { id } } } }"


async def test_generation_is_rate_limited_per_user(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    limited = settings.model_copy(update={"rate_limit_generate": "2/minute"})
    async with make_client(limited, sandbox=sandbox) as client:
        first, _ = await register(client)
        second, _ = await register(client)
        for _ in range(2):
            body = await call_graphql(client, GENERATE, {"p": "RSI"}, first)
            assert body["data"]["generateStrategy"]["generationLog"]["status"] == "SUCCESS"
        refused = await call_graphql(client, GENERATE, {"p": "RSI"}, first)
        assert error_codes(refused) == ["RATE_LIMITED"]
        error = refused["errors"][0]
        assert 1 <= error["extensions"]["retryAfterSeconds"] <= 60
        assert "2/minute" in error["message"]
        logs = await call_graphql(client, "{ generationLogs { totalCount } }", None, first)
        assert logs["data"]["generationLogs"]["totalCount"] == 2, "a refused call logs nothing"
        other = await call_graphql(client, GENERATE, {"p": "RSI"}, second)
        assert "errors" not in other, "limits are per user"


async def test_admin_view_is_for_staff_only(client, gql: GraphQLCall, token: str) -> None:
    await gql(GENERATE, {"p": "MACD momentum"}, token=token)
    for query in (ALL_STRATEGIES, ALL_LOGS):
        body = await gql(query, token=token)
        assert error_codes(body) == ["FORBIDDEN"]
        assert "staff" in body["errors"][0]["message"]

    staff_token, staff_id = await register(client)
    await User.filter(id=staff_id).update(is_staff=True)
    everything = (await gql(ALL_STRATEGIES, token=staff_token))["data"]["strategies"]
    own = (await gql("{ strategies { totalCount } }", token=staff_token))["data"]["strategies"]
    assert own["totalCount"] == 0
    assert everything["totalCount"] >= 1
    logs = (await gql(ALL_LOGS, token=staff_token))["data"]["generationLogs"]
    assert logs["totalCount"] >= 1
    assert any(item["strategy"] for item in logs["items"]), "other users' strategies resolve"


@pytest.mark.process
def test_cli_creates_a_staff_user(database_url: str, database: str) -> None:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "create-user",
            "--email",
            email,
            "--staff",
            "--password-stdin",
        ],
        input="a long admin passphrase\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    assert f"created staff user {email}" in created.stdout
    again = subprocess.run(
        [sys.executable, "-m", "server", "create-user", "--email", email, "--password-stdin"],
        input="a long admin passphrase\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert again.returncode == 2
    assert "already exists" in again.stderr
