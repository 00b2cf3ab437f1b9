"""`make bench`: every bench script in turn, then docs/benchmarks.md regenerated from their rows.

Order: the smallest unit first (the engine, the sandbox alone), then the sandbox A/B, the
sandboxed backtest, the API, and the real server under load and attack. Each script writes
its rows with `--json` (bench/results.py); a script that fails or outlives `--timeout`
still gets a row saying so. SQLite throughout (DATABASE_URL and WORKERS are not passed
on), but for bench/api.py, which measures PostgreSQL too in a scratch database of its own.
The sandbox A/B sets this checkout against `--ab-reference` (a git revision, HEAD by
default: with a clean tree an A/A run, the machine's noise), unpacked with `git archive`.
A whole run takes well over half an hour on a 2-core machine (bench/jobs.py and
bench/optimize.py about ten minutes each). The file is written whatever the outcome; the
exit status is 1 when any script's was not 0 (a target missed or a failure).

Usage: .venv/bin/python bench/run_all.py [--output docs/benchmarks.md] [--ab-reference HEAD]
       [--only api.py,load.py] [--timeout 900]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import ScriptRun, describe_machine, render  # noqa: E402
from bench.results import read_rows  # noqa: E402

# Script and arguments, in the order run. Defaults unless said; `--json` is added.
BENCHES: list[tuple[str, list[str]]] = [
    ("bench/backtest_engine.py", ["--repeat", "3"]),
    ("bench/sandbox.py", []),
    ("bench/sandbox_ab.py", []),  # --reference and --reference-name added at run time
    ("bench/backtest.py", []),
    ("bench/optimize.py", []),
    ("bench/api.py", []),  # SQLite and PostgreSQL (a scratch database, dropped after)
    ("bench/generation_overhead.py", []),
    ("bench/repair.py", []),
    ("bench/persisted_queries.py", []),
    ("bench/datasets.py", []),
    ("bench/load.py", []),
    ("bench/validation_flood.py", []),
    ("bench/sandbox_fairness.py", []),
    ("bench/large_bodies.py", []),
    ("bench/jobs.py", []),  # about ten minutes: 3 ways x 3 rounds of 200 sandboxed backtests
]


def unpack_revision(revision: str, into: Path) -> str:
    """The tree of `revision` under `into` (no worktree registered); its short name."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    short = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{revision} ({short})" if short != revision else revision


def run_script(
    script: str,
    arguments: list[str],
    shown: list[str],
    json_path: Path,
    timeout: float,
    env: dict[str, str],
) -> ScriptRun:
    """Run one script; `shown` are its arguments as the table prints them."""
    print(f"\n=== {script} {' '.join(arguments)}", flush=True)
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / script), *arguments, "--json", str(json_path)],
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its servers and fork servers go with it on a timeout
    )
    try:
        exit_code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        exit_code = process.wait()
    rows = read_rows(json_path) if json_path.exists() else []
    return ScriptRun(script, shown, exit_code, time.monotonic() - began, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--ab-reference", default="HEAD", help="git revision for sandbox_ab.py")
    parser.add_argument("--only", default="", help="comma-separated script names, e.g. api.py")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per script")
    args = parser.parse_args()

    started, load_at_start = datetime.now(UTC), os.getloadavg()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "WORKERS")}
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-all-") as workdir:
        for script, arguments in BENCHES:
            if only and Path(script).name not in only:
                continue
            shown = arguments
            if script.endswith("sandbox_ab.py"):
                reference = Path(workdir) / "reference"
                name = unpack_revision(args.ab_reference, reference)
                shown = [*arguments, "--reference", f"<a checkout of {args.ab_reference}>"]
                arguments = [*arguments, "--reference", str(reference), "--reference-name", name]
            json_path = Path(workdir) / (Path(script).stem + ".json")
            runs.append(run_script(script, arguments, shown, json_path, args.timeout, env))
    machine = describe_machine(started, load_at_start, ROOT)
    args.output.write_text(render(runs, machine))
    print(f"\nwrote {args.output}")
    return 0 if all(run.exit_code == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
