"""A cap on request bodies, before anything parses them (GraphQL documents, market data)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.request_errors import request_error_body


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses bodies over `max_bytes` with 413 and a GraphQL-shaped BAD_USER_INPUT error.

    Checks Content-Length up front and counts the bytes of chunked bodies as they arrive.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        signed_in_max_bytes: int = 0,
        signed_in: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Dataset uploads (MAX_DATASET_BYTES) outgrow MAX_REQUEST_BYTES: a request whose
        # bearer token `signed_in` accepts may be that large; anonymous ones may not.
        self.signed_in_max_bytes = max(signed_in_max_bytes, max_bytes)
        self.signed_in = signed_in

    def _limit(self, headers: dict[bytes, bytes]) -> int:
        authorization = headers.get(b"authorization", b"")
        if self.signed_in is None or not authorization.lower().startswith(b"bearer "):
            return self.max_bytes
        token = authorization[7:].strip().decode("latin-1")
        return self.signed_in_max_bytes if self.signed_in(token) else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        limit = self._limit(headers)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = request_error_body(f"Request body is larger than {limit} bytes")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
