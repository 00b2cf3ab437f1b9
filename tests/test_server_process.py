"""The real entry point: `python -m server migrate` then `python -m server`, configured by env."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import PASSWORD, REGISTER, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(workdir: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m server migrate`, then `python -m server` in `workdir`, configured by env."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "DATABASE_", "SECRET_"))
    }
    env.update(PORT=str(port), HOST="127.0.0.1", PYTHONPATH=str(ROOT), **settings)
    # DATABASE_URL unset: the default SQLite file under ./data of the working directory.
    migrate = subprocess.run(
        [sys.executable, "-m", "server", "migrate"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "server"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            process.kill()
            pytest.fail(
                "server did not start:\n" + (process.stdout.read() if process.stdout else "")
            )
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir: Path = tmp_path_factory.mktemp("server")
    with running_server(workdir) as (base, _):
        yield base
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
    with running_server(tmp_path, WORKERS="2") as (base, process):
        workers = {
            pid
            for pid in child_pids(process.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        }
        assert len(workers) == 2, f"expected 2 worker processes under {process.pid}: {workers}"
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
