"""Apollo Client in headless Chromium, on a page served from a second origin.

tests/apollo_page/ holds package.json and package-lock.json (@apollo/client 3, graphql,
graphql-ws, esbuild: all pinned, node 18 or later) and page.js, the client as a single-page app
would set it up: HttpLink behind Apollo's persisted-query link (sha256 from WebCrypto, hashed
queries over GET) and GraphQLWsLink for subscriptions. The test installs them with `npm ci`
(once per lockfile, under pytest's cache directory), bundles page.js with esbuild, serves the
page from its own origin and the API from two others (one in trusted-documents mode), and
drives Debian's Chromium with Playwright: login, a persisted query (hash, PersistedQueryNotFound,
the text, then the hash alone over GET), a mutation (never over GET), a subscription over
graphql-ws, a CORS refusal for a page on an origin not listed, and the trusted-documents refusal.

Node, npm and Chromium come from Debian's packages (.ci/run installs them; as root with apt-get
this test installs nodejs and npm itself); without them it skips, saying what to install.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from server.app import create_app
from server.settings import Settings
from server.wiring import build_services
from services.sandbox import Sandbox
from tests.support import node_tools
from tests.support.api import PASSWORD, register_user, shared_analyser
from tests.support.live import serve_over_tcp
from tests.support.node_tools import run
from tests.test_graphiql_browser import CHROMIUM_ARGS

pytestmark = pytest.mark.process

PAGE = Path(__file__).resolve().parent / "apollo_page"
NODE_MAJOR = 18
HTML = '<!doctype html><meta charset="utf-8"><title>SPA</title><script src="/app.js"></script>'


@pytest.fixture(scope="module")
def bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """page.js and Apollo Client bundled by esbuild (npm ci of apollo_page's lockfile, cached)."""
    _, npm = node_tools.node_and_npm(NODE_MAJOR, "tests/apollo_page")
    cache = Path(request.config.cache.mkdir("npm-apollo-page"))
    node_modules = node_tools.npm_ci_cached(npm, PAGE, cache)
    work = tmp_path_factory.mktemp("apollo-page")
    shutil.copy2(PAGE / "page.js", work / "page.js")
    (work / "node_modules").symlink_to(node_modules, target_is_directory=True)
    esbuild = node_modules / ".bin" / "esbuild"
    built = run([str(esbuild), "page.js", "--bundle", "--format=iife", "--outfile=app.js"], work)
    assert built.returncode == 0, f"esbuild failed:\n{built.stdout}{built.stderr}"
    return (work / "app.js").read_bytes()


@pytest.fixture
def chromium() -> str:
    return node_tools.chromium_path("the Apollo Client browser test")


@pytest.fixture
def async_api() -> ModuleType:
    return pytest.importorskip(
        "playwright.async_api", reason="the playwright package is not installed (dev extra)"
    )


def page_app(script: bytes) -> Starlette:
    async def index(_: Any) -> Response:
        return HTMLResponse(HTML)

    async def app_js(_: Any) -> Response:
        return Response(script, media_type="text/javascript")

    return Starlette(routes=[Route("/", index), Route("/app.js", app_js)])


def _operation(method: str, url: str, body: str | None) -> dict[str, Any]:
    """What Apollo sent: method, operation name, whether the text and a hash were in it."""
    if method == "GET":
        params = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
        fields: dict[str, Any] = {
            **params,
            "extensions": json.loads(params.get("extensions", "{}")),
        }
    else:
        fields = json.loads(body or "{}")
    return {
        "method": method,
        "name": fields.get("operationName"),
        "text": bool(fields.get("query")),
        "hash": "persistedQuery" in (fields.get("extensions") or {}),
    }


async def test_apollo_client_in_a_browser_on_another_origin(
    async_api: ModuleType,
    chromium: str,
    bundle: bytes,
    database: str,
    settings: Settings,
    sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    async with serve_over_tcp(page_app(bundle)) as page_url:
        listed = page_url  # http://127.0.0.1:<port>; the same page as http://localhost:<port>
        unlisted = page_url.replace("127.0.0.1", "localhost")
        open_settings = settings.model_copy(update={"cors_allow_origins": listed})
        trusted_settings = open_settings.model_copy(update={"persisted_operations_only": True})
        open_app = create_app(
            open_settings, build_services(open_settings, None, sandbox, shared_analyser())
        )
        trusted_app = create_app(
            trusted_settings, build_services(trusted_settings, None, sandbox, shared_analyser())
        )
        async with serve_over_tcp(open_app) as api, serve_over_tcp(trusted_app) as trusted_api:
            email = f"apollo-{uuid.uuid4().hex[:10]}@example.com"
            async with httpx.AsyncClient(base_url=api, timeout=30) as http:
                await register_user(http, email)

            sent: list[dict[str, Any]] = []
            problems: list[str] = []
            async with async_api.async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=chromium, headless=True, args=CHROMIUM_ARGS
                )
                try:
                    page = await browser.new_page()
                    page.on("pageerror", lambda error: problems.append(str(error)))

                    def record(request: Any) -> None:
                        if request.url.startswith(api) and request.method in ("GET", "POST"):
                            sent.append(_operation(request.method, request.url, request.post_data))

                    page.on("request", record)
                    await page.goto(listed)
                    await page.wait_for_function("window.scenarioReady === true")
                    config = {"api": api, "email": email, "password": PASSWORD}
                    result = await page.evaluate("c => window.scenario.everything(c)", config)
                    trusted_refusal = await page.evaluate(
                        "c => window.scenario.refused(c)", {"api": trusted_api}
                    )

                    elsewhere = await browser.new_page()
                    await elsewhere.goto(unlisted)
                    await elsewhere.wait_for_function("window.scenarioReady === true")
                    cors_refusal = await elsewhere.evaluate(
                        "c => window.scenario.refused(c)", {"api": api}
                    )
                finally:
                    await browser.close()

    assert not problems, problems
    assert result["login"] == email
    assert result["me"] == [email, email]
    assert result["valid"] is True
    assert result["stages"][0] == "SENT" and result["stages"][-1] == "STORED:browser"

    me = [op for op in sent if op["name"] == "Me"]
    assert me == [
        {"method": "GET", "name": "Me", "text": False, "hash": True},  # PersistedQueryNotFound
        {"method": "POST", "name": "Me", "text": True, "hash": True},  # the text, kept
        {"method": "GET", "name": "Me", "text": False, "hash": True},  # the hash alone runs
    ], sent
    mutations = [op for op in sent if op["name"] in ("Login", "Check")]
    assert mutations and all(op["method"] == "POST" for op in mutations), sent

    assert trusted_refusal["codes"] == ["FORBIDDEN"], trusted_refusal
    assert "PERSISTED_OPERATIONS_ONLY" in trusted_refusal["messages"][0]
    assert cors_refusal["codes"] == [] and "Failed to fetch" in (cors_refusal["network"] or ""), (
        cors_refusal
    )
