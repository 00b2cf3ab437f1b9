"""Running stored strategies: single signals and backtests, always inside the sandbox.

Owner checks, input checks and bookkeeping (usage count, stored metrics) live here; the
sandbox only ever sees code, bars and parameters.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F

from models import GeneratedStrategy, StrategyStatus, User
from services import versions
from services.backtesting import BacktestOptions, BacktestReport, metrics_json
from services.code_analysis import UserCodeChecks
from services.datasets import load_dataset_bars
from services.errors import BadInput
from services.lookahead import require_trustworthy
from services.market_data import Bars, MarketDataError, bars_from_columns, bars_from_csv
from services.rate_limits import RateLimit
from services.samples import SAMPLE_NAMES, UnknownSample, load_sample, sample_description
from services.sandbox import Sandbox
from services.strategies import check_parameters, require_strategy
from services.validation import ValidationReport, with_errors

MAX_SIGNAL_BARS = 20_000
MAX_BACKTEST_BARS = 100_000
MAX_CSV_BYTES = 10 * 1024 * 1024
TRIAL_RUN_SAMPLE = "trending_daily"
OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class MarketDataColumns:
    """OHLCV as the API receives it: plain lists, checked here."""

    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]
    timestamp: list[float] | None = None
    symbol: str | None = None
    timeframe: str | None = None


@dataclass(frozen=True)
class BacktestRequest:
    market_data: MarketDataColumns | None = None
    sample: str | None = None
    csv: str | None = None
    dataset_id: uuid.UUID | None = None
    resample_to: str | None = None  # with dataset_id
    initial_cash: float = 10_000.0
    commission_pct: float = 0.1
    allow_short: bool = False
    parameters: dict[str, Any] | None = None
    slippage_bps: float = 0.0
    whole_units: bool = False
    end_of_data_fill: str = "close"


@dataclass(frozen=True)
class BacktestOutcome:
    strategy: GeneratedStrategy
    result: BacktestReport
    elapsed_seconds: float


@dataclass(frozen=True)
class SampleDataset:
    name: str
    description: str
    bars: int
    timeframe: str | None


def sample_datasets() -> list[SampleDataset]:
    datasets = []
    for name in SAMPLE_NAMES:
        bars = load_sample(name)
        datasets.append(SampleDataset(name, sample_description(name), len(bars), bars.timeframe))
    return datasets


def bars_from_input(columns: MarketDataColumns, max_bars: int) -> Bars:
    data: dict[str, Any] = {key: getattr(columns, key) for key in OHLCV}
    if columns.timestamp is not None:
        data["timestamp"] = columns.timestamp
    try:
        return bars_from_columns(
            data, max_bars=max_bars, symbol=columns.symbol, timeframe=columns.timeframe
        )
    except MarketDataError as exc:
        raise BadInput(f"marketData: {exc}") from None


async def _backtest_bars(user: User, request: BacktestRequest) -> tuple[Bars, str]:
    given = [
        name
        for name, value in (
            ("marketData", request.market_data),
            ("sample", request.sample),
            ("csv", request.csv),
            ("datasetId", request.dataset_id),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise BadInput("Give exactly one of marketData, sample, csv or datasetId")
    if request.resample_to is not None and request.dataset_id is None:
        raise BadInput("resampleTo applies to a stored dataset (datasetId)")
    if request.dataset_id is not None:
        # A stored dataset already passed the upload's checks and limits (services/datasets).
        bars = await load_dataset_bars(user, request.dataset_id, request.resample_to)
        return bars, f"dataset:{request.dataset_id}" + (
            f"@{bars.timeframe}" if request.resample_to else ""
        )
    if request.sample is not None:
        try:
            return load_sample(request.sample), f"sample:{request.sample}"
        except UnknownSample:
            raise BadInput(
                f"Unknown sample '{request.sample}'; choose one of {', '.join(SAMPLE_NAMES)}"
            ) from None
    if request.csv is not None:
        if len(request.csv.encode()) > MAX_CSV_BYTES:
            raise BadInput(f"csv must be at most {MAX_CSV_BYTES // (1024 * 1024)} MiB")
        try:
            return bars_from_csv(request.csv, max_bars=MAX_BACKTEST_BARS), "csv"
        except MarketDataError as exc:
            raise BadInput(f"csv: {exc}") from None
    assert request.market_data is not None
    return bars_from_input(request.market_data, MAX_BACKTEST_BARS), "marketData"


def _runnable(strategy: GeneratedStrategy) -> None:
    if strategy.status is StrategyStatus.ERROR:
        raise BadInput(
            f"Strategy {strategy.id} did not pass validation (status ERROR): fix its code first"
        )


def _effective_parameters(
    strategy: GeneratedStrategy, overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    if overrides is None:
        return dict(strategy.parameters or {})
    return {**(strategy.parameters or {}), **check_parameters(overrides)}


def sandbox_owner(user: User) -> str:
    """The key the sandbox shares its slots by: one per user."""
    return str(user.id)


class StrategyRunner:
    def __init__(
        self,
        sandbox: Sandbox,
        *,
        signal_timeout_seconds: float = 2.0,
        backtest_timeout_seconds: float = 60.0,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.rate_limit = rate_limit
        self.signal_timeout_seconds = signal_timeout_seconds
        self.backtest_timeout_seconds = backtest_timeout_seconds

    async def run(
        self,
        user: User,
        strategy_id: uuid.UUID,
        market_data: MarketDataColumns,
        parameters: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        strategy = await require_strategy(user, strategy_id)
        _runnable(strategy)
        require_trustworthy(strategy)  # no live signals from a strategy caught looking ahead
        bars = bars_from_input(market_data, MAX_SIGNAL_BARS)
        await self._count(user)
        signal = await self.sandbox.run_signal(
            strategy.generated_code,
            bars,
            _effective_parameters(strategy, parameters),
            timeout_seconds=self.signal_timeout_seconds,
            owner=sandbox_owner(user),
        )
        # One statement, so concurrent runs never lose a count.
        await GeneratedStrategy.filter(id=strategy.id).update(usage_count=F("usage_count") + 1)
        return signal

    async def backtest(
        self,
        user: User,
        strategy_id: uuid.UUID,
        request: BacktestRequest,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> BacktestOutcome:
        strategy = await require_strategy(user, strategy_id)
        _runnable(strategy)
        bars, source = await _backtest_bars(user, request)
        options = BacktestOptions(
            initial_cash=request.initial_cash,
            commission_pct=request.commission_pct,
            allow_short=request.allow_short,
            slippage_bps=request.slippage_bps,
            whole_units=request.whole_units,
            end_of_data_fill=request.end_of_data_fill,
        )
        try:
            options.check()
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        await self._count(user)
        if on_progress is not None:
            on_progress(0, len(bars))  # accepted: the listener learns the total before any wait
        started = time.perf_counter()
        parameters = _effective_parameters(strategy, request.parameters)
        result = await self.sandbox.run_backtest(
            strategy.generated_code,
            bars,
            parameters,
            options,
            timeout_seconds=self.backtest_timeout_seconds,
            on_progress=on_progress,
            owner=sandbox_owner(user),
        )
        elapsed = time.perf_counter() - started
        look_ahead = result.look_ahead or {}
        summary = {
            **metrics_json(result),
            "lookAheadBars": look_ahead.get("lookAheadBars", []),
            "warmupBarsNeeded": look_ahead.get("warmupBarsNeeded"),
            "lookAhead": look_ahead,
            "bars": len(bars),
            "data": source,
            "initialCash": options.initial_cash,
            "commissionPct": options.commission_pct,
            "allowShort": options.allow_short,
            "slippageBps": options.slippage_bps,
            "wholeUnits": options.whole_units,
            "endOfDataFill": options.end_of_data_fill,
            # With the data, what makes backtests of different versions comparable.
            "parameters": parameters,
            "backtestedAt": datetime.now(UTC).isoformat(),
        }
        await versions.record_backtest(strategy, summary)
        await strategy.refresh_from_db()
        return BacktestOutcome(strategy=strategy, result=result, elapsed_seconds=elapsed)

    async def trial_run(
        self,
        user: User,
        code: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        charged: bool = False,
    ) -> list[str]:
        """Run `code` once on sample data as `user`'s sandbox job: its problems, [] when it
        runs and returns a valid signal. `charged` counts it against the user's execution
        limit (they asked for it: validateCode); a generation's own trial run is not.
        SandboxBusy and SandboxUnavailable pass through: they say nothing about the code."""
        if charged:
            await self._count(user)
        problems = await self.sandbox.trial_run(
            code, load_sample(TRIAL_RUN_SAMPLE), dict(parameters or {}), owner=sandbox_owner(user)
        )
        return [f"Trial run on sample data: {problem}" for problem in problems]

    async def _count(self, user: User) -> None:
        """Sandbox time is the scarce resource: every execution counts against the user."""
        if self.rate_limit is not None:
            await self.rate_limit.hit(str(user.id))


async def validate_user_code(
    user: User, code: str, checks: UserCodeChecks, runner: StrategyRunner, *, trial_run: bool
) -> ValidationReport:
    """validateCode: the user's code checked as theirs (size, the operation's allowance and
    their budget, then the static rules, off the event loop) and, when it passes and
    `trial_run` is asked, run once on sample data, charged to their execution limit."""
    analysis = await checks.check(str(user.id), code)
    report = analysis.report
    if trial_run and report.valid:
        problems = await runner.trial_run(user, code, analysis.parameters, charged=True)
        report = with_errors(report, problems)
    return report
