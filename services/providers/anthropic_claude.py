"""Anthropic's Claude through the official `anthropic` SDK (the Messages API).

Retries are ours (services/providers/retrying.py), not the SDK's, so every HTTP attempt is
recorded in the generation log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import anthropic
from anthropic.types import Message

from services.providers.base import Attempt, PartKind, ProviderResult, ResponsePart, Turn
from services.providers.prompting import system_instruction, user_prompt
from services.providers.retrying import (
    MAX_RAW_CHARS,
    RETRYABLE_STATUSES,
    Final,
    Retryable,
    retry_after,
    with_retries,
)

log = logging.getLogger(__name__)

LABEL = "Anthropic"
OVERLOADED = 529  # Anthropic's "overloaded_error"


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str = "",
        max_tokens: int = 8192,
        timeout_seconds: float = 60.0,
        max_attempts: int = 3,
        retry_base_seconds: float = 1.0,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.max_tokens = max_tokens
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout_seconds,
            max_retries=0,  # one HTTP call per attempt: we retry and log each one
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def generate(self, prompt: str) -> ProviderResult:
        return await self.converse([Turn("user", user_prompt(prompt))])

    async def converse(self, turns: Sequence[Turn]) -> ProviderResult:
        result = ProviderResult(provider=self.name, model=self.model)
        messages: list[Any] = [{"role": turn.role, "content": turn.text} for turn in turns]

        async def attempt_once(attempt: Attempt) -> None:
            self._accept(await self._call(messages, attempt, result), result)

        return await with_retries(
            result,
            attempt_once,
            max_attempts=self.max_attempts,
            retry_base_seconds=self.retry_base_seconds,
        )

    async def _call(self, messages: list[Any], attempt: Attempt, result: ProviderResult) -> Message:
        try:
            # The SDK's own timeout covers the HTTP exchange; this bounds everything else too.
            response: Any = await asyncio.wait_for(
                self._client.messages.create(
                    model=self.model,
                    max_tokens=self.max_tokens,
                    system=system_instruction(code_execution=False),
                    messages=messages,
                ),
                self.timeout_seconds + 1.0,
            )
        except anthropic.APIStatusError as exc:
            attempt.http_status = exc.status_code
            result.raw_response = _error_body(exc)
            raise self._classify(exc) from None
        except (anthropic.APITimeoutError, TimeoutError):
            raise Retryable(f"{LABEL} did not answer within {self.timeout_seconds:g} s") from None
        except anthropic.APIConnectionError as exc:
            where = self.base_url or "api.anthropic.com"
            raise Retryable(
                f"Could not reach {LABEL} at {where} "
                f"({type(exc.__cause__ or exc).__name__}; check ANTHROPIC_BASE_URL)"
            ) from None
        except (ValueError, anthropic.APIResponseValidationError) as exc:
            attempt.http_status = 200
            raise Retryable(f"{LABEL} sent a response that is not valid JSON ({exc})") from None
        attempt.http_status = 200
        if not isinstance(response, Message):  # the SDK hands non-JSON bodies back as text
            result.raw_response = str(response)[:MAX_RAW_CHARS]
            raise Retryable(f"{LABEL} sent a response that is not JSON")
        return response

    def _classify(self, exc: anthropic.APIStatusError) -> Exception:
        error = _error_object(exc.body)
        message = str(error.get("message") or "")
        kind = str(error.get("type") or "")
        detail = f"{LABEL} error {exc.status_code}" + (f" {kind}" if kind else "")
        detail += f": {message}" if message else ""
        if exc.status_code == 401:
            return Final(f"{LABEL} rejected the API key: the operator must check ANTHROPIC_API_KEY")
        if exc.status_code == 403:
            return Final(f"{detail} (check ANTHROPIC_API_KEY and its permissions)")
        if exc.status_code == 404:
            return Final(f"{detail} (check ANTHROPIC_MODEL and ANTHROPIC_BASE_URL)")
        if exc.status_code == 429:
            hint = retry_after(exc.response.headers)
            return Retryable(f"{LABEL} rate limit exceeded: {message or kind}", hint)
        if exc.status_code in RETRYABLE_STATUSES or exc.status_code == OVERLOADED:
            return Retryable(detail, retry_after(exc.response.headers))
        return Final(detail)

    def _accept(self, response: Message, result: ProviderResult) -> None:
        """Record a 200 answer; raise Final or Retryable when it holds nothing usable."""
        result.raw_response = response.model_dump_json(exclude_none=True)[:MAX_RAW_CHARS]
        usage = response.usage
        # Cached prompt tokens are still read (and billed, at other rates): count them as input.
        read = (
            int(usage.input_tokens or 0)
            + int(usage.cache_creation_input_tokens or 0)
            + int(usage.cache_read_input_tokens or 0)
        )
        result.count_tokens(read, int(usage.output_tokens or 0))
        stop = response.stop_reason
        if stop == "refusal":
            raise Final(f"{LABEL} declined to answer (refusal); rephrase the strategy")
        text = "".join(block.text for block in response.content if block.type == "text")
        if not text.strip():
            if stop == "max_tokens":
                raise Final(
                    f"{LABEL} hit the output token limit before writing anything "
                    "(check ANTHROPIC_MAX_TOKENS)"
                )
            raise Retryable(f"{LABEL} returned an empty answer")
        result.parts = [ResponsePart(PartKind.TEXT, text)]
        result.truncated = stop == "max_tokens"
        if result.truncated:
            log.info("the Anthropic answer was cut at ANTHROPIC_MAX_TOKENS")


def _error_object(body: object) -> dict[str, Any]:
    """Anthropic's {"type": "error", "error": {"type", "message"}}."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner
        return {"message": str(inner)}
    return {"message": str(body)} if body else {}


def _error_body(exc: anthropic.APIStatusError) -> str:
    if isinstance(exc.body, dict | list):
        return json.dumps(exc.body)[:MAX_RAW_CHARS]
    return exc.response.text[:MAX_RAW_CHARS]
