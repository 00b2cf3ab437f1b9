from __future__ import annotations

import subprocess
import sys

from tests.support.api import ROOT


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
