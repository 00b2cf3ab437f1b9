"""Every test the docs cite as evidence exists: a renamed or deleted test must not leave a
promise pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.api import ROOT

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FILE_REF = re.compile(r"tests/([\w/]+\.py)(?:::(\w+))?")
NAME_REF = re.compile(r"`(test_\w+)(?:\[[^\]`]*\])?`")


def _defined_tests() -> dict[str, set[str]]:
    """Test file (relative to tests/) -> names of the functions it defines."""
    defined: dict[str, set[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        names = set(re.findall(r"^\s*(?:async\s+)?def\s+(test_\w+)", path.read_text(), re.M))
        defined[str(path.relative_to(ROOT / "tests"))] = names
    return defined


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cited_tests_exist(doc: Path) -> None:
    defined = _defined_tests()
    every_name = set().union(*defined.values())
    text = doc.read_text()
    missing = []
    for match in FILE_REF.finditer(text):
        file, name = match.group(1), match.group(2)
        if file not in defined:
            missing.append(f"tests/{file}")
        elif name and name not in defined[file]:
            missing.append(f"tests/{file}::{name}")
    missing += [f"`{name}`" for name in NAME_REF.findall(text) if name not in every_name]
    assert missing == [], f"{doc.name} cites tests that do not exist: {missing}"


PATH_REF = re.compile(
    r"\b((?:services|server|schema|models|tests|bench|scripts|docs)/[\w/.-]+\.(?:py|sh|md|graphql|toml|json|ts))\b"
)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cited_files_exist(doc: Path) -> None:
    """A moved or renamed module must not leave the docs pointing at nothing."""
    missing = sorted(
        {path for path in PATH_REF.findall(doc.read_text()) if not (ROOT / path).exists()}
    )
    assert missing == [], f"{doc.name} cites files that do not exist: {missing}"


def test_the_configuration_table_lists_every_setting() -> None:
    """README's configuration table is the operator's reference: one row per setting."""
    from server.settings import Settings

    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", (ROOT / "README.md").read_text(), re.M))
    settings = {name.upper() for name in Settings.model_fields}
    # Read by prometheus_client itself, not by Settings (services/telemetry.py).
    assert rows - {"PROMETHEUS_MULTIPROC_DIR"} == settings
