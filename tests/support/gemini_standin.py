"""A scriptable stand-in for Gemini's REST API, so the real SDK can be tested offline.

The server machinery (threads, scripting, lifecycle) is tests/support/http_standin.py's;
this module knows Gemini's paths, answers and errors. With an empty script the default step
is a valid code answer.

    with GeminiStandin() as standin:
        standin.script(error(429, "quota"), code_answer(CODE))
        client = genai.Client(api_key="k", http_options=HttpOptions(base_url=standin.base_url))

CLI (for benchmarks): python -m tests.support.gemini_standin --port 8765 --latency 0.05
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from tests.support.http_standin import DEFAULT_CODE as DEFAULT_CODE
from tests.support.http_standin import (
    HttpStandin,
    KeyCheck,
    Reply,
    Step,
    json_reply,
    serve_main,
)
from tests.support.http_standin import (
    ReceivedRequest as ReceivedRequest,
)
from tests.support.http_standin import non_json as non_json

DEFAULT_MODEL_VERSION = "gemini-2.5-pro"


_STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MODEL_PATH = re.compile(
    r"^/(?P<version>v1(?:alpha|beta)?)/(?:tuned)?models/(?P<model>[^/:]+)"
    r":(?P<method>generateContent|streamGenerateContent)$"
)


# --- step builders ------------------------------------------------------------------------


def _usage(prompt: int, candidates: int) -> dict[str, int]:
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates,
    }


def answer_payload(
    parts: list[dict[str, Any]],
    tokens: tuple[int, int] = (120, 480),
    finish_reason: str = "STOP",
    model_version: str = DEFAULT_MODEL_VERSION,
) -> dict[str, Any]:
    """The JSON body of a successful generateContent call holding `parts`."""
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": _usage(*tokens),
        "modelVersion": model_version,
        "responseId": "standin-response",
    }


def code_answer(
    code: str = DEFAULT_CODE,
    in_: Literal["executable", "text", "both"] = "executable",
    tokens: tuple[int, int] = (120, 480),
    output: str = "{'action': 'hold', 'confidence': 0.0}\n",
    text_code: str | None = None,
    model_version: str = DEFAULT_MODEL_VERSION,
) -> Reply:
    """A model answer carrying `code` as the code-execution tool or a fenced block would.

    `text_code` puts different code in the fenced block of a "both" answer.
    """
    parts: list[dict[str, Any]] = []
    if in_ in ("text", "both"):
        fenced = text_code if text_code is not None else code
        parts.append({"text": f"Here is the strategy:\n\n```python\n{fenced}\n```\n"})
    else:
        parts.append({"text": "I'll write the strategy and test it on synthetic data."})
    if in_ in ("executable", "both"):
        parts.append({"executableCode": {"language": "PYTHON", "code": code}})
        parts.append({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": output}})
        parts.append({"text": "The strategy ran on the synthetic series without errors."})
    return json_reply(answer_payload(parts, tokens, model_version=model_version))


def text_answer(text: str, tokens: tuple[int, int] = (120, 40)) -> Reply:
    return json_reply(answer_payload([{"text": text}], tokens))


def json_answer(payload: Any, status: int = 200) -> Reply:
    """Any JSON body, for shapes the other builders don't cover."""
    return json_reply(payload, status)


def error(
    status: int,
    message: str = "",
    status_text: str | None = None,
    retry_after: float | None = None,
    retry_delay: str | None = None,
) -> Reply:
    """Google's error envelope; `retry_delay` ("2s") adds a RetryInfo detail like 429s carry."""
    status_text = status_text or _STATUS_TEXT.get(status, "UNKNOWN")
    body: dict[str, Any] = {
        "code": status,
        "message": message or f"Stand-in {status_text}",
        "status": status_text,
    }
    if retry_delay is not None:
        body["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        ]
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return json_reply({"error": body}, status, headers)


def blocked(reason: str = "SAFETY", tokens: tuple[int, int] = (15, 0)) -> Reply:
    """The prompt itself was refused: promptFeedback and no candidates."""
    return json_reply({"promptFeedback": {"blockReason": reason}, "usageMetadata": _usage(*tokens)})


def blocked_candidate(reason: str = "SAFETY", tokens: tuple[int, int] = (15, 0)) -> Reply:
    """The answer was withheld: a candidate with a blocking finishReason and no content."""
    return json_reply(
        {
            "candidates": [{"finishReason": reason, "index": 0}],
            "usageMetadata": _usage(*tokens),
            "modelVersion": DEFAULT_MODEL_VERSION,
        }
    )


def empty_answer() -> Reply:
    return json_reply({"candidates": [], "usageMetadata": _usage(10, 0)})


def hang(seconds: float, then: Reply | None = None) -> Reply:
    """Answer (with `then`, default a code answer) only after `seconds`."""
    return replace(then or code_answer(), delay=seconds)


def invalid_key(expected: str | None = None, then: Step | None = None) -> KeyCheck:
    """400 "API key not valid" unless the request carries `expected` (None: always 400)."""
    return KeyCheck(expected, then)


def _invalid_key_reply() -> Reply:
    return json_reply(
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            }
        },
        400,
    )


def _not_found(path: str) -> Reply:
    message = f"Method not found: {path}"
    return json_reply({"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}, 404)


# --- the server ---------------------------------------------------------------------------


class GeminiStandin(HttpStandin):
    """Gemini's generateContent endpoint, scripted per request."""

    vendor = "Gemini"
    endpoint = _MODEL_PATH

    def default_answer(self) -> Step:
        return code_answer()

    def invalid_key_reply(self) -> Reply:
        return _invalid_key_reply()

    def not_found_reply(self, path: str) -> Reply:
        return _not_found(path)

    def key_from_query(self, request: Request) -> str | None:
        return request.query_params.get("key")

    def render(self, request: Request, match: re.Match[str] | None, reply: Reply) -> Response:
        if match is not None and match["method"] == "streamGenerateContent" and reply.status == 200:
            return self._as_stream(reply, sse=request.query_params.get("alt") == "sse")
        return super().render(request, match, reply)

    @staticmethod
    def _as_stream(reply: Reply, sse: bool) -> Response:
        """The whole answer as a single chunk: enough for clients that stream."""
        if not reply.content_type.startswith("application/json"):
            return Response(reply.body, media_type=reply.content_type)
        if sse:
            return Response(b"data: " + reply.body + b"\r\n\r\n", media_type="text/event-stream")
        return Response(b"[" + reply.body + b"]", media_type=reply.content_type)


if __name__ == "__main__":
    serve_main(GeminiStandin)
