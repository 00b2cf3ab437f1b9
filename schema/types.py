"""GraphQL object types: thin views over the Tortoise models."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, NewType, TypeVar, cast

import strawberry
from graphql import OperationType
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON
from strawberry.types.nodes import SelectedField, Selection

import models
from schema.generation_types import GenerationAttempt
from services import backtesting
from services.analytics import GenerationStats as Stats
from services.attempts import rounds_of
from services.errors import BadInput
from services.execution import BacktestOutcome
from services.generation import GenerationOutcome
from services.providers.registry import ModelChoice
from services.providers.templates import TemplateInfo
from services.strategies import Page as RowPage
from services.strategies import code_preview
from services.validation import ValidationReport
from services.versions import diff_versions

if TYPE_CHECKING:
    from schema.context import Context

# strawberry.enum registers the model enums in place, so one enum serves ORM and API alike.
strawberry.enum(models.StrategyStatus, name="StrategyStatus")
strawberry.enum(models.StrategyType, name="StrategyType")
strawberry.enum(
    models.GenerationStatus,
    name="GenerationStatus",
    description="SUCCESS: code that does all the prompt asked (and, when checked, is valid). "
    "PARTIAL: code stored, but it failed its checks (strategy status ERROR) or leaves parts "
    "of the prompt out (GenerationLog.ignoredRequirements). FAILURE: no usable code, no "
    "strategy stored.",
)
StrategyStatus = models.StrategyStatus
StrategyType = models.StrategyType
GenerationStatus = models.GenerationStatus

# Token sums over a staff-wide window outgrow GraphQL's 32-bit Int.
BigInt = NewType("BigInt", int)
BIG_INT_SCALAR = strawberry.scalar(
    name="BigInt",
    description="A whole number beyond Int's 32 bits (sent as a JSON number).",
    serialize=int,
    parse_value=int,
)

Item = TypeVar("Item")
Row = TypeVar("Row")

OWNER_ID = "The owner's user id: the caller's own, except in the staff admin view (allUsers)."


@strawberry.type
class User:
    id: uuid.UUID
    email: str
    is_staff: bool
    created_at: datetime

    @classmethod
    def from_model(cls, user: models.User) -> User:
        return cls(id=user.id, email=user.email, is_staff=user.is_staff, created_at=user.created_at)


@strawberry.type
class AuthPayload:
    token: str = strawberry.field(description='Send back as "Authorization: Bearer <token>".')
    user: User


@strawberry.type
class ValidationResult:
    valid: bool
    syntax_valid: bool
    has_function: bool = strawberry.field(
        description="Defines execute_strategy(market_data, strategy_params)."
    )
    has_imports: bool
    errors: list[str]
    warnings: list[str]
    trading_keywords: list[str]

    @classmethod
    def from_report(cls, report: ValidationReport) -> ValidationResult:
        return cls(
            valid=report.valid,
            syntax_valid=report.syntax_valid,
            has_function=report.has_function,
            has_imports=report.has_imports,
            errors=list(report.errors),
            warnings=list(report.warnings),
            trading_keywords=list(report.trading_keywords),
        )


@strawberry.type(description="One state of a strategy's code and parameters.")
class StrategyVersion:
    number: int = strawberry.field(description="1 is the first code; each change adds one.")
    generated_code: str
    parameters: JSON
    instruction: str = strawberry.field(
        description='The prompt, the refinement instruction, "manual edit" or "revert to N".'
    )
    author: str = strawberry.field(
        description='Who wrote the code: a model ("<provider>:<model>", as the models query '
        'names it), the email of the user who edited or reverted, or "migration" for the '
        "code a strategy held when versions were introduced."
    )
    performance_metrics: JSON = strawberry.field(
        description="The latest backtest run on this version ({} if none)."
    )
    created_at: datetime
    stored_validation: strawberry.Private[dict[str, Any] | None]

    @strawberry.field
    def validation_results(self) -> ValidationResult | None:
        return _validation_result(self.stored_validation)

    @classmethod
    def from_model(cls, version: models.StrategyVersion) -> StrategyVersion:
        return cls(
            number=version.number,
            generated_code=version.generated_code,
            parameters=cast(JSON, version.parameters),
            instruction=version.instruction,
            author=version.author,
            performance_metrics=cast(JSON, version.performance_metrics),
            created_at=version.created_at,
            stored_validation=version.validation_results,
        )


def _versions_loader(
    info: strawberry.Info[Context, None],
) -> DataLoader[uuid.UUID, list[models.StrategyVersion]]:
    """Read afresh in mutations and subscriptions: their fields change versions in turn."""
    fresh = info.operation.operation is not OperationType.QUERY
    return info.context.versions_loader(fresh=fresh)


def _validation_result(stored: dict[str, Any] | None) -> ValidationResult | None:
    if stored is None:
        return None
    return ValidationResult.from_report(ValidationReport.from_dict(stored))


@strawberry.type
class Strategy:
    id: uuid.UUID
    name: str
    description: str
    original_prompt: str
    generated_code: str
    strategy_type: StrategyType
    status: StrategyStatus
    parameters: JSON
    performance_metrics: JSON
    usage_count: int
    version: int = strawberry.field(description="The current version's number.")
    created_at: datetime
    updated_at: datetime
    user_id: uuid.UUID = strawberry.field(description=OWNER_ID)
    stored_validation: strawberry.Private[dict[str, Any] | None]

    @strawberry.field(description="The first lines of generatedCode.")
    def code_preview(self) -> str:
        return code_preview(self.generated_code)

    @strawberry.field
    def validation_results(self) -> ValidationResult | None:
        return _validation_result(self.stored_validation)

    @strawberry.field(description="Every version of the code, oldest first.")
    async def versions(self, info: strawberry.Info[Context, None]) -> list[StrategyVersion]:
        found = await _versions_loader(info).load(self.id)
        return [StrategyVersion.from_model(v) for v in found]

    @strawberry.field(
        description='A unified diff of two versions\' code, headed "version N" ("" when the '
        "code is the same); an unknown version number is NOT_FOUND. Charged like a check of "
        "both versions' code (validateCode)."
    )
    async def diff(
        self, info: strawberry.Info[Context, None], from_version: int, to_version: int
    ) -> str:
        user = await info.context.require_user()
        found = await _versions_loader(info).load(self.id)
        return await diff_versions(
            user, self.id, found, from_version, to_version, info.context.services.code_checks
        )

    @classmethod
    def from_model(cls, strategy: models.GeneratedStrategy) -> Strategy:
        return cls(
            id=strategy.id,
            name=strategy.name,
            description=strategy.description,
            original_prompt=strategy.original_prompt,
            generated_code=strategy.generated_code,
            strategy_type=strategy.strategy_type,
            status=strategy.status,
            parameters=cast(JSON, strategy.parameters),
            performance_metrics=cast(JSON, strategy.performance_metrics),
            usage_count=strategy.usage_count,
            version=strategy.version,
            created_at=strategy.created_at,
            updated_at=strategy.updated_at,
            user_id=strategy.user_id,  # type: ignore[arg-type]
            stored_validation=strategy.validation_results,
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Strategy:
        """A view of the columns a query asked for (`strategy_columns`); the fields it did not
        ask for stay empty, and nothing resolves them."""
        return cls(
            id=row["id"],
            name=row.get("name", ""),
            description=row.get("description", ""),
            original_prompt=row.get("original_prompt", ""),
            generated_code=row.get("generated_code", ""),
            strategy_type=row.get("strategy_type", StrategyType.CUSTOM),
            status=row.get("status", StrategyStatus.DRAFT),
            parameters=cast(JSON, row.get("parameters")),
            performance_metrics=cast(JSON, row.get("performance_metrics")),
            usage_count=row.get("usage_count", 0),
            version=row.get("version", 0),
            created_at=row.get("created_at", _NO_TIME),
            updated_at=row.get("updated_at", _NO_TIME),
            user_id=row.get("user_id", _NO_ID),
            stored_validation=row.get("validation_results"),
        )


_NO_TIME = datetime.min
_NO_ID = uuid.UUID(int=0)

# The columns each field of Strategy reads (`id` is always read). A field missing here (one
# added later) makes `strategy_columns` answer None: whole rows, as before, never a wrong one.
STRATEGY_FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "__typename": (),
    "id": (),
    "name": ("name",),
    "description": ("description",),
    "originalPrompt": ("original_prompt",),
    "generatedCode": ("generated_code",),
    "codePreview": ("generated_code",),
    "strategyType": ("strategy_type",),
    "status": ("status",),
    "parameters": ("parameters",),
    "performanceMetrics": ("performance_metrics",),
    "usageCount": ("usage_count",),
    "version": ("version",),
    "createdAt": ("created_at",),
    "updatedAt": ("updated_at",),
    "userId": ("user_id",),
    "validationResults": ("validation_results",),
    "versions": (),  # by id, through their own loader
    "diff": (),
}


def _fields_named(selections: list[Selection], name: str) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == name:
                yield selection
        else:  # a fragment, spread or inline: its fields are this level's
            yield from _fields_named(selection.selections, name)


def _field_names(selections: list[Selection]) -> Iterator[str]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection.name
        else:
            yield from _field_names(selection.selections)


def strategy_columns(info: strawberry.Info[Context, None], path: str) -> list[str] | None:
    """The columns the Strategy objects under the field `path` of the current field need,
    from the query's selection set (aliases, fragments and repeats included); None when a
    selected field's columns are not known here."""
    columns: set[str] = set()
    for field in _fields_named(info.selected_fields, info.field_name):
        for holder in _fields_named(field.selections, path):
            for name in _field_names(holder.selections):
                needed = STRATEGY_FIELD_COLUMNS.get(name)
                if needed is None:
                    return None
                columns.update(needed)
    return sorted(columns)


