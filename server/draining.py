"""Draining: from the first SIGTERM on, /readyz answers 503 so a load balancer stops sending
new requests first, and a request the grace period cuts off gets the documented JSON
SERVICE_UNAVAILABLE with its request id (server/observability.py), not uvicorn's plain 500.

uvicorn closes its listening socket as soon as it handles SIGTERM, and its lifespan shutdown
comes only after the grace period: neither tells the app in time. So the app wraps uvicorn's
own signal handler (installed before the app starts) once it is serving: the wrapper marks
the process draining, then hands the signal to uvicorn, after SHUTDOWN_DRAIN_SECONDS when
that is set (meanwhile new requests are still served; a second signal stops at once).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

# Told to a client cut off by a shutdown: about the time a load balancer needs to move on.
RETRY_AFTER_SECONDS = 1


class Draining:
    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def active(self) -> bool:
        return self.since is not None

    def start(self, delay_seconds: float = 0) -> None:
        if self.since is not None:
            return
        self.since = time.monotonic()
        log.warning(
            "draining: /readyz answers 503 from now; shutting down in %g s",
            delay_seconds,
            extra={"draining": True},
        )


DRAINING = Draining()

Handler = Callable[[int, FrameType | None], Any]


def drain_on_signals(delay_seconds: float) -> Callable[[], None]:
    """Wrap uvicorn's SIGTERM and SIGINT handlers, when uvicorn installed them in this
    (main) thread; returns what restores them. Elsewhere (tests calling the app in-process,
    other servers) nothing changes."""
    loop = asyncio.get_running_loop()
    restore: dict[int, Handler] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(signum)
        if not (
            callable(handler) and isinstance(getattr(handler, "__self__", None), uvicorn.Server)
        ):
            continue
        restore[signum] = handler
        signal.signal(signum, _wrapped(handler, delay_seconds, loop))

    def restored() -> None:
        for signum, handler in restore.items():
            if signal.getsignal(signum) is not handler:
                signal.signal(signum, handler)

    return restored


def _wrapped(
    uvicorn_handler: Handler, delay_seconds: float, loop: asyncio.AbstractEventLoop
) -> Handler:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        if DRAINING.active or delay_seconds <= 0 or signum != signal.SIGTERM:
            DRAINING.start()
            uvicorn_handler(signum, frame)
            return
        DRAINING.start(delay_seconds)
        # A signal handler may interrupt the loop anywhere: call_soon_threadsafe is the safe
        # way in; uvicorn's handler then only sets its flags, as it does from a signal.
        loop.call_soon_threadsafe(loop.call_later, delay_seconds, uvicorn_handler, signum, None)

    return on_signal
