"""The command line, `python -m server [COMMAND]` (no command: serve). See docs/cli.md.

Commands only parse flags, open what they need (database, sandbox, provider) and call the
services. Exit codes: 0 done, 1 failed (a generation or strategy failed, the host could not
do it), 2 bad input (unknown user or id, unreadable file, malformed data, bad flags).
Errors are one line on stderr; a traceback is logged only at LOG_LEVEL=debug.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from models.strategy import StrategyType
from server.logging_setup import configure_logging
from server.settings import Settings, get_settings

if TYPE_CHECKING:
    from models import User
    from services.execution import BacktestOutcome, BacktestRequest
    from services.generation import GenerationOutcome, Generator

log = logging.getLogger(__name__)
T = TypeVar("T")

FAILED, BAD_INPUT = 1, 2  # and 0 when done

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,  # errors are one line (see main)
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        fail(f"invalid configuration: {problems}")


def _database_url(settings: Settings) -> str:
    from server.db import dialect_of

    try:
        dialect_of(settings.database_url)
    except ValueError as exc:
        fail(f"DATABASE_URL: {exc}")
    return settings.database_url


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run `work`; the services' errors become one line and an exit code."""
    from tortoise.exceptions import ConfigurationError, DBConnectionError, OperationalError

    from services.errors import BadInput, NotFound, ServiceError
    from services.sandbox import StrategySandboxError

    try:
        return asyncio.run(work)
    except StrategySandboxError as exc:  # the strategy's own code failed: not bad input here
        fail(f"the strategy failed: {exc.message}", FAILED)
    except (BadInput, NotFound) as exc:
        fail(exc.message, BAD_INPUT)
    except ServiceError as exc:
        fail(exc.message, FAILED)
    except (OperationalError, DBConnectionError, ConfigurationError) as exc:
        log.debug("database error", exc_info=True)
        fail(
            f"database: {exc} (is DATABASE_URL right, and has `python -m server migrate` run?)",
            FAILED,
        )


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[None]:
    from tortoise import Tortoise

    from server.db import tortoise_config

    await Tortoise.init(config=tortoise_config(_database_url(settings)))
    try:
        yield
    finally:
        await Tortoise.close_connections()


def _strategy_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"'{text}' is not a strategy id (a UUID)")


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log lines too (always when serving).")
    ] = False,
) -> None:
    """AI strategy generator: serve the GraphQL API (the default), or work on its database.

    Configured by environment variables and .env, as the server (README.md); see docs/cli.md.
    """
    settings = _settings()
    serving = ctx.invoked_subcommand in (None, "serve", "worker")
    if serving or verbose or "log_level" in settings.model_fields_set:
        configure_logging(settings)
    else:
        # A command's output is for a person: only warnings and errors, as plain text.
        quiet = {"log_format": "text", "log_level": "warning"}
        configure_logging(settings.model_copy(update=quiet))
    if ctx.invoked_subcommand is None:
        serve()


@app.command()
def serve() -> None:
    """Serve the GraphQL API on HOST:PORT (the default command)."""
    import uvicorn

    from server.app import create_app
    from server.db import MigrationsPending, prepare_database

    settings = get_settings()
    _database_url(settings)
    try:
        # Here once, before any worker starts: each worker's start-up then finds nothing to do.
        _run(prepare_database(settings.database_url, settings.migrate_on_start))
    except MigrationsPending as exc:
        fail(f"not serving: {exc}", FAILED)
    metrics_dir = ""
    if settings.workers > 1:
        # Made here, once: workers racing to create the dev key would sign with different keys.
        settings.resolved_secret_key()
        if not settings.redis_url:
            log.warning(
                "WORKERS=%d without REDIS_URL: each worker counts rate limits on its own",
                settings.workers,
            )
        # /metrics sums every worker's values from files there (services/telemetry.py); the
        # variable must be set before a worker imports prometheus_client.
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics_dir = tempfile.mkdtemp(prefix="strategies-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    uvicorn.run(
        create_app(settings) if settings.workers == 1 else "server.cli:worker_app",
        factory=settings.workers > 1,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # logging is configure_logging's
        access_log=False,  # the app logs its own access lines
        proxy_headers=False,  # the app applies TRUSTED_PROXIES itself (server/app.py)
        # Header timeout and connection cap (HEADER_TIMEOUT_SECONDS, MAX_CONNECTIONS).
        http="server.connections:GuardedHttpProtocol",
        # In-flight generations get this long to finish; past it they are logged as FAILURE
        # (uvicorn annotates an int but waits with asyncio, so fractions work).
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,  # type: ignore[arg-type]
    )
    if metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def worker() -> None:
    """Take jobs from the queue (REDIS_URL) and run them on this machine's sandbox until
    SIGTERM; see docs/scaling.md. Health on HOST:WORKER_PORT (/readyz)."""
    from server.db import MigrationsPending, prepare_database
    from server.worker import run_worker

    settings = get_settings()
    _database_url(settings)
    if not settings.redis_url:
        fail("a worker needs REDIS_URL: without it, jobs run inside the server (docs/scaling.md)")
    try:
        _run(prepare_database(settings.database_url, settings.migrate_on_start))
    except MigrationsPending as exc:
        fail(f"not working: {exc}", FAILED)
    asyncio.run(run_worker(settings))


