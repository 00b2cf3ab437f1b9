"""Machine-readable results for the bench scripts: each script records rows, `--json PATH`
writes them, and bench/run_all.py turns every script's file into docs/benchmarks.md.

A row is one figure beside its reference: what is measured, the figure (a median, a ratio,
a count), its spread (min to max over rounds; "one run" when the script does not repeat),
the reference or target, and whether the target is met (None when there is no target).
Recording adds no work to what a script measures: rows are built from figures it already
printed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ONE_RUN = "one run"


@dataclass
class Row:
    what: str
    figure: str
    spread: str = ""
    reference: str = ""
    met: bool | None = None


@dataclass
class Results:
    """The rows of one script's run; `write` saves them where `--json` asked (if it did)."""

    path: Path | None
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        what: str,
        figure: str,
        spread: str = "",
        reference: str = "",
        met: bool | None = None,
    ) -> None:
        self.rows.append(Row(what, figure, spread, reference, met))

    def write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"rows": [asdict(row) for row in self.rows]}
        self.path.write_text(json.dumps(payload, indent=2) + "\n")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the figures as JSON rows (bench/results.py) to PATH",
    )


def results_for(args: argparse.Namespace) -> Results:
    return Results(getattr(args, "json", None))


def read_rows(path: Path) -> list[Row]:
    payload: dict[str, Any] = json.loads(path.read_text())
    return [Row(**row) for row in payload["rows"]]


def span(values: Sequence[float], fmt: str = "{:.1f}", unit: str = " ms") -> str:
    """'min to max' of `values`: the spread beside a figure that is their median."""
    return f"{fmt.format(min(values))} to {fmt.format(max(values))}{unit}"
