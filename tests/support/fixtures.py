"""The stand-in vendor servers as pytest fixtures: one server each per run, reset per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from server.app import create_app
from server.settings import Settings
from server.wiring import build_services
from services.providers.templates import TemplateProvider
from services.sandbox import Sandbox
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.api import shared_analyser
from tests.support.gemini_standin import GeminiStandin
from tests.support.live import serve_over_tcp
from tests.support.openai_standin import OpenAIStandin


@pytest.fixture(scope="session")
def _standin_server() -> Iterator[GeminiStandin]:
    with GeminiStandin() as standin:
        yield standin


@pytest.fixture
def gemini_standin(_standin_server: GeminiStandin) -> Iterator[GeminiStandin]:
    _standin_server.reset()
    yield _standin_server
    _standin_server.reset()


@pytest.fixture
async def live_url(database: str, settings: Settings, sandbox: Sandbox) -> AsyncIterator[str]:
    """The app (template provider) on a real TCP port: for WebSocket and generated clients."""
    app = create_app(
        settings, build_services(settings, TemplateProvider(), sandbox, shared_analyser())
    )
    async with serve_over_tcp(app) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def _openai_server() -> Iterator[OpenAIStandin]:
    with OpenAIStandin() as standin:
        yield standin


@pytest.fixture
def openai_standin(_openai_server: OpenAIStandin) -> Iterator[OpenAIStandin]:
    _openai_server.reset()
    yield _openai_server
    _openai_server.reset()


@pytest.fixture(scope="session")
def _anthropic_server() -> Iterator[AnthropicStandin]:
    with AnthropicStandin() as standin:
        yield standin


@pytest.fixture
def anthropic_standin(_anthropic_server: AnthropicStandin) -> Iterator[AnthropicStandin]:
    _anthropic_server.reset()
    yield _anthropic_server
    _anthropic_server.reset()
