"""Datasets in the API: a user's own market data (services/datasets.py), types and resolvers.

Query and Mutation inherit DatasetQueries and DatasetMutations, so the fields live here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry

import models
from schema.context import Context
from services import datasets
from services.datasets import DatasetUpload

Info = strawberry.Info[Context, None]


@strawberry.type(description="What an upload held and what the import did with it.")
class DatasetImportReport:
    format: str = strawberry.field(
        description="The detected format: yahoo, binance, tradingview, metatrader or generic."
    )
    format_description: str
    rows: int = strawberry.field(description="Data rows read (before drops and resampling).")
    bars: int = strawberry.field(description="Bars stored.")
    time_zone: str = strawberry.field(description="The zone naive times were read in.")
    timeframe: str | None
    reversed: bool = strawberry.field(description="The file was newest first and was turned.")
    empty_rows: int = strawberry.field(description="Rows without prices (Yahoo's null), dropped.")
    empty_row_examples: list[str]
    duplicates_dropped: int = strawberry.field(
        description="Rows repeating the time and values of the row before, dropped. "
        "Repeated times with different values are refused instead."
    )
    duplicate_examples: list[str]
    gaps: int = strawberry.field(
        description="Places where one bar or more is missing (not filled), weekend closures "
        "excepted."
    )
    missing_bars: int
    gap_examples: list[str]
    weekend_closures: int = strawberry.field(
        description="Friday-to-Monday breaks, not counted as gaps."
    )
    resampled_from_bars: int | None = strawberry.field(
        description="With resampleTo: the bars before resampling."
    )
    resampled_from_timeframe: str | None
    notes: list[str]

    @classmethod
    def from_dict(cls, report: dict[str, Any]) -> DatasetImportReport:
        source = report.get("resampledFrom") or {}
        return cls(
            format=report.get("format", "generic"),
            format_description=report.get("formatDescription", ""),
            rows=int(report.get("rows", 0)),
            bars=int(report.get("bars", 0)),
            time_zone=report.get("timeZone", "UTC"),
            timeframe=report.get("timeframe"),
            reversed=bool(report.get("reversed", False)),
            empty_rows=int(report.get("emptyRows", 0)),
            empty_row_examples=list(report.get("emptyRowExamples", [])),
            duplicates_dropped=int(report.get("duplicatesDropped", 0)),
            duplicate_examples=list(report.get("duplicateExamples", [])),
            gaps=int(report.get("gaps", 0)),
            missing_bars=int(report.get("missingBars", 0)),
            gap_examples=list(report.get("gapExamples", [])),
            weekend_closures=int(report.get("weekendClosures", 0)),
            resampled_from_bars=source.get("bars"),
            resampled_from_timeframe=source.get("timeframe"),
            notes=list(report.get("notes", [])),
        )


@strawberry.type(description="Market data a user uploaded, stored once (compressed) in UTC.")
class Dataset:
    id: uuid.UUID
    name: str
    symbol: str | None
    timeframe: str | None
    bars: int
    start: datetime | None = strawberry.field(description="The first bar's time (UTC).")
    end: datetime | None = strawberry.field(description="The last bar's time (UTC).")
    created_at: datetime
    time_zone: str = strawberry.field(
        description="The zone the upload's naive times were read in; the bars are UTC."
    )
    stored_bytes: int = strawberry.field(
        description="Compressed size: what counts against MAX_DATASET_STORAGE_BYTES_PER_USER."
    )
    import_report: DatasetImportReport

    @classmethod
    def from_model(cls, dataset: models.Dataset) -> Dataset:
        return cls(
            id=dataset.id,
            name=dataset.name,
            symbol=dataset.symbol,
            timeframe=dataset.timeframe,
            bars=dataset.bar_count,
            start=dataset.start,
            end=dataset.end,
            created_at=dataset.created_at,
            time_zone=dataset.time_zone,
            stored_bytes=dataset.stored_bytes,
            import_report=DatasetImportReport.from_dict(dataset.import_report or {}),
        )


@strawberry.input
class UploadDatasetInput:
    name: str = strawberry.field(description="Unique among the user's datasets.")
    csv: str = strawberry.field(
        description="Yahoo Finance, Binance klines, TradingView, MetaTrader (MT4 or MT5) or "
        "generic OHLCV with a header; the format is detected (importReport.format)."
    )
    symbol: str | None = None
    timeframe: str | None = strawberry.field(
        default=None,
        description="The bar length, e.g. 1m, 15m, 1h, 1d, 1w; inferred from the times if "
        "not given. Gaps are measured in it.",
    )
    time_zone: str | None = strawberry.field(
        default="UTC",
        description="IANA zone of naive times in the file (e.g. America/New_York); unix times "
        "and times with an offset are exact anyway. Stored as UTC.",
    )
    resample_to: str | None = strawberry.field(
        default=None,
        description="Aggregate to a coarser timeframe before storing (e.g. 1h); buckets start "
        "on UTC boundaries, weeks on Monday.",
    )

    def to_upload(self) -> DatasetUpload:
        return DatasetUpload(
            name=self.name,
            csv=self.csv,
            symbol=self.symbol,
            timeframe=self.timeframe,
            time_zone=self.time_zone,
            resample_to=self.resample_to,
        )


@strawberry.type
class DatasetQueries:
    @strawberry.field(description="The caller's datasets, newest first.")
    async def datasets(self, info: Info) -> list[Dataset]:
        user = await info.context.require_user()
        return [Dataset.from_model(d) for d in await datasets.list_datasets(user)]

    @strawberry.field(description="One of the caller's datasets; null if none has this id.")
    async def dataset(self, info: Info, id: uuid.UUID) -> Dataset | None:
        user = await info.context.require_user()
        found = await datasets.get_dataset(user, id)
        return Dataset.from_model(found) if found is not None else None


@strawberry.type
class DatasetMutations:
    @strawberry.mutation(
        description="Import a CSV export and store its bars for backtests (BacktestInput."
        "datasetId). Bad data is BAD_USER_INPUT naming the line, and nothing is stored."
    )
    async def upload_dataset(self, info: Info, input: UploadDatasetInput) -> Dataset:
        user = await info.context.require_user()
        stored = await datasets.upload_dataset(
            user, input.to_upload(), info.context.services.dataset_limits
        )
        return Dataset.from_model(stored.dataset)

    @strawberry.mutation(description="Another user's or an unknown id is NOT_FOUND.")
    async def delete_dataset(self, info: Info, id: uuid.UUID) -> bool:
        user = await info.context.require_user()
        return await datasets.delete_dataset(user, id)
