"""The command line as users run it: `python -m server ...` in a subprocess, configured by env.

Every test runs against a database of this module's own (a SQLite file; with TEST_DATABASE_URL
set to a postgres:// URL, a PostgreSQL database created and dropped here), migrated with the
CLI itself. The API cross-check uses the session's database through the usual fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import json
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest

from schema import print_schema
from server.db import dialect_of
from tests.support.api import GraphQLCall, register_user
from tests.support.databases import asyncpg_dsn, scratch_database
from tests.support.gemini_standin import DEFAULT_CODE, GeminiStandin, code_answer, text_answer
from tests.support.openai_standin import OpenAIStandin
from tests.support.openai_standin import code_answer as openai_code_answer
from tests.support.server_process import server_env

pytestmark = pytest.mark.process

PASSWORD = "a long passphrase for the cli"
OWNER = "owner@example.com"
SMA_PROMPT = "SMA crossover 10/30 with 2% stop loss"
COMMANDS = (
    "serve",
    "migrate",
    "makemigrations",
    "create-user",
    "export-schema",
    "persisted-manifest",
    "generate",
    "refine",
    "models",
    "backtest",
)
STRATEGY_LINE = re.compile(r"^strategy: ([0-9a-f-]{36}) ", re.M)
LOG_LINE = re.compile(r"^log: ([0-9a-f-]{36})$", re.M)
# Passes static validation, fails at run time once it has 40 bars.
FAILING_CODE = DEFAULT_CODE.replace(
    "    price = closes[-1]\n",
    "    price = closes[-1]\n"
    "    if len(closes) > 40:\n"
    '        raise ValueError("boom at bar 40")\n',
)


@dataclass
class Cli:
    workdir: Path
    env: dict[str, str]
    database_url: str

    def __call__(
        self, *args: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "server", *args],
            cwd=self.workdir,
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
        )
        output = result.stdout + result.stderr
        assert "Traceback" not in output, output
        return result

    def rows(self, sql: str, *args: str) -> list[tuple[Any, ...]]:
        """Read the CLI's database directly (`?` placeholders)."""
        if dialect_of(self.database_url) == "sqlite":
            path = self.database_url.split("://", 1)[1]
            with contextlib.closing(sqlite3.connect(path)) as conn:
                return conn.execute(sql, args).fetchall()
        numbers = itertools.count(1)
        pg_sql = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)

        async def fetch() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(asyncpg_dsn(self.database_url))
            try:
                return [tuple(row) for row in await conn.fetch(pg_sql, *args)]
            finally:
                await conn.close()

        # A thread of its own: async tests call this with their event loop running.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, fetch()).result()


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    workdir = tmp_path_factory.mktemp("cli")
    with scratch_database(workdir, "sg_cli") as database_url:
        run = Cli(workdir, server_env(DATABASE_URL=database_url, COLUMNS="200"), database_url)
        migrated = run("migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert re.match(r"applied [1-9]\d* migration\(s\): 0_", migrated.stdout), migrated.stdout
        created = run("create-user", "--email", OWNER, "--password-stdin", stdin=PASSWORD + "\n")
        assert created.returncode == 0, created.stderr
        yield run


def _generated(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def sma_strategy(cli: Cli) -> str:
    """A stored strategy of OWNER, from the template provider."""
    result = cli("generate", SMA_PROMPT, "--user", OWNER, "--json")
    assert result.returncode == 0, result.stderr
    return str(_generated(result)["strategyId"])


def _gemini(standin: GeminiStandin) -> dict[str, str]:
    return {
        "GEMINI_API_KEY": "cli-test-key",
        "GEMINI_BASE_URL": standin.base_url,
        "GEMINI_MAX_ATTEMPTS": "1",
        "GEMINI_RETRY_BASE_SECONDS": "0",
        # One answer each: the stand-in's default answer would repair the faults scripted
        # here (tests/test_repair_loop.py tests the repair rounds).
        "GENERATION_REPAIR_ROUNDS": "0",
    }


def _ohlcv_csv(bars: int = 1200, seed: int = 7) -> str:
    """A daily random walk with drifting regimes, so an SMA crossover trades often."""
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.choice([-0.004, 0.004], size=bars // 100 + 1), 100)[:bars]
    close = 100 * np.exp(np.cumsum(drift + rng.normal(0, 0.01, bars)))
    open_ = np.concatenate(([close[0]], close[:-1])) * (1 + rng.normal(0, 0.002, bars))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, bars))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, bars))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
    for i in range(bars):
        row = (open_[i], high[i], low[i], close[i])
        writer.writerow([1_600_000_000 + 86_400 * i, *(f"{v:.6f}" for v in row), 1000 + i])
    return out.getvalue()


