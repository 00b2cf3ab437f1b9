"""The ASGI application: GraphQL (with GraphiQL) on /graphql, backed by Tortoise."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.types.unset import UNSET, UnsetType
from tortoise.contrib.starlette import RegisterTortoise
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from models.fields import dumps_finite_json
from schema import make_schema, schema
from schema.context import Context
from server import observability
from server.body_limit import BodySizeLimit
from server.cors import cors_middleware
from server.db import DatabaseBounds, MigrationsPending, prepare_database, serving_config
from server.draining import drain_on_signals
from server.graphiql import render_page, static_files_mount
from server.request_errors import request_error_response
from server.settings import Settings, get_settings
from server.wiring import build_services
from services.container import Services
from services.sandbox import SandboxUnavailable

log = logging.getLogger(__name__)

# A large body decoded in a thread, handed to decode_json (which Strawberry calls on the
# loop): (the raw body, what it decoded to).
_DECODED: contextvars.ContextVar[tuple[bytes, object] | None] = contextvars.ContextVar(
    "decoded_body", default=None
)


def longest_list_over(data: object, limit: int) -> int | None:
    """The length of a list in `data` longer than `limit`, if there is one. GraphQL reads
    every element of a list variable on the event loop (3 us each): a list longer than any
    operation accepts is refused before that. Lists of numbers or strings are looked at
    in C (`set(map(type, ...))`), so a thread running this rarely needs the GIL."""
    containers = (list, dict)
    stack = [data]
    while stack:
        item = stack.pop()
        values = item if isinstance(item, list) else item.values() if isinstance(item, dict) else ()
        if isinstance(item, list) and len(item) > limit:
            return len(item)
        if not set(map(type, values)).isdisjoint(containers):
            stack.extend(value for value in values if isinstance(value, containers))
    return None


class GraphQLApp(GraphQL[Context, None]):
    def __init__(
        self,
        services: Services,
        introspection: bool,
        origins: tuple[str, ...] = (),
        large_body_bytes: int | None = None,
        max_list_length: int | None = None,
    ) -> None:
        # GraphiQL needs introspection: without it, the playground goes too. WebSocket
        # handshakes from browser pages: same origin, or one of CORS_ALLOW_ORIGINS.
        super().__init__(
            schema if introspection else make_schema(introspection=False),
            graphql_ide="graphiql" if introspection else None,
            allowed_origins=origins,
        )
        self.services = services
        self.large_body_bytes = large_body_bytes
        self.max_list_length = max_list_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As Strawberry's, but a refused request (unknown operation name, body that is not
        JSON, no query) answers with a JSON BAD_USER_INPUT error rather than plain text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as error:
            response = request_error_response(error.reason, error.status_code)
        if request.method == "GET":
            keep_out_of_shared_caches(request, response)
        await response(scope, receive, send)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """A GET naming a persisted query by hash has no `query`, yet is an operation."""
        return "extensions" not in request.query_params and super().should_render_graphql_ide(
            request
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our GraphiQL page: local assets only, under a strict Content-Security-Policy."""
        return render_page(request)

    def encode_json(self, data: object) -> str:
        """Every response and subscription message: NaN and Infinity, which are not JSON
        and break a browser's JSON.parse, go out as null."""
        return dumps_finite_json(data)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """A large JSON body is decoded (and its lists measured) in a thread: decoding 8 MB
        takes ~100 ms of CPU the event loop would otherwise spend on it."""
        if request.method != "POST" or self.large_body_bytes is None:
            return await super().parse_http_body(request)
        body = await request.get_body()
        if len(body) < self.large_body_bytes:
            return await super().parse_http_body(request)
        try:
            decoded = await asyncio.to_thread(self.decode_json, body)
        except HTTPException:
            raise
        except ValueError:
            decoded = None  # not JSON: Strawberry says so, as for a small body
        token = _DECODED.set((body, decoded) if decoded is not None else None)
        try:
            return await super().parse_http_body(request)
        finally:
            _DECODED.reset(token)

    def decode_json(self, data: str | bytes) -> object:
        """A body nested past the decoder's recursion limit is the client's error, not a 500;
        so is a list longer than any operation accepts."""
        decoded = _DECODED.get()
        if decoded is not None and decoded[0] is data:
            return decoded[1]
        try:
            value = json.loads(data)
        except RecursionError:
            raise HTTPException(400, "Request body is nested too deeply") from None
        if self.max_list_length is not None:
            length = longest_list_over(value, self.max_list_length)
            if length is not None:
                raise HTTPException(
                    400,
                    f"A list in the request has {length} items; at most "
                    f"{self.max_list_length} are accepted (more market data: upload a dataset)",
                )
        return value

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Browsers cannot set headers on a WebSocket: the token comes in connection_init's
        payload ({"Authorization": "Bearer <token>"}); the upgrade request's header is the
        fallback. Checked when an operation needs the user, which then fails UNAUTHENTICATED."""
        params = context.connection_params or {}
        for key in ("Authorization", "authorization"):
            value = params.get(key)
            if isinstance(value, str):
                context.authorization = value
                break
        return UNSET

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None
    ) -> Context:
        return Context(
            services=self.services,
            authorization=request.headers.get("authorization"),
            request=request,
            response=response,
        )


def keep_out_of_shared_caches(request: Request, response: Response) -> None:
    """Queries come over GET (persisted queries) so caches may help, but an answer for one
    user must never be served to another by a proxy or CDN: with a token, `private, no-store`;
    without, caches keep answers apart by token anyway (`Vary: Authorization`)."""
    response.headers.add_vary_header("Authorization")
    if "authorization" in request.headers:
        response.headers["Cache-Control"] = "private, no-store"


def create_app(settings: Settings | None = None, services: Services | None = None) -> Starlette:
    settings = settings or get_settings()
    services = services or build_services(settings)
    graphql_app = GraphQLApp(
        services,
        settings.graphql_introspection,
        settings.cors_origins,
        large_body_bytes=settings.large_request_bytes,
        max_list_length=settings.max_variable_list_length,
    )

    def token_valid(authorization: str) -> bool:
        """The signature and expiry only: cheap, and no database for a size decision."""
        scheme, _, token = authorization.strip().partition(" ")
        return scheme.lower() == "bearer" and services.signer.accepts(token.strip())

    async def root(_: Request) -> Response:
        return RedirectResponse("/graphql")

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await prepare_database(settings.database_url, settings.migrate_on_start)
        except MigrationsPending as exc:
            log.error("not serving: %s", exc)
            raise
        bounds = DatabaseBounds.from_settings(settings)
        async with RegisterTortoise(app, config=serving_config(settings.database_url, bounds)):
            try:
                # Probe the isolation layers now, so the log says at start-up what protects us;
                # without isolation the server still serves everything but execution.
                await services.runner.sandbox.start()
                # A fork server that dies while idle is restarted within a second or so.
                services.runner.sandbox.watch()
            except SandboxUnavailable as exc:
                log.error("strategy execution disabled: %s", exc.message)
            await services.analyser.start()  # the workers that parse untrusted code
            # Jobs queued or running before a restart are taken up (in-process backend).
            await services.jobs.start()
            # Everything loaded so far lives as long as the process: keep it out of the
            # collector's full passes, which otherwise stall every request for >100 ms.
            gc.collect()
            gc.freeze()
            restore_signals = drain_on_signals(settings.shutdown_drain_seconds)
            try:
                yield
            finally:
                restore_signals()
                await services.aclose()

    app = Starlette(
        routes=[
            Route("/", root),
            Route("/healthz", healthz),
            *observability.routes(settings, services),
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            *([static_files_mount()] if settings.graphql_introspection else []),
        ],
        lifespan=lifespan,
        middleware=[
            # Before anything reads the client address: forwarded headers only from the
            # proxies the operator lists (TRUSTED_PROXIES), never from anyone by default.
            *(
                [Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)]
                if settings.trusted_proxies
                else []
            ),
            # Outside the size limit and the logging, so refused and failed answers carry the
            # CORS headers too, and a browser shows their JSON error instead of a CORS error.
            *cors_middleware(settings.cors_origins),
            # Request ids and access lines: refused bodies and handshakes get them too.
            Middleware(observability.RequestObservability),
            Middleware(
                BodySizeLimit,
                max_bytes=settings.max_request_bytes,
                # A dataset's CSV, JSON-escaped, plus the rest of the request.
                signed_in_max_bytes=2 * settings.max_dataset_bytes + 64 * 1024,
                anonymous_max_bytes=settings.max_anonymous_request_bytes,
                large_bytes=settings.large_request_bytes,
                max_large=settings.max_large_requests,
                large_wait_seconds=settings.large_request_wait_seconds,
                timeout_seconds=settings.body_timeout_seconds,
                token_valid=token_valid,
            ),
        ],
    )
    app.state.services = services
    return app
