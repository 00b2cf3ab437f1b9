"""The generation pipeline: provider -> extraction -> validation (static, then an optional trial
run in the sandbox) -> storage, one log per request.

Provider faults are outcomes (a FAILURE log), not exceptions: the caller always gets the log.
A generation cancelled while waiting for the model (uvicorn's graceful shutdown ran out of
time) still leaves a FAILURE log; one cancelled while being stored is stored to the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, TypeVar

from tortoise.transactions import in_transaction

from models import (
    GeneratedStrategy,
    GenerationStatus,
    StrategyGenerationLog,
    StrategyStatus,
    StrategyType,
    User,
)
from services import strategies, telemetry, versions
from services.attempts import REPAIRABLE, AttemptKind, Verdict, classify, round_record
from services.code_analysis import AnalysisBusy, CodeAnalyser, CodeAnalysis, CodeTooComplex
from services.errors import BadInput, RateLimited
from services.extraction import read_report
from services.prompt_analysis import analyse_prompt
from services.providers.base import (
    ChatProvider,
    CodeProvider,
    PartKind,
    ProviderResult,
    Refinement,
    RefiningProvider,
    Turn,
)
from services.providers.pricing import PriceTable
from services.providers.prompting import refine_prompt, repair_prompt, user_prompt
from services.providers.registry import ProviderRegistry
from services.rate_limits import RateLimit
from services.sandbox.errors import SandboxBusy, SandboxUnavailable
from services.strategies import MAX_NAME_LENGTH
from services.validation import ValidationReport, with_errors

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 4000
MAX_DESCRIPTION_CHARS = 2000
SHUTDOWN_MESSAGE = "Server shut down before the model answered"
UNCHECKED_AT_SHUTDOWN = "Server shut down before the answer was checked"
TRUNCATED_NOTE = "the answer was cut off at the model's output token limit"
# A cancelled generation only has its log left to write: this is ample.
DRAIN_TIMEOUT_SECONDS = 10.0

T = TypeVar("T")

# Runs generated code once on sample data, as the user's sandbox job; the problems found
# ([] when it works).
TrialRun = Callable[[User, str, dict[str, Any]], Awaitable[list[str]]]


class GenerationStage(Enum):
    """Milestones of one generation, in order, for progress reports (see `on_stage`)."""

    SENT = "SENT"  # the prompt is on its way to the model
    RECEIVED = "RECEIVED"  # the model answered (or failed for good)
    EXTRACTED = "EXTRACTED"  # code was looked for in the answer
    VALIDATED = "VALIDATED"  # the code was checked
    STORED = "STORED"  # the log (and strategy) are committed


StageListener = Callable[[GenerationStage], None]


def _ignore_stage(_: GenerationStage) -> None:
    pass


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    name: str | None = None
    strategy_type: StrategyType | None = None
    validate: bool = True
    model: str | None = None  # a ModelInfo id or model name; None: the default model


@dataclass(frozen=True)
class GenerationOutcome:
    log: StrategyGenerationLog
    strategy: GeneratedStrategy | None
    processing_time_seconds: float


@dataclass(frozen=True)
class _Verdict:
    status: GenerationStatus
    code: str | None
    report: ValidationReport | None
    error: str | None


def checked_words(text: str, what: str) -> str:
    """A prompt or instruction, stripped; empty or too long is bad input."""
    words = text.strip()
    if not words:
        raise BadInput(f"{what} must not be empty")
    if len(words) > MAX_PROMPT_CHARS:
        raise BadInput(f"{what} must be at most {MAX_PROMPT_CHARS} characters")
    return words


def check_request(request: GenerationRequest) -> GenerationRequest:
    prompt = checked_words(request.prompt, "prompt")
    name = request.name.strip() if request.name is not None else None
    if name is not None and not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise BadInput(f"name must be 1 to {MAX_NAME_LENGTH} characters")
    return replace(request, prompt=prompt, name=name)


async def judge(
    result: ProviderResult,
    validate: bool,
    analyser: CodeAnalyser,
    on_stage: StageListener = _ignore_stage,
) -> tuple[_Verdict, CodeAnalysis | None]:
    """Apply the contract's status rules to what the provider returned. The answer is
    untrusted text: extraction and analysis run in `analyser`'s worker processes."""
    if result.error:
        return _Verdict(GenerationStatus.FAILURE, None, None, result.error), None
    try:
        found = await analyser.analyse_answer(result.parts)
    except (CodeTooComplex, AnalysisBusy) as exc:
        return _Verdict(
            GenerationStatus.FAILURE, None, None, f"The answer could not be checked: {exc}"
        ), None
    on_stage(GenerationStage.EXTRACTED)
    if found is None:
        message = "The response contained no Python code"
        if result.truncated:
            message += f" ({TRUNCATED_NOTE})"
        return _Verdict(GenerationStatus.FAILURE, None, None, message), None
    ignored = tuple(result.ignored_requirements)
    verdict = _verdict_on(found.code, found.analysis.report, validate, ignored)
    if result.truncated and verdict.error is not None:
        verdict = replace(verdict, error=f"{verdict.error} ({TRUNCATED_NOTE})")
    return verdict, found.analysis