@strawberry.type
class GenerationLog:
    id: uuid.UUID
    prompt: str
    status: GenerationStatus
    provider: str = strawberry.field(description='e.g. "gemini", "template"')
    model: str
    ai_response_raw: str | None = strawberry.field(
        description="The provider's full response, as received."
    )
    extracted_code: str | None
    error_message: str | None
    processing_time_seconds: float
    tokens_used: int
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float | None = strawberry.field(
        description="USD from the model's price per token; null when the price is unknown."
    )
    created_at: datetime
    strategy_id: strawberry.Private[uuid.UUID | None]
    owner_id: strawberry.Private[uuid.UUID]
    attempt_records: strawberry.Private[list[dict[str, Any]]]
    interpretation: JSON = strawberry.field(
        description="What was understood: template, indicators, periods, thresholds, exits, "
        "filters, sizing, the clauses implemented and the parameters left at their defaults."
    )
    ignored_requirements: list[str] = strawberry.field(
        description="Parts of the prompt the code does not implement, in the user's words."
    )
    repair_rounds: int = strawberry.field(
        description="How many times the code went back to the model with its errors."
    )

    @strawberry.field(description="SUCCESS after at least one repair round.")
    def repaired(self) -> bool:
        return self.status is models.GenerationStatus.SUCCESS and self.repair_rounds > 0

    @strawberry.field(description=OWNER_ID)
    def user_id(self) -> uuid.UUID:
        return self.owner_id

    @strawberry.field
    async def strategy(self, info: strawberry.Info[Context, None]) -> Strategy | None:
        if self.strategy_id is None:
            return None
        found = await info.context.strategy_loader(self.owner_id).load(self.strategy_id)
        return Strategy.from_model(found) if found is not None else None

    @strawberry.field(
        description="The rounds, in order: the first answer, then each repair (httpExchanges "
        "lists a round's retries)."
    )
    def attempts(self) -> list[GenerationAttempt]:
        return [GenerationAttempt.from_record(record) for record in self.attempt_records]

    @classmethod
    def from_model(cls, entry: models.StrategyGenerationLog) -> GenerationLog:
        return cls(
            id=entry.id,
            prompt=entry.prompt,
            status=entry.status,
            provider=entry.provider,
            model=entry.model,
            ai_response_raw=entry.ai_response_raw,
            extracted_code=entry.extracted_code,
            error_message=entry.error_message,
            processing_time_seconds=entry.processing_time_seconds,
            tokens_used=entry.tokens_used,
            input_tokens=entry.input_tokens,
            output_tokens=entry.output_tokens,
            estimated_cost_usd=entry.estimated_cost_usd,
            created_at=entry.created_at,
            strategy_id=entry.strategy_id,  # type: ignore[arg-type]
            owner_id=entry.user_id,  # type: ignore[arg-type]
            attempt_records=rounds_of(entry),
            repair_rounds=entry.repair_rounds,
            interpretation=cast(JSON, entry.interpretation or {}),
            ignored_requirements=[str(item) for item in entry.ignored_requirements or []],
        )


