"""`python -m server optimize` (server/optimize_cli.py): the API's service functions and job
machinery from the command line, on a real database (the CLI tests' fixtures)."""

from __future__ import annotations

import json

import pytest

from server.optimize_cli import parse_range
from services.optimization import ParameterRange
from tests.test_cli import OWNER, Cli, cli, sma_strategy  # noqa: F401 (fixtures)

pytestmark = pytest.mark.process


def test_ranges_are_parsed_as_the_api_takes_them() -> None:
    assert parse_range("fast_period=5,10,20") == ParameterRange("fast_period", values=[5, 10, 20])
    assert parse_range("mode=a,b") == ParameterRange("mode", values=["a", "b"])
    assert parse_range("slow=20:60:10") == ParameterRange("slow", min=20, max=60, step=10)
    assert parse_range("x=0.5:2") == ParameterRange("x", min=0.5, max=2, step=None)


def test_optimize_walk_forward_and_apply(cli: Cli, sma_strategy: str) -> None:  # noqa: F811
    result = cli(
        "optimize",
        sma_strategy,
        "--dataset",
        "trending_daily",
        "--param",
        "fast_period=5,10",
        "--param",
        "slow_period=30:50:10",
        "--folds",
        "2",
        "--user",
        OWNER,
        "--apply",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["status"] == "succeeded" and shown["trialsDone"] == 12
    assert [fold["index"] for fold in shown["folds"]] == [0, 1]
    assert shown["bestParameters"] == shown["folds"][-1]["bestParameters"]
    assert shown["appliedVersion"] == 2
    stored = cli.rows(
        "SELECT COUNT(*), COUNT(DISTINCT number) FROM optimization_trials t "
        "JOIN optimizations o ON o.id = t.optimization_id WHERE CAST(o.id AS TEXT) = ?",
        shown["id"],
    )
    assert stored == [(12, 12)]
    text = cli(
        "optimize", sma_strategy, "--dataset", "trending_daily", "--param", "fast_period=5,10"
    )
    assert text.returncode == 0, text.stderr
    assert "best parameters:" in text.stdout and "2 trials" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "period=1,2", "--dataset", "trending_daily"], "Unknown parameter 'period'"),
        (["--param", "fast_period=9:3:1", "--dataset", "trending_daily"], "range is empty"),
        (["--param", "fast_period", "--dataset", "trending_daily"], "NAME=V1,V2"),
        (["--param", "fast_period=1,2"], "exactly one of --csv"),
    ],
)
def test_bad_input_exits_2(
    cli: Cli,  # noqa: F811
    sma_strategy: str,  # noqa: F811
    args: list[str],
    message: str,
) -> None:
    result = cli("optimize", sma_strategy, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
