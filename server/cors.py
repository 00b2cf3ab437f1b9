"""Browser clients on other origins: CORS for HTTP (WebSocket handshakes are checked against
the same list by strawberry's `allowed_origins`, server/app.py).

Tokens travel in the Authorization header, never in cookies, so no request needs credentials
and no response allows them; a page can only read our answers if its origin is listed.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from server.observability import REQUEST_ID_HEADER

# What a GraphQL client sends beside the body; Apollo's persisted-query link adds nothing else.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "Accept")
PREFLIGHT_MAX_AGE_SECONDS = 600


def cors_middleware(origins: tuple[str, ...]) -> list[Middleware]:
    """Nothing for an empty list: then only same-origin pages (GraphiQL) can read answers."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=list(ALLOWED_HEADERS),
            expose_headers=[REQUEST_ID_HEADER.decode()],
            allow_credentials=False,
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )
    ]
