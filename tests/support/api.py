"""Helpers for talking to the API over HTTP in tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from server.app import create_app
from server.settings import Settings
from server.wiring import build_services
from services.code_analysis import CodeAnalyser
from services.providers.base import CodeProvider
from services.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "correct horse battery"

GraphQLCall = Callable[..., Awaitable[dict[str, Any]]]

_SHARED_ANALYSER = CodeAnalyser()


def shared_analyser() -> CodeAnalyser:
    """One pool of code-analysis workers for the run (conftest closes it): test apps are not
    shut down through their lifespan, and a pool per app would pile up processes."""
    return _SHARED_ANALYSER


def make_client(
    settings: Settings,
    provider: CodeProvider | None = None,
    *,
    sandbox: Sandbox,
    client_address: str = "127.0.0.1",
    analyser: CodeAnalyser | None = None,
) -> httpx.AsyncClient:
    """The app in-process. `sandbox` is required: the app would otherwise start a fork server
    of its own at the first job (every generation's trial run) that nothing ever closes."""
    services = build_services(settings, provider, sandbox, analyser or shared_analyser())
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app=app, client=(client_address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30)


async def call_graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


REGISTER = """
mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token user { id email isStaff } }
}"""


async def register_user(client: httpx.AsyncClient, email: str | None = None) -> tuple[str, str]:
    """A fresh user per call: tests never share rows, so no table needs truncating."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    body = await call_graphql(client, REGISTER, {"email": email, "password": PASSWORD})
    assert "errors" not in body, body
    return body["data"]["register"]["token"], body["data"]["register"]["user"]["id"]


def http_exchanges(log: dict[str, Any]) -> list[dict[str, Any]]:
    """Every HTTP exchange of a generation log's rounds, in order (its retries included)."""
    return [exchange for attempt in log["attempts"] for exchange in attempt["httpExchanges"]]


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


GENERATE_WITH_USAGE = """
mutation($input: GenerateStrategyInput!) {
  generateStrategy(input: $input) {
    strategy { id status generatedCode parameters validationResults { valid errors } }
    generationLog {
      id status provider model aiResponseRaw extractedCode errorMessage
      tokensUsed inputTokens outputTokens estimatedCostUsd processingTimeSeconds
      strategy { id }
      attempts {
        number kind verdict httpStatus error durationSeconds
        httpExchanges { number httpStatus error durationSeconds }
      }
    }
  }
}"""


class GenerationSession:
    """One signed-in user of an app configured by `settings`: for provider tests."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.token = token

    async def generate(self, prompt: str = "SMA crossover 5/20", **extra: Any) -> dict[str, Any]:
        """generateStrategy's payload; a GraphQL error fails the test."""
        body = await self.call(GENERATE_WITH_USAGE, {"input": {"prompt": prompt, **extra}})
        assert "errors" not in body, body
        return dict(body["data"]["generateStrategy"])

    async def call(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await call_graphql(self.client, query, variables, self.token)


@contextlib.asynccontextmanager
async def generation_session(
    settings: Settings, sandbox: Sandbox, **updates: Any
) -> AsyncIterator[GenerationSession]:
    """The app with `settings` changed by `updates` (e.g. openai_base_url=...), signed in."""
    configured = settings.model_validate({**settings.model_dump(), **updates})
    async with make_client(configured, sandbox=sandbox) as client:
        token, _ = await register_user(client)
        yield GenerationSession(client, token)
