"""Database configuration and migrations.

aerich writes SQL for one dialect, so each dialect keeps its own migrations folder
(`migrations/sqlite`, `migrations/postgres`); both are generated from the same models.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import multiprocessing
import shutil
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aerich import Command
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import DBConnectionError, OperationalError

from server.settings import Settings, get_settings

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


@dataclass(frozen=True)
class DatabaseBounds:
    """How long a request may wait on PostgreSQL (server/postgres_client.py): to connect, for
    a pooled connection, and for each statement."""

    connect_seconds: float
    pool_seconds: float
    query_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DatabaseBounds:
        return cls(
            connect_seconds=settings.database_connect_timeout_seconds,
            pool_seconds=settings.database_pool_timeout_seconds,
            query_seconds=settings.database_query_timeout_seconds,
        )


def bounded_postgres(database_url: str, bounds: DatabaseBounds) -> dict[str, Any]:
    """The URL as Tortoise's dict form, served by our bounded client."""
    connection = expand_db_url(with_pool_default(database_url))
    connection["engine"] = "server.postgres_client"
    credentials = connection["credentials"]
    # asyncpg's own names: `timeout` to connect, `command_timeout` per statement.
    credentials.setdefault("timeout", bounds.connect_seconds)
    credentials.setdefault("command_timeout", bounds.query_seconds)
    credentials["pool_timeout"] = bounds.pool_seconds
    # No connection floor: asyncpg restores one in the background and, while the server is
    # down, logs a traceback for every try. Connections open on demand instead.
    credentials.setdefault("minsize", 0)
    return connection


def serving_config(database_url: str, bounds: DatabaseBounds | None = None) -> dict[str, Any]:
    """`tortoise_config` for serving: SQLite files also get a connection for reads;
    PostgreSQL gets the `bounds` on waiting (migrations run without them)."""
    config = tortoise_config(database_url)
    if dialect_of(database_url) == "postgres" and bounds is not None:
        config["connections"]["default"] = bounded_postgres(database_url, bounds)
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


class MigrationsPending(Exception):
    """The database lacks migrations and this process may not apply them (PostgreSQL
    without MIGRATE_ON_START): serving would answer every request with an error."""

    def __init__(self, pending: list[str]) -> None:
        self.pending = pending
        super().__init__(
            f"the database lacks {len(pending)} migration(s): {', '.join(pending)}. Apply them "
            "with `python -m server migrate` (or `make migrate`), or set MIGRATE_ON_START=true"
        )


def migration_files(database_url: str) -> list[str]:
    """The migrations this code expects, in order (aerich's version names)."""
    folder = Path(migrations_location(database_url)) / "models"
    return sorted(
        (path.name for path in folder.glob("*.py") if path.name[0].isdigit()),
        key=lambda name: int(name.split("_", 1)[0]),
    )


async def applied_migrations(connection: Any) -> set[str] | None:
    """Versions recorded in aerich's table on an open Tortoise connection; None without it."""
    try:
        _, rows = await connection.execute_query("SELECT version FROM aerich WHERE app = 'models'")
    except OperationalError as exc:  # "no such table" (SQLite), "does not exist" (PostgreSQL)
        text = str(exc).lower()
        if "aerich" in text and ("no such table" in text or "does not exist" in text):
            return None
        raise
    return {row["version"] for row in rows}


async def pending_migrations(database_url: str) -> list[str]:
    """Migrations not yet applied to the database at `database_url`."""
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        applied = await applied_migrations(Tortoise.get_connection("default"))
    finally:
        await Tortoise.close_connections()
    return [name for name in migration_files(database_url) if name not in (applied or set())]


@contextlib.asynccontextmanager
async def _migration_lock(database_url: str) -> AsyncIterator[None]:
    """One migrating process at a time, however many start together (workers, replicas)."""
    if dialect_of(database_url) == "postgres":
        conn = await asyncpg.connect(
            database_url.replace("postgres://", "postgresql://", 1).partition("?")[0]
        )
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", _PG_MIGRATION_LOCK)
            yield
        finally:
            await conn.close()  # releases the lock too
        return
    path = database_url.split("://", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:":
        yield
        return
    lock_path = Path(path + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = await asyncio.to_thread(lock_path.open, "a")
    try:
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # releases the lock


START_CHECK_TIMEOUT_SECONDS = 60.0
_PG_MIGRATION_LOCK = 0x5747_4D49  # any constant; the same in every process of this service


def migrates_on_start(database_url: str, migrate_on_start: bool | None) -> bool:
    """Unset: the embedded SQLite migrates itself; a shared server waits for the operator."""
    if migrate_on_start is not None:
        return migrate_on_start
    return dialect_of(database_url) == "sqlite"


async def prepare_database(database_url: str, migrate_on_start: bool | None) -> list[str]:
    """Start-up: apply pending migrations where allowed (returns them), else refuse to serve
    (MigrationsPending). Safe when several processes start at once. A database that cannot
    be reached now is not a reason to stay down: the server starts, /readyz says 503 (and
    names pending migrations once it can see them)."""
    try:
        async with asyncio.timeout(START_CHECK_TIMEOUT_SECONDS):
            if not migrates_on_start(database_url, migrate_on_start):
                pending = await pending_migrations(database_url)
                if pending:
                    raise MigrationsPending(pending)
                return []
            async with _migration_lock(database_url):
                applied = await migrate(database_url)
    except (OSError, TimeoutError, DBConnectionError) as exc:
        log.warning(
            "database unreachable at start-up (%s); migrations not checked, /readyz reports",
            type(exc).__name__,
        )
        return []
    if applied:
        log.info("applied %d migration(s) at start-up: %s", len(applied), ", ".join(applied))
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
