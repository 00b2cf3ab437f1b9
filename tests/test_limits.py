"""Abuse limits: document shape and size, request size, introspection, rate limits (memory and
Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from graphql import build_schema, get_introspection_query, parse, specified_rules, validate

from schema import (
    LIMIT_RULES,
    MAX_ALIASES,
    MAX_DEPTH_WITH_INTROSPECTION,
    MAX_QUERY_DEPTH,
    MAX_TOKENS,
)
from server.settings import Settings
from services.sandbox import Sandbox
from tests.support.api import PASSWORD, REGISTER, call_graphql, error_codes, make_client

LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { token } }"""


CYCLIC = build_schema("type Query { node: Node } type Node { id: ID  next: Node }")


def test_depth_limit_rule() -> None:
    """Our schema has no cycles today; the rule guards the day one is added."""

    def depth(n: int) -> str:
        return "{ node { " + "next { " * (n - 1) + "id" + " }" * n + " }"

    rules = [*specified_rules, *LIMIT_RULES]
    assert validate(CYCLIC, parse(depth(MAX_QUERY_DEPTH)), rules) == []
    errors = validate(CYCLIC, parse(depth(MAX_QUERY_DEPTH + 1)), rules)
    assert errors and "exceeds maximum operation depth" in errors[0].message


