"""The TypeScript client of docs/clients.md: generated, type-checked and run against the app.

docs/clients/ holds package.json and package-lock.json (graphql-codegen's client preset,
TypeScript, graphql-ws, all pinned), codegen.ts, tsconfig.json and src/ (a small typed client,
src/api-client.ts, and src/example.ts, which drives the main flows). The test runs them exactly
as committed: `npm ci` (once per lockfile, cached under pytest's cache directory), graphql-codegen
(strictScalars: a scalar of schema.graphql missing from the map fails it), `tsc --strict
--noEmit`, then the compiled example under node against the app on a real TCP port.

node (18 or later) and npm come from the system; as root with apt-get, the test installs
Debian's packages when they are missing, and otherwise skips, saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from models import GeneratedStrategy, User
from server.settings import Settings
from services.sandbox import Sandbox
from tests.support import node_tools
from tests.support.api import PASSWORD, make_client
from tests.support.client_docs import CLIENTS, copy_client_sources
from tests.support.node_tools import run

pytestmark = pytest.mark.process

NODE_MAJOR = 18  # Debian 12's nodejs; docs/clients/package.json pins tools that run on it


@pytest.fixture(scope="session")
def node_and_npm() -> tuple[str, str]:
    return node_tools.node_and_npm(NODE_MAJOR, "docs/clients/package.json")


@pytest.fixture(scope="session")
def node_modules(node_and_npm: tuple[str, str], request: pytest.FixtureRequest) -> Path:
    """`npm ci` of docs/clients' lockfile, once per lockfile, under pytest's cache directory."""
    _, npm = node_and_npm
    return node_tools.npm_ci_cached(npm, CLIENTS, Path(request.config.cache.mkdir("npm-clients")))


@pytest.fixture(scope="module")
def built_example(
    node_and_npm: tuple[str, str], node_modules: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """docs/clients generated (codegen.ts), type-checked (tsc --strict) and compiled to dist/."""
    node, _ = node_and_npm
    clients = copy_client_sources(tmp_path_factory.mktemp("ts-client"))
    (clients / "node_modules").symlink_to(node_modules, target_is_directory=True)
    binaries = node_modules / ".bin"

    generated = run([node, str(binaries / "graphql-codegen"), "--config", "codegen.ts"], clients)
    assert generated.returncode == 0, (
        f"graphql-codegen failed:\n{generated.stdout}{generated.stderr}"
    )
    assert (clients / "src" / "api" / "graphql.ts").is_file()

    checked = run([node, str(binaries / "tsc"), "--strict", "--noEmit", "-p", "."], clients)
    assert checked.returncode == 0, f"tsc --strict failed:\n{checked.stdout}{checked.stderr}"

    built = run([node, str(binaries / "tsc"), "-p", ".", "--outDir", "dist"], clients)
    assert built.returncode == 0, built.stdout + built.stderr
    return clients / "dist" / "example.js"


async def test_the_typescript_example_runs_the_main_flows(
    node_and_npm: tuple[str, str], built_example: Path, live_url: str
) -> None:
    """Register, generate, list, validate and a backtest subscription, from node."""
    node, _ = node_and_npm
    process = await asyncio.create_subprocess_exec(
        node,
        str(built_example),
        f"{live_url}/graphql",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "EXAMPLE_PASSWORD": PASSWORD},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, f"the example failed:\n{stdout.decode()}{stderr.decode()}"

    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert summary["events"] >= 2 and summary["bars"] > 0
    user = await User.get(email=summary["email"])
    strategy = await GeneratedStrategy.get(id=summary["strategyId"])
    assert str(strategy.user_id) == str(user.id)
    assert strategy.performance_metrics["bars"] == summary["bars"], (
        "the backtest's metrics are stored"
    )


async def test_codegen_persisted_documents_are_a_trusted_manifest(
    node_and_npm: tuple[str, str],
    node_modules: Path,
    tmp_path: Path,
    database: str,
    settings: Settings,
    sandbox: Sandbox,
) -> None:
    """docs/clients.md's trusted documents: the client preset's persistedDocuments (sha256)
    writes persisted-documents.json, which PERSISTED_OPERATIONS_MANIFESTS loads as it is; the
    client's hashes then run in trusted mode."""
    node, _ = node_and_npm
    clients = copy_client_sources(tmp_path)
    (clients / "node_modules").symlink_to(node_modules, target_is_directory=True)
    config = clients / "codegen.ts"
    original = "presetConfig: { fragmentMasking: false }"
    assert original in config.read_text()
    persisted = 'persistedDocuments: { hashAlgorithm: "sha256" }'
    config.write_text(
        config.read_text().replace(
            original, f"presetConfig: {{ fragmentMasking: false, {persisted} }}"
        )
    )
    binaries = node_modules / ".bin"
    generated = run([node, str(binaries / "graphql-codegen"), "--config", "codegen.ts"], clients)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    manifest = clients / "src" / "api" / "persisted-documents.json"
    documents = json.loads(manifest.read_text())
    [(key, _)] = [(k, text) for k, text in documents.items() if "query SampleDatasets" in text]

    trusted = settings.model_copy(
        update={"persisted_operations_only": True, "persisted_operations_manifests": str(manifest)}
    )
    async with make_client(trusted, sandbox=sandbox) as client:
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": key}}
        answer = await client.get(
            "/graphql",
            params={"extensions": json.dumps(extensions)},
            headers={"Accept": "application/json"},
        )
    assert "errors" not in answer.json(), answer.text
    assert answer.json()["data"]["sampleDatasets"]
