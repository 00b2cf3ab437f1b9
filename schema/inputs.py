"""GraphQL input types: what clients send, turned into the services' request objects."""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from schema.types import StrategyStatus, StrategyType
from services.execution import BacktestRequest, MarketDataColumns
from services.generation import GenerationRequest
from services.strategies import NewStrategy


@strawberry.input
class GenerateStrategyInput:
    prompt: str
    name: str | None = None
    strategy_type: StrategyType | None = None
    validate_code: bool | None = strawberry.field(
        default=True,
        description="Check the code before storing it: static rules, then one trial run on "
        "sample data in the sandbox (skipped, with a warning, when the server is too busy). "
        "Code failing either is stored as ERROR (generation PARTIAL); false stores a DRAFT "
        "unchecked.",
    )
    model: str | None = strawberry.field(
        default=None, description="A ModelInfo.id (see `models`); default: the default model."
    )

    def to_request(self) -> GenerationRequest:
        return GenerationRequest(
            prompt=self.prompt,
            name=self.name,
            strategy_type=self.strategy_type,
            validate=self.validate_code is not False,
            model=self.model,
        )


@strawberry.input(description="A strategy from code the user writes.")
class CreateStrategyInput:
    name: str
    generated_code: str
    description: str | None = None
    strategy_type: StrategyType | None = None
    parameters: JSON | None = strawberry.field(
        default=None, description="Defaults to the code's DEFAULT_PARAMS."
    )
    validate_code: bool | None = strawberry.field(
        default=True,
        description="Check the code (statically, then once in the sandbox on sample data).",
    )

    def to_new_strategy(self) -> NewStrategy:
        return NewStrategy(
            name=self.name,
            generated_code=self.generated_code,
            description=self.description,
            strategy_type=self.strategy_type,
            parameters=cast("dict[str, Any] | None", self.parameters),
            validate=self.validate_code is not False,
        )


@strawberry.input
class UpdateStrategyInput:
    name: str | None = None
    description: str | None = None
    generated_code: str | None = strawberry.field(
        default=None,
        description="Validated on save; new code (or parameters) becomes the next version.",
    )
    strategy_type: StrategyType | None = None
    status: StrategyStatus | None = None
    parameters: JSON | None = strawberry.field(
        default=None, description="New parameters become the next version."
    )


@strawberry.input(description="OHLCV bars, oldest first; all lists the same length.")
class MarketDataInput:
    symbol: str | None = None
    timeframe: str | None = None
    timestamp: list[float] | None = strawberry.field(default=None, description="unix seconds")
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]

    def to_columns(self) -> MarketDataColumns:
        return MarketDataColumns(
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            timestamp=self.timestamp,
            symbol=self.symbol,
            timeframe=self.timeframe,
        )


@strawberry.enum(
    description="Where a backtest closes a position still open after the last bar: CLOSE at "
    "its close (default), OPEN at its open (as backtesting.py's finalize_trades=True)."
)
class EndOfDataFill(Enum):
    CLOSE = "close"
    OPEN = "open"


@strawberry.input
class BacktestInput:
    market_data: MarketDataInput | None = strawberry.field(
        default=None, description="The bars to test on; or sample, csv or datasetId."
    )
    sample: str | None = strawberry.field(
        default=None, description="The name of a built-in data set (see Query.sampleDatasets)."
    )
    initial_cash: float | None = 10000.0
    commission_pct: float | None = 0.1
    parameters: JSON | None = strawberry.field(
        default=None, description="Overrides the strategy's own parameters."
    )
    csv: str | None = strawberry.field(
        default=None,
        description="OHLCV as CSV text with a header row: timestamp (or date/time, unix "
        "seconds or ISO-8601), open, high, low, close, volume.",
    )
    allow_short: bool | None = strawberry.field(
        default=False, description="Let a sell signal open a short when flat."
    )
    dataset_id: uuid.UUID | None = strawberry.field(
        default=None, description="One of the caller's datasets (uploadDataset)."
    )
    resample_to: str | None = strawberry.field(
        default=None,
        description="With datasetId: aggregate its bars to a coarser timeframe for this "
        "backtest (e.g. 4h, 1d), as uploadDataset's resampleTo does.",
    )
    slippage_bps: float | None = strawberry.field(
        default=0.0,
        description="Moves every market fill against the trader, in basis points (hundredths "
        "of a percent: 5 = 0.05%), besides commission; take-profits (limit orders) excepted.",
    )
    whole_units: bool | None = strawberry.field(
        default=False,
        description="Round each entry down to whole units (backtesting.py's Backtest does; "
        "by default positions are fractional, as its FractionalBacktest).",
    )
    end_of_data_fill: EndOfDataFill | None = strawberry.field(
        default=EndOfDataFill.CLOSE,
        description="Where a position still open after the last bar is closed.",
    )

    def to_request(self) -> BacktestRequest:
        return BacktestRequest(
            market_data=self.market_data.to_columns() if self.market_data else None,
            sample=self.sample,
            csv=self.csv,
            dataset_id=self.dataset_id,
            resample_to=self.resample_to,
            initial_cash=10000.0 if self.initial_cash is None else self.initial_cash,
            commission_pct=0.1 if self.commission_pct is None else self.commission_pct,
            allow_short=bool(self.allow_short),
            parameters=cast("dict[str, Any] | None", self.parameters),
            slippage_bps=0.0 if self.slippage_bps is None else self.slippage_bps,
            whole_units=bool(self.whole_units),
            end_of_data_fill=(self.end_of_data_fill or EndOfDataFill.CLOSE).value,
        )
