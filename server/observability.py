"""Request ids, HTTP metrics and access logs (one ASGI middleware); /metrics and /readyz.

Pure ASGI rather than BaseHTTPMiddleware: that one buffers nothing but runs the app in
another task, which breaks context variables, streaming and WebSockets in subtle ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise import connections

from server.db import applied_migrations, dialect_of, migration_files
from server.draining import DRAINING
from server.draining import RETRY_AFTER_SECONDS as DRAIN_RETRY_AFTER_SECONDS
from server.request_errors import request_error_body
from server.settings import Settings
from services import telemetry
from services.container import Services
from services.errors import ServiceUnavailable
from services.outages import DATABASE, OUTAGES, STORAGE, is_storage_failure
from services.rate_limits import RateLimits
from services.request_ids import REQUEST_ID
from services.sandbox import Sandbox

log = logging.getLogger(__name__)

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, matched route template and status code.",
    ["method", "route", "status"],
    registry=telemetry.REGISTRY,
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method and route.",
    ["method", "route"],
    buckets=telemetry.FAST_BUCKETS,
    registry=telemetry.REGISTRY,
)
HTTP_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
    registry=telemetry.REGISTRY,
)


def method_label(method: str) -> str:
    """Clients may send any token as a method: only the usual ones get a label of their own."""
    return method if method in HTTP_METHODS else "OTHER"


def record_http(method: str, route: str, status: int, seconds: float) -> None:
    method = method_label(method)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


access_log = logging.getLogger("server.access")

REQUEST_ID_HEADER = b"x-request-id"
# What we accept from a client or proxy: bounded, and nothing a log parser could trip on.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Probes and scrapes come every few seconds: their successes are logged at DEBUG only.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED_ROUTE = "unmatched"
DATABASE_CHECK_TIMEOUT_SECONDS = 2.0

_INTERNAL_ERROR_BODY = b"Internal Server Error"
_INTERNAL_ERROR_START: Message = {
    "type": "http.response.start",
    "status": 500,
    "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode()),
    ],
}


def _shutting_down(request_id: str) -> tuple[Message, Message]:
    """The answer of a request the shutdown's grace period cut off."""
    body = request_error_body(
        "The server is shutting down; retry",
        code="SERVICE_UNAVAILABLE",
        retry_after_seconds=DRAIN_RETRY_AFTER_SECONDS,
        request_id=request_id,
    )
    start: Message = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(DRAIN_RETRY_AFTER_SECONDS).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


