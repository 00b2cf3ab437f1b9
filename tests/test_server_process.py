"""The real entry point: `python -m server migrate` then `python -m server`, configured by env."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import PASSWORD, REGISTER
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir: Path = tmp_path_factory.mktemp("server")
    with ServerProcess(workdir) as running:
        yield running.base
    assert (workdir / "data" / "strategies.sqlite3").exists()
    assert (workdir / "data" / "secret_key").exists(), "a dev secret key is generated and kept"


def test_graphiql_is_served(server: str) -> None:
    page = httpx.get(f"{server}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


def test_register_and_generate_over_http(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        body = http.post(
            "/graphql",
            json={
                "query": REGISTER,
                "variables": {"email": "cli@example.com", "password": PASSWORD},
            },
        ).json()
        token = body["data"]["register"]["token"]
        generated = http.post(
            "/graphql",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "query": "mutation { generateStrategy("
                'input: {prompt: "RSI scalping, 2% stop loss"})'
                " { strategy { status } generationLog { status provider } } }"
            },
        ).json()
    assert generated["data"]["generateStrategy"]["generationLog"] == {
        "status": "SUCCESS",
        "provider": "template",
    }
    assert generated["data"]["generateStrategy"]["strategy"]["status"] == "VALIDATED"


def child_pids(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children.update(int(c) for c in (task / "children").read_text().split())
    return children


def test_several_workers_share_the_database_and_the_signing_key(tmp_path: Path) -> None:
    # Not migrated beforehand: the server migrates its new SQLite file once, workers or not.
    with ServerProcess(tmp_path, WORKERS="2", migrate_first=False) as server:
        base = server.base
        workers = {
            pid
            for pid in child_pids(server.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        }
        assert len(workers) == 2, f"expected 2 worker processes under {server.pid}: {workers}"
        tokens = []
        with httpx.Client(base_url=base, timeout=30) as http:
            for number in range(6):
                # Fresh connections, so the kernel spreads them over both workers.
                body = httpx.post(
                    f"{base}/graphql",
                    json={
                        "query": REGISTER,
                        "variables": {"email": f"w{number}@example.com", "password": PASSWORD},
                    },
                ).json()
                tokens.append(body["data"]["register"]["token"])
            for token in tokens * 3:
                me = httpx.post(
                    f"{base}/graphql",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"query": "{ me { email } }"},
                ).json()
                assert "errors" not in me, me
            count = http.post(
                "/graphql",
                headers={"Authorization": f"Bearer {tokens[0]}"},
                json={"query": "{ strategies { totalCount } }"},
            ).json()
            metrics = http.get("/metrics").text
        assert count["data"]["strategies"]["totalCount"] == 0
        served = sum(
            sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "http_requests_total"
            and sample.labels.get("route") == "/graphql"
            and sample.labels.get("status") == "200"
        )
        assert served == 6 + 18 + 1, "/metrics adds up every worker's requests"
    assert len((tmp_path / "data" / "secret_key").read_text().strip()) > 40


def _register_as(http: httpx.Client, forwarded_for: str) -> dict[str, object]:
    email = f"spoof-{forwarded_for.replace('.', '-')}@example.com"
    response = http.post(
        "/graphql",
        headers={"X-Forwarded-For": forwarded_for},
        json={"query": REGISTER, "variables": {"email": email, "password": PASSWORD}},
    )
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize(
    ("trusted_proxies", "limited"), [("", True), ("127.0.0.1", False)], ids=["default", "listed"]
)
def test_forwarded_addresses_count_only_from_listed_proxies(
    tmp_path: Path, trusted_proxies: str, limited: bool
) -> None:
    """A client choosing its own X-Forwarded-For must not escape the per-address limit."""
    settings = {"RATE_LIMIT_AUTH_BY_ADDRESS": "2/minute", "TRUSTED_PROXIES": trusted_proxies}
    with (
        ServerProcess(tmp_path, **settings) as running,
        httpx.Client(base_url=running.base, timeout=30) as http,
    ):
        bodies = [_register_as(http, f"203.0.113.{i}") for i in range(1, 5)]
    codes = [
        [e["extensions"]["code"] for e in body.get("errors", [])]  # type: ignore[attr-defined]
        for body in bodies
    ]
    if limited:
        assert codes == [[], [], ["RATE_LIMITED"], ["RATE_LIMITED"]]
    else:
        assert codes == [[], [], [], []]