def test_help_lists_every_command(cli: Cli) -> None:
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert re.search(rf"^\W*{command}\s", result.stdout, re.M), (command, result.stdout)


def test_create_user_with_staff_flag_and_duplicate(cli: Cli) -> None:
    email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    created = cli("create-user", "--email", email, "--staff", "--password-stdin", stdin=PASSWORD)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"created staff user {email} (")
    [(is_staff,)] = cli.rows("SELECT is_staff FROM users WHERE email = ?", email)
    assert is_staff in (True, 1)
    again = cli("create-user", "--email", email, "--password-stdin", stdin=PASSWORD)
    assert again.returncode == 2
    assert again.stderr.strip().endswith("error: An account with this email already exists")


def test_generate_with_template_provider_prints_and_stores(cli: Cli) -> None:
    result = cli("generate", "RSI scalping, 2% stop loss, 5% take profit", "--user", OWNER)
    assert result.returncode == 0, result.stderr
    assert "def execute_strategy(market_data, strategy_params):" in result.stdout
    assert "status: SUCCESS (template, " in result.stderr
    assert "tokens: 0" in result.stderr
    assert re.search(r"^time: \d+\.\d{3} s$", result.stderr, re.M)
    match = STRATEGY_LINE.search(result.stderr)
    log_match = LOG_LINE.search(result.stderr)
    assert match and log_match, result.stderr
    strategy_id, log_id = match.group(1), log_match.group(1)

    [(code, status, email)] = cli.rows(
        "SELECT s.generated_code, s.status, u.email FROM generated_strategies s "
        "JOIN users u ON u.id = s.user_id WHERE s.id = ?",
        strategy_id,
    )
    assert code.rstrip("\n") == result.stdout.rstrip("\n")
    assert (status, email) == ("validated", OWNER)
    [(log_status, provider, log_strategy)] = cli.rows(
        "SELECT status, provider, strategy_id FROM strategy_generation_logs WHERE id = ?", log_id
    )
    assert (log_status, provider, str(log_strategy)) == ("success", "template", strategy_id)


