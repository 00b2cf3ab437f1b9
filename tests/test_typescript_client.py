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
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from models import GeneratedStrategy, User
from tests.support.api import PASSWORD
from tests.support.client_docs import CLIENTS, copy_client_sources

pytestmark = pytest.mark.process

NODE_MAJOR = 18  # Debian 12's nodejs; docs/clients/package.json pins tools that run on it


def _run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _node_major(node: str) -> int:
    version = _run([node, "--version"], cwd=Path.cwd()).stdout.strip()  # e.g. v20.19.2
    return int(version.lstrip("v").split(".")[0])


def _install_from_debian() -> None:
    """apt-get install nodejs npm (as .ci/run does), when we are root on a Debian-like system."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "nodejs", "npm"]
    for command in (install, ["apt-get", "update", "-qq"], install):
        subprocess.run(command, capture_output=True, env=env, timeout=900, check=False)
        if shutil.which("node") and shutil.which("npm"):
            return


@pytest.fixture(scope="session")
def node_and_npm() -> tuple[str, str]:
    if not (shutil.which("node") and shutil.which("npm")):
        _install_from_debian()
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip(
            "node and npm are missing and could not be installed: apt-get install nodejs npm"
        )
    if (major := _node_major(node)) < NODE_MAJOR:
        pytest.skip(f"node {major} is too old for docs/clients/package.json: {NODE_MAJOR}+ needed")
    return node, npm


@pytest.fixture(scope="session")
def node_modules(node_and_npm: tuple[str, str], request: pytest.FixtureRequest) -> Path:
    """`npm ci` of docs/clients' lockfile, once per lockfile, under pytest's cache directory.

    Installed under a temporary name and renamed into place, so an interrupted or concurrent
    install never leaves a half-made one behind.
    """
    _, npm = node_and_npm
    manifests = [CLIENTS / "package.json", CLIENTS / "package-lock.json"]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in manifests)).hexdigest()[:12]
    cache = Path(request.config.cache.mkdir("npm-clients"))
    installed = cache / digest
    if not (installed / "node_modules").is_dir():
        building = Path(tempfile.mkdtemp(prefix="building-", dir=cache))
        for path in manifests:
            shutil.copy2(path, building / path.name)
        result = _run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=building, timeout=900
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}{result.stderr}"
        try:
            building.rename(installed)
        except OSError:  # another session finished first: use its install
            shutil.rmtree(building, ignore_errors=True)
    return installed / "node_modules"


@pytest.fixture(scope="module")
def built_example(
    node_and_npm: tuple[str, str], node_modules: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """docs/clients generated (codegen.ts), type-checked (tsc --strict) and compiled to dist/."""
    node, _ = node_and_npm
    clients = copy_client_sources(tmp_path_factory.mktemp("ts-client"))
    (clients / "node_modules").symlink_to(node_modules, target_is_directory=True)
    binaries = node_modules / ".bin"

    generated = _run([node, str(binaries / "graphql-codegen"), "--config", "codegen.ts"], clients)
    assert generated.returncode == 0, (
        f"graphql-codegen failed:\n{generated.stdout}{generated.stderr}"
    )
    assert (clients / "src" / "api" / "graphql.ts").is_file()

    checked = _run([node, str(binaries / "tsc"), "--strict", "--noEmit", "-p", "."], clients)
    assert checked.returncode == 0, f"tsc --strict failed:\n{checked.stdout}{checked.stderr}"

    built = _run([node, str(binaries / "tsc"), "-p", ".", "--outDir", "dist"], clients)
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
