"""The generation pipeline: provider -> extraction -> validation -> storage, one log per request.

Provider faults are outcomes (a FAILURE log), not exceptions: the caller always gets the log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from models import (
    GeneratedStrategy,
    GenerationStatus,
    StrategyGenerationLog,
    StrategyStatus,
    StrategyType,
    User,
)
from services.errors import BadInput
from services.extraction import extract_code
from services.prompt_analysis import analyse_prompt
from services.providers.base import CodeProvider, ProviderResult
from services.rate_limits import RateLimit
from services.strategies import MAX_NAME_LENGTH
from services.validation import (
    ValidationReport,
    extract_default_params,
    extract_description,
    validate_code,
)

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 4000
MAX_DESCRIPTION_CHARS = 2000


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    name: str | None = None
    strategy_type: StrategyType | None = None
    validate: bool = True


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


def check_request(request: GenerationRequest) -> GenerationRequest:
    prompt = request.prompt.strip()
    if not prompt:
        raise BadInput("prompt must not be empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadInput(f"prompt must be at most {MAX_PROMPT_CHARS} characters")
    name = request.name.strip() if request.name is not None else None
    if name is not None and not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise BadInput(f"name must be 1 to {MAX_NAME_LENGTH} characters")
    return GenerationRequest(prompt, name, request.strategy_type, request.validate)


def judge(result: ProviderResult, validate: bool) -> _Verdict:
    """Apply the contract's status rules to what the provider returned."""
    if result.error:
        return _Verdict(GenerationStatus.FAILURE, None, None, result.error)
    code = extract_code(result.parts)
    if code is None:
        return _Verdict(
            GenerationStatus.FAILURE, None, None, "The response contained no Python code"
        )
    report = validate_code(code)
    if validate and not report.valid:
        message = "Generated code failed validation: " + "; ".join(report.errors)
        return _Verdict(GenerationStatus.PARTIAL, code, report, message)
    return _Verdict(GenerationStatus.SUCCESS, code, report, None)


def strategy_status(verdict: _Verdict, validate: bool) -> StrategyStatus:
    assert verdict.report is not None
    if not verdict.report.valid:
        return StrategyStatus.ERROR
    return StrategyStatus.VALIDATED if validate else StrategyStatus.DRAFT


class Generator:
    def __init__(self, provider: CodeProvider, rate_limit: RateLimit | None = None) -> None:
        self.provider = provider
        self.rate_limit = rate_limit

    async def generate(self, user: User, request: GenerationRequest) -> GenerationOutcome:
        request = check_request(request)
        if self.rate_limit is not None:
            await self.rate_limit.hit(str(user.id))
        started = time.perf_counter()
        try:
            result = await self.provider.generate(request.prompt)
        except Exception:
            # A bug in a provider must still leave a FAILURE log behind.
            log.exception("provider %s raised", self.provider.name)
            result = ProviderResult(
                provider=self.provider.name,
                model=self.provider.model,
                error="Internal error while contacting the provider",
            )
        verdict = judge(result, request.validate)
        elapsed = time.perf_counter() - started
        return await self._store(user, request, result, verdict, elapsed)

    async def _store(
        self,
        user: User,
        request: GenerationRequest,
        result: ProviderResult,
        verdict: _Verdict,
        elapsed: float,
    ) -> GenerationOutcome:
        strategy = None
        # Strategy and log land together or not at all.
        async with in_transaction():
            if verdict.code is not None and verdict.report is not None:
                intent = analyse_prompt(request.prompt)
                strategy = await GeneratedStrategy.create(
                    user=user,
                    name=(request.name or intent.name)[:MAX_NAME_LENGTH],
                    description=(extract_description(verdict.code) or request.prompt)[
                        :MAX_DESCRIPTION_CHARS
                    ],
                    original_prompt=request.prompt,
                    generated_code=verdict.code,
                    strategy_type=request.strategy_type or StrategyType[intent.strategy_type],
                    status=strategy_status(verdict, request.validate),
                    validation_results=verdict.report.as_dict(),
                    parameters=extract_default_params(verdict.code),
                )
            generation_log = await StrategyGenerationLog.create(
                user=user,
                strategy=strategy,
                prompt=request.prompt,
                status=verdict.status,
                provider=result.provider,
                model=result.model,
                ai_response_raw=result.raw_response,
                extracted_code=verdict.code,
                error_message=verdict.error,
                processing_time_seconds=elapsed,
                tokens_used=result.tokens_used,
                attempts=[attempt.as_dict() for attempt in result.attempts],
            )
        return GenerationOutcome(generation_log, strategy, elapsed)
