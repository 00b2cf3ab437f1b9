"""The stand-in Gemini server as a pytest fixture: one server per run, reset for every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from server.app import create_app
from server.settings import Settings
from server.wiring import build_services
from services.sandbox import Sandbox
from services.templates import TemplateProvider
from tests.support.api import shared_analyser
from tests.support.gemini_standin import GeminiStandin
from tests.support.live import serve_over_tcp


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
