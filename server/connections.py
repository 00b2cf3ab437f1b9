"""Slow and idle clients: uvicorn's HTTP protocol, with a header timeout and a connection cap.

uvicorn (0.5x) bounds neither the time a client takes to send its request headers nor the
number of open connections; `limit_concurrency` answers 503 only once headers arrive, while
the connection already holds a file descriptor. So 300 connections trickling a header each
exhausted 256 descriptors and normal clients were never accepted, with nothing in the log.

Here, per process:
- a connection must complete each request's headers within HEADER_TIMEOUT_SECONDS of its
  first byte (or of the connection's start), else it is closed;
- at most MAX_CONNECTIONS are open (lowered to fit the file-descriptor limit, keeping a
  quarter, at least 64, for the database, the sandbox and the logs); past it, the oldest
  connection still waiting for its headers is closed to make room (a slow client loses its
  place, a normal one does not wait), or the new one when none is waiting; a warning says
  so, at most once per LOG_EVERY_SECONDS.
The request body's own timeout is BODY_TIMEOUT_SECONDS (server/body_limit.py).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.settings import get_settings

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0
# Descriptors kept for everything but client connections: at least this many, or a quarter.
RESERVED_DESCRIPTORS = 64


def connection_cap(wanted: int) -> int:
    """MAX_CONNECTIONS, lowered below this process' file-descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - max(RESERVED_DESCRIPTORS, soft // 4)))


class _CapLog:
    """One warning per LOG_EVERY_SECONDS when the cap is reached, with what it cost."""

    def __init__(self) -> None:
        self.last = 0.0
        self.closed = 0

    def closed_one(self, cap: int) -> None:
        self.closed += 1
        now = time.monotonic()
        if now - self.last >= LOG_EVERY_SECONDS:
            log.warning(
                "connection cap reached (%d open): closed %d connection(s) waiting for "
                "headers or new; put a proxy in front (docs/operations.md)",
                cap,
                self.closed,
                extra={"connection_cap": cap, "closed_connections": self.closed},
            )
            self.last = now
            self.closed = 0


_CAP_LOG = _CapLog()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the header timeout and the connection cap."""

    header_timeout: float | None = None
    cap: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.header_timeout is None or cls.cap is None:
            settings = get_settings()
            cls.header_timeout = settings.header_timeout_seconds
            cls.cap = connection_cap(settings.max_connections)
            if cls.cap < settings.max_connections:
                log.warning(
                    "MAX_CONNECTIONS=%d lowered to %d to fit the file-descriptor limit",
                    settings.max_connections,
                    cls.cap,
                )
        self._header_timer: asyncio.TimerHandle | None = None
        self.waiting_since: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()
        assert self.cap is not None
        if len(self.connections) > self.cap:
            self._make_room()

    def _make_room(self) -> None:
        waiting = [
            conn
            for conn in self.connections
            if isinstance(conn, GuardedHttpProtocol)
            and conn is not self
            and conn.waiting_since is not None
            and not conn.transport.is_closing()
        ]
        victim = min(waiting, key=lambda conn: conn.waiting_since or 0.0) if waiting else self
        victim._close()
        assert self.cap is not None
        _CAP_LOG.closed_one(self.cap)

    def _close(self) -> None:
        self._disarm_header_timer()
        self.connections.discard(self)
        self.transport.abort()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and self.header_timeout is not None:
            self.waiting_since = time.monotonic()
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self.waiting_since = None

    def _headers_late(self) -> None:
        self._header_timer = None
        log.debug("closing a connection whose headers took over %g s", self.header_timeout)
        self._close()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._arm_header_timer()  # the next request on a kept-alive connection
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)