def worker_app() -> Any:
    """The app of one worker process (WORKERS > 1): a fresh interpreter, so logging anew."""
    from server.app import create_app

    configure_logging(get_settings())
    return create_app(get_settings())


@app.command()
def migrate() -> None:
    """Apply pending migrations to DATABASE_URL."""
    from server.db import migrate as apply

    applied = _run(apply(_database_url(get_settings())))
    typer.echo(
        f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "")
    )


@app.command()
def makemigrations(
    name: Annotated[str, typer.Option(help="Name of the new migration.")] = "update",
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a migration is missing.")
    ] = False,
) -> None:
    """Write migrations (SQLite and PostgreSQL) for model changes."""
    from server.db import pending_model_changes, write_migrations

    if check:
        pending = pending_model_changes()
        for dialect, changed in pending.items():
            typer.echo(
                f"{dialect}: {'MODEL CHANGES WITHOUT A MIGRATION' if changed else 'up to date'}"
            )
        if any(pending.values()):
            raise typer.Exit(FAILED)
        return
    for dialect, version in write_migrations(name).items():
        typer.echo(f"{dialect}: {version or 'no changes'}")


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="The account's email (its login).")],
    staff: Annotated[
        bool, typer.Option("--staff", help="May use the admin view (allUsers).")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an account (e.g. the first staff user); asks for the password."""
    from services import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat password: "):
            fail("the passwords differ")
    settings = get_settings()

    async def register() -> User:
        async with _database(settings):
            return await accounts.register(email, password, is_staff=staff)

    user = _run(register())
    typer.echo(f"created {'staff ' if user.is_staff else ''}user {user.email} ({user.id})")


@app.command("export-schema")
def export_schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
) -> None:
    """Print the GraphQL schema (SDL), as in schema.graphql."""
    from schema import print_schema

    text = print_schema()
    _write_out(text, output)


def _write_out(text: str, output: Path | None) -> None:
    """To standard output, or to `output` (saying so on stderr)."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    typer.echo(f"wrote {output}", err=True)


@app.command("persisted-manifest")
def persisted_manifest(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
) -> None:
    """Print the trusted-documents manifest of docs/operations (JSON: SHA-256 -> document)."""
    from server.wiring import OPERATIONS_DIR
    from services.persisted_queries import read_operations

    text = json.dumps(read_operations(OPERATIONS_DIR), indent=2) + "\n"
    _write_out(text, output)


# Options `generate` and `refine` share.
ModelOption = Annotated[
    str | None,
    typer.Option(help="A model id or name from `models` (default: the default model)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="The strategy in plain English.")],
    user: Annotated[str, typer.Option("--user", help="Email of the owner (must exist).")],
    name: Annotated[
        str | None, typer.Option(help="Name (default: derived from the prompt).")
    ] = None,
    strategy_type: Annotated[
        StrategyType | None,
        typer.Option("--type", case_sensitive=False, help="Type (default: from the prompt)."),
    ] = None,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate/--no-validate",
            help="With --no-validate, code that fails validation is still a SUCCESS (DRAFT).",
        ),
    ] = True,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a strategy from PROMPT, store it under --user like the API does, print it.

    Uses --model, else the default model (DEFAULT_MODEL, else the first configured of Gemini,
    OpenAI-compatible, Anthropic and the built-in template provider; see `models`).
    The code goes to stdout; status, ids, tokens and time to stderr.
    Exit 1 when the generation is PARTIAL or FAILURE.
    """
    from services import accounts
    from services.generation import GenerationRequest

    request = GenerationRequest(prompt, name, strategy_type, validate, model)

    async def work(generator: Generator) -> GenerationOutcome:
        owner = await accounts.user_by_email(user)
        return await generator.generate(owner, request)

    _report_generation(_generating(work, trial_run=validate), as_json)


def _generating(
    work: Callable[[Generator], Awaitable[GenerationOutcome]], *, trial_run: bool
) -> GenerationOutcome:
    """Run `work` with a Generator wired as the server's (the configured models, a sandbox
    for trial runs, the code-analysis workers) on the database, and close them after."""
    from server.wiring import build_analyser, build_generator, build_providers, build_runner
    from services.sandbox import SandboxUnavailable

    settings = get_settings()

    async def run() -> GenerationOutcome:
        providers = build_providers(settings)
        runner = build_runner(settings)
        analyser = build_analyser(settings)  # its workers check the model's answer
        try:
            async with _database(settings):
                generator = build_generator(settings, providers, runner, analyser)
                if settings.generation_trial_run and trial_run:
                    # Started before the clock runs, as the server's is at start-up, so the
                    # logged processing time is the generation's alone.
                    with contextlib.suppress(SandboxUnavailable):
                        await runner.sandbox.start()
                return await work(generator)
        finally:
            await runner.sandbox.close()
            await analyser.close()
            await providers.aclose()

    return _run(run())


@app.command()
def refine(
    strategy_id: Annotated[
        str, typer.Argument(metavar="STRATEGY_ID", help="Id of a stored strategy.")
    ],
    instruction: Annotated[
        str,
        typer.Argument(metavar="INSTRUCTION", help='The change, e.g. "make the stop trailing".'),
    ],
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Only a strategy of this user (email). Without it any user's strategy is "
            "refined, as its owner: this is an operator tool.",
        ),
    ] = None,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate/--no-validate",
            help="With --no-validate, the new code is stored unchecked as a DRAFT version.",
        ),
    ] = True,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a stored strategy as INSTRUCTION says, as refineStrategy does: the new code,
    checked (and repaired) like a generation's, becomes its next version; printed like
    `generate`. Exit 1 when the refinement is PARTIAL or FAILURE (a FAILURE changes nothing).
    """
    from services import accounts, strategies
    from services.generation import RefineRequest

    wanted = _strategy_id(strategy_id)
    request = RefineRequest(instruction, model, validate)

    async def work(generator: Generator) -> GenerationOutcome:
        if user is not None:
            owner = await accounts.user_by_email(user)
        else:
            owner = await strategies.owner_of(wanted)
        return await generator.refine(owner, wanted, request)

    _report_generation(_generating(work, trial_run=validate), as_json)


