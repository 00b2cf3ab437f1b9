"""A scriptable stand-in for Anthropic's Messages REST API, so the real `anthropic` SDK can be
tested offline.

    with AnthropicStandin() as standin:
        standin.script(error(529), code_answer(CODE))
        client = anthropic.AsyncAnthropic(api_key="k", base_url=standin.base_url)

CLI (for benchmarks): python -m tests.support.anthropic_standin --port 8767 --latency 0.05
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

DEFAULT_MODEL = "claude-sonnet-4-6"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def message_payload(
    text: str | None,
    tokens: tuple[int, int] = (120, 480),
    stop_reason: str = "end_turn",
    model: str = DEFAULT_MODEL,
) -> dict[str, Any]:
    """The JSON body of a Messages answer with one text block (none when `text` is None)."""
    prompt, output = tokens
    return {
        "id": "msg_standin",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if text is None else [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": output},
    }


def code_answer(code: str = DEFAULT_CODE, tokens: tuple[int, int] = (120, 480)) -> Reply:
    """A model answer with `code` in a fenced block, as the system instruction asks."""
    return json_reply(message_payload(f"Here is the strategy:\n\n```python\n{code}\n```\n", tokens))


def text_answer(text: str, tokens: tuple[int, int] = (120, 40)) -> Reply:
    return json_reply(message_payload(text, tokens))


def truncated_answer(code: str = DEFAULT_CODE, keep: int = 300) -> Reply:
    """The answer cut at max_tokens: stop_reason "max_tokens", the code unfinished."""
    text = f"Here is the strategy:\n\n```python\n{code}"[:keep]
    return json_reply(message_payload(text, (120, 8192), stop_reason="max_tokens"))


def refusal(text: str | None = None) -> Reply:
    """Claude's safety classifier stopped the answer (stop_reason "refusal"); with no text,
    the prompt itself was refused before any output."""
    return json_reply(message_payload(text, (120, 0 if text is None else 20), "refusal"))


def empty_answer() -> Reply:
    return json_reply(message_payload(None, (120, 0)))


def error(status: int, message: str = "", retry_after: float | None = None) -> Reply:
    """Anthropic's error envelope; `retry_after` adds the header 429s and 529s carry."""
    body = {
        "type": "error",
        "error": {
            "type": _ERROR_TYPES.get(status, "api_error"),
            "message": message or f"Stand-in error {status}",
        },
        "request_id": "req_standin",
    }
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return json_reply(body, status, headers)


def hang(seconds: float, then: Reply | None = None) -> Reply:
    """Answer (with `then`, default a code answer) only after `seconds`."""
    return with_delay(then or code_answer(), seconds)


class AnthropicStandin(HttpStandin):
    """POST /v1/messages."""

    vendor = "Anthropic"
    endpoint = re.compile(r"^/v1/messages$")

    def default_answer(self) -> Step:
        return code_answer()

    def invalid_key_reply(self) -> Reply:
        return error(401, "invalid x-api-key")


if __name__ == "__main__":
    serve_main(AnthropicStandin)
