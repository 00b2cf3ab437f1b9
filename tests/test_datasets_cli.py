"""`python -m server dataset upload|list|delete` and `backtest --dataset-id`, in a subprocess
on the CLI tests' own database (tests/test_cli.py's fixtures)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.test_cli import OWNER, Cli, cli, sma_strategy  # noqa: F401 (fixtures)
from tests.test_datasets import daily_csv

pytestmark = pytest.mark.process


def test_upload_list_backtest_and_delete(cli: Cli, sma_strategy: str, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "AAPL.csv"
    path.write_text(daily_csv(300))
    uploaded = cli(
        "dataset", "upload", str(path), "--user", OWNER, "--symbol", "AAPL",
        "--time-zone", "America/New_York",
    )  # fmt: skip
    assert uploaded.returncode == 0, uploaded.stderr
    assert "format: yahoo" in uploaded.stderr and "bars stored: 300" in uploaded.stderr
    dataset_id = uploaded.stdout.split()[1]
    listed = json.loads(cli("dataset", "list", "--user", OWNER, "--json").stdout)
    assert [(d["id"], d["name"], d["symbol"], d["bars"]) for d in listed] == [
        (dataset_id, "AAPL", "AAPL", 300)
    ]
    assert listed[0]["start"].startswith("2019-01-01T05:00:00")  # midnight in New York

    backtest = cli("backtest", sma_strategy, "--dataset-id", dataset_id, "--json")
    assert backtest.returncode == 0, backtest.stderr
    assert json.loads(backtest.stdout)["bars"] == 300

    again = cli("dataset", "upload", str(path), "--user", OWNER)
    assert again.returncode == 2 and "already have a dataset named 'AAPL'" in again.stderr
    path.write_text("time,open,high,low,close\n2024-01-02,1,2,0.5,x\n")
    bad = cli("dataset", "upload", str(path), "--user", OWNER, "--name", "bad")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: csv: line 2: close is not a number: 'x'"

    assert cli("dataset", "delete", dataset_id, "--user", OWNER).returncode == 0
    missing = cli("dataset", "delete", dataset_id, "--user", OWNER)
    assert missing.returncode == 2 and "not found" in missing.stderr
    assert json.loads(cli("dataset", "list", "--user", OWNER, "--json").stdout) == []
    unknown = cli("backtest", sma_strategy, "--dataset-id", str(uuid.uuid4()))
    assert unknown.returncode == 2 and "not found" in unknown.stderr
