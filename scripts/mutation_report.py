"""The mutation report in docs/testing.md, written from mutmut's own results (`make mutation`).

Reads mutmut's per-file result files (mutants/<path>.meta: each mutant's exit code) with
mutmut's status names, counts per module, and lists every surviving mutant: those accepted in
tests/mutation_accepted.txt with their reason, the others marked "not yet accepted". The score
counts a mutant no test reaches as a survivor. `--check` only prints; without it the section
between the markers in docs/testing.md is replaced.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
ACCEPTED = ROOT / "tests" / "mutation_accepted.txt"
BEGIN = "<!-- mutation-report:begin (scripts/mutation_report.py writes this) -->"
END = "<!-- mutation-report:end -->"
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "no tests"}


def configured_modules() -> list[str]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def accepted_reasons() -> dict[str, str]:
    """`mutant-name  reason` lines; `#` starts a comment."""
    reasons: dict[str, str] = {}
    for line in ACCEPTED.read_text().splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if line:
            name, _, reason = line.partition(" ")
            reasons[name] = reason.strip()
    return reasons


def statuses(module: str) -> dict[str, str]:
    meta = ROOT / "mutants" / f"{module}.meta"
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return head.stdout.strip() + (" (services/ modified)" if dirty.stdout.strip() else "")


def report(at_commit: str | None = None) -> str:
    reasons = accepted_reasons()
    rows = [
        "| Module | Mutants | Killed | Survived | No test | Not run | Score |",
        "|---|---|---|---|---|---|---|",
    ]
    survivors: list[tuple[str, str, str]] = []
    for module in configured_modules():
        found = statuses(module)
        counts = Counter(found.values())
        killed = sum(counts[s] for s in KILLED)
        checked = killed + sum(counts[s] for s in SURVIVED)
        not_run = len(found) - checked
        score = f"{100 * killed / checked:.1f}%" if checked else "not run"
        rows.append(
            f"| {module} | {len(found)} | {killed} | {counts['survived']} | "
            f"{counts['no tests']} | {not_run} | {score} |"
        )
        for name, status in sorted(found.items()):
            if status in SURVIVED:
                survivors.append((name, status, reasons.get(name, "**not yet accepted**")))
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        f"Report of {date}; tests at commit {at_commit or commit()} (mutmut, `make mutation`).",
        "Score = killed / (killed + survived + no test); *Not run* = left out of this run.",
        "",
        *rows,
        "",
        f"Surviving mutants ({len(survivors)}): `mutmut show <name>` prints each diff.",
        "",
        "| Mutant | Status | Why it is acceptable |",
        "|---|---|---|",
        *(f"| `{name}` | {status} | {reason} |" for name, status, reason in survivors),
        END,
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="print, do not write the doc")
    parser.add_argument("--commit", help="the commit the run tested, if not HEAD")
    args = parser.parse_args()
    section = report(args.commit)
    if args.check:
        print(section)
        return 0
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + section + text[end:])
    print(f"{DOC.relative_to(ROOT)} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
