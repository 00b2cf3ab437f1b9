"""`python -m server dataset upload|list|delete`: a user's datasets, as the API keeps them.

The same service functions as uploadDataset, datasets and deleteDataset (services/datasets.py),
with the server's limits (MAX_DATASET_* settings). Exit codes as every command's (server/cli.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from server.cli import _database, _print_json, _run, fail, get_settings

if TYPE_CHECKING:
    from models import Dataset

app = typer.Typer(
    help="A user's own market data: upload a CSV export, list, delete.",
    no_args_is_help=True,
)

UserOption = Annotated[str, typer.Option("--user", help="Email of the owner (must exist).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def dataset_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"'{text}' is not a dataset id (a UUID)")


def _read_text(path: Path, max_bytes: int) -> str:
    try:
        with path.open("rb") as file:
            raw = file.read(max_bytes + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    if len(raw) > max_bytes:
        fail(f"{path} is larger than {max_bytes // (1024 * 1024)} MiB (MAX_DATASET_BYTES)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(f"{path} is not UTF-8 text (byte {exc.start})")


def describe(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": str(dataset.id),
        "name": dataset.name,
        "symbol": dataset.symbol,
        "timeframe": dataset.timeframe,
        "timeZone": dataset.time_zone,
        "bars": dataset.bar_count,
        "start": dataset.start.isoformat() if dataset.start else None,
        "end": dataset.end.isoformat() if dataset.end else None,
        "storedBytes": dataset.stored_bytes,
        "createdAt": dataset.created_at.isoformat(),
        "importReport": dataset.import_report,
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """The import report for people: format, counts, then the first examples."""
    lines = [
        f"format: {report.get('format')} ({report.get('formatDescription')})",
        f"rows read: {report.get('rows')}, bars stored: {report.get('bars')}, "
        f"timeframe: {report.get('timeframe') or '-'}, naive times read in "
        f"{report.get('timeZone')}",
        f"duplicates dropped: {report.get('duplicatesDropped', 0)}, rows without prices "
        f"dropped: {report.get('emptyRows', 0)}",
        f"gaps: {report.get('gaps', 0)} ({report.get('missingBars', 0)} bars missing, not "
        f"filled); weekend closures: {report.get('weekendClosures', 0)}",
    ]
    source = report.get("resampledFrom")
    if source:
        lines.append(f"resampled from {source['bars']} bars of {source.get('timeframe') or '?'}")
    for key in ("gapExamples", "duplicateExamples", "emptyRowExamples"):
        lines += [f"  {key[:-8]}: {example}" for example in report.get(key, [])]
    lines += [f"note: {note}" for note in report.get("notes", [])]
    return lines


@app.command()
def upload(
    path: Annotated[Path, typer.Argument(metavar="CSV", help="The export to import.")],
    user: UserOption,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the file's).")] = None,
    symbol: Annotated[str | None, typer.Option(help="e.g. BTCUSDT")] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="Bar length, e.g. 1h (default: inferred).")
    ] = None,
    time_zone: Annotated[
        str, typer.Option("--time-zone", help="IANA zone of naive times, e.g. America/New_York.")
    ] = "UTC",
    resample_to: Annotated[
        str | None, typer.Option("--resample-to", help="Store a coarser timeframe, e.g. 1d.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import a Yahoo, Binance, TradingView, MetaTrader or generic OHLCV CSV for --user."""
    from server.wiring import build_dataset_limits
    from services import accounts, datasets

    settings = get_settings()
    limits = build_dataset_limits(settings)
    text = _read_text(path, limits.max_csv_bytes)
    request = datasets.DatasetUpload(
        name=name or path.stem,
        csv=text,
        symbol=symbol,
        timeframe=timeframe,
        time_zone=time_zone,
        resample_to=resample_to,
    )

    async def run() -> Dataset:
        async with _database(settings):
            owner = await accounts.user_by_email(user)
            return (await datasets.upload_dataset(owner, request, limits)).dataset

    stored = _run(run())
    if as_json:
        _print_json(describe(stored))
        return
    typer.echo(f"dataset: {stored.id} '{stored.name}' ({stored.bar_count} bars)")
    typer.echo("\n".join(report_lines(stored.import_report)), err=True)


@app.command("list")
def list_(user: UserOption, as_json: JsonOption = False) -> None:
    """The user's datasets, newest first."""
    from services import accounts, datasets

    settings = get_settings()

    async def run() -> list[Dataset]:
        async with _database(settings):
            owner = await accounts.user_by_email(user)
            return list(await datasets.list_datasets(owner))

    found = _run(run())
    if as_json:
        _print_json([describe(d) for d in found])
        return
    for d in found:
        span = f"{d.start:%Y-%m-%d %H:%M} .. {d.end:%Y-%m-%d %H:%M}" if d.start and d.end else "-"
        typer.echo(
            f"{d.id}  {d.name}  {d.symbol or '-'}  {d.timeframe or '-'}  {d.bar_count} bars  "
            f"{span} UTC"
        )


@app.command()
def delete(
    identifier: Annotated[str, typer.Argument(metavar="DATASET_ID")], user: UserOption
) -> None:
    """Delete one of the user's datasets."""
    from services import accounts, datasets

    settings = get_settings()
    wanted = dataset_id(identifier)

    async def run() -> bool:
        async with _database(settings):
            owner = await accounts.user_by_email(user)
            return await datasets.delete_dataset(owner, wanted)

    _run(run())
    typer.echo(f"deleted dataset {wanted}")
