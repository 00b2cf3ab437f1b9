"""`python -m server optimize`: the API's optimizeStrategy from the command line.

The same service functions (services/optimization.py) through the same job machinery
(services/jobs.py): in this process by default, queued to workers when REDIS_URL sets the
queue up. Registered on the CLI's app by server/cli.py, whose helpers it imports when called.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from server.settings import get_settings

if TYPE_CHECKING:
    from models import Optimization
    from services.optimization import OptimizeRequest, ParameterRange


def parse_range(text: str) -> ParameterRange:
    """NAME=V1,V2,... (values, each JSON or text) or NAME=MIN:MAX[:STEP]."""
    from server.cli import fail
    from services.optimization import ParameterRange

    name, sep, spec = text.partition("=")
    if not sep or not name.strip() or not spec.strip():
        fail(f"--param {text!r}: write NAME=V1,V2,... or NAME=MIN:MAX[:STEP]")
    name = name.strip()
    if ":" in spec:
        parts = spec.split(":")
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            fail(f"--param {text!r}: MIN:MAX[:STEP] must be numbers")
        if len(numbers) not in (2, 3) or not all(math.isfinite(n) for n in numbers):
            fail(f"--param {text!r}: write NAME=MIN:MAX or NAME=MIN:MAX:STEP")
        step = numbers[2] if len(numbers) == 3 else None
        return ParameterRange(name, min=numbers[0], max=numbers[1], step=step)
    values: list[Any] = []
    for item in spec.split(","):
        try:
            values.append(json.loads(item))
        except json.JSONDecodeError:
            values.append(item.strip())
    return ParameterRange(name, values=values)


def optimize(
    strategy_id: Annotated[
        str, typer.Argument(metavar="STRATEGY_ID", help="Id of a stored strategy.")
    ],
    param: Annotated[
        list[str],
        typer.Option(
            "--param",
            help="A parameter to search: NAME=V1,V2,... or NAME=MIN:MAX[:STEP] (repeat it).",
        ),
    ],
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="A built-in sample, e.g. trending_daily.")
    ] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="OHLCV CSV with a header row instead.")
    ] = None,
    method: Annotated[str, typer.Option(help="grid, random or tpe.")] = "grid",
    objective: Annotated[str, typer.Option(help="The metric to maximise.")] = "sharpeRatio",
    max_trials: Annotated[int, typer.Option(help="Trials per search (per fold).")] = 200,
    folds: Annotated[
        int | None, typer.Option(help="Walk-forward folds (none: one search on all bars).")
    ] = None,
    anchored: Annotated[
        bool, typer.Option("--anchored", help="Walk-forward in-sample parts start at bar 0.")
    ] = False,
    out_of_sample_pct: Annotated[
        float, typer.Option(help="Share of each fold kept out of sample.")
    ] = 25.0,
    max_drawdown_pct: Annotated[
        float | None, typer.Option(help="Constraint: drawdown no deeper than this percent.")
    ] = None,
    initial_capital: Annotated[float, typer.Option(help="Starting cash.")] = 10_000.0,
    commission: Annotated[float, typer.Option(help="Commission, percent of traded value.")] = 0.1,
    seed: Annotated[int | None, typer.Option(help="Seed of RANDOM and TPE.")] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Only a strategy of this user (email); else its owner's."),
    ] = None,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Write the best parameters as the strategy's next version."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Optimise a stored strategy's parameters (optionally walk-forward); print the result.

    Ctrl-C cancels the optimisation. Exit 1 when it fails, 2 on bad input.
    """
    from server.cli import FAILED, _print_json, _read_csv, _run, _strategy_id, fail
    from services.execution import MAX_BACKTEST_BARS
    from services.market_data import MarketDataError, bars_from_csv
    from services.optimization import OptimizeRequest, WalkForward

    if (csv is None) == (dataset is None):
        fail("give exactly one of --csv FILE or --dataset NAME")
    market_data = None
    if csv is not None:
        try:
            market_data = bars_from_csv(_read_csv(csv), max_bars=MAX_BACKTEST_BARS)
        except MarketDataError as exc:
            fail(f"{csv}: {exc}")
    request = OptimizeRequest(
        parameters=[parse_range(text) for text in param],
        sample=dataset,
        market_data=market_data,
        method=method.lower(),
        objective=objective,
        max_trials=max_trials,
        walk_forward=None
        if folds is None
        else WalkForward(folds, anchored=anchored, out_of_sample_pct=out_of_sample_pct),
        initial_cash=initial_capital,
        commission_pct=commission,
        max_drawdown_pct=max_drawdown_pct,
        seed=seed,
    )
    row, detail = _run(_optimize(_strategy_id(strategy_id), request, user, apply, as_json))
    if as_json:
        _print_json(detail)
    else:
        _report(detail)
    if row.status.value != "succeeded":
        raise typer.Exit(FAILED)