def _report_generation(outcome: GenerationOutcome, as_json: bool) -> None:
    from models import GenerationStatus

    entry, strategy = outcome.log, outcome.strategy
    if as_json:
        _print_json(
            {
                "status": entry.status.name,
                "strategyId": str(strategy.id) if strategy else None,
                "logId": str(entry.id),
                "provider": entry.provider,
                "model": entry.model,
                "tokensUsed": entry.tokens_used,
                "inputTokens": entry.input_tokens,
                "outputTokens": entry.output_tokens,
                "estimatedCostUsd": entry.estimated_cost_usd,
                "processingTimeSeconds": outcome.processing_time_seconds,
                "errorMessage": entry.error_message,
                "repairRounds": entry.repair_rounds,
                "rounds": [
                    {"kind": a.get("kind"), "verdict": a.get("verdict")} for a in entry.attempts
                ],
                "interpretation": entry.interpretation,
                "ignoredRequirements": entry.ignored_requirements,
                "strategy": None
                if strategy is None
                else {
                    "name": strategy.name,
                    "strategyType": strategy.strategy_type.name,
                    "status": strategy.status.name,
                    "version": strategy.version,
                    "parameters": strategy.parameters,
                    "generatedCode": strategy.generated_code,
                },
            }
        )
    else:
        if strategy is not None:
            typer.echo(strategy.generated_code.rstrip("\n"))
        lines = [f"status: {entry.status.name} ({entry.provider}, {entry.model})"]
        if strategy is not None:
            lines.append(
                f"strategy: {strategy.id} '{strategy.name}' "
                f"({strategy.strategy_type.name}, {strategy.status.name}, "
                f"version {strategy.version})"
            )
        lines += [
            f"round {a.get('number')}: {a.get('kind')} {a.get('verdict')}"
            for a in entry.attempts
            if entry.repair_rounds
        ]
        lines += [f"not implemented: {phrase}" for phrase in entry.ignored_requirements]
        lines += [
            f"log: {entry.id}",
            f"tokens: {entry.tokens_used} ({entry.input_tokens} in, {entry.output_tokens} out)",
            "cost: "
            + (
                "unknown"
                if entry.estimated_cost_usd is None
                else f"${entry.estimated_cost_usd:.6f}"
            ),
            f"time: {outcome.processing_time_seconds:.3f} s",
        ]
        typer.echo("\n".join(lines), err=True)
    if entry.status is not GenerationStatus.SUCCESS:
        fail(entry.error_message or f"generation {entry.status.name}", FAILED)


