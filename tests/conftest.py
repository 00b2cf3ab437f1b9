"""Shared fixtures: a real, migrated database per run and an HTTP client over ASGI.

TEST_DATABASE_URL picks the server: unset means a fresh SQLite file; a postgres:// URL
names an existing database used only to create (and afterwards drop) a database for this run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from tortoise import Tortoise

from server.db import migrate, serving_config
from server.settings import Settings
from services.code_analysis import CodeAnalyser
from services.providers.templates import TemplateProvider
from services.sandbox import Sandbox, SandboxSettings
from tests.support.api import (
    GraphQLCall,
    call_graphql,
    make_client,
    register_user,
    shared_analyser,
)
from tests.support.databases import scratch_database

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scratch_database(tmp_path_factory.mktemp("db"), "sg_test") as url:
        yield url


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[str]:
    """The run's database, migrated from zero with the project's own migrations."""
    applied = await migrate(database_url)
    assert applied, "migrations should run on a fresh database"
    await Tortoise.init(config=serving_config(database_url), _enable_global_fallback=True)
    yield database_url
    await Tortoise.close_connections()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        secret_key="test-secret-key-with-enough-entropy-0123456789",
        gemini_api_key="",
        openai_api_key="",
        openai_base_url="",
        anthropic_api_key="",
        default_model="",
        rate_limit_generate="1000/minute",
    )


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    """One fork server for the run: starting one costs about half a second."""
    async with Sandbox(SandboxSettings(max_concurrent_jobs=2)) as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
async def code_analyser() -> AsyncIterator[CodeAnalyser]:
    """The run's pool of code-analysis workers (tests/support/api.py), closed at the end."""
    yield shared_analyser()
    await shared_analyser().close()


@pytest.fixture
async def client(
    database: str, settings: Settings, sandbox: Sandbox
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(settings, TemplateProvider(), sandbox=sandbox) as c:
        yield c


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLCall:
    async def run(query: str, variables: dict[str, Any] | None = None, token: str | None = None):
        return await call_graphql(client, query, variables, token)

    return run


@pytest.fixture
async def token(client: httpx.AsyncClient) -> str:
    return (await register_user(client))[0]


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis that .ci/run starts. Without one, a skip on a developer's machine, but a
    failure in CI (CI set): there a missing dependency must not pass as a skipped test."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"no Redis at {REDIS_URL}: .ci/run should have started one")
        pytest.skip(f"no Redis at {REDIS_URL} (make test runs these with one on 127.0.0.1:6379)")
    return REDIS_URL
