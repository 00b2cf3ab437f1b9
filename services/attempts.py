"""The rounds of a generation or refinement, as GenerationLog.attempts stores and shows them.

A round is one request to the model: the first (GENERATE, or REFINE for a refinement), then
one REPAIR per time the checks failed and the errors went back. A round may take several
HTTP exchanges (the provider's retries, services/providers/retrying.py): the round's
`durationSeconds`, `httpStatus` and `error` describe its last exchange, and `httpExchanges`
lists them all. Logs written before rounds existed stored the HTTP exchanges alone: they
read as one GENERATE round (`rounds_of`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from models import GenerationStatus, StrategyGenerationLog
from services.providers.base import ProviderResult
from services.providers.retrying import MAX_RAW_CHARS
from services.validation import ValidationReport

TRIAL_RUN_PREFIX = "Trial run"


class AttemptKind(StrEnum):
    GENERATE = "GENERATE"
    REPAIR = "REPAIR"
    REFINE = "REFINE"


class Verdict(StrEnum):
    """What the checks made of one round's answer."""

    VALID = "valid"
    SYNTAX_ERROR = "syntax error"
    MISSING_FUNCTION = "missing function"
    INVALID_CODE = "invalid code"  # a rule broken: a forbidden import or call, a bad signal
    TRIAL_RUN_FAILED = "trial run failed"  # crashed, or returned the wrong shape, on sample data
    NO_CODE = "no code"
    NOT_CHECKED = "not checked"  # the answer could not be analysed (too complex, busy)
    PROVIDER_ERROR = "provider error"
    TIMED_OUT = "timed out"
    INTERRUPTED = "interrupted"  # the server shut down


# Verdicts a model can fix when told what went wrong.
REPAIRABLE = frozenset(
    {
        Verdict.SYNTAX_ERROR,
        Verdict.MISSING_FUNCTION,
        Verdict.INVALID_CODE,
        Verdict.TRIAL_RUN_FAILED,
        Verdict.NO_CODE,
    }
)


def classify(result: ProviderResult, code: str | None, report: ValidationReport | None) -> Verdict:
    if result.error:
        return Verdict.PROVIDER_ERROR
    if code is None:
        return Verdict.NO_CODE
    if report is None:
        return Verdict.NOT_CHECKED
    if not report.syntax_valid:
        return Verdict.SYNTAX_ERROR
    if not report.has_function:
        return Verdict.MISSING_FUNCTION
    if report.valid:
        return Verdict.VALID
    if all(error.startswith(TRIAL_RUN_PREFIX) for error in report.errors):
        return Verdict.TRIAL_RUN_FAILED
    return Verdict.INVALID_CODE


def round_record(
    *,
    number: int,
    kind: AttemptKind,
    verdict: Verdict,
    error_message: str | None,
    code: str | None,
    prompt: str | None,
    result: ProviderResult,
    seconds: float,
) -> dict[str, Any]:
    """One round as stored in StrategyGenerationLog.attempts (camelCase, as the API shows it)."""
    exchanges = [attempt.as_dict() for attempt in result.attempts]
    last = exchanges[-1] if exchanges else {}
    return {
        "number": number,
        "kind": kind.value,
        "verdict": verdict.value,
        "errorMessage": error_message,
        "extractedCode": code,
        "tokensUsed": result.tokens_used,
        "inputTokens": result.input_tokens,
        "outputTokens": result.output_tokens,
        "processingTimeSeconds": round(seconds, 4),
        "prompt": prompt,
        "response": (result.raw_response or "")[:MAX_RAW_CHARS] or None,
        "durationSeconds": last.get("durationSeconds", 0.0),
        "httpStatus": last.get("httpStatus"),
        "error": last.get("error"),
        "httpExchanges": exchanges,
    }


def rounds_of(entry: StrategyGenerationLog) -> list[dict[str, Any]]:
    """The log's rounds; a log from before rounds (HTTP exchanges only) as its one round."""
    records: list[dict[str, Any]] = list(entry.attempts or [])
    if not records or any("kind" in record for record in records):
        return records
    last = records[-1]
    failed_checks = "failed validation" in (entry.error_message or "")
    if entry.status is GenerationStatus.SUCCESS or (entry.extracted_code and not failed_checks):
        verdict = Verdict.VALID
    elif entry.extracted_code is None:
        verdict = Verdict.PROVIDER_ERROR if last.get("error") else Verdict.NO_CODE
    else:
        verdict = Verdict.INVALID_CODE
    return [
        {
            "number": 1,
            "kind": AttemptKind.GENERATE.value,
            "verdict": verdict.value,
            "errorMessage": entry.error_message,
            "extractedCode": entry.extracted_code,
            "tokensUsed": entry.tokens_used,
            "inputTokens": entry.input_tokens,
            "outputTokens": entry.output_tokens,
            "processingTimeSeconds": entry.processing_time_seconds,
            "prompt": None,
            "response": entry.ai_response_raw,
            "durationSeconds": last.get("durationSeconds", 0.0),
            "httpStatus": last.get("httpStatus"),
            "error": last.get("error"),
            "httpExchanges": records,
        }
    ]
