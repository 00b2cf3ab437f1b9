"""Database configuration and migrations.

aerich writes SQL for one dialect, so each dialect keeps its own migrations folder
(`migrations/sqlite`, `migrations/postgres`); both are generated from the same models.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aerich import Command
from tortoise import Tortoise

from server.settings import get_settings

log = logging.getLogger(__name__)

MODEL_MODULES = ["models", "aerich.models"]
MIGRATIONS_ROOT = Path(__file__).resolve().parent.parent / "migrations"
DIALECTS = {
    "sqlite": "sqlite",
    "postgres": "postgres",
    "asyncpg": "postgres",
    "psycopg": "postgres",
}


def dialect_of(database_url: str) -> str:
    scheme = database_url.split("://", 1)[0].lower()
    try:
        return DIALECTS[scheme]
    except KeyError:
        raise ValueError(
            f"Unsupported DATABASE_URL scheme '{scheme}': use sqlite:// or postgres://"
        ) from None


def migrations_location(database_url: str) -> str:
    return str(MIGRATIONS_ROOT / dialect_of(database_url))


# asyncpg's pool defaults to 5 connections, which ran dry under bench/load.py (requests
# waited p99 179 ms for one; 44 ms with 20). `?maxsize=` in DATABASE_URL overrides it.
DEFAULT_POSTGRES_POOL_MAX = 20


def with_pool_default(database_url: str) -> str:
    if dialect_of(database_url) != "postgres" or "maxsize=" in database_url.partition("?")[2]:
        return database_url
    separator = "&" if "?" in database_url else "?"
    return f"{database_url}{separator}maxsize={DEFAULT_POSTGRES_POOL_MAX}"


def tortoise_config(database_url: str) -> dict[str, Any]:
    if dialect_of(database_url) == "sqlite":
        path = database_url.split("://", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    database_url = with_pool_default(database_url)
    return {
        "connections": {"default": database_url},
        "apps": {"models": {"models": MODEL_MODULES, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


READER = "reader"


class SqliteReader:
    """Sends reads to a second SQLite connection. In WAL mode readers need not wait for the
    writer, but one connection runs one statement at a time: under bench/load.py every list
    waited behind the generations' write transactions."""

    def db_for_read(self, model: type) -> str:
        return READER

    def db_for_write(self, model: type) -> str:
        return "default"


def serving_config(database_url: str) -> dict[str, Any]:
    """`tortoise_config` for serving: SQLite files also get a connection for reads."""
    config = tortoise_config(database_url)
    path = database_url.split("://", 1)[1].split("?", 1)[0]
    if dialect_of(database_url) == "sqlite" and path and path != ":memory:":
        config["connections"][READER] = database_url
        config["routers"] = [SqliteReader]
    return config


def __getattr__(name: str) -> Any:
    # `TORTOISE_ORM` is read by the aerich CLI (aerich.toml); computed on demand so that
    # importing this module has no side effects.
    if name == "TORTOISE_ORM":
        return tortoise_config(get_settings().database_url)
    raise AttributeError(name)


async def migrate(database_url: str) -> list[str]:
    """Apply every pending migration of the URL's dialect; returns the applied versions."""
    command = Command(
        tortoise_config(database_url), app="models", location=migrations_location(database_url)
    )
    try:
        await command.init()
        applied = await command.upgrade(run_in_transaction=True)
    finally:
        await Tortoise.close_connections()
    for version in applied:
        log.info("applied migration %s", version)
    return applied


# A URL per dialect for offline diffs: aerich needs the dialect, not a server.
OFFLINE_URLS = {"sqlite": "sqlite://:memory:", "postgres": "postgres://offline@127.0.0.1:1/offline"}


def _diff_in_child(dialect: str, location: str, name: str) -> str:
    first_migration = not any(Path(location, "models").glob("*.py"))

    async def run() -> str:
        config = tortoise_config(OFFLINE_URLS[dialect])
        command = Command(config, app="models", location=location)
        try:
            if first_migration:
                await command.init_migrations(safe=True)
                return "initial"
            await command.init(offline=True)
            return await command.migrate(name=name, no_input=True, offline=True)
        finally:
            await Tortoise.close_connections()

    return asyncio.run(run())


def _diff(dialect: str, location: str, name: str) -> str:
    # aerich keeps per-dialect state in class attributes: one fresh process per dialect.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_diff_in_child, dialect, location, name).result()


def write_migrations(name: str) -> dict[str, str]:
    """Write a migration per dialect for model changes since the last one ('' if none)."""
    return {d: _diff(d, str(MIGRATIONS_ROOT / d), name) for d in OFFLINE_URLS}


def pending_model_changes() -> dict[str, bool]:
    """Per dialect: do the models differ from the last migration? Writes nothing."""
    pending = {}
    for dialect in OFFLINE_URLS:
        with tempfile.TemporaryDirectory() as tmp:
            location = Path(tmp, dialect)
            shutil.copytree(MIGRATIONS_ROOT / dialect, location)
            pending[dialect] = bool(_diff(dialect, str(location), "check"))
    return pending
