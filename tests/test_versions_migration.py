"""The strategy_versions migration gives every strategy stored before it a version 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.api import ROOT
from tests.support.databases import scratch_database
from tests.support.server_process import server_env

# The test process's Tortoise serves the run's database: aerich would re-initialise (and
# close) it, so the migrations run in a process of their own.
pytestmark = pytest.mark.process

USER_ID = "11111111-1111-4111-8111-111111111111"
PROMPTED = "22222222-2222-4222-8222-222222222222"
HAND_WRITTEN = "33333333-3333-4333-8333-333333333333"

# Plain SQL both dialects read the same way (literals, no placeholders).
EXISTING_ROWS = f"""
INSERT INTO "users" ("id", "email", "password_hash", "is_staff", "created_at")
VALUES ('{USER_ID}', 'old@example.com', 'x', false, '2026-01-01 00:00:00+00:00');
INSERT INTO "generated_strategies" ("id", "name", "description", "original_prompt",
    "generated_code", "strategy_type", "status", "validation_results", "parameters",
    "performance_metrics", "usage_count", "created_at", "updated_at", "user_id")
VALUES
    ('{PROMPTED}', 'SMA', '', 'SMA 10/30 crossover', 'def execute_strategy(m, p): pass',
     'trend_following', 'validated', '{{"valid": true}}', '{{"fast": 10}}',
     '{{"finalEquity": 12000.5}}', 0, '2026-01-02 00:00:00+00:00',
     '2026-01-05 00:00:00+00:00', '{USER_ID}'),
    ('{HAND_WRITTEN}', 'Mine', '', '', 'pass', 'custom', 'error', NULL, '{{}}', '{{}}', 0,
     '2026-01-03 00:00:00+00:00', '2026-01-04 00:00:00+00:00', '{USER_ID}');
"""

# Step 1: the database as it was before versions, with strategies in it.
BEFORE_VERSIONS = """
import asyncio, shutil, sys
from pathlib import Path

from aerich import Command
from tortoise import Tortoise

from server.db import migrations_location, tortoise_config

url, scratch, rows = sys.argv[1], Path(sys.argv[2]), sys.argv[3]


async def main():
    earlier = scratch / "models"
    earlier.mkdir(parents=True)
    for path in sorted((Path(migrations_location(url)) / "models").glob("*.py")):
        if "strategy_versions" in path.name:
            break
        shutil.copy(path, earlier / path.name)
    async with Command(tortoise_config(url), app="models", location=str(scratch)) as command:
        await command.init()
        await command.upgrade(run_in_transaction=True)
        await Tortoise.get_connection("default").execute_script(rows)


asyncio.run(main())
"""

# Step 3: what the migrated database holds, read through the models.
AFTER = """
import asyncio, json, sys

from tortoise import Tortoise

from models import GeneratedStrategy, StrategyVersion
from server.db import tortoise_config


async def main():
    await Tortoise.init(config=tortoise_config(sys.argv[1]), _enable_global_fallback=True)
    versions = await StrategyVersion.all().order_by("created_at")
    strategies = await GeneratedStrategy.all().order_by("created_at")
    print(json.dumps({
        "strategies": [[str(s.id), s.version] for s in strategies],
        "versions": [
            {
                "strategy": str(v.strategy_id), "number": v.number, "code": v.generated_code,
                "parameters": v.parameters, "instruction": v.instruction, "author": v.author,
                "validation": v.validation_results, "metrics": v.performance_metrics,
                "createdAt": v.created_at.isoformat(),
            }
            for v in versions
        ],
    }))
    await Tortoise.close_connections()


asyncio.run(main())
"""


def _run(args: list[str], url: str) -> str:
    ran = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=server_env(DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout


def test_existing_strategies_get_version_one(tmp_path: Path) -> None:
    with scratch_database(tmp_path, "sg_versions") as url:
        _run(["-c", BEFORE_VERSIONS, url, str(tmp_path / "earlier"), EXISTING_ROWS], url)
        migrated = _run(["-m", "server", "migrate"], url)
        found = json.loads(_run(["-c", AFTER, url], url).strip().splitlines()[-1])
    assert "strategy_versions" in migrated
    assert found["strategies"] == [[PROMPTED, 1], [HAND_WRITTEN, 1]]
    assert found["versions"] == [
        {
            "strategy": HAND_WRITTEN,
            "number": 1,
            "code": "pass",
            "parameters": {},
            "instruction": "code before versions",
            "author": "migration",
            "validation": None,
            "metrics": {},
            "createdAt": "2026-01-04T00:00:00+00:00",
        },
        {
            "strategy": PROMPTED,
            "number": 1,
            "code": "def execute_strategy(m, p): pass",
            "parameters": {"fast": 10},
            "instruction": "SMA 10/30 crossover",
            "author": "migration",
            "validation": {"valid": True},
            "metrics": {"finalEquity": 12000.5},
            "createdAt": "2026-01-05T00:00:00+00:00",
        },
    ]
