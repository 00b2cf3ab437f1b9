"""The first `make install` is quiet (issue 11): the project's own editable install, run as the
Makefile runs it, prints nothing on stderr. A throwaway venv and a copy of the tracked files
keep the real .venv and the work tree out of it; `--no-deps` keeps it to our build (the
dependencies are pip's business, and a warning pip gives about this machine's pip.conf
extra index is not ours: such lines are left out of the check).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.process


def makefile_install_command() -> list[str]:
    """The pip arguments of the Makefile's project install, so this test follows the recipe."""
    text = (ROOT / "Makefile").read_text()
    match = re.search(r"^\t(PYTHONWARNINGS=\S+ )?\$\(PY\) -m pip install (.*-e .*)$", text, re.M)
    assert match, "the Makefile's `pip install -e` line moved: update this test"
    env_prefix, arguments = match.groups()
    assert env_prefix, "the Makefile no longer silences the build backend's warnings"
    return ["install", *arguments.replace('".[dev]"', ".").split()]


def machine_noise(line: str) -> bool:
    return "/opt/pypi-more" in line or not line.strip()


def test_the_editable_install_prints_nothing_on_stderr(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.fail("git is needed to copy the tracked files")
    source = tmp_path / "src"
    source.mkdir()
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        target = source / name.decode()
        if not (ROOT / name.decode()).is_file():
            continue  # deleted in the work tree, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name.decode(), target)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    environment = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [str(python), "-m", "pip", *makefile_install_command(), "--no-deps"],
        cwd=source,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    noise = [line for line in result.stderr.splitlines() if not machine_noise(line)]
    assert noise == [], "\n".join(noise)
    assert result.stdout.strip() == ""
    located = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('services').origin)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # The editable install points at the copy (find_spec does not run the package's imports).
    assert located.stdout.strip() == str(source / "services" / "__init__.py"), located.stderr
