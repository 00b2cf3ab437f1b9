"""The real server (`python -m server`) with every model provider configured against its
vendor's stand-in (tests/support/*_standin.py), for the benchmarks of generation: the real
SDKs talk HTTP to scripted local servers, as the provider tests do."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.anthropic_standin import AnthropicStandin
from tests.support.gemini_standin import GeminiStandin
from tests.support.http_standin import HttpStandin
from tests.support.openai_standin import OpenAIStandin
from tests.support.server_process import ServerProcess

MODELS = {  # provider -> the model the server (and any direct SDK call) asks for
    "gemini": "gemini-bench",
    "openai": "gpt-bench",
    "anthropic": "claude-bench",
}
REGISTER = """mutation { register(email: "bench@example.com", password: "bench-password")
  { token } }"""


@dataclass
class Served:
    base: str  # the server's URL
    token: str
    standins: dict[str, HttpStandin]  # provider -> its stand-in
    urls: dict[str, str]  # provider -> the base URL its SDK is given
    reference: Served | None = None  # the same, served from another checkout

    def model_id(self, provider: str) -> str:
        return f"{provider}:{MODELS[provider]}"

    async def graphql(
        self, http: httpx.AsyncClient, query: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        response = await http.post(
            self.base + "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body


def _start(
    stack: contextlib.ExitStack,
    urls: dict[str, str],
    checkout: Path | None,
    settings: dict[str, str],
) -> tuple[str, str]:
    """A server (from `checkout`, else this one) on a fresh SQLite database: its URL and a
    signed-in user's token."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-models-")))
    if checkout is not None:
        settings = {**settings, "PYTHONPATH": str(checkout)}
    server = ServerProcess(
        workdir,
        SECRET_KEY="bench-secret-with-enough-entropy-0123456789",
        GEMINI_API_KEY="bench-key",
        GEMINI_BASE_URL=urls["gemini"],
        GEMINI_MODEL=MODELS["gemini"],
        OPENAI_API_KEY="bench-key",
        OPENAI_BASE_URL=urls["openai"],
        OPENAI_MODEL=MODELS["openai"],
        ANTHROPIC_API_KEY="bench-key",
        ANTHROPIC_BASE_URL=urls["anthropic"],
        ANTHROPIC_MODEL=MODELS["anthropic"],
        RATE_LIMIT_GENERATE="1000000/minute",
        RATE_LIMIT_EXECUTE="1000000/minute",
        LOG_LEVEL="warning",
        **settings,
    )
    server.start(timeout=60)
    stack.callback(server.stop)
    answer = httpx.post(server.base + "/graphql", json={"query": REGISTER}).json()
    return server.base, answer["data"]["register"]["token"]


@contextlib.contextmanager
def served(reference: Path | None = None, **settings: str) -> Iterator[Served]:
    """The server on a fresh SQLite database, every provider pointed at its stand-in,
    `settings` (environment variables) on top; a signed-in user. With `reference` (another
    checkout), a second server from there, on the same stand-ins and settings."""
    with contextlib.ExitStack() as stack:
        gemini = stack.enter_context(GeminiStandin())
        openai = stack.enter_context(OpenAIStandin())
        anthropic = stack.enter_context(AnthropicStandin())
        urls = {
            "gemini": gemini.base_url,
            "openai": openai.api_base_url,
            "anthropic": anthropic.base_url,
        }
        base, token = _start(stack, urls, None, settings)
        standins: dict[str, HttpStandin] = {
            "gemini": gemini,
            "openai": openai,
            "anthropic": anthropic,
        }
        other = None
        if reference is not None:
            other_base, other_token = _start(stack, urls, reference, settings)
            other = Served(other_base, other_token, standins, urls)
        yield Served(base, token, standins, urls, other)
