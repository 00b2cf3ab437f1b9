"""The real entry point: `python -m server migrate` then `python -m server`, configured by env."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import PASSWORD, REGISTER, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir: Path = tmp_path_factory.mktemp("server")
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "DATABASE_", "SECRET_"))
    }
    env.update(PORT=str(port), HOST="127.0.0.1", PYTHONPATH=str(ROOT))
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
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
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
