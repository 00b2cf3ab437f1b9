"""GraphiQL works offline: its page and assets come from this app, under a strict CSP.

The first tests read the page over HTTP and run everywhere. The browser test drives Debian's
Chromium (CHROMIUM_PATH, default /usr/bin/chromium) with Playwright against the app on a real
TCP port: it runs `query Me { me { email } }` with a bearer token typed into the headers editor,
reads the result pane, and checks that no request went anywhere but the app. Without Chromium or the
playwright package it skips, saying which is missing (.ci/run installs Chromium with apt-get).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import httpx
import pytest

from server.graphiql import STATIC_DIR, STATIC_PREFIX
from server.settings import Settings
from services.sandbox import Sandbox
from tests.support import node_tools
from tests.support.api import make_client, register_user

pytestmark = pytest.mark.process

HTML = {"Accept": "text/html"}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Assets(HTMLParser):
    """Every URL the page would load (script src, link href, img src), and script nonces."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.nonces: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.urls.append(values["src"] or "")
            else:
                self.inline_scripts += 1
            if values.get("nonce"):
                self.nonces.append(values["nonce"] or "")
        for name in ("href", "src"):
            if tag in ("link", "img") and values.get(name):
                self.urls.append(values[name] or "")
        if any(name.startswith("on") for name in values):
            self.inline_scripts += 1


def _policy(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


async def test_graphiql_page_loads_only_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers=HTML)
    assert page.status_code == 200
    assets = _Assets()
    assets.feed(page.text)
    assert assets.inline_scripts == 0, "the CSP allows no inline script"
    [nonce] = assets.nonces
    policy = _policy(page.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy["connect-src"] == ["'self'"]
    assert {source for sources in policy.values() for source in sources} <= {
        "'self'",
        "'none'",
        "data:",
        f"'nonce-{nonce}'",
    }
    again = await client.get("/graphql", headers=HTML)
    assert f"'nonce-{nonce}'" not in again.headers["content-security-policy"], "a nonce per page"
    assert len(assets.urls) >= 6
    for url in assets.urls:
        assert url.startswith(STATIC_PREFIX + "/"), url
        served = await client.get(url)
        assert served.status_code == 200, url
        local = STATIC_DIR / url.removeprefix(STATIC_PREFIX + "/")
        assert served.content == local.read_bytes()
        kind = served.headers["content-type"]
        assert kind.startswith(("text/javascript", "application/javascript", "text/css", "image/"))


def test_vendored_builds_match_their_versions_file() -> None:
    versions = (STATIC_DIR / "vendor" / "VERSIONS").read_text(encoding="utf-8")
    listed = dict(
        (path.removeprefix("./"), digest)
        for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", versions, re.MULTILINE)
    )
    on_disk = {
        str(path.relative_to(STATIC_DIR / "vendor"))
        for path in (STATIC_DIR / "vendor").rglob("*")
        if path.is_file() and path.name not in ("VERSIONS", "README.md")
    }
    assert set(listed) == on_disk
    for relative, digest in listed.items():
        data = (STATIC_DIR / "vendor" / relative).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, relative


async def test_no_graphiql_assets_without_introspection(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    production = settings.model_copy(update={"graphql_introspection": False})
    async with make_client(production, sandbox=sandbox) as client:
        page = await client.get("/graphql", headers=HTML)
        assert "graphiql" not in page.text.lower()
        assert (await client.get(f"{STATIC_PREFIX}/index.js")).status_code == 404


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium, or a skip that says how to get it (before the server starts)."""
    return node_tools.chromium_path("the GraphiQL browser test")


def _is_local(url: str, base: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True  # never leaves the browser
    return parts.hostname == urlsplit(base).hostname == "127.0.0.1"


@pytest.fixture
def async_api() -> ModuleType:
    return pytest.importorskip(
        "playwright.async_api", reason="the playwright package is not installed (dev extra)"
    )


async def test_graphiql_runs_a_query_with_a_token_offline(
    async_api: ModuleType, chromium: str, live_url: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as http:
        email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
        token, _ = await register_user(http, email)

    requested: list[str] = []
    problems: list[str] = []
    async with async_api.async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("websocket", lambda socket: requested.append(socket.url))
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console {message.type}: {message.text}")
                    if message.type == "error"
                    else None
                ),
            )

            await page.goto(f"{live_url}/graphql")
            query_editor = page.locator(".graphiql-query-editor .CodeMirror")
            await query_editor.wait_for(state="visible", timeout=30_000)
            await page.wait_for_function(
                "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
            )
            # GraphiQL re-reads the operation name a moment after an edit; until then it sends
            # the welcome query's ("Me"). The same name, so a quick click cannot race it.
            await page.evaluate(
                "q => document.querySelector('.graphiql-query-editor .CodeMirror')"
                ".CodeMirror.setValue(q)",
                "query Me { me { email } }",
            )
            # index.js's onEditQuery has seen the edit: it puts the query in the address.
            await async_api.expect(page).to_have_url(re.compile(r"[?&]q=query\+Me\+"))

            # The headers pane is open by default (index.js); type into its editor.
            headers_editor = page.locator(".graphiql-editor-tool .CodeMirror").filter(visible=True)
            await headers_editor.click()
            await page.keyboard.press("ControlOrMeta+A")
            await page.keyboard.press("Delete")
            await page.keyboard.insert_text(f'{{"Authorization": "Bearer {token}"}}')

            await page.locator(".graphiql-execute-button").click()
            await async_api.expect(page.locator(".result-window")).to_contain_text(
                email, timeout=15_000
            )
            result = await page.locator(".result-window").inner_text()

            # A dialog adds a <style> element: allowed by the page's nonce, else a CSP error.
            await page.get_by_role("button", name="Open settings dialog").click()
            await page.get_by_role("dialog").wait_for(state="visible")
            await page.keyboard.press("Escape")
        finally:
            await context.close()

    assert '"me"' in result
    assert "UNAUTHENTICATED" not in result
    assert requested, "the browser made no request at all"
    foreign = [url for url in requested if not _is_local(url, live_url)]
    assert not foreign, f"requests left 127.0.0.1: {foreign}"
    assert any(
        url.endswith("/graphiql/static/vendor/graphiql/graphiql.min.js") for url in requested
    )
    assert not problems, problems
