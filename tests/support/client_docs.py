"""The client configurations of docs/clients.md, copied with the files they point to.

docs/clients/ holds codegen.toml (ariadne-codegen), codegen.ts, tsconfig.json, package.json
and src/ (graphql-codegen and TypeScript); their paths are relative to that folder
(../../schema.graphql, ../operations). The tests copy schema.graphql, docs/operations and
docs/clients to a scratch directory with the same layout and run the tools there, on the
files exactly as committed, so nothing is generated inside the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.api import ROOT

CLIENTS = ROOT / "docs" / "clients"
OPERATIONS = ROOT / "docs" / "operations"
SCHEMA = ROOT / "schema.graphql"

# What the tools write or install next to the configurations (see docs/clients/.gitignore).
GENERATED = ("node_modules", "dist", "strategy_api_client", "api")


def copy_client_sources(destination: Path) -> Path:
    """Copy schema, operations and docs/clients under `destination`; return the clients dir."""
    shutil.copy2(SCHEMA, destination / "schema.graphql")
    shutil.copytree(OPERATIONS, destination / "docs" / "operations")
    clients = destination / "docs" / "clients"
    shutil.copytree(CLIENTS, clients, ignore=shutil.ignore_patterns(*GENERATED))
    return clients
