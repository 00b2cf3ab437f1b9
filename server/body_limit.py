"""Request bodies, before anything parses them (GraphQL documents, market data).

Three bounds, checked while the body is read, never after:

- size: MAX_REQUEST_BYTES with a valid token, MAX_ANONYMOUS_REQUEST_BYTES without one
  (register and login need little; a flood of huge anonymous bodies is refused from its
  Content-Length or its first bytes over the limit). "Valid" is the token's signature and
  expiry only, no database: the decision costs microseconds and survives a database outage.
- time: the whole body within BODY_TIMEOUT_SECONDS of the request's start (a client that
  trickles a body holds a connection and memory otherwise), answered 408.
- memory: a body of LARGE_REQUEST_BYTES or more holds one of MAX_LARGE_REQUESTS slots
  until its answer is sent, so only that many large bodies (and what is decoded from them)
  are in memory at once; the others wait up to LARGE_REQUEST_WAIT_SECONDS, then get a
  retryable SERVICE_UNAVAILABLE (503). With that bound (and lists too long refused before
  GraphQL turns them into objects), a burst leaves the process about as large as before
  (bench/large_bodies.py); glibc's malloc_trim after a burst was measured there and made
  no difference (+23 MB kept with it, +24 MB without, 8 slots), so it is not called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.request_errors import request_error_body

log = logging.getLogger(__name__)

# What a client refused for want of a large-body slot is told to wait.
LARGE_REQUEST_RETRY_AFTER_SECONDS = 1
# A refused body up to this much over its limit is read and dropped before the answer: closing
# a connection with unread data sends a reset, which makes the client lose the answer (413)
# and see "connection reset" instead. Bodies larger still are not read (their reset is
# the price of not reading megabytes for nothing). A body refused for want of a slot is
# read and dropped whole (it is within the limit), for DRAIN_SECONDS at most.
DRAIN_BYTES = 4 * 1024 * 1024
DRAIN_SECONDS = 2.0


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


class _NoSlot(Exception):
    pass


@dataclass(frozen=True)
class BodyBounds:
    max_bytes: int
    anonymous_max_bytes: int
    large_bytes: int
    max_large: int
    large_wait_seconds: float
    timeout_seconds: float


class LargeBodySlots:
    """How many large bodies this process holds at once; a wait for one is bounded."""

    def __init__(self, slots: int, wait_seconds: float) -> None:
        self._semaphore = asyncio.Semaphore(slots)
        self.wait_seconds = wait_seconds

    async def acquire(self) -> None:
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._semaphore.acquire()
        except TimeoutError:
            raise _NoSlot from None

    def release(self) -> None:
        self._semaphore.release()


class BodySizeLimit:
    """Refuses bodies over the size limit with 413 and a GraphQL-shaped BAD_USER_INPUT
    error, bodies that do not arrive in time with 408, and large bodies beyond the slots
    with 503 SERVICE_UNAVAILABLE and retryAfterSeconds (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        anonymous_max_bytes: int | None = None,
        signed_in_max_bytes: int = 0,
        large_bytes: int | None = None,
        max_large: int = 2,
        large_wait_seconds: float = 2.0,
        timeout_seconds: float = 60.0,
        token_valid: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        # Dataset uploads (MAX_DATASET_BYTES) outgrow MAX_REQUEST_BYTES: a request with a valid
        # token may be `signed_in_max_bytes` large; one without, MAX_ANONYMOUS_REQUEST_BYTES.
        self.bounds = BodyBounds(
            max_bytes=max(signed_in_max_bytes, max_bytes),
            anonymous_max_bytes=min(anonymous_max_bytes or max_bytes, max_bytes),
            large_bytes=large_bytes or max_bytes + 1,
            max_large=max_large,
            large_wait_seconds=large_wait_seconds,
            timeout_seconds=timeout_seconds,
        )
        self.token_valid = token_valid
        self._slots: LargeBodySlots | None = None  # made on first use, in the serving loop

    @property
    def slots(self) -> LargeBodySlots:
        if self._slots is None:
            self._slots = LargeBodySlots(self.bounds.max_large, self.bounds.large_wait_seconds)
        return self._slots

    def limit_for(self, scope: Scope) -> tuple[int, bool]:
        """(the size limit of this request, whether it came with a valid token)."""
        if self.token_valid is None:
            return self.bounds.max_bytes, True
        authorization = dict(scope.get("headers") or []).get(b"authorization")
        if authorization and self.token_valid(authorization.decode("latin-1")):
            return self.bounds.max_bytes, True
        return self.bounds.anonymous_max_bytes, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bounds = self.bounds
        declared_header = dict(scope.get("headers") or []).get(b"content-length")
        declared = int(declared_header) if declared_header and declared_header.isdigit() else None
        limit: int | None = None  # worked out once the body may exceed the anonymous limit
        authenticated = True
        if declared is not None and declared > bounds.anonymous_max_bytes:
            limit, authenticated = self.limit_for(scope)
            if declared > limit:
                if declared <= limit + DRAIN_BYTES:
                    await _drain(receive, DRAIN_BYTES)
                await self._refuse_size(send, limit, authenticated)
                return
        holding = False
        started = False
        received = 0
        deadline = asyncio.get_running_loop().time() + bounds.timeout_seconds
        body_done = False

        async def take_slot() -> None:
            nonlocal holding
            await self.slots.acquire()
            holding = True

        async def bounded_receive() -> Message:
            nonlocal received, limit, authenticated, body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] != "http.request":
                return message
            received += len(message.get("body", b""))
            body_done = not message.get("more_body", False)
            if received > bounds.anonymous_max_bytes and limit is None:
                limit, authenticated = self.limit_for(scope)
            if limit is not None and received > limit:
                raise _TooLarge
            if received >= bounds.large_bytes and not holding:
                await take_slot()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            if declared is not None and declared >= bounds.large_bytes:
                await take_slot()
            await self.app(scope, bounded_receive, tracking_send)
        except _TooLarge:
            if not started:
                assert limit is not None
                if not body_done:
                    await _drain(receive, DRAIN_BYTES)
                await self._refuse_size(send, limit, authenticated)
        except _TooSlow:
            if not started:
                message = f"Request body not received within {bounds.timeout_seconds:g} s"
                await _answer(send, 408, request_error_body(message))
        except _NoSlot:
            if not started:
                # Read and dropped (no memory kept), so the client sees the retryable answer.
                await _drain(receive, bounds.max_bytes)
                await _answer(
                    send,
                    503,
                    request_error_body(
                        "The server is busy with other large requests; retry shortly",
                        code="SERVICE_UNAVAILABLE",
                        retry_after_seconds=LARGE_REQUEST_RETRY_AFTER_SECONDS,
                    ),
                    [(b"retry-after", str(LARGE_REQUEST_RETRY_AFTER_SECONDS).encode())],
                )
        finally:
            if holding:
                self.slots.release()

    async def _refuse_size(self, send: Send, limit: int, authenticated: bool) -> None:
        message = f"Request body is larger than {limit} bytes"
        if not authenticated and limit < self.bounds.max_bytes:
            message += f" (the limit without a valid token; with one, {self.bounds.max_bytes})"
        await _answer(send, 413, request_error_body(message))


async def _drain(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a body, up to `budget` bytes and DRAIN_SECONDS."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while budget > 0:
                message = await receive()
                if message["type"] != "http.request":
                    return
                budget -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    with contextlib.suppress(OSError):
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