def _verdict_on(
    code: str, report: ValidationReport, validate: bool, ignored: tuple[str, ...] = ()
) -> _Verdict:
    """PARTIAL when the code fails validation or leaves parts of the prompt out."""
    problems = []
    if validate and not report.valid:
        problems.append("Generated code failed validation: " + "; ".join(report.errors))
    if ignored:
        problems.append("Not implemented: " + "; ".join(ignored))
    if problems:
        return _Verdict(GenerationStatus.PARTIAL, code, report, ". ".join(problems))
    return _Verdict(GenerationStatus.SUCCESS, code, report, None)


def strategy_status(verdict: _Verdict, validate: bool) -> StrategyStatus:
    assert verdict.report is not None
    if not verdict.report.valid:
        return StrategyStatus.ERROR
    return StrategyStatus.VALIDATED if validate else StrategyStatus.DRAFT


@dataclass(frozen=True)
class _Prepared:
    verdict: _Verdict
    strategy_fields: dict[str, Any] | None  # None: no strategy to store
    ignored: tuple[str, ...] = ()


async def prepare(
    request: GenerationRequest,
    result: ProviderResult,
    analyser: CodeAnalyser,
    on_stage: StageListener = _ignore_stage,
) -> _Prepared:
    """Everything CPU-bound about an answer (extraction, validation, parameters), done before
    the transaction: on SQLite every query waits while one holds the only connection."""
    verdict, analysis = await judge(result, request.validate, analyser, on_stage)
    ignored = tuple(result.ignored_requirements)
    if verdict.code is None or verdict.report is None or analysis is None:
        return _Prepared(verdict, None, ignored)
    name, strategy_type = describe(request.prompt, result.interpretation)
    description = analysis.description or request.prompt
    return _Prepared(
        verdict,
        {
            "name": (request.name or name)[:MAX_NAME_LENGTH],
            "description": description[:MAX_DESCRIPTION_CHARS],
            "generated_code": verdict.code,
            "strategy_type": request.strategy_type or strategy_type,
            "status": strategy_status(verdict, request.validate),
            "validation_results": verdict.report.as_dict(),
            "parameters": analysis.parameters,
        },
        ignored,
    )


def describe(prompt: str, interpretation: dict[str, Any]) -> tuple[str, StrategyType]:
    """The strategy's name and type: the provider's own account of its code when it gave one
    (the template provider always does; a model may), else read from the prompt."""
    intent = analyse_prompt(prompt)
    name = interpretation.get("name")
    type_name = interpretation.get("strategyType")
    if not isinstance(name, str) or not name.strip():
        name = intent.name
    if not isinstance(type_name, str) or type_name.upper() not in StrategyType.__members__:
        type_name = intent.strategy_type
    return name.strip(), StrategyType[type_name.upper()]


def _with_report(prepared: _Prepared, report: ValidationReport, validate: bool) -> _Prepared:
    """`prepared` judged again on a report that learnt more (a trial run's errors or notes)."""
    assert prepared.verdict.code is not None and prepared.strategy_fields is not None
    verdict = _verdict_on(prepared.verdict.code, report, validate, prepared.ignored)
    fields = {
        **prepared.strategy_fields,
        "status": strategy_status(verdict, validate),
        "validation_results": report.as_dict(),
    }
    return _Prepared(verdict, fields, prepared.ignored)