@strawberry.type(description="One page of a list, with what a client needs to page on.")
class Page(Generic[Item]):
    """Strawberry names it per item type: Page[Strategy] is the contract's StrategyPage."""

    items: list[Item]
    total_count: int
    page: int
    page_size: int
    has_next_page: bool
    has_previous_page: bool


def page_of(page: RowPage[Row], view: Callable[[Row], Item]) -> Page[Item]:
    """A services page of rows as the schema's page of their views."""
    return Page(
        items=[view(row) for row in page.items],
        total_count=page.total_count,
        page=page.page,
        page_size=page.page_size,
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
    )


@strawberry.type(description="Generations and tokens of one provider and model.")
class ModelTokenUsage:
    provider: str
    model: str
    generations: int
    tokens_used: BigInt
    estimated_cost_usd: float | None = strawberry.field(
        description="USD over the generations whose price was known; null if none was."
    )


@strawberry.type
class StrategyTypeCount:
    strategy_type: StrategyType
    count: int = strawberry.field(
        description="Strategies of this type stored by the window's generations."
    )


@strawberry.type(description="One UTC day of the window.")
class DailyGenerationStats:
    day: date
    generations: int
    successes: int
    tokens_used: BigInt


@strawberry.type(description="Generation figures over the window [since, until).")
class GenerationStats:
    since: datetime
    until: datetime
    all_users: bool = strawberry.field(description="Every user's generations (staff view).")
    total_generations: int
    success_count: int
    partial_count: int
    failure_count: int
    success_rate: float | None = strawberry.field(
        description="successCount / totalGenerations (0.0 to 1.0); null without generations."
    )
    average_processing_time_seconds: float | None = strawberry.field(
        description="Over every generation, failures included; null without generations."
    )
    p95_processing_time_seconds: float | None = strawberry.field(
        description="Nearest-rank 95th percentile (a measured time); null without generations."
    )
    tokens_used: BigInt
    active_users: int = strawberry.field(description="Distinct users who generated.")
    tokens_by_model: list[ModelTokenUsage] = strawberry.field(description="Most tokens first.")
    popular_strategy_types: list[StrategyTypeCount] = strawberry.field(
        description="Most frequent first; strategies deleted since drop out."
    )
    daily: list[DailyGenerationStats] = strawberry.field(
        description="Every UTC day the window touches, oldest first, empty days included."
    )

    @classmethod
    def from_stats(cls, stats: Stats) -> GenerationStats:
        return cls(
            since=stats.window.since,
            until=stats.window.until,
            all_users=stats.all_users,
            total_generations=stats.total,
            success_count=stats.success_count,
            partial_count=stats.partial_count,
            failure_count=stats.failure_count,
            success_rate=stats.success_rate,
            average_processing_time_seconds=stats.average_processing_seconds,
            p95_processing_time_seconds=stats.p95_processing_seconds,
            tokens_used=BigInt(stats.tokens_used),
            active_users=stats.active_users,
            tokens_by_model=[
                ModelTokenUsage(
                    provider=m.provider,
                    model=m.model,
                    generations=m.generations,
                    tokens_used=BigInt(m.tokens_used),
                    estimated_cost_usd=m.estimated_cost_usd,
                )
                for m in stats.by_model
            ],
            popular_strategy_types=[
                StrategyTypeCount(strategy_type=t.strategy_type, count=t.count)
                for t in stats.strategy_types
            ],
            daily=[
                DailyGenerationStats(
                    day=d.day,
                    generations=d.generations,
                    successes=d.successes,
                    tokens_used=BigInt(d.tokens_used),
                )
                for d in stats.daily
            ],
        )


