"""A user's own market data: imported once (services/bar_import.py), stored compressed, reused.

Storage: one zlib blob per dataset (`Bars.to_bytes()`: a JSON header, then each column as
raw float64), in its own table so lists never read it. A backtest always wants every bar of
a dataset, in order, at once: a row per bar would cost a million inserts to store and a
million rows to read back for a 1,000,000-bar dataset, on SQLite and PostgreSQL alike,
where the blob is one write and one read (about 12 MB for a million hourly bars, zlib
level 1: its level 6 saves a seventh for seven times the CPU). Decoding re-validates the
bars, so a damaged blob cannot reach a strategy.

Every lookup filters by owner: another user's dataset is NOT_FOUND, exactly like a missing one.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import Dataset, DatasetBars, User
from services.bar_import import ImportOptions, ImportReport, import_csv, resample
from services.errors import BadInput, NotFound
from services.market_data import Bars, MarketDataError
from services.offload import run_off_loop

MAX_NAME_LENGTH = 200
_ZLIB_LEVEL = 1


@dataclass(frozen=True)
class DatasetLimits:
    """Per upload and per user; the server's come from settings (MAX_DATASET_* in README)."""

    max_csv_bytes: int = 64 * 1024 * 1024
    max_bars: int = 1_000_000
    max_datasets_per_user: int = 100
    max_stored_bytes_per_user: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class DatasetUpload:
    name: str
    csv: str
    symbol: str | None = None
    timeframe: str | None = None
    time_zone: str | None = None
    resample_to: str | None = None


@dataclass(frozen=True)
class StoredDataset:
    """A dataset and what its import found (the report is kept with it)."""

    dataset: Dataset
    report: ImportReport | None = None


def encode_bars(bars: Bars) -> bytes:
    return zlib.compress(bars.to_bytes(), _ZLIB_LEVEL)


def decode_bars(blob: bytes) -> Bars:
    return Bars.from_bytes(zlib.decompress(blob))


def _clean_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned:
        raise BadInput("name must not be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise BadInput(f"name must be at most {MAX_NAME_LENGTH} characters")
    return cleaned


def _parse(upload: DatasetUpload, limits: DatasetLimits) -> tuple[Bars, ImportReport, bytes]:
    """CPU work, run off the event loop: parse, check, compress."""
    options = ImportOptions(
        time_zone=upload.time_zone or "UTC",
        symbol=upload.symbol,
        timeframe=upload.timeframe,
        resample_to=upload.resample_to,
        max_bars=limits.max_bars,
    )
    bars, report = import_csv(upload.csv, options)
    return bars, report, encode_bars(bars)


def _check_size(csv: str, limits: DatasetLimits) -> None:
    # A str holds at most 4 bytes a character: count bytes only when it may matter.
    if len(csv) * 4 > limits.max_csv_bytes and len(csv.encode()) > limits.max_csv_bytes:
        raise BadInput(
            f"csv is larger than {limits.max_csv_bytes // (1024 * 1024)} MiB "
            "(MAX_DATASET_BYTES); resample it or split it into several datasets"
        )


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


async def upload_dataset(user: User, upload: DatasetUpload, limits: DatasetLimits) -> StoredDataset:
    """Import `upload.csv` and store it as `user`'s dataset `upload.name`.

    Bad data is BAD_USER_INPUT naming the line; nothing is stored then. The quotas (count and
    compressed bytes per user) are checked under a lock on the user's row, so two uploads at
    once cannot both squeeze under them.
    """
    name = _clean_name(upload.name)
    _check_size(upload.csv, limits)
    try:
        bars, report, blob = await run_off_loop(_parse, upload, limits)
    except MarketDataError as exc:
        raise BadInput(f"csv: {exc}") from None
    timestamps = bars.timestamp
    async with in_transaction("default") as connection:
        # A no-op write: the user's row stays locked until commit (PostgreSQL), or the
        # database's one writer is ours (SQLite).
        await User.filter(id=user.id).using_db(connection).update(email=F("email"))
        mine = Dataset.filter(user_id=user.id).using_db(connection)
        sizes: list[int] = list(await mine.values_list("stored_bytes", flat=True))  # type: ignore[arg-type]
        count, stored = len(sizes), sum(sizes)
        if count >= limits.max_datasets_per_user:
            raise BadInput(
                f"you have {count} datasets, the most allowed (MAX_DATASETS_PER_USER); "
                "delete one first"
            )
        if stored + len(blob) > limits.max_stored_bytes_per_user:
            raise BadInput(
                f"this dataset needs {len(blob):,} bytes stored but only "
                f"{max(limits.max_stored_bytes_per_user - stored, 0):,} of your "
                f"{limits.max_stored_bytes_per_user:,} remain; delete a dataset first"
            )
        if await Dataset.filter(user_id=user.id, name=name).using_db(connection).exists():
            raise BadInput(f"you already have a dataset named {name!r}")
        try:
            dataset = await Dataset.create(
                user_id=user.id,
                name=name,
                symbol=bars.symbol,
                timeframe=bars.timeframe,
                time_zone=report.time_zone,
                bar_count=len(bars),
                start=_moment(float(timestamps[0]) if timestamps is not None else None),
                end=_moment(float(timestamps[-1]) if timestamps is not None else None),
                stored_bytes=len(blob),
                import_report=report.as_dict(),
                using_db=connection,
            )
            await DatasetBars.create(dataset_id=dataset.id, data=blob, using_db=connection)
        except IntegrityError:
            raise BadInput(f"you already have a dataset named {name!r}") from None
    return StoredDataset(dataset, report)


async def list_datasets(user: User) -> Sequence[Dataset]:
    """The user's datasets, newest first (metadata only: no bars are read)."""
    return await Dataset.filter(user_id=user.id).order_by("-created_at", "-id")


async def get_dataset(user: User, dataset_id: uuid.UUID) -> Dataset | None:
    return await Dataset.get_or_none(id=dataset_id, user_id=user.id)


async def require_dataset(user: User, dataset_id: uuid.UUID) -> Dataset:
    dataset = await get_dataset(user, dataset_id)
    if dataset is None:
        raise NotFound(f"Dataset {dataset_id} not found")
    return dataset


async def delete_dataset(user: User, dataset_id: uuid.UUID) -> bool:
    """True when deleted; another user's or a missing dataset is NOT_FOUND."""
    deleted = await Dataset.filter(id=dataset_id, user_id=user.id).delete()
    if not deleted:
        raise NotFound(f"Dataset {dataset_id} not found")
    return True


async def load_dataset_bars(
    user: User, dataset_id: uuid.UUID, resample_to: str | None = None
) -> Bars:
    """The bars of `user`'s dataset, for backtests and optimisations (NOT_FOUND otherwise),
    aggregated to the coarser timeframe `resample_to` when given (BAD_USER_INPUT if it is not
    coarser than the dataset's)."""
    dataset = await require_dataset(user, dataset_id)
    content = await DatasetBars.get_or_none(dataset_id=dataset.id)
    if content is None:  # deleted between the two reads
        raise NotFound(f"Dataset {dataset_id} not found")
    # The blob's header carries the symbol and timeframe it was stored with.
    bars = await run_off_loop(decode_bars, bytes(content.data))
    if resample_to is None:
        return bars
    try:
        return await run_off_loop(resample, bars, resample_to)
    except MarketDataError as exc:
        raise BadInput(str(exc)) from None