async def _optimize(
    strategy_id: uuid.UUID, request: OptimizeRequest, email: str | None, apply: bool, quiet: bool
) -> tuple[Optimization, dict[str, Any]]:
    from models import Optimization
    from server.cli import _database
    from server.wiring import build_jobs, build_optimizer, build_runner
    from services import accounts, strategies
    from services.optimization import FINISHED, folds_of

    settings = get_settings()
    async with _database(settings):
        owner = (
            await accounts.user_by_email(email) if email else await strategies.owner_of(strategy_id)
        )
        runner = build_runner(settings)  # no rate limit: the CLI is the operator's
        async with runner.sandbox:
            jobs = build_jobs(settings, runner)
            await jobs.start()
            optimizer = build_optimizer(settings, runner, jobs)
            try:
                row = await optimizer.optimize(owner, strategy_id, request)
                shown = -1
                try:
                    while row.status not in FINISHED:
                        if not quiet and row.trials_done != shown:
                            shown = row.trials_done
                            typer.echo(f"{row.trials_done}/{row.trials_total} trials", err=True)
                        await asyncio.sleep(0.5)
                        row = await Optimization.get(id=row.id)
                except (KeyboardInterrupt, asyncio.CancelledError):
                    await optimizer.cancel(owner, row.id)
                    raise
                applied = None
                if apply and row.status.value == "succeeded":
                    applied = await optimizer.apply(owner, row.id)
                detail = _detail(row, await folds_of(row), applied)
            finally:
                await jobs.aclose()
    return row, detail


def _detail(row: Optimization, folds: list[Any], applied: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "status": row.status.value,
        "objective": row.objective,
        "trialsDone": row.trials_done,
        "trialsTotal": row.trials_total,
        "bestParameters": row.best_parameters,
        "bestMetrics": row.best_metrics,
        "walkForwardEfficiency": row.walk_forward_efficiency,
        "outOfSampleMetrics": row.spec.get("outOfSample"),
        "lookAhead": row.look_ahead,
        "folds": [
            {
                "index": fold.index,
                "inSampleBars": fold.in_sample_bars,
                "outOfSampleBars": fold.out_of_sample_bars,
                "bestParameters": fold.best_parameters,
                "inSample": fold.in_sample,
                "outOfSample": fold.out_of_sample,
                "lookAhead": fold.look_ahead,
            }
            for fold in folds
        ],
        "warnings": row.warnings,
        "errorMessage": row.error_message,
        "appliedVersion": None if applied is None else applied.version,
    }


def _report(detail: dict[str, Any]) -> None:
    objective = detail["objective"]
    echo = typer.echo
    echo(f"optimization {detail['id']}: {detail['status']}, {detail['trialsDone']} trials")
    if detail["errorMessage"]:
        echo(f"error: {detail['errorMessage']}")
    if detail["bestParameters"]:
        best = detail["bestMetrics"] or {}
        echo(f"best parameters: {json.dumps(detail['bestParameters'])}")
        echo(
            f"  {objective} {best.get(objective)}, return {best.get('totalReturnPct')}%, "
            f"max drawdown {best.get('maxDrawdownPct')}%, trades {best.get('numTrades')}"
        )
    for fold in detail["folds"]:
        echo(
            f"fold {fold['index']}: in {fold['inSampleBars']} {objective} "
            f"{fold['inSample'].get(objective)}, out {fold['outOfSampleBars']} "
            f"{fold['outOfSample'].get(objective)}, {json.dumps(fold['bestParameters'])}"
        )
    if detail["walkForwardEfficiency"] is not None:
        echo(f"walk-forward efficiency: {detail['walkForwardEfficiency']:.2f}")
    for warning in detail["warnings"]:
        echo(f"warning: {warning}")
    if detail["appliedVersion"] is not None:
        echo(f"applied: the strategy's version {detail['appliedVersion']}")
