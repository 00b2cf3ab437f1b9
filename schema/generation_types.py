"""The rounds of a generation (GenerationLog.attempts) and the refinement input."""

from __future__ import annotations

from typing import Any

import strawberry

from services.attempts import AttemptKind
from services.generation import RefineRequest

strawberry.enum(
    AttemptKind,
    name="AttemptKind",
    description="GENERATE: the first answer to a prompt; REFINE: the first answer to a "
    "refinement instruction; REPAIR: an answer to the errors of the round before.",
)


@strawberry.type(description="One HTTP exchange with the provider (its retries are several).")
class HttpExchange:
    number: int
    duration_seconds: float
    http_status: int | None
    error: str | None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> HttpExchange:
        return cls(
            number=int(record.get("number", 0)),
            duration_seconds=float(record.get("durationSeconds", 0.0)),
            http_status=record.get("httpStatus"),
            error=record.get("error"),
        )


@strawberry.type(
    description="One call to a model within a generation or refinement (a round): the first "
    "answer, then one REPAIR per time the checks failed and the errors went back to the model."
)
class GenerationAttempt:
    number: int = strawberry.field(description="1, 2, ... in order")
    kind: AttemptKind
    verdict: str = strawberry.field(
        description='What the checks made of the answer: "valid", "syntax error", "missing '
        'function", "invalid code", "trial run failed", "no code", "not checked", "provider '
        'error", "timed out" or "interrupted".'
    )
    error_message: str | None = strawberry.field(
        description="The errors fed back to the model for the next round (or that would have "
        "been, when no round was left); a provider's error."
    )
    extracted_code: str | None
    tokens_used: int
    input_tokens: int
    output_tokens: int
    processing_time_seconds: float = strawberry.field(
        description="The whole round: the model's answer, the checks and the trial run."
    )
    prompt: str | None = strawberry.field(
        description="The message sent in this round (the earlier rounds' messages and answers "
        "went with it); null for the template provider, which takes no messages."
    )
    response: str | None = strawberry.field(description="The provider's answer, as received.")
    duration_seconds: float = strawberry.field(description="Of the round's last HTTP exchange.")
    http_status: int | None = strawberry.field(description="Of the round's last HTTP exchange.")
    error: str | None = strawberry.field(description="Of the round's last HTTP exchange.")
    http_exchanges: list[HttpExchange] = strawberry.field(
        description="Every HTTP exchange of the round, retries included."
    )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> GenerationAttempt:
        return cls(
            number=int(record.get("number", 0)),
            kind=AttemptKind(record.get("kind", AttemptKind.GENERATE.value)),
            verdict=str(record.get("verdict", "")),
            error_message=record.get("errorMessage"),
            extracted_code=record.get("extractedCode"),
            tokens_used=int(record.get("tokensUsed", 0)),
            input_tokens=int(record.get("inputTokens", 0)),
            output_tokens=int(record.get("outputTokens", 0)),
            processing_time_seconds=float(record.get("processingTimeSeconds", 0.0)),
            prompt=record.get("prompt"),
            response=record.get("response"),
            duration_seconds=float(record.get("durationSeconds", 0.0)),
            http_status=record.get("httpStatus"),
            error=record.get("error"),
            http_exchanges=[HttpExchange.from_record(r) for r in record.get("httpExchanges", [])],
        )


@strawberry.input(description="A change to a strategy, in the trader's words.")
class RefineStrategyInput:
    instruction: str = strawberry.field(
        description='e.g. "make the stop trailing", "add a volume filter"'
    )
    model: str | None = strawberry.field(
        default=None, description="A ModelInfo.id (see `models`); default: the default model."
    )
    validate_code: bool | None = strawberry.field(
        default=True,
        description="Check the new code as a generation's is (and repair it); false stores it "
        "unchecked as a DRAFT version.",
    )

    def to_request(self) -> RefineRequest:
        return RefineRequest(
            instruction=self.instruction,
            model=self.model,
            validate=self.validate_code is not False,
        )
