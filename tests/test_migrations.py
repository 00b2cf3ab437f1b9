from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.db import dialect_of, migration_files
from tests.support.api import PASSWORD, REGISTER, ROOT
from tests.support.databases import scratch_database
from tests.support.server_process import ServerProcess, free_port, server_env

pytestmark = pytest.mark.process


def test_every_model_change_has_a_migration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "makemigrations", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sqlite: up to date" in result.stdout
    assert "postgres: up to date" in result.stdout


def _register(base: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.post(
        f"{base}/graphql",
        json={"query": REGISTER, "variables": {"email": "first@example.com", "password": PASSWORD}},
        timeout=30,
    ).json()
    return body


def test_embedded_database_is_migrated_at_start_and_readiness_sees_gaps(tmp_path: Path) -> None:
    """The Quick start's `python -m server` on a new SQLite file serves at once; a database
    that lacks a migration is not ready, and says which."""
    expected = migration_files("sqlite://x.sqlite3")
    with ServerProcess(tmp_path, migrate_first=False) as server:
        assert "errors" not in _register(server.base)
        ready = httpx.get(f"{server.base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert f"applied {len(expected)} migration(s) at start-up" in server.output()

        database = sqlite3.connect(tmp_path / "data" / "strategies.sqlite3")
        with database:
            database.execute("DELETE FROM aerich WHERE version = ?", (expected[-1],))
        not_ready = httpx.get(f"{server.base}/readyz", timeout=10)
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["database"] == {
            "ok": False,
            "error": "migrations pending",
            "pendingMigrations": [expected[-1]],
        }
        database.close()


@pytest.fixture
def fresh_postgres(tmp_path: Path) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base or dialect_of(base) != "postgres":
        pytest.skip("a PostgreSQL case: runs when TEST_DATABASE_URL names a PostgreSQL server")
    with scratch_database(tmp_path, "sg_fresh") as url:
        yield url


def test_postgres_is_migrated_at_start_only_when_asked(fresh_postgres: str, tmp_path: Path) -> None:
    """A shared database is the operator's: refuse to serve, naming what is missing and how
    to apply it, unless MIGRATE_ON_START=true."""
    refused = subprocess.run(
        [sys.executable, "-m", "server"],
        cwd=tmp_path,
        env=server_env(DATABASE_URL=fresh_postgres, PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    message = refused.stderr.strip().splitlines()[-1]
    expected = migration_files(fresh_postgres)
    assert message.startswith(f"error: not serving: the database lacks {len(expected)} migration")
    assert all(name in message for name in expected)
    assert "python -m server migrate" in message and "MIGRATE_ON_START=true" in message

    with ServerProcess(
        tmp_path, migrate_first=False, DATABASE_URL=fresh_postgres, MIGRATE_ON_START="true"
    ) as server:
        assert "errors" not in _register(server.base)
        assert httpx.get(f"{server.base}/readyz", timeout=10).status_code == 200