@app.command("models")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """The configured models (what --model takes), the default one marked with *."""
    from server.wiring import build_providers

    choices = build_providers(_settings()).models()
    if as_json:
        _print_json(
            [
                {"id": c.id, "provider": c.provider, "model": c.model, "isDefault": c.is_default}
                for c in choices
            ]
        )
        return
    for choice in choices:
        typer.echo(f"{'*' if choice.is_default else ' '} {choice.id}")


@app.command()
def backtest(
    strategy_id: Annotated[
        str, typer.Argument(metavar="STRATEGY_ID", help="Id of a stored strategy.")
    ],
    csv: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="OHLCV CSV with a header row: timestamp (or date/time), open, high, low, "
            "close, volume; as the API's csv input.",
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="A built-in sample data set instead, e.g. trending_daily."),
    ] = None,
    dataset_id: Annotated[
        str | None,
        typer.Option(
            "--dataset-id", help="One of the owner's stored datasets (`dataset list`) instead."
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Only a strategy of this user (email). Without it any user's strategy is "
            "run, as its owner: this is an operator tool.",
        ),
    ] = None,
    initial_capital: Annotated[
        float | None, typer.Option(help="Starting cash (default: the API's, 10000).")
    ] = None,
    commission: Annotated[
        float | None,
        typer.Option(help="Commission, percent of traded value (default: the API's, 0.1)."),
    ] = None,
    allow_short: Annotated[
        bool, typer.Option("--allow-short", help="Let a sell signal open a short when flat.")
    ] = False,
    params: Annotated[
        str | None,
        typer.Option("--params", help="JSON object overriding the strategy's parameters."),
    ] = None,
    slippage_bps: Annotated[
        float | None,
        typer.Option(
            "--slippage-bps",
            help="Slippage against every market fill, in basis points (default: 0).",
        ),
    ] = None,
    whole_units: Annotated[
        bool,
        typer.Option("--whole-units", help="Round each entry down to whole units."),
    ] = False,
    end_of_data_fill: Annotated[
        str,
        typer.Option(
            "--end-of-data-fill",
            help="Close a position open at the end at the last bar's 'close' (default) or "
            "'open' (as backtesting.py's finalize_trades).",
        ),
    ] = "close",
    trades_csv: Annotated[
        Path | None,
        typer.Option(
            "--trades-csv",
            help="Also write the trades to this CSV file ('-' for standard output).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Backtest a stored strategy in the sandbox, with a progress bar; print the metrics.

    The metrics are also stored as the strategy's performanceMetrics, as the API does.
    Exit 1 when the strategy fails in the sandbox, 2 on bad input.
    """
    from server.cli_datasets import dataset_id as parse_dataset_id
    from services.execution import BacktestRequest

    if sum(given is not None for given in (csv, dataset, dataset_id)) != 1:
        fail("give exactly one of --csv FILE, --dataset NAME or --dataset-id ID")
    identifier = _strategy_id(strategy_id)
    overrides = None
    if params is not None:
        try:
            overrides = json.loads(params)
        except json.JSONDecodeError as exc:
            fail(f"--params is not valid JSON: {exc}")
    options: dict[str, Any] = {
        "allow_short": allow_short,
        "parameters": overrides,
        "whole_units": whole_units,
        "end_of_data_fill": end_of_data_fill,
    }
    if slippage_bps is not None:
        options["slippage_bps"] = slippage_bps
    if initial_capital is not None:
        options["initial_cash"] = initial_capital
    if commission is not None:
        options["commission_pct"] = commission
    if csv is not None:
        options["csv"] = _read_csv(csv)
    if dataset_id is not None:
        options["dataset_id"] = parse_dataset_id(dataset_id)
    csv_target = None if trades_csv is None or str(trades_csv) == "-" else trades_csv
    if csv_target is not None and not csv_target.parent.is_dir():  # known before the run
        fail(f"--trades-csv: no directory {csv_target.parent}")
    request = BacktestRequest(sample=dataset, **options)
    outcome = _run_backtest(get_settings(), identifier, request, user)
    if trades_csv is not None:
        from services.backtesting import trades_csv as csv_of

        _write_out(csv_of(outcome.result.trades), csv_target)
    _report_backtest(outcome, as_json)


def _read_csv(path: Path) -> str:
    from services.execution import MAX_CSV_BYTES

    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CSV_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    if len(raw) > MAX_CSV_BYTES:
        # Too big: hand it on anyway (no shorter once decoded) so the API's rule says so.
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(f"{path} is not UTF-8 text (byte {exc.start})")


def _run_backtest(
    settings: Settings, strategy_id: uuid.UUID, request: BacktestRequest, email: str | None
) -> BacktestOutcome:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from server.wiring import build_runner
    from services import accounts, strategies

    # No rate limit: the CLI is the operator's.
    runner = build_runner(settings)
    progress = Progress(
        TextColumn("backtest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("bars"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task("backtest", total=None)

    def on_progress(done: int, total: int) -> None:
        if not progress.live.is_started:  # shown from the first report: bad input shows none
            progress.start()
        progress.update(task, completed=done, total=total)

    async def run() -> BacktestOutcome:
        async with _database(settings):
            owner = (
                await accounts.user_by_email(email)
                if email
                else await strategies.owner_of(strategy_id)
            )
            async with runner.sandbox:  # started and closed as the server's lifespan does
                try:
                    return await runner.backtest(owner, strategy_id, request, on_progress)
                finally:
                    if progress.live.is_started:
                        progress.stop()

    return _run(run())


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _report_backtest(outcome: BacktestOutcome, as_json: bool) -> None:
    from services.backtesting import report_json

    report, strategy = outcome.result, outcome.strategy
    result = report_json(report)
    if as_json:
        _print_json(
            {
                "strategyId": str(strategy.id),
                "bars": result["bars"],
                "elapsedSeconds": outcome.elapsed_seconds,
                "metrics": result["metrics"],
                "trades": result["trades"],
                "lookAhead": result.get("lookAhead"),
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{strategy.name} ({strategy.id}): {result['bars']:,} bars, "
        f"{outcome.elapsed_seconds:.2f} s",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["metrics"].items():
        table.add_row(key, _format(value))
    console = Console(soft_wrap=True)
    console.print(table)
    for line in look_ahead_lines(result.get("lookAhead")):
        console.print(line, markup=False, highlight=False)


def look_ahead_lines(check: dict[str, Any] | None) -> list[str]:
    """The look-ahead check's verdict for people: bias first, then the warm-up warning."""
    if not check:
        return []
    lines = []
    if check.get("lookAheadBias"):
        bars = ", ".join(str(bar) for bar in check.get("lookAheadBars", [])[:20])
        lines.append(
            "LOOK-AHEAD BIAS: the metrics above are untrustworthy: signals changed when the "
            f"bars after them were removed (bars {bars})"
            + (f"; the check failed: {check['checkError']}" if check.get("checkError") else "")
        )
        for difference in check.get("differences", [])[:5]:
            lines.append(
                f"  bar {difference['bar']}: full run {difference['full']}, "
                f"truncated {difference['truncated']}"
            )
    else:
        lines.append(
            f"No look-ahead found: {check.get('checkedBars', 0)} bars re-run on truncated data "
            f"in {check.get('checkSeconds', 0.0):.2f} s"
        )
    if check.get("warmupWarning"):
        lines.append(f"Warm-up: {check['warmupWarning']}")
    return lines


from server.cli_datasets import app as dataset_app  # noqa: E402 (it uses this module's helpers)

app.add_typer(dataset_app, name="dataset")


def main() -> None:
    """The entry point: typer handles usage errors; anything unexpected is one line, exit 1."""
    try:
        app(prog_name="python -m server")
    except Exception as exc:
        log.debug("unexpected error", exc_info=True)
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(FAILED)


# Beside the others, in a module of its own (it imports this one's helpers).
from server.optimize_cli import optimize  # noqa: E402

app.command()(optimize)
