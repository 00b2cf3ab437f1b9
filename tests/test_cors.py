"""Pages on other origins: CORS for HTTP and the same allow-list for WebSocket handshakes."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from server.settings import Settings
from services.sandbox import Sandbox
from tests.support.api import make_client
from tests.support.live import serve_over_tcp

APP = "http://localhost:5173"
OTHER = "https://evil.example"
QUERY = {"query": "{ sampleDatasets }"}
PROTOCOL = "graphql-transport-ws"


def with_origins(settings: Settings, origins: str) -> Settings:
    return settings.model_copy(update={"cors_allow_origins": origins})


async def test_a_listed_origin_may_call_and_read_the_api(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    async with make_client(with_origins(settings, APP), sandbox=sandbox) as client:
        preflight = await client.options(
            "/graphql",
            headers={
                "Origin": APP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == APP
        allowed = {
            h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")
        }
        assert {"authorization", "content-type", "x-request-id"} <= allowed
        assert int(preflight.headers["access-control-max-age"]) > 0
        assert "access-control-allow-credentials" not in preflight.headers

        answer = await client.post("/graphql", json=QUERY, headers={"Origin": APP})
        assert answer.status_code == 200 and "errors" not in answer.json()
        assert answer.headers["access-control-allow-origin"] == APP
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("origins", ["", APP], ids=["default", "another-listed"])
async def test_an_unlisted_origin_gets_no_cors_headers(
    database: str, settings: Settings, sandbox: Sandbox, origins: str
) -> None:
    async with make_client(with_origins(settings, origins), sandbox=sandbox) as client:
        preflight = await client.options(
            "/graphql",
            headers={"Origin": OTHER, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        answer = await client.post("/graphql", json=QUERY, headers={"Origin": OTHER})
        assert "access-control-allow-origin" not in answer.headers


async def test_websocket_handshakes_follow_the_same_list(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    from server.app import create_app
    from server.wiring import build_services
    from tests.support.api import shared_analyser

    listed = with_origins(settings, APP)
    app = create_app(listed, build_services(listed, None, sandbox, shared_analyser()))
    async with serve_over_tcp(app) as base:
        url = "ws" + base.removeprefix("http") + "/graphql"
        own = base  # the page GraphiQL is served from
        for origin in (APP, own, None):
            headers = {"Origin": origin} if origin else {}
            async with connect(
                url, subprotocols=["graphql-transport-ws"], additional_headers=headers
            ):
                pass
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=[PROTOCOL], additional_headers={"Origin": OTHER}):
                pass
        assert refused.value.response.status_code == 403


@pytest.mark.parametrize("value", ["*", "https://app.example.com/path", "app.example.com"])
def test_only_exact_origins_are_accepted(value: str) -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        Settings(_env_file=None, cors_allow_origins=value)  # type: ignore[call-arg]