def _with_warning(prepared: _Prepared, warning: str, validate: bool) -> _Prepared:
    report = prepared.verdict.report
    if report is None or prepared.strategy_fields is None:  # no code: nothing to warn about
        return prepared
    return _with_report(prepared, replace(report, warnings=(*report.warnings, warning)), validate)


async def _uninterruptible(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` to its end even if the caller is cancelled meanwhile; then re-raise that.

    Cancelling a store half-way would roll it back: a generation that got its answer would
    vanish without a log. The store is short, so finishing it is the better choice.
    """
    task = asyncio.ensure_future(work)
    interrupted = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():  # the store itself was cancelled (event loop teardown)
                raise
            interrupted = True
    if interrupted:
        raise asyncio.CancelledError
    return result


TRIAL_INTERRUPTED = "Trial run skipped: the server shut down"
TRIAL_OVER_BUDGET = "Trial run skipped: too many generations at once; validateCode runs the check"


TIME_LIMIT_MESSAGE = (
    "The model did not finish within the generation's time limit of {seconds:g} s "
    "(GENERATION_TIMEOUT_SECONDS)"
)
CANNOT_REFINE = "The {provider} provider cannot refine strategies; choose another model"


@dataclass(frozen=True)
class RefineRequest:
    instruction: str
    model: str | None = None  # a ModelInfo id or model name; None: the default model
    validate: bool = True


def check_refinement(request: RefineRequest) -> RefineRequest:
    return replace(request, instruction=checked_words(request.instruction, "instruction"))


@dataclass(frozen=True)
class _Job:
    """A generation or a refinement: what its first round asks, and what it is logged as."""

    user: User
    kind: AttemptKind  # of the first round: GENERATE or REFINE
    request: GenerationRequest  # the prompt (or instruction) as logged, and validateCode
    first_message: str  # the first message to a chat model
    refinement: Refinement | None = None
    strategy: GeneratedStrategy | None = None  # the strategy being refined


@dataclass(frozen=True)
class _Round:
    """One request to the model and what the checks made of its answer."""

    number: int
    kind: AttemptKind
    prompt: str | None  # the message sent (None: the provider is no chat model)
    result: ProviderResult
    prepared: _Prepared
    verdict: Verdict
    seconds: float

    @property
    def problems(self) -> list[str]:
        """What goes back to the model for the next round."""
        report = self.prepared.verdict.report
        if self.verdict in (Verdict.NO_CODE, Verdict.NOT_CHECKED) or report is None:
            error = self.prepared.verdict.error or "The response contained no Python code"
            return [f"{error}: give the complete module in a single ```python fenced block"]
        return list(report.errors)

    def record(self) -> dict[str, Any]:
        if self.verdict in REPAIRABLE:
            error_message: str | None = "\n".join(self.problems)
        else:
            error_message = self.result.error
        return round_record(
            number=self.number,
            kind=self.kind,
            verdict=self.verdict,
            error_message=error_message,
            code=self.prepared.verdict.code,
            prompt=self.prompt,
            result=self.result,
            seconds=self.seconds,
        )


def answer_text(result: ProviderResult) -> str:
    """A model's answer as the next turn of the conversation shows it back to the model."""
    shown = []
    for part in result.parts:
        if part.kind is PartKind.EXECUTABLE_CODE:
            shown.append(f"```python\n{part.content}\n```")
        elif part.kind is PartKind.CODE_EXECUTION_RESULT:
            shown.append(f"Output:\n{part.content}")
        else:
            shown.append(part.content)
    return "\n".join(shown) or "(no answer)"


@dataclass(frozen=True)
class _Conclusion:
    """The rounds summed up: the round whose answer counts, the status, and why."""

    chosen: _Round
    status: GenerationStatus
    error: str | None
    repair_rounds: int
    applies: bool  # a strategy is created (generation) or gets a new version (refinement)


def conclude(job: _Job, rounds: list[_Round]) -> _Conclusion:
    """The last round with code counts (a repair that broke the provider keeps the code it
    had); a refinement whose code is unusable leaves the strategy as it was."""
    last = rounds[-1]
    chosen = next((r for r in reversed(rounds) if r.prepared.strategy_fields), last)
    verdict = chosen.prepared.verdict
    repairs = sum(1 for r in rounds if r.kind is AttemptKind.REPAIR)
    status, error = verdict.status, verdict.error
    if status is not GenerationStatus.SUCCESS and repairs:
        error = f"{error} (not repaired in {repairs} round{'s' if repairs != 1 else ''})"
        if chosen is not last and last.prepared.verdict.error:
            error += f"; the last round: {last.prepared.verdict.error}"
    applies = chosen.prepared.strategy_fields is not None
    if job.kind is AttemptKind.REFINE and job.strategy is not None:
        report = verdict.report
        applies = applies and report is not None and (report.valid or not job.request.validate)
        if not applies:
            status = GenerationStatus.FAILURE
            error = (
                f"{error or 'No usable code came back'}. The strategy was left as it was "
                f"(version {job.strategy.version})."
            )
    return _Conclusion(chosen, status, error, repairs, applies)


class Generator:
    """`providers` are the models a request may pick (`GenerationRequest.model`); a single
    provider is a registry of one. `trial_run`, when given, runs code that passed the static
    checks once on sample data (the sandbox) before it is called SUCCESS: code that parses but
    crashes is PARTIAL. `trial_budget` caps how many do so; the others are stored untried,
    with a warning. `prices` turn a generation's tokens into its estimated cost.

    A chat model whose code fails the checks gets the errors back and answers with a fix, up
    to `repair_rounds` times, all rounds within `time_limit_seconds`; each round is logged."""

    def __init__(
        self,
        providers: ProviderRegistry | CodeProvider,
        analyser: CodeAnalyser,
        rate_limit: RateLimit | None = None,
        trial_run: TrialRun | None = None,
        trial_budget: RateLimit | None = None,
        prices: PriceTable | None = None,
        repair_rounds: int = 2,
        time_limit_seconds: float = 300.0,
    ) -> None:
        if not isinstance(providers, ProviderRegistry):
            providers = ProviderRegistry([providers])
        self.providers = providers
        self.analyser = analyser
        self.prices = prices or PriceTable()
        self.rate_limit = rate_limit
        self.trial_run = trial_run
        self.trial_budget = trial_budget
        self.repair_rounds = repair_rounds
        self.time_limit_seconds = time_limit_seconds
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def drain(self) -> bool:
        """Wait until no generation is running (their logs are written); False on timeout.

        Called at shutdown before the database closes: uvicorn cancels the requests still
        running past its grace period and then shuts the app down at once, while the
        cancelled generations are still writing their FAILURE logs.
        """
        try:
            await asyncio.wait_for(self._idle.wait(), DRAIN_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("%d generation(s) still running at shutdown", self._in_flight)
            return False
        return True

    async def generate(
        self,
        user: User,
        request: GenerationRequest,
        on_stage: StageListener = _ignore_stage,
    ) -> GenerationOutcome:
        """`on_stage` hears each GenerationStage reached (SENT to VALIDATED again for each
        repair round); it must be quick and must not raise."""
        request = check_request(request)
        provider = self.providers.select(request.model)
        job = _Job(user, AttemptKind.GENERATE, request, user_prompt(request.prompt))
        return await self._start(job, provider, on_stage)

    async def refine(
        self,
        user: User,
        strategy_id: uuid.UUID,
        request: RefineRequest,
        on_stage: StageListener = _ignore_stage,
    ) -> GenerationOutcome:
        """The user's strategy changed as `request.instruction` asks, by the model: its next
        version when the code passes the same checks (and repair rounds) as a generation's;
        otherwise the strategy stays as it was and the FAILURE log says why."""
        request = check_refinement(request)
        strategy = await strategies.require_strategy(user, strategy_id)
        provider = self.providers.select(request.model)
        parameters = dict(strategy.parameters or {})
        refinement = Refinement(
            code=strategy.generated_code,
            parameters=parameters,
            prompt=strategy.original_prompt,
            instruction=request.instruction,
        )
        job = _Job(
            user,
            AttemptKind.REFINE,
            GenerationRequest(prompt=request.instruction, validate=request.validate),
            refine_prompt(strategy.generated_code, parameters, request.instruction),
            refinement,
            strategy,
        )
        return await self._start(job, provider, on_stage)

    async def _start(
        self, job: _Job, provider: CodeProvider, on_stage: StageListener
    ) -> GenerationOutcome:
        if self.rate_limit is not None:
            await self.rate_limit.hit(str(job.user.id))
        self._in_flight += 1
        self._idle.clear()
        telemetry.GENERATIONS_IN_FLIGHT.inc()
        try:
            outcome = await self._run(job, provider, on_stage)
        finally:
            self._in_flight -= 1
            telemetry.GENERATIONS_IN_FLIGHT.dec()
            if self._in_flight == 0:
                self._idle.set()
        on_stage(GenerationStage.STORED)
        return outcome

    async def _run(
        self, job: _Job, provider: CodeProvider, on_stage: StageListener
    ) -> GenerationOutcome:
        started = time.perf_counter()
        rounds: list[_Round] = []
        try:
            await self._converse(job, provider, rounds, on_stage)
        except asyncio.CancelledError:
            await self._store_when_cancelled(job, rounds, started)
            raise
        elapsed = time.perf_counter() - started
        return await _uninterruptible(self._store(job, rounds, elapsed))

    async def _converse(
        self, job: _Job, provider: CodeProvider, rounds: list[_Round], on_stage: StageListener
    ) -> None:
        """The first round, then a repair round for each answer the checks fail, while
        rounds and time are left; each round lands in `rounds`, even one cut short."""
        deadline = time.monotonic() + self.time_limit_seconds
        chat = isinstance(provider, ChatProvider)
        turns = [Turn("user", job.first_message)]
        kind = job.kind
        while True:
            number = len(rounds) + 1
            await self._round(
                job, provider, turns if chat else None, kind, deadline, rounds, on_stage
            )
            last = rounds[-1]
            if (
                not chat
                or not job.request.validate
                or last.verdict not in REPAIRABLE
                or number > self.repair_rounds
                or time.monotonic() >= deadline
            ):
                return
            turns = [
                *turns,
                Turn("assistant", answer_text(last.result)),
                Turn("user", repair_prompt(last.problems, last.prepared.verdict.code)),
            ]
            kind = AttemptKind.REPAIR

    async def _round(
        self,
        job: _Job,
        provider: CodeProvider,
        turns: list[Turn] | None,
        kind: AttemptKind,
        deadline: float,
        rounds: list[_Round],
        on_stage: StageListener,
    ) -> None:
        started = time.perf_counter()
        prompt = turns[-1].text if turns else None
        request = job.request

        def done(
            result: ProviderResult, prepared: _Prepared, verdict: Verdict | None = None
        ) -> None:
            verdict = verdict or classify(result, prepared.verdict.code, prepared.verdict.report)
            seconds = time.perf_counter() - started
            rounds.append(_Round(len(rounds) + 1, kind, prompt, result, prepared, verdict, seconds))

        on_stage(GenerationStage.SENT)
        try:
            result, timed_out = await self._ask(job, provider, turns, deadline)
        except asyncio.CancelledError:
            result = ProviderResult(
                provider=provider.name, model=provider.model, error=SHUTDOWN_MESSAGE
            )
            done(result, await prepare(request, result, self.analyser), Verdict.INTERRUPTED)
            raise
        on_stage(GenerationStage.RECEIVED)
        result = read_report(result)
        try:
            prepared = await prepare(request, result, self.analyser, on_stage)
        except asyncio.CancelledError:
            unchecked = replace(result, error=UNCHECKED_AT_SHUTDOWN)
            done(unchecked, await prepare(request, unchecked, self.analyser), Verdict.INTERRUPTED)
            raise
        try:
            prepared = await self._try_out(job.user, request, prepared)
        except asyncio.CancelledError:
            done(result, _with_warning(prepared, TRIAL_INTERRUPTED, request.validate))
            raise
        if prepared.verdict.code is not None:
            on_stage(GenerationStage.VALIDATED)
        done(result, prepared, Verdict.TIMED_OUT if timed_out else None)

    async def _ask(
        self, job: _Job, provider: CodeProvider, turns: list[Turn] | None, deadline: float
    ) -> tuple[ProviderResult, bool]:
        """The provider's answer within what is left of the time limit (True: it ran out)."""
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                if turns is not None:
                    assert isinstance(provider, ChatProvider)
                    return await provider.converse(turns), False
                if job.refinement is None:
                    return await provider.generate(job.request.prompt), False
                if isinstance(provider, RefiningProvider):
                    return await provider.refine(job.refinement), False
                message = CANNOT_REFINE.format(provider=provider.name)
        except TimeoutError:
            message = TIME_LIMIT_MESSAGE.format(seconds=self.time_limit_seconds)
            return ProviderResult(provider=provider.name, model=provider.model, error=message), True
        except Exception:
            # A bug in a provider must still leave a FAILURE log behind.
            log.exception("provider %s raised", provider.name)
            message = "Internal error while contacting the provider"
        return ProviderResult(provider=provider.name, model=provider.model, error=message), False

    async def _try_out(
        self, user: User, request: GenerationRequest, prepared: _Prepared
    ) -> _Prepared:
        """The trial run of code the static checks passed; a busy or missing sandbox leaves
        the verdict as it was, with a warning saying the check was skipped."""
        verdict = prepared.verdict
        if (
            self.trial_run is None
            or not request.validate
            or verdict.code is None
            or verdict.report is None
            or not verdict.report.valid
            or prepared.strategy_fields is None
        ):
            return prepared
        if self.trial_budget is not None:
            try:
                await self.trial_budget.hit("server")
            except RateLimited:
                return _with_warning(prepared, TRIAL_OVER_BUDGET, True)
        try:
            parameters = prepared.strategy_fields["parameters"]
            problems = await self.trial_run(user, verdict.code, parameters)
        except (SandboxBusy, SandboxUnavailable) as exc:
            return _with_warning(prepared, f"Trial run skipped: {exc.message}", True)
        except Exception:
            log.exception("the trial run of generated code failed")
            return _with_warning(prepared, "Trial run skipped: internal error", True)
        if not problems:
            return prepared
        return _with_report(prepared, with_errors(verdict.report, problems), True)

    async def _store_when_cancelled(self, job: _Job, rounds: list[_Round], started: float) -> None:
        """A generation cancelled at shutdown still leaves its log (and strategy) behind."""
        if not rounds:
            return
        elapsed = time.perf_counter() - started
        try:
            await _uninterruptible(self._store(job, rounds, elapsed))
        except Exception:
            log.exception("could not log a generation cancelled at shutdown")

    async def _store(self, job: _Job, rounds: list[_Round], elapsed: float) -> GenerationOutcome:
        outcome = conclude(job, rounds)
        chosen, prepared = outcome.chosen, outcome.chosen.prepared
        result = chosen.result
        first = rounds[0].result
        interpretation = result.interpretation or first.interpretation
        ignored = list(result.ignored_requirements or first.ignored_requirements)
        input_tokens = sum(r.result.input_tokens for r in rounds)
        output_tokens = sum(r.result.output_tokens for r in rounds)
        tokens = sum(r.result.tokens_used for r in rounds)
        author = versions.model_author(result.provider, result.model)
        strategy = job.strategy
        # Strategy (or its new version) and log land together or not at all (on the writing
        # connection: on SQLite, reads have one of their own, server/db.py).
        async with in_transaction("default"):
            fields = prepared.strategy_fields
            if job.kind is AttemptKind.GENERATE and fields is not None:
                strategy = await GeneratedStrategy.create(
                    user=job.user, original_prompt=job.request.prompt, **fields
                )
                # Version 1 (services/versions.py), in this same transaction.
                await versions.record_first_version(
                    strategy, instruction=job.request.prompt, author=author
                )
            elif strategy is not None and fields is not None and outcome.applies:
                strategy.status = fields["status"]
                strategy.description = fields["description"]
                new = versions.NewVersion(
                    code=fields["generated_code"],
                    parameters=fields["parameters"],
                    validation=fields["validation_results"],
                    instruction=job.request.prompt,
                    author=author,
                )
                await versions.add_version(strategy, new)
            generation_log = await StrategyGenerationLog.create(
                user=job.user,
                strategy=strategy,
                prompt=job.request.prompt,
                status=outcome.status,
                provider=result.provider,
                model=result.model,
                ai_response_raw=result.raw_response,
                extracted_code=prepared.verdict.code,
                error_message=outcome.error,
                processing_time_seconds=elapsed,
                tokens_used=tokens,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                estimated_cost_usd=self.prices.cost(result.model, input_tokens, output_tokens),
                attempts=[r.record() for r in rounds],
                repair_rounds=outcome.repair_rounds,
                interpretation=interpretation,
                ignored_requirements=ignored,
            )
        # Counted once logged, so the metrics and the generation logs agree.
        telemetry.record_generation(outcome.status.value, result.provider, tokens, elapsed)
        return GenerationOutcome(generation_log, strategy, elapsed)
