"""A database of its own for a test run or a module: a SQLite file under a directory, or a
PostgreSQL database created beside TEST_DATABASE_URL's and dropped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from server.db import dialect_of


def asyncpg_dsn(url: str) -> str:
    """asyncpg wants postgresql://; Tortoise takes postgres://."""
    return url.replace("postgres://", "postgresql://", 1)


@contextlib.contextmanager
def scratch_database(directory: Path, prefix: str) -> Iterator[str]:
    """Yield a DATABASE_URL nobody else uses: PostgreSQL when TEST_DATABASE_URL names a
    PostgreSQL server, a new SQLite file otherwise."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base or dialect_of(base) != "postgres":
        yield f"sqlite://{directory / f'{prefix}.sqlite3'}"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(base))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
