"""A scriptable stand-in for OpenAI's chat completions REST API (as OpenAI, Ollama, vLLM and
llama.cpp's server speak it), so the real `openai` SDK can be tested offline.

    with OpenAIStandin() as standin:
        standin.script(error(429, "slow down"), code_answer(CODE))
        client = openai.AsyncOpenAI(api_key="k", base_url=standin.base_url + "/v1")

CLI (for benchmarks): python -m tests.support.openai_standin --port 8766 --latency 0.05
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.http_standin import (
    DEFAULT_CODE,
    HttpStandin,
    Reply,
    Step,
    json_reply,
    serve_main,
    with_delay,
)
from tests.support.http_standin import non_json as non_json

DEFAULT_MODEL = "gpt-4.1"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "requests",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}


def completion_payload(
    content: str | None,
    tokens: tuple[int, int] = (120, 480),
    finish_reason: str = "stop",
    refusal: str | None = None,
    model: str = DEFAULT_MODEL,
) -> dict[str, Any]:
    """The JSON body of a chat completion with one choice."""
    prompt, completion = tokens
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def code_answer(code: str = DEFAULT_CODE, tokens: tuple[int, int] = (120, 480)) -> Reply:
    """A model answer with `code` in a fenced block, as the system instruction asks."""
    return json_reply(
        completion_payload(f"Here is the strategy:\n\n```python\n{code}\n```\n", tokens)
    )


def text_answer(text: str, tokens: tuple[int, int] = (120, 40)) -> Reply:
    return json_reply(completion_payload(text, tokens))


def truncated_answer(code: str = DEFAULT_CODE, keep: int = 300) -> Reply:
    """The answer cut at the output limit: finish_reason "length", the code unfinished."""
    text = f"Here is the strategy:\n\n```python\n{code}"[:keep]
    return json_reply(completion_payload(text, (120, 4096), finish_reason="length"))


def refusal(message: str = "I'm sorry, I can't help with that.") -> Reply:
    """The model declined: `refusal` set, no content."""
    return json_reply(completion_payload(None, (120, 12), refusal=message))


def content_filtered() -> Reply:
    """The answer was withheld by the content filter: no content."""
    return json_reply(completion_payload(None, (120, 0), finish_reason="content_filter"))


def no_choices() -> Reply:
    payload = completion_payload("")
    payload["choices"] = []
    return json_reply(payload)


def error(
    status: int,
    message: str = "",
    code: str | None = None,
    retry_after: float | None = None,
) -> Reply:
    """OpenAI's error envelope; `retry_after` adds the header 429s carry."""
    body = {
        "error": {
            "message": message or f"Stand-in error {status}",
            "type": _ERROR_TYPES.get(status, "server_error"),
            "param": None,
            "code": code,
        }
    }
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return json_reply(body, status, headers)


def blocked_prompt() -> Reply:
    """The prompt itself was refused by the moderation layer (400 content_policy_violation)."""
    return error(
        400,
        "Your request was rejected as a result of our safety system.",
        code="content_policy_violation",
    )


def hang(seconds: float, then: Reply | None = None) -> Reply:
    """Answer (with `then`, default a code answer) only after `seconds`."""
    return with_delay(then or code_answer(), seconds)


def _invalid_key_reply() -> Reply:
    return error(401, "Incorrect API key provided: sk-****.", code="invalid_api_key")


class OpenAIStandin(HttpStandin):
    """POST /v1/chat/completions (also without /v1, as some gateways mount it)."""

    vendor = "OpenAI"
    endpoint = re.compile(r"^(?:/v1)?/chat/completions$")

    def default_answer(self) -> Step:
        return code_answer()

    def invalid_key_reply(self) -> Reply:
        return _invalid_key_reply()

    @property
    def api_base_url(self) -> str:
        """What OPENAI_BASE_URL is set to, as for Ollama's http://127.0.0.1:11434/v1."""
        return f"{self.base_url}/v1"


if __name__ == "__main__":
    serve_main(OpenAIStandin)
