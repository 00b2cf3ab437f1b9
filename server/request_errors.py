"""Requests refused before GraphQL runs still get a GraphQL-shaped answer.

Clients (GraphiQL, generated clients) parse every /graphql response as JSON; a plain-text
400 reaches the user as "Unexpected token ... is not valid JSON" instead of the reason.
"""

from __future__ import annotations

import json

from starlette.responses import Response


def request_error_body(
    message: str,
    code: str = "BAD_USER_INPUT",
    retry_after_seconds: int | None = None,
    request_id: str | None = None,
) -> bytes:
    extensions: dict[str, object] = {"code": code}
    if retry_after_seconds is not None:
        extensions["retryAfterSeconds"] = retry_after_seconds
    if request_id is not None:
        extensions["requestId"] = request_id
    return json.dumps(
        {"data": None, "errors": [{"message": message, "extensions": extensions}]}
    ).encode()


def request_error_response(message: str, status_code: int) -> Response:
    return Response(
        request_error_body(message), status_code=status_code, media_type="application/json"
    )
