"""Node, npm and Chromium for the tests that run clients as users do: from Debian's packages
(.ci/run installs them), found or installed here, else a skip that says how to get them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


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


def node_and_npm(min_major: int, needed_by: str) -> tuple[str, str]:
    """Paths of node (at least `min_major`) and npm, or a skip naming what is missing."""
    if not (shutil.which("node") and shutil.which("npm")):
        _install_from_debian()
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip(
            "node and npm are missing and could not be installed: apt-get install nodejs npm"
        )
    version = run([node, "--version"], Path.cwd()).stdout.strip()  # e.g. v20.19.2
    if int(version.lstrip("v").split(".")[0]) < min_major:
        pytest.skip(f"node {version} is too old for {needed_by}: {min_major}+ needed")
    return node, npm


def npm_ci_cached(npm: str, package: Path, cache: Path) -> Path:
    """`npm ci` of `package`'s lockfile into `cache`, once per lockfile: its node_modules.

    Installed under a temporary name and renamed into place, so an interrupted or concurrent
    install never leaves a half-made one behind."""
    manifests = [package / "package.json", package / "package-lock.json"]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in manifests)).hexdigest()[:12]
    installed = cache / digest
    if not (installed / "node_modules").is_dir():
        building = Path(tempfile.mkdtemp(prefix="building-", dir=cache))
        for path in manifests:
            shutil.copy2(path, building / path.name)
        done = run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], building, 900)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}{done.stderr}"
        try:
            building.rename(installed)
        except OSError:  # another session finished first: use its install
            shutil.rmtree(building, ignore_errors=True)
    return installed / "node_modules"


def chromium_path(needed_by: str) -> str:
    """Debian's Chromium (or CHROMIUM_PATH); missing in CI is a failure, elsewhere a skip."""
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(path).is_file():
        if os.environ.get("CI"):  # .ci/run installs it: missing there is a failure
            pytest.fail(f"no Chromium at {path}: .ci/run should have installed it")
        pytest.skip(
            f"no Chromium at {path}: `apt-get install chromium` (or set CHROMIUM_PATH) "
            f"to run {needed_by}"
        )
    return path