@strawberry.type(description="A model generateStrategy can use.")
class ModelInfo:
    id: str = strawberry.field(description="What generateStrategy(input: {model}) takes.")
    provider: str = strawberry.field(description='"gemini", "openai", "anthropic", "template"')
    model: str
    is_default: bool

    @classmethod
    def from_choice(cls, choice: ModelChoice) -> ModelInfo:
        return cls(
            id=choice.id, provider=choice.provider, model=choice.model, is_default=choice.is_default
        )


@strawberry.type
class GenerateStrategyPayload:
    strategy: Strategy | None = strawberry.field(
        description="null when a generation FAILED; after a refinement, the strategy as it now "
        "is (unchanged when the refinement FAILED)"
    )
    generation_log: GenerationLog
    processing_time_seconds: float

    @classmethod
    def from_outcome(cls, outcome: GenerationOutcome) -> GenerateStrategyPayload:
        return cls(
            strategy=Strategy.from_model(outcome.strategy) if outcome.strategy else None,
            generation_log=GenerationLog.from_model(outcome.log),
            processing_time_seconds=outcome.processing_time_seconds,
        )


@strawberry.type(description="A built-in template of the template provider.")
class StrategyTemplate:
    key: str
    name: str
    strategy_type: StrategyType
    description: str
    parameters: JSON = strawberry.field(description="name -> {default, min, max}")
    example_prompts: list[str]

    @classmethod
    def from_info(cls, info: TemplateInfo) -> StrategyTemplate:
        return cls(
            key=info.key,
            name=info.name,
            strategy_type=models.StrategyType.__members__[info.strategy_type],
            description=info.description,
            parameters=cast(JSON, info.parameters),
            example_prompts=list(info.example_prompts),
        )