Endpoint = Callable[[Request], Awaitable[Response]]


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID when it is sane, else a fresh one."""
    for name, value in scope.get("headers") or ():
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if SAFE_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The matched route's template (the router puts it into the scope), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def _client_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _with_header(message: Message, request_id: str) -> Message:
    headers = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())]
    return {**message, "headers": headers}


class RequestObservability:
    """Gives every HTTP request and WebSocket a request id (context variable and response
    header), records the HTTP metrics and logs one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_of(scope)
        token = REQUEST_ID.set(request_id)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = _with_header(message, request_id)
            await send(message)

        started = time.perf_counter()
        HTTP_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            if not DRAINING.active or status:
                raise
            # The shutdown's grace period ran out (uvicorn cancels what is left): the client
            # gets the documented JSON error, retryable elsewhere, and the log says so.
            start, body = _shutting_down(request_id)
            with contextlib.suppress(Exception):
                await send_with_id(start)
                await send(body)
            status = 503
        except Exception:
            log.exception("unhandled error while answering %s %s", scope["method"], scope["path"])
            if status:
                raise  # half a response went out: the server must cut the connection
            # Answered here rather than by Starlette's error middleware, to carry the id; not
            # raised on, or the server would log the same traceback again without the id.
            with contextlib.suppress(Exception):  # the client may be gone
                await send_with_id(_INTERNAL_ERROR_START)
                await send({"type": "http.response.body", "body": _INTERNAL_ERROR_BODY})
            status = 500
        finally:
            HTTP_IN_PROGRESS.dec()
            elapsed = time.perf_counter() - started
            # No response at all: the client went away first (nginx's 499).
            status = status or 499
            route = route_of(scope)
            record_http(scope["method"], route, status, elapsed)
            level = logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO
            if access_log.isEnabledFor(level):
                access_log.log(
                    level,
                    '%s "%s %s" %d %.1f ms',
                    _client_of(scope),
                    scope["method"],
                    scope["path"],
                    status,
                    elapsed * 1000,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "client": _client_of(scope),
                    },
                )
            REQUEST_ID.reset(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_of(scope)
        token = REQUEST_ID.set(request_id)
        accepted = False

        async def send_with_id(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept":
                accepted = True
                message = _with_header(message, request_id)
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            access_log.info(
                '%s "WEBSOCKET %s" %s %.1f ms',
                _client_of(scope),
                scope["path"],
                "closed" if accepted else "rejected",
                elapsed * 1000,
                extra={
                    "method": "WEBSOCKET",
                    "path": scope["path"],
                    "route": route_of(scope),
                    "accepted": accepted,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": _client_of(scope),
                },
            )
            REQUEST_ID.reset(token)


# --- endpoints ------------------------------------------------------------------------------


async def database_check(expected_migrations: list[str]) -> dict[str, Any]:
    """Reachable (bounded in time) and migrated: a database without this code's tables
    would fail every request. A failure is logged once per outage (services/outages.py)."""
    try:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_SECONDS):
            applied = await applied_migrations(connections.get("default"))
    except TimeoutError as exc:
        OUTAGES.failed(DATABASE, exc)
        return {"ok": False, "error": f"no answer within {DATABASE_CHECK_TIMEOUT_SECONDS:g} s"}
    except Exception as exc:
        # The class name only: driver messages carry hosts, users and paths.
        cause = exc.__cause__ if isinstance(exc, ServiceUnavailable) and exc.__cause__ else exc
        OUTAGES.failed(DATABASE, cause)
        return {"ok": False, "error": f"unreachable ({type(cause).__name__})"}
    OUTAGES.answered(DATABASE)
    pending = [name for name in expected_migrations if name not in (applied or set())]
    if pending:
        return {"ok": False, "error": "migrations pending", "pendingMigrations": pending}
    return {"ok": True}


# The write probe: as much as SQLite needs to grow the database by a few pages.
WRITE_PROBE_BYTES = 64 * 1024
# PostgreSQL's disk cannot be probed from here: a write failure (53100 disk_full) counts
# until this long has passed without another.
STORAGE_FAILURE_MEMORY_SECONDS = 30.0


def sqlite_directory(database_url: str) -> Path | None:
    """Where an SQLite database lives (None: in memory, or not SQLite)."""
    if dialect_of(database_url) != "sqlite":
        return None
    path = database_url.split("://", 1)[1].split("?", 1)[0]
    return None if not path or path == ":memory:" else Path(path).resolve().parent


def _write_probe(directory: Path) -> None:
    """Write (and remove) a file beside the database: a full disk or a read-only file
    system fails it as it fails SQLite's next write."""
    probe = directory / f".readyz-write-probe-{os.getpid()}"
    try:
        with probe.open("wb") as handle:
            handle.write(b"\0" * WRITE_PROBE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        probe.unlink(missing_ok=True)


async def storage_check(database_url: str) -> dict[str, Any]:
    """Can the database write? SQLite: a small write probe beside its file, in a thread.
    PostgreSQL: no write failure (disk full) in the last 30 s. A failure is logged once
    per outage; requests meanwhile answer SERVICE_UNAVAILABLE (services/outages.py)."""
    directory = sqlite_directory(database_url)
    if directory is None:
        if OUTAGES.is_down(STORAGE):
            if OUTAGES.down_for(STORAGE) < STORAGE_FAILURE_MEMORY_SECONDS:
                return {"ok": False, "error": "writes failed (disk full)"}
            OUTAGES.answered(STORAGE)
        return {"ok": True}
    try:
        await asyncio.to_thread(_write_probe, directory)
    except OSError as exc:
        if not is_storage_failure(exc):
            raise
        OUTAGES.failed(STORAGE, exc)
        return {"ok": False, "error": f"writes fail ({errno_name(exc)})"}
    OUTAGES.answered(STORAGE)
    return {"ok": True}


def errno_name(error: OSError) -> str:
    return errno.errorcode.get(error.errno or 0, type(error).__name__)


async def redis_check(limits: RateLimits) -> dict[str, Any] | None:
    """With REDIS_URL: does Redis answer? Not fatal: limits are then counted per process."""
    if limits.shared is None:
        return None
    if await limits.shared.reachable():
        return {"ok": True}
    return {
        "ok": False,
        "error": f"no answer within {limits.shared.timeout:g} s",
        "rateLimits": "per process",
    }


def sandbox_check(sandbox: Sandbox) -> dict[str, Any]:
    """Which isolation layers the start-up probe found, or why execution is disabled."""
    probe = sandbox.probe
    if sandbox.unavailable is not None or probe is None:
        reason = (
            sandbox.unavailable.extensions.get("reason", "UNAVAILABLE")
            if sandbox.unavailable is not None
            else "NOT_STARTED"
        )
        return {
            "ok": False,
            "executionDisabled": True,
            "reason": reason,
            "message": "strategy execution is disabled; the server log says why",
        }
    if not sandbox.fork_server_running:
        return {
            "ok": False,
            "executionDisabled": True,
            "reason": "FORK_SERVER_DOWN",
            "message": "strategy execution is unavailable until the fork server restarts; "
            "the server log says why",
            "restarts": sandbox.restarts,
        }
    return {
        "ok": True,
        "isolated": probe.isolated,
        "layers": list(probe.layers),
        "networkIsolated": probe.network_isolated,
        "restarts": sandbox.restarts,
    }


def readiness_endpoint(settings: Settings, services: Services) -> Endpoint:
    expected_migrations = migration_files(settings.database_url)

    async def readyz(_: Request) -> Response:
        """503 only when the database is unreachable or not migrated, or the server is
        draining: without a sandbox everything else serves, and without Redis limits are
        counted per process."""
        if DRAINING.active:
            return JSONResponse(
                {"status": "draining"}, status_code=503, headers={"Cache-Control": "no-store"}
            )
        database, redis, storage = await asyncio.gather(
            database_check(expected_migrations),
            redis_check(services.limits),
            storage_check(settings.database_url),
        )
        sandbox = sandbox_check(services.runner.sandbox)
        checks = {"database": database, "storage": storage, "sandbox": sandbox}
        if redis is not None:
            checks["redis"] = redis
        serving = database["ok"] and storage["ok"]
        status = "ok" if all(check["ok"] for check in checks.values()) else "degraded"
        if not serving:
            status = "unavailable"
        return JSONResponse(
            {"status": status, "checks": checks},
            status_code=200 if serving else 503,
            headers={"Cache-Control": "no-store"},
        )

    return readyz


def bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.strip().partition(" ")
    # Compared in constant time, so the answer's timing says nothing about the token.
    same = hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode())
    return scheme.lower() == "bearer" and same


def metrics_endpoint(settings: Settings) -> Endpoint:
    token = settings.metrics_token

    async def metrics_text(request: Request) -> Response:
        if token and not bearer_matches(request.headers.get("authorization", ""), token):
            return JSONResponse(
                {"error": "UNAUTHENTICATED", "message": "send 'Authorization: Bearer <token>'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body, content_type = telemetry.exposition()
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    return metrics_text


def routes(settings: Settings, services: Services) -> list[Route]:
    """/readyz always; /metrics unless METRICS_ENABLED=false."""
    found = [Route("/readyz", readiness_endpoint(settings, services), methods=["GET"])]
    if settings.metrics_enabled:
        found.append(Route("/metrics", metrics_endpoint(settings), methods=["GET"]))
    return found
