"""DATABASE_URL handling: the PostgreSQL pool default and what a URL can override."""

from __future__ import annotations

import uuid

import pytest
from tortoise.transactions import in_transaction

from models import GeneratedStrategy, User
from server.db import (
    DEFAULT_POSTGRES_POOL_MAX,
    READER,
    SqliteReader,
    dialect_of,
    serving_config,
    tortoise_config,
    with_pool_default,
)


def test_postgres_gets_a_larger_pool_unless_the_url_says() -> None:
    default = f"maxsize={DEFAULT_POSTGRES_POOL_MAX}"
    assert with_pool_default("postgres://u@h:5432/db") == f"postgres://u@h:5432/db?{default}"
    assert (
        with_pool_default("postgres://u@h/db?ssl=true") == f"postgres://u@h/db?ssl=true&{default}"
    )
    assert with_pool_default("postgres://u@h/db?maxsize=3") == "postgres://u@h/db?maxsize=3"
    assert with_pool_default("sqlite://data/x.sqlite3") == "sqlite://data/x.sqlite3"


def test_the_pool_size_reaches_tortoise() -> None:
    config = tortoise_config("postgres://u@h:5432/db")
    assert config["connections"]["default"].endswith(f"maxsize={DEFAULT_POSTGRES_POOL_MAX}")


@pytest.mark.parametrize("url", ["mysql://u@h/db", "oracle://x"])
def test_unsupported_schemes_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="Unsupported DATABASE_URL scheme"):
        tortoise_config(url)


def test_sqlite_files_get_a_connection_for_reads_and_nothing_else_does() -> None:
    config = serving_config("sqlite://data/x.sqlite3")
    assert config["connections"] == {
        "default": "sqlite://data/x.sqlite3",
        READER: "sqlite://data/x.sqlite3",
    }
    assert config["routers"] == [SqliteReader]
    for url in ("sqlite://:memory:", "postgres://u@h:5432/db"):
        assert "routers" not in serving_config(url)
        assert list(serving_config(url)["connections"]) == ["default"]


async def test_reads_use_the_reader_and_transactions_keep_their_writes(database: str) -> None:
    """The session's database is configured as the server's (serving_config)."""
    reads_on = READER if dialect_of(database) == "sqlite" else "default"
    assert GeneratedStrategy._choose_db(False).connection_name == reads_on
    user = await User.create(email=f"tx-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
    with pytest.raises(RuntimeError):
        async with in_transaction("default") as transaction:
            assert GeneratedStrategy._choose_db(True) is transaction
            await GeneratedStrategy.create(
                user=user, name="n", description="", original_prompt="p", generated_code="x"
            )
            raise RuntimeError("roll back")
    assert await GeneratedStrategy.filter(user_id=user.id).count() == 0
