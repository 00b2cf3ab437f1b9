"""GraphiQL served entirely by this app: the page, its script and the vendored builds.

Strawberry's own GraphiQL page loads React and GraphiQL from a CDN; ours references only
files under STATIC_PREFIX (server/static/graphiql, filled by scripts/vendor-graphiql.sh), so it
works offline, and its Content-Security-Policy allows nothing but this origin (plus data: URIs,
which GraphiQL's stylesheet uses for its fonts and icons). The page has no inline script.

One exception, by nonce: GraphiQL's dialogs (react-remove-scroll) add a <style> element to lock
scrolling. They stamp it with `__webpack_nonce__`, which index.js sets from its own script tag's
nonce, fresh for every page.
"""

from __future__ import annotations

import secrets
from html import escape
from pathlib import Path

from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
STATIC_PREFIX = "/graphiql/static"


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            # fetch() to /graphql, and the WebSocket for subscriptions ('self' covers ws:/wss:).
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


_PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>GraphiQL · strategy generator</title>
    <link rel="icon" href="{static}/favicon.svg" type="image/svg+xml" />
    <link rel="stylesheet" href="{static}/vendor/graphiql/graphiql.min.css" />
    <link rel="stylesheet" href="{static}/page.css" />
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script src="{static}/vendor/react/react.production.min.js"></script>
    <script src="{static}/vendor/react-dom/react-dom.production.min.js"></script>
    <script src="{static}/vendor/graphiql/graphiql.min.js"></script>
    <script src="{static}/index.js" nonce="{nonce}"></script>
  </body>
</html>
"""


def static_url(connection: HTTPConnection) -> str:
    """Where the assets are, honouring a mount prefix (ASGI root_path)."""
    return connection.scope.get("root_path", "").rstrip("/") + STATIC_PREFIX


def render_page(connection: HTTPConnection) -> HTMLResponse:
    nonce = secrets.token_urlsafe(18)
    html = _PAGE.format(static=escape(static_url(connection), quote=True), nonce=nonce)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": content_security_policy(nonce),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def static_files_mount() -> Mount:
    """The page's assets; mounted only when GraphiQL is served (introspection on)."""
    return Mount(STATIC_PREFIX, app=StaticFiles(directory=STATIC_DIR), name="graphiql-static")