@strawberry.enum
class SignalAction(Enum):
    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


@strawberry.type
class Signal:
    action: SignalAction
    confidence: float = strawberry.field(description="0.0 to 1.0")
    reason: str
    metadata: JSON

    @classmethod
    def from_dict(cls, signal: dict[str, Any]) -> Signal:
        return cls(
            action=SignalAction(signal["action"]),
            confidence=signal["confidence"],
            reason=signal["reason"],
            metadata=cast(JSON, signal["metadata"]),
        )


@strawberry.type(
    description="A backtest's statistics, as backtesting.py defines them; null where "
    "undefined or not finite. Percents are percent (2.0 = 2%); drawdowns are negative."
)
class BacktestStats:
    start_equity: float
    final_equity: float | None
    equity_peak: float | None
    total_return_pct: float | None
    buy_and_hold_return_pct: float | None = strawberry.field(
        description="Buying at the first close and selling at the last, no costs."
    )
    buy_and_hold_max_drawdown_pct: float | None = strawberry.field(
        description="The deepest fall of the close from its running peak."
    )
    excess_return_pct: float | None = strawberry.field(
        description="totalReturnPct minus buyAndHoldReturnPct, in percentage points."
    )
    cagr_pct: float | None
    annual_return_pct: float | None
    volatility_pct: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    calmar_ratio: float | None
    max_drawdown_pct: float | None
    avg_drawdown_pct: float | None
    max_drawdown_duration_bars: int
    avg_drawdown_duration_bars: float | None
    num_trades: int
    win_rate_pct: float | None
    best_trade_pct: float | None
    worst_trade_pct: float | None
    avg_trade_pct: float | None
    profit_factor: float | None
    expectancy: float | None = strawberry.field(description="Mean P&L per trade, in cash.")
    expectancy_pct: float | None
    sqn: float | None
    avg_trade_duration_bars: float | None
    max_trade_duration_bars: int | None
    exposure_pct: float | None
    commissions_paid: float | None
    slippage_paid: float | None = strawberry.field(
        description="What slippageBps cost over all trades, in cash."
    )
    periods_per_year: float | None
    bar_spacing_seconds: float | None
    annualisation: str = strawberry.field(description="How periodsPerYear was chosen.")
    years: float | None

    @classmethod
    def from_stats(cls, stats: backtesting.BacktestStats) -> BacktestStats:
        return cls(**asdict(stats))


@strawberry.type(
    description="One round trip. Prices are fills (slippage included); times are unix "
    "seconds, null when the bars have no timestamps."
)
class Trade:
    entry_bar: int
    exit_bar: int
    entry_time: float | None
    exit_time: float | None
    side: str = strawberry.field(description='"long" or "short".')
    entry_price: float
    exit_price: float
    size: float = strawberry.field(description="Units held.")
    pnl: float = strawberry.field(description="In cash, after commission and slippage.")
    return_pct: float
    commission: float
    slippage: float = strawberry.field(description="What slippage cost, in cash.")
    stop_loss_price: float | None = strawberry.field(
        description="The stop as placed at the fill (a trailing stop moves from there)."
    )
    take_profit_price: float | None
    trailing_stop_pct: float | None
    entry_reason: str
    exit_reason: str = strawberry.field(
        description='"signal: <reason>", "stop loss", "trailing stop", "take profit", '
        '"end of data" or "margin call".'
    )

    @classmethod
    def from_trade(cls, trade: backtesting.Trade) -> Trade:
        return cls(**asdict(trade))


