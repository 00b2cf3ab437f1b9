"""Any server that speaks OpenAI's chat completions, through the official `openai` SDK:
OpenAI itself, or a local model (Ollama, vLLM, llama.cpp's server) at OPENAI_BASE_URL.

Retries are ours (services/providers/retrying.py), not the SDK's, so every HTTP attempt is
recorded in the generation log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletion

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

LABEL = "The OpenAI-compatible API"
# Error codes OpenAI (and Azure OpenAI) use when the prompt itself is refused.
BLOCKED_PROMPT_CODES = frozenset({"content_filter", "content_policy_violation"})
# Servers need a key in the header; local ones ignore it.
KEYLESS_PLACEHOLDER = "no-key"


class OpenAIProvider:
    name = "openai"

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
        self.base_url = base_url
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self.temperature = temperature
        self._client = openai.AsyncOpenAI(
            api_key=api_key or KEYLESS_PLACEHOLDER,
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
        messages: list[Any] = [
            {"role": "system", "content": system_instruction(code_execution=False)},
            *({"role": turn.role, "content": turn.text} for turn in turns),
        ]

        async def attempt_once(attempt: Attempt) -> None:
            self._accept(await self._call(messages, attempt, result), result)

        return await with_retries(
            result,
            attempt_once,
            max_attempts=self.max_attempts,
            retry_base_seconds=self.retry_base_seconds,
        )

    async def _call(
        self, messages: list[Any], attempt: Attempt, result: ProviderResult
    ) -> ChatCompletion:
        try:
            # The SDK's own timeout covers the HTTP exchange; this bounds everything else too.
            response: Any = await asyncio.wait_for(
                self._client.chat.completions.create(
                    model=self.model, messages=messages, temperature=self.temperature
                ),
                self.timeout_seconds + 1.0,
            )
        except openai.APIStatusError as exc:
            attempt.http_status = exc.status_code
            result.raw_response = _error_body(exc)
            raise self._classify(exc) from None
        except (openai.APITimeoutError, TimeoutError):
            raise Retryable(f"{LABEL} did not answer within {self.timeout_seconds:g} s") from None
        except openai.APIConnectionError as exc:
            where = self.base_url or "api.openai.com"
            raise Retryable(
                f"Could not reach the OpenAI-compatible API at {where} "
                f"({type(exc.__cause__ or exc).__name__}; check OPENAI_BASE_URL)"
            ) from None
        except (ValueError, openai.APIResponseValidationError) as exc:
            attempt.http_status = 200
            raise Retryable(f"{LABEL} sent a response that is not valid JSON ({exc})") from None
        attempt.http_status = 200
        if not isinstance(response, ChatCompletion):  # the SDK hands non-JSON bodies back as text
            result.raw_response = str(response)[:MAX_RAW_CHARS]
            raise Retryable(f"{LABEL} sent a response that is not JSON")
        return response

    def _classify(self, exc: openai.APIStatusError) -> Exception:
        error = _error_object(exc.body)
        message = str(error.get("message") or "")
        code = str(error.get("code") or error.get("type") or "")
        detail = f"{LABEL} error {exc.status_code}" + (f": {message}" if message else "")
        if exc.status_code == 401:
            return Final(f"{LABEL} rejected the API key: the operator must check OPENAI_API_KEY")
        if exc.status_code == 403:
            return Final(f"{detail} (check OPENAI_API_KEY and its permissions)")
        if exc.status_code == 404:
            return Final(f"{detail} (check OPENAI_MODEL and OPENAI_BASE_URL)")
        if code in BLOCKED_PROMPT_CODES:
            return Final(f"{LABEL} blocked the prompt ({code}); rephrase the strategy")
        if exc.status_code == 429 and code == "insufficient_quota":
            return Final(f"{detail} (check the billing of OPENAI_API_KEY's account)")
        if exc.status_code == 429:
            hint = retry_after(exc.response.headers)
            return Retryable(f"{LABEL} rate limit exceeded: {message or code}", hint)
        if exc.status_code in RETRYABLE_STATUSES:
            return Retryable(detail, retry_after(exc.response.headers))
        return Final(detail)

    def _accept(self, response: ChatCompletion, result: ProviderResult) -> None:
        """Record a 200 answer; raise Final or Retryable when it holds nothing usable."""
        result.raw_response = response.model_dump_json(exclude_none=True)[:MAX_RAW_CHARS]
        if response.usage is not None:
            result.count_tokens(
                int(response.usage.prompt_tokens or 0), int(response.usage.completion_tokens or 0)
            )
        if not response.choices:
            raise Retryable(f"{LABEL} returned no choices")
        choice = response.choices[0]
        refusal = choice.message.refusal
        if refusal:
            raise Final(f"The model refused: {refusal.strip()[:300]}; rephrase the strategy")
        content = choice.message.content or ""
        finish = choice.finish_reason
        if not content.strip():
            if finish == "content_filter":
                raise Final(f"{LABEL} withheld the answer (content_filter); rephrase the strategy")
            if finish == "length":
                raise Final(f"{LABEL} hit the output token limit before writing anything")
            raise Retryable(f"{LABEL} returned an empty answer")
        result.parts = [ResponsePart(PartKind.TEXT, content)]
        result.truncated = finish == "length"
        if result.truncated:
            log.info("the OpenAI-compatible answer was cut at the token limit")


def _error_object(body: object) -> dict[str, Any]:
    """OpenAI's {"error": {...}}; some servers send the object itself or a plain string."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner
        return {"message": str(inner)}
    return {"message": str(body)} if body else {}


def _error_body(exc: openai.APIStatusError) -> str:
    if isinstance(exc.body, dict | list):
        return json.dumps(exc.body)[:MAX_RAW_CHARS]
    return exc.response.text[:MAX_RAW_CHARS]