async def test_aliases_and_tokens_are_limited(gql, token: str) -> None:
    aliases = " ".join(f"a{i}: me {{ id }}" for i in range(MAX_ALIASES + 1))
    body = await gql("{ " + aliases + " }", token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "alias" in body["errors"][0]["message"].lower()

    fine = " ".join(f"a{i}: me {{ id }}" for i in range(MAX_ALIASES))
    assert "errors" not in await gql("{ " + fine + " }", token=token)

    tokens = "{ me { " + "id " * MAX_TOKENS + "} }"
    body = await gql(tokens, token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "tokens" in body["errors"][0]["message"]


async def test_no_field_suggestions(gql, token: str) -> None:
    body = await gql("{ strategie { items { id } } }", token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "Did you mean" not in body["errors"][0]["message"]


async def test_introspection_works_for_graphiql(gql) -> None:
    every_option = {
        "descriptions": True,
        "specified_by_url": True,
        "directive_is_repeatable": True,
        "schema_description": True,
        "input_value_deprecation": True,
    }
    for query in (get_introspection_query(), get_introspection_query(**every_option)):
        body = await gql(query)
        assert "errors" not in body, body
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.mark.parametrize("levels", [20, 44])
async def test_deep_introspection_is_refused_by_the_served_schema(gql, levels: int) -> None:
    """The depth limit counts introspection fields too (strawberry's limiter skips them)."""
    nested = "ofType { " * levels + "name" + " }" * levels
    body = await gql("{ __schema { types { fields { type { " + nested + " } } } } }")
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert f"maximum depth of {MAX_DEPTH_WITH_INTROSPECTION}" in body["errors"][0]["message"]


async def test_introspection_can_be_switched_off(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    production = settings.model_copy(update={"graphql_introspection": False})
    async with make_client(production, sandbox=sandbox) as client:
        body = await call_graphql(client, "{ __schema { types { name } } }")
        assert body["data"] is None
        assert set(error_codes(body)) == {"BAD_USER_INPUT"}
        assert "introspection" in body["errors"][0]["message"].lower()
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        email = f"p-{uuid.uuid4().hex[:8]}@example.com"
        ok = await call_graphql(client, REGISTER, {"email": email, "password": PASSWORD})
        assert "errors" not in ok, "everything else still works"


async def test_request_body_size_is_limited(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    small = settings.model_copy(update={"max_request_bytes": 4096})
    async with make_client(small, sandbox=sandbox) as client:
        response = await client.post(
            "/graphql", json={"query": "{ me { id } }", "variables": {"pad": "x" * 5000}}
        )
        assert response.status_code == 413
        assert error_codes(response.json()) == ["BAD_USER_INPUT"]
        assert "4096 bytes" in response.json()["errors"][0]["message"]

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"query": "{ me { id } }", "variables": {"pad": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}}'

        streamed = await client.post(
            "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        fine = await client.post("/graphql", json={"query": "{ __typename }"})
        assert fine.status_code == 200


@pytest.mark.parametrize(
    ("request_kwargs", "reason"),
    [
        ({"json": {"query": "query Me { me { id } }", "operationName": "Other"}}, "Other"),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, "JSON"),
        ({"json": {"variables": {}}}, "No GraphQL query"),
    ],
    ids=["unknown-operation-name", "body-not-json", "no-query"],
)
async def test_refused_requests_answer_with_a_graphql_error(
    client: httpx.AsyncClient, request_kwargs: dict[str, object], reason: str
) -> None:
    """GraphiQL and generated clients parse every answer as JSON; plain text reached users
    as "Unexpected token ... is not valid JSON" instead of the reason."""
    response = await client.post("/graphql", **request_kwargs)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    assert reason in response.json()["errors"][0]["message"]


async def limited_client(
    settings: Settings, sandbox: Sandbox, address: str = "127.0.0.1", **limits: str
) -> httpx.AsyncClient:
    return make_client(settings.model_copy(update=limits), sandbox=sandbox, client_address=address)


async def test_login_is_limited_per_account_and_per_address(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    async with await limited_client(
        settings, sandbox, rate_limit_login="3/minute", rate_limit_auth_by_address="1000/minute"
    ) as client:
        email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
        await call_graphql(client, REGISTER, {"email": email, "password": PASSWORD})
        for _ in range(3):
            wrong = await call_graphql(client, LOGIN, {"email": email, "password": "nope-nope"})
            assert error_codes(wrong) == ["UNAUTHENTICATED"]
        blocked = await call_graphql(client, LOGIN, {"email": email.upper(), "password": PASSWORD})
        assert error_codes(blocked) == ["RATE_LIMITED"]
        assert blocked["errors"][0]["extensions"]["retryAfterSeconds"] >= 1

    async with await limited_client(
        settings, sandbox, rate_limit_auth_by_address="2/minute"
    ) as client:
        for i in range(2):
            email = f"flood-{i}-{uuid.uuid4().hex[:8]}@example.com"
            body = await call_graphql(client, REGISTER, {"email": email, "password": PASSWORD})
            assert "errors" not in body
        body = await call_graphql(
            client, REGISTER, {"email": "third@example.com", "password": PASSWORD}
        )
        assert error_codes(body) == ["RATE_LIMITED"]
        assert "register/login" in body["errors"][0]["message"]


async def test_execution_is_limited_per_user(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    validate = """mutation($code: String!) { validateCode(code: $code) { valid } }"""
    code = (
        "def execute_strategy(market_data, strategy_params):\n"
        "    return {'action': 'hold', 'confidence': 0.5, 'reason': 'flat', 'metadata': {}}\n"
    )
    no_smoke = """mutation($code: String!) { validateCode(code: $code, smokeTest: false) {
      valid } }"""
    async with await limited_client(settings, sandbox, rate_limit_execute="2/minute") as client:
        from tests.support.api import register_user

        token, _ = await register_user(client)
        for _ in range(2):
            body = await call_graphql(client, validate, {"code": code}, token)
            assert body["data"]["validateCode"]["valid"] is True
        refused = await call_graphql(client, validate, {"code": code}, token)
        assert error_codes(refused) == ["RATE_LIMITED"]
        static_only = await call_graphql(client, no_smoke, {"code": code}, token)
        assert "errors" not in static_only, "static validation does not use the sandbox"


async def test_redis_limits_are_shared_between_processes(
    database: str, settings: Settings, sandbox: Sandbox, redis_url: str
) -> None:
    """Two apps with their own services stand in for two server processes."""
    shared = {"rate_limit_auth_by_address": "3/minute", "redis_url": redis_url}
    # A fresh client address per run, so earlier runs' counts in Redis don't matter.
    address = f"192.0.2.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"
    first = await limited_client(settings, sandbox, address, **shared)
    second = await limited_client(settings, sandbox, address, **shared)
    outcomes = []
    async with first, second:
        for client in (first, second, first, second):
            email = f"r-{uuid.uuid4().hex[:8]}@example.com"
            body = await call_graphql(client, REGISTER, {"email": email, "password": PASSWORD})
            outcomes.append(error_codes(body))
    assert outcomes == [[], [], [], ["RATE_LIMITED"]]
