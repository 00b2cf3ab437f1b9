"""Google Gemini through the official async `google-genai` client, code-execution tool on.

Retries are ours, not the SDK's, so that every HTTP attempt is recorded in the generation log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from services.providers.base import Attempt, PartKind, ProviderResult, ResponsePart, Turn
from services.providers.prompting import system_instruction, user_prompt
from services.providers.retrying import (
    MAX_RAW_CHARS,
    RETRYABLE_STATUSES,
    Final,
    Retryable,
    with_retries,
)

log = logging.getLogger(__name__)

# Finish reasons that mean "the answer was withheld", as opposed to a normal stop.
BLOCKING_FINISH_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}
)
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")
# The SDK talks through httpx or its fork httpx2, whichever is installed.
try:
    import httpx2

    _HTTP_MODULES: tuple[Any, ...] = (httpx, httpx2)
except ImportError:  # pragma: no cover - depends on the SDK's optional dependency
    _HTTP_MODULES = (httpx,)
_TIMEOUTS: tuple[type[BaseException], ...] = (
    TimeoutError,
    *(m.TimeoutException for m in _HTTP_MODULES),
)
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = tuple(m.TransportError for m in _HTTP_MODULES)
# ... or through aiohttp, when that is installed (the SDK then prefers it for async calls).
try:
    import aiohttp

    _TRANSPORT_ERRORS += (aiohttp.ClientConnectionError,)
except ImportError:  # pragma: no cover - depends on what else is installed
    pass


class GeminiProvider:
    name = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str = "",
        timeout_seconds: float = 60.0,
        max_attempts: int = 3,
        retry_base_seconds: float = 1.0,
        temperature: float = 0.2,
    ) -> None:
        self.model = model
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        http_options = types.HttpOptions(
            base_url=base_url or None,
            api_version="v1beta",  # code execution and system instructions live here
            timeout=int(timeout_seconds * 1000),
            retry_options=None,  # one HTTP call per attempt: we retry and log each one
        )
        self._client = genai.Client(api_key=api_key, http_options=http_options)
        self._config = types.GenerateContentConfig(
            system_instruction=system_instruction(code_execution=True),
            tools=[types.Tool(code_execution=types.ToolCodeExecution())],
            temperature=temperature,
        )

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    async def generate(self, prompt: str) -> ProviderResult:
        return await self.converse([Turn("user", user_prompt(prompt))])

    async def converse(self, turns: Sequence[Turn]) -> ProviderResult:
        result = ProviderResult(provider=self.name, model=self.model)
        contents = [
            types.Content(
                role="model" if turn.role == "assistant" else "user",
                parts=[types.Part(text=turn.text)],
            )
            for turn in turns
        ]

        async def attempt_once(attempt: Attempt) -> None:
            self._accept(await self._call(contents, attempt, result), result)

        return await with_retries(
            result,
            attempt_once,
            max_attempts=self.max_attempts,
            retry_base_seconds=self.retry_base_seconds,
        )

    async def _call(
        self, contents: list[types.Content], attempt: Attempt, result: ProviderResult
    ) -> types.GenerateContentResponse:
        try:
            # The SDK's own timeout covers the HTTP exchange; this bounds everything else too.
            response = await asyncio.wait_for(
                self._client.aio.models.generate_content(
                    model=self.model,
                    contents=contents,
                    config=self._config,
                ),
                self.timeout_seconds + 1.0,
            )
        except genai_errors.APIError as exc:
            attempt.http_status = exc.code
            result.raw_response = _error_body(exc)
            raise self._classify(exc) from exc
        except _TIMEOUTS:
            raise Retryable(f"Gemini did not answer within {self.timeout_seconds:g} s") from None
        except _TRANSPORT_ERRORS as exc:
            raise Retryable(f"Could not reach Gemini ({type(exc).__name__})") from None
        except ValueError as exc:  # includes json.JSONDecodeError and pydantic's errors
            attempt.http_status = 200
            raise Retryable(f"Gemini sent a response that is not valid JSON ({exc})") from None
        attempt.http_status = 200
        return response

    def _classify(self, exc: genai_errors.APIError) -> Exception:
        status = exc.status or ""
        message = exc.message or ""
        hint = _retry_delay(exc)
        label = f"Gemini error {exc.code} {status}".strip()
        detail = f"{label}: {message}" if message else label
        bad_key = exc.code == 400 and "API key not valid" in message
        if bad_key or _reason(exc) == "API_KEY_INVALID":
            return Final("Gemini rejected the API key: the operator must check GEMINI_API_KEY")
        if exc.code in (401, 403):
            return Final(f"{detail} (check GEMINI_API_KEY and its permissions)")
        if exc.code == 404:
            return Final(f"{detail} (check GEMINI_MODEL)")
        if exc.code == 429:
            return Retryable(f"Gemini rate limit or quota exceeded: {message or status}", hint)
        if exc.code in RETRYABLE_STATUSES:
            return Retryable(detail, hint)
        return Final(detail)

    def _accept(self, response: types.GenerateContentResponse, result: ProviderResult) -> None:
        """Record a 200 answer; raise Final when it holds nothing usable."""
        raw = response.model_dump_json(exclude_none=True, exclude={"sdk_http_response"})
        result.raw_response = raw[:MAX_RAW_CHARS]
        usage = response.usage_metadata
        if usage is not None:
            # Tool-use prompts are read like the prompt; thoughts are billed as output.
            read = int(usage.prompt_token_count or 0) + int(usage.tool_use_prompt_token_count or 0)
            total = int(usage.total_token_count or 0)
            result.count_tokens(read, max(total - read, 0))
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason:
            reason = _enum_name(feedback.block_reason)
            raise Final(f"Gemini blocked the prompt ({reason}); rephrase the strategy")
        candidates = response.candidates or []
        if not candidates:
            raise Retryable("Gemini returned no candidates")
        candidate = candidates[0]
        parts = (candidate.content.parts if candidate.content else None) or []
        finish = _enum_name(candidate.finish_reason) if candidate.finish_reason else ""
        if not parts and finish in BLOCKING_FINISH_REASONS:
            raise Final(f"Gemini withheld the answer ({finish}); rephrase the strategy")
        result.parts = [p for p in (_part(part) for part in parts) if p is not None]
        result.error = None
        result.truncated = finish == "MAX_TOKENS"
        if result.truncated:
            log.info("Gemini answer was cut at the token limit")


def _part(part: types.Part) -> ResponsePart | None:
    if part.executable_code is not None and part.executable_code.code:
        return ResponsePart(PartKind.EXECUTABLE_CODE, part.executable_code.code)
    if part.code_execution_result is not None:
        return ResponsePart(PartKind.CODE_EXECUTION_RESULT, part.code_execution_result.output or "")
    if part.text and not part.thought:
        return ResponsePart(PartKind.TEXT, part.text)
    return None


def _enum_name(value: Any) -> str:
    return str(getattr(value, "value", value)).rsplit(".", 1)[-1]


def _details(exc: genai_errors.APIError) -> list[Any]:
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    return details if isinstance(details, list) else []


def _reason(exc: genai_errors.APIError) -> str | None:
    for detail in _details(exc):
        if isinstance(detail, dict) and detail.get("reason"):
            return str(detail["reason"])
    return None


def _retry_delay(exc: genai_errors.APIError) -> float | None:
    """Google's RetryInfo detail, else the Retry-After header."""
    for detail in _details(exc):
        if isinstance(detail, dict) and "retryDelay" in detail:
            match = _RETRY_DELAY.match(str(detail["retryDelay"]))
            if match:
                return float(match[1])
    headers = getattr(exc.response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _error_body(exc: genai_errors.APIError) -> str:
    if isinstance(exc.details, dict | list):
        return json.dumps(exc.details)[:MAX_RAW_CHARS]
    return str(exc.details)[:MAX_RAW_CHARS]
