"""The stand-in Gemini server as a pytest fixture: one server per run, reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gemini_standin import GeminiStandin


@pytest.fixture(scope="session")
def _standin_server() -> Iterator[GeminiStandin]:
    with GeminiStandin() as standin:
        yield standin


@pytest.fixture
def gemini_standin(_standin_server: GeminiStandin) -> Iterator[GeminiStandin]:
    _standin_server.reset()
    yield _standin_server
    _standin_server.reset()
