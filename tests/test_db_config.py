"""DATABASE_URL handling: the PostgreSQL pool default and what a URL can override."""

from __future__ import annotations

import pytest

from server.db import DEFAULT_POSTGRES_POOL_MAX, tortoise_config, with_pool_default


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