@strawberry.type(description="Equity marked at a bar's close.")
class EquityPoint:
    bar: int
    timestamp: float | None = strawberry.field(
        description="The bar's unix seconds; null when the bars have no timestamps."
    )
    equity: float


def _bad_input(exc: ValueError) -> BadInput:
    return BadInput(str(exc))


@strawberry.type
class BacktestResult:
    strategy: Strategy
    metrics: JSON = strawberry.field(
        description="totalReturnPct, maxDrawdownPct, sharpeRatio, winRatePct, numTrades, "
        "exposurePct, finalEquity, buyAndHoldReturnPct, buyAndHoldMaxDrawdownPct and more "
        "(as backtesting.py reports them): `statistics` as JSON, plus trustworthy and "
        "lookAheadBias."
    )
    trades: JSON = strawberry.field(description="Every trade as JSON: `tradeLog`'s fields.")
    bars: int
    elapsed_seconds: float
    look_ahead_bias: bool = strawberry.field(
        description="Some signal changed when the bars after it were removed: the metrics "
        "(marked trustworthy: false) are not to be believed, and runStrategy refuses the "
        "strategy (LOOK_AHEAD_BIAS) until its code is changed."
    )
    look_ahead_bars: list[int] = strawberry.field(
        description="The checked bars where the signal changed (a sample)."
    )
    warmup_bars_needed: int | None = strawberry.field(
        description="History a signal needs before it stops changing when the bars before it "
        "are cut; null if no tried history length sufficed (or none could be tried)."
    )
    look_ahead_check: JSON = strawberry.field(
        description="The look-ahead check in detail: differing signals (bar, full run, "
        "truncated run), warm-up differences and warning, bars checked, its cost in seconds."
    )
    report: strawberry.Private[backtesting.BacktestReport]

    @strawberry.field(description="The statistics, typed (`metrics` holds them as JSON).")
    def statistics(self) -> BacktestStats:
        return BacktestStats.from_stats(self.report.stats)

    @strawberry.field(description="How many trades the backtest made.")
    def trade_count(self) -> int:
        return len(self.report.trades)

    @strawberry.field(
        description="The trades, oldest first, typed: all of them, or `limit` of them from "
        "`offset` (tradeCount says how many there are)."
    )
    def trade_log(self, limit: int | None = None, offset: int = 0) -> list[Trade]:
        try:
            trades = self.report.trade_slice(limit, offset)
        except ValueError as exc:
            raise _bad_input(exc) from None
        return [Trade.from_trade(trade) for trade in trades]

    @strawberry.field(
        description="Equity at each bar's close; with maxPoints (at least 2), at most that "
        "many: the first and last bar and, of the bars between cut into equal runs, each "
        "run's lowest and highest point (peaks and troughs stay visible)."
    )
    def equity_curve(self, max_points: int | None = None) -> list[float]:
        try:
            return self.report.equity_curve(max_points)
        except ValueError as exc:
            raise _bad_input(exc) from None

    @strawberry.field(
        description="The equity curve with each point's bar and timestamp; maxPoints as "
        "for equityCurve."
    )
    def equity_points(self, max_points: int | None = None) -> list[EquityPoint]:
        try:
            points = self.report.equity_points(max_points)
        except ValueError as exc:
            raise _bad_input(exc) from None
        return [EquityPoint(bar=p.bar, timestamp=p.timestamp, equity=p.equity) for p in points]

    @classmethod
    def from_outcome(cls, outcome: BacktestOutcome) -> BacktestResult:
        report = outcome.result
        check = report.look_ahead or {}
        as_json = backtesting.report_json(report)
        return cls(
            strategy=Strategy.from_model(outcome.strategy),
            metrics=cast(JSON, as_json["metrics"]),
            trades=cast(JSON, as_json["trades"]),
            bars=report.bars,
            elapsed_seconds=outcome.elapsed_seconds,
            look_ahead_bias=bool(check.get("lookAheadBias", False)),
            look_ahead_bars=list(check.get("lookAheadBars", [])),
            warmup_bars_needed=check.get("warmupBarsNeeded"),
            look_ahead_check=cast(JSON, check),
            report=report,
        )


@strawberry.type
class SampleDataset:
    name: str
    description: str
    bars: int
    timeframe: str | None