def test_generate_shows_what_the_template_provider_left_out(cli: Cli) -> None:
    partial = cli("generate", "SMA 10/30 crossover grid strategy", "--user", OWNER)
    assert partial.returncode == 1
    assert "status: PARTIAL (template, " in partial.stderr
    assert "not implemented: grid" in partial.stderr
    assert "def execute_strategy(" in partial.stdout  # the part it understood is stored
    as_json = cli("generate", "options straddle", "--user", OWNER, "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["status"] == "FAILURE" and report["strategy"] is None
    assert report["ignoredRequirements"] == ["options straddle"]
    assert report["interpretation"]["template"] is None


def test_generate_json_with_name_type_and_no_validate(cli: Cli) -> None:
    result = cli(
        "generate",
        "Bollinger band mean reversion",
        "--user",
        OWNER.upper(),
        "--name",
        "My bands",
        "--type",
        "custom",
        "--no-validate",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = _generated(result)
    assert data["status"] == "SUCCESS" and data["provider"] == "template"
    assert data["strategy"]["name"] == "My bands"
    assert data["strategy"]["strategyType"] == "CUSTOM"
    assert data["strategy"]["status"] == "DRAFT"
    [(name, code)] = cli.rows(
        "SELECT name, generated_code FROM generated_strategies WHERE id = ?", data["strategyId"]
    )
    assert (name, code) == ("My bands", data["strategy"]["generatedCode"])


def test_generate_with_gemini_standin(cli: Cli, gemini_standin: GeminiStandin) -> None:
    gemini_standin.script(code_answer(DEFAULT_CODE, tokens=(100, 400)))
    result = cli("generate", "SMA crossover", "--user", OWNER, "--json", **_gemini(gemini_standin))
    assert result.returncode == 0, result.stderr
    data = _generated(result)
    assert (data["status"], data["provider"], data["tokensUsed"]) == ("SUCCESS", "gemini", 500)
    assert data["strategy"]["generatedCode"].strip() == DEFAULT_CODE.strip()
    [request] = gemini_standin.requests
    assert request.api_key == "cli-test-key"
    assert "SMA crossover" in json.dumps(request.body)
    [(stored,)] = cli.rows(
        "SELECT extracted_code FROM strategy_generation_logs WHERE id = ?", data["logId"]
    )
    assert stored.strip() == DEFAULT_CODE.strip()


def _openai(standin: OpenAIStandin) -> dict[str, str]:
    """An OpenAI-compatible local server (no key), beside Gemini."""
    return {
        "OPENAI_BASE_URL": standin.api_base_url,
        "OPENAI_MODEL": "qwen2.5-coder:7b",
        "OPENAI_MAX_ATTEMPTS": "1",
    }


def test_models_lists_the_configured_models(
    cli: Cli, gemini_standin: GeminiStandin, openai_standin: OpenAIStandin
) -> None:
    env = {**_gemini(gemini_standin), **_openai(openai_standin)}
    listed = cli("models", **env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "* gemini:gemini-2.5-pro",
        "  openai:qwen2.5-coder:7b",
        "  template:templates-v1",
    ]
    as_json = cli("models", "--json", **env, DEFAULT_MODEL="qwen2.5-coder:7b")
    assert json.loads(as_json.stdout)[1] == {
        "id": "openai:qwen2.5-coder:7b",
        "provider": "openai",
        "model": "qwen2.5-coder:7b",
        "isDefault": True,
    }


def test_generate_with_model_uses_that_provider(
    cli: Cli, gemini_standin: GeminiStandin, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(openai_code_answer(tokens=(300, 700)))
    env = {
        **_gemini(gemini_standin),
        **_openai(openai_standin),
        "MODEL_PRICES": '{"qwen2.5-coder:7b": {"input": 1, "output": 2}}',
    }
    model = ("--model", "openai:qwen2.5-coder:7b")
    result = cli("generate", "SMA crossover", "--user", OWNER, "--json", *model, **env)
    assert result.returncode == 0, result.stderr
    data = _generated(result)
    assert (data["provider"], data["model"]) == ("openai", "qwen2.5-coder:7b")
    assert (data["inputTokens"], data["outputTokens"]) == (300, 700)
    assert data["estimatedCostUsd"] == pytest.approx((300 * 1 + 700 * 2) / 1e6)
    assert len(openai_standin.requests) == 1 and gemini_standin.requests == []


def test_generate_with_an_unknown_model_is_bad_input(
    cli: Cli, gemini_standin: GeminiStandin
) -> None:
    result = cli("generate", "SMA", "--user", OWNER, "--model", "gpt-9", **_gemini(gemini_standin))
    assert result.returncode == 2
    assert "model 'gpt-9' is not configured" in result.stderr
    assert "Traceback" not in result.stderr
    bad_default = cli("models", DEFAULT_MODEL="gpt-9")
    assert bad_default.returncode == 2
    assert "DEFAULT_MODEL='gpt-9' is not a configured model" in bad_default.stderr


@pytest.mark.parametrize(
    ("reply", "status", "message"),
    [
        (text_answer("I would rather not write code."), "failure", "contained no Python code"),
        (
            code_answer("def execute_strategy(market_data, strategy_params):\n    import os\n"),
            "partial",
            "Generated code failed validation",
        ),
    ],
    ids=["failure", "partial"],
)
def test_generate_failure_exits_1_and_is_logged(
    cli: Cli, gemini_standin: GeminiStandin, reply: Any, status: str, message: str
) -> None:
    gemini_standin.script(reply)
    result = cli("generate", "anything at all", "--user", OWNER, **_gemini(gemini_standin))
    assert result.returncode == 1, result.stderr
    assert f"status: {status.upper()} (gemini, " in result.stderr
    [error_line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert message in error_line
    log_match = LOG_LINE.search(result.stderr)
    assert log_match, result.stderr
    [(stored_status, stored_error)] = cli.rows(
        "SELECT status, error_message FROM strategy_generation_logs WHERE id = ?",
        log_match.group(1),
    )
    assert stored_status == status and message in stored_error


async def test_backtest_csv_matches_the_api(
    cli: Cli, sma_strategy: str, gql: GraphQLCall, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    text = _ohlcv_csv()
    path = tmp_path / "bars.csv"
    path.write_text(text)

    shown = cli("backtest", sma_strategy, "--csv", str(path), "--user", OWNER)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"backtest .* 1200/1200 bars", shown.stderr), shown.stderr
    as_json = cli("backtest", sma_strategy, "--csv", str(path), "--json")
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    metrics = result["metrics"]
    assert result["bars"] == 1200 and metrics["numTrades"] > 3
    assert len(result["trades"]) == metrics["numTrades"]
    # Issue 18: the look-ahead check's verdict, in the table's footer and in the JSON.
    assert result["lookAhead"]["lookAheadBias"] is False and metrics["trustworthy"] is True
    assert re.search(r"No look-ahead found: \d+ bars re-run on truncated data", shown.stdout)
    for key, shape in (("finalEquity", ",.4f"), ("numTrades", ","), ("maxDrawdownPct", ",.4f")):
        cell = re.escape(format(metrics[key], shape))
        assert re.search(rf"\b{key}\b.*\s{cell}\s", shown.stdout), (key, shown.stdout)

    [(code, stored)] = cli.rows(
        "SELECT generated_code, performance_metrics FROM generated_strategies WHERE id = ?",
        sma_strategy,
    )
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert stored["finalEquity"] == metrics["finalEquity"] and stored["data"] == "csv"
    [(on_version,)] = cli.rows(
        "SELECT performance_metrics FROM strategy_versions WHERE strategy_id = ? AND number = 1",
        sma_strategy,
    )
    on_version = json.loads(on_version) if isinstance(on_version, str) else on_version
    assert on_version == stored, "the metrics are also the version's (the CLI's generation is 1)"

    # The same strategy (the template provider is deterministic) through the API.
    token, _ = await register_user(client)
    generated = await gql(
        "mutation($p: String!) { generateStrategy(input: {prompt: $p})"
        " { strategy { id generatedCode } } }",
        {"p": SMA_PROMPT},
        token,
    )
    api_strategy = generated["data"]["generateStrategy"]["strategy"]
    assert api_strategy["generatedCode"] == code
    backtested = await gql(
        "mutation($id: UUID!, $csv: String!) { backtestStrategy(id: $id, input: {csv: $csv})"
        " { metrics bars trades } }",
        {"id": api_strategy["id"], "csv": text},
        token,
    )
    api = backtested["data"]["backtestStrategy"]
    assert api["bars"] == 1200
    assert api["metrics"] == metrics
    assert api["trades"] == result["trades"]


def test_backtest_dataset_with_options(cli: Cli, sma_strategy: str) -> None:
    plain = cli("backtest", sma_strategy, "--dataset", "trending_daily", "--json")
    costly = cli(
        "backtest",
        sma_strategy,
        "--dataset",
        "trending_daily",
        "--initial-capital",
        "5000",
        "--commission",
        "1",
        "--params",
        '{"stop_loss_pct": 0.5}',
        "--json",
    )
    assert plain.returncode == 0 and costly.returncode == 0, plain.stderr + costly.stderr
    first, second = json.loads(plain.stdout)["metrics"], json.loads(costly.stdout)["metrics"]
    assert (first["startEquity"], second["startEquity"]) == (10_000.0, 5_000.0)
    assert second["commissionsPaid"] / second["startEquity"] > first["commissionsPaid"] / 10_000


def test_backtest_writes_its_trades_as_csv_with_slippage(
    cli: Cli, sma_strategy: str, tmp_path: Path
) -> None:
    """Issue 13: trades exportable as CSV; slippageBps and the parity options from the CLI."""
    path = tmp_path / "trades.csv"
    args = ("backtest", sma_strategy, "--dataset", "trending_daily")
    missing = cli(*args, "--trades-csv", str(tmp_path / "no" / "t.csv"))
    assert missing.returncode == 2 and "--trades-csv: no directory" in missing.stderr
    shown = cli(*args, "--slippage-bps", "20", "--trades-csv", str(path), "--json")
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == result["metrics"]["numTrades"] > 3
    for row, trade in zip(rows, result["trades"], strict=True):
        assert int(row["entryBar"]) == trade["entryBar"]
        assert float(row["exitPrice"]) == trade["exitPrice"]
        assert float(row["entryTime"]) == trade["entryTime"]
        assert float(row["slippage"]) == trade["slippage"] > 0
        assert row["exitReason"] == trade["exitReason"]
    assert result["metrics"]["slippagePaid"] > 0
    opened = cli(*args, "--end-of-data-fill", "open", "--whole-units", "--json")
    assert opened.returncode == 0, opened.stderr
    assert all(float(t["size"]).is_integer() for t in json.loads(opened.stdout)["trades"])
    wrong = cli(*args, "--end-of-data-fill", "noon")
    assert wrong.returncode == 2 and "end_of_data_fill must be one of close, open" in wrong.stderr


def test_backtest_strategy_failing_in_the_sandbox_exits_1(
    cli: Cli, gemini_standin: GeminiStandin
) -> None:
    gemini_standin.script(code_answer(FAILING_CODE), code_answer(FAILING_CODE))
    checked = cli("generate", "fragile", "--user", OWNER, **_gemini(gemini_standin))
    assert checked.returncode == 1, "the generation's trial run finds the crash first"
    assert "error: Generated code failed validation: Trial run on sample data" in (checked.stderr)
    generated = cli(
        "generate", "fragile", "--user", OWNER, "--no-validate", "--json", **_gemini(gemini_standin)
    )
    assert generated.returncode == 0, generated.stderr
    strategy_id = _generated(generated)["strategyId"]
    result = cli("backtest", strategy_id, "--dataset", "trending_daily")
    assert result.returncode == 1
    [error_line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error_line.startswith("error: the strategy failed:") and "boom at bar 40" in error_line
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "RSI", "--user", "nobody@example.com"], "No user with email"),
        (["generate", "   ", "--user", OWNER], "prompt must not be empty"),
        (["backtest", str(uuid.UUID(int=1)), "--dataset", "trending_daily"], "not found"),
        (["backtest", "not-a-uuid", "--dataset", "trending_daily"], "is not a strategy id"),
        (["backtest", "{sma}", "--csv", "{missing}"], "No such file or directory"),
        (["backtest", "{sma}", "--csv", "{malformed}"], "csv: line 3"),
        (["backtest", "{sma}", "--csv", "{header}"], "csv: line 1"),
        (["backtest", "{sma}", "--dataset", "nope"], "Unknown sample 'nope'"),
        (["backtest", "{sma}"], "exactly one of --csv FILE, --dataset NAME or --dataset-id ID"),
        (
            ["backtest", "{sma}", "--dataset", "trending_daily", "--user", "x@example.com"],
            "No user",
        ),
        (["backtest", "{sma}", "--dataset", "trending_daily", "--params", "[1"], "--params"),
        (
            ["backtest", "{sma}", "--dataset", "trending_daily", "--initial-capital", "0"],
            "initial_cash",
        ),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_bad_input_exits_2_with_one_line(
    cli: Cli, sma_strategy: str, tmp_path: Path, args: list[str], message: str
) -> None:
    malformed = tmp_path / "malformed.csv"
    malformed.write_text("date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1,x,1,1\n")
    header = tmp_path / "header.csv"
    header.write_text("a,b\n1,2\n")
    names = {
        "sma": sma_strategy,
        "missing": str(tmp_path / "missing.csv"),
        "malformed": str(malformed),
        "header": str(header),
    }
    result = cli(*(arg.format(**names) for arg in args))
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "backtest " not in result.stderr, "no progress bar before the work starts"


def test_another_users_strategy_is_not_found_with_user(cli: Cli, sma_strategy: str) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}@example.com"
    assert cli("create-user", "--email", other, "--password-stdin", stdin=PASSWORD).returncode == 0
    result = cli("backtest", sma_strategy, "--dataset", "trending_daily", "--user", other)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"error: Strategy {sma_strategy} not found")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL: Unsupported DATABASE_URL scheme"),
        ({"PORT": "not-a-port"}, "invalid configuration: PORT:"),
        ({"TRUSTED_PROXIES": "10.0.0.1, proxy"}, "invalid configuration: TRUSTED_PROXIES:"),
    ],
    ids=["database-url", "port", "trusted-proxies"],
)
def test_bad_configuration_exits_2(cli: Cli, env: dict[str, str], message: str) -> None:
    result = cli("migrate", **env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_export_schema_to_a_file_matches_schema_graphql(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "out.graphql"
    written = cli("export-schema", "--output", str(target))
    printed = cli("export-schema")
    assert written.returncode == 0 and printed.returncode == 0, written.stderr
    # What `make schema` writes to schema.graphql (tests/test_schema.py checks that file).
    assert target.read_text() == print_schema() == printed.stdout
    assert written.stdout == ""
    missing_dir = cli("export-schema", "--output", str(tmp_path / "no" / "such" / "dir.graphql"))
    assert missing_dir.returncode == 2 and "error: cannot write" in missing_dir.stderr


def test_output_is_for_people_and_generation_time_excludes_sandbox_start(cli: Cli) -> None:
    """Log lines only when asked; the logged time is the generation's, as through the API
    (whose sandbox starts with the server), not the sandbox's start-up."""
    quiet = cli("generate", SMA_PROMPT, "--user", OWNER, "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.strip() == "", quiet.stderr

    verbose = cli("--verbose", "generate", SMA_PROMPT, "--user", OWNER, "--json")
    assert verbose.returncode == 0, verbose.stderr
    started = re.search(r"sandbox started: .*fork_server_ms=(\d+)", verbose.stderr)
    assert started, verbose.stderr
    seconds = _generated(verbose)["processingTimeSeconds"]
    assert seconds * 1000 < int(started.group(1)), (seconds, started.group(0))

    asked = cli("generate", SMA_PROMPT, "--user", OWNER, "--json", LOG_LEVEL="info")
    assert "Tortoise-ORM shutdown" in asked.stderr
