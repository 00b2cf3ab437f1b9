"""Sandbox A/B benchmark: this checkout against a reference checkout (e.g. main), alternated.

Prints, for each, the median and spread (min-max) over the rounds of: `Sandbox.start()` time
(spawn, imports, warm-up, probe) and the p50 of `run_signal` round trips with every layer
on. Each measurement runs in a fresh interpreter whose `services` is the checkout's own; the
two checkouts alternate round by round, so load from other work hits both alike.

Usage: .venv/bin/python bench/sandbox_ab.py --reference /path/to/main-checkout
       [--rounds 5] [--calls 100]
Make a reference checkout with: git worktree add --detach /tmp/main-ref main
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import add_json_option, results_for, span  # noqa: E402

MEASURE = """
import asyncio, json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from services.sandbox import Sandbox
from services.sandbox.warmup import sample_bars

SIGNAL = '''
import pandas as pd

def execute_strategy(market_data, strategy_params):
    close = pd.Series(market_data["close"])
    fast, slow = close.rolling(5).mean().iloc[-1], close.rolling(20).mean().iloc[-1]
    return {"action": "buy" if fast > slow else "sell", "confidence": 0.5}
'''

async def main(calls):
    began = time.perf_counter()
    async with Sandbox() as box:
        start_ms = (time.perf_counter() - began) * 1000
        bars = sample_bars(500)
        for _ in range(5):
            await box.run_signal(SIGNAL, bars, {})
        timings = []
        for _ in range(calls):
            began = time.perf_counter()
            await box.run_signal(SIGNAL, bars, {})
            timings.append((time.perf_counter() - began) * 1000)
        print(json.dumps({"start_ms": start_ms, "p50_ms": statistics.median(timings),
                          "probe": box.probe.summary()}))

asyncio.run(main(int(sys.argv[2])))
"""


def _measure(tree: Path, calls: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tree), str(calls)],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _figure(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument(
        "--reference-name", default="reference", help="how the reference is named in the rows"
    )
    add_json_option(parser)
    args = parser.parse_args()
    trees = {"this checkout": ROOT, "reference": args.reference.resolve()}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in order:
            results[name].append(_measure(trees[name], args.calls))
    for name, runs in results.items():
        print(f"{name}: {runs[-1]['probe']}")
    print(f"\n{args.rounds} rounds, alternated; median (min-max)")
    print(f"  {'':16} {'start ms':>22} {'run_signal p50 ms':>22}")
    for name, runs in results.items():
        start = _figure([run["start_ms"] for run in runs])
        p50 = _figure([run["p50_ms"] for run in runs])
        print(f"  {name:16} {start:>22} {p50:>22}")
    rows = results_for(args)
    for key, what in (
        ("start_ms", "`Sandbox.start()` (spawn, imports, warm-up, probe)"),
        ("p50_ms", f"`run_signal` p50, {args.calls} calls"),
    ):
        ours = [run[key] for run in results["this checkout"]]
        theirs = [run[key] for run in results["reference"]]
        rows.add(
            f"sandbox A/B, {what}: this checkout against {args.reference_name}; "
            f"{args.rounds} rounds, alternated",
            f"{statistics.median(ours):.1f} ms",
            span(ours),
            f"{args.reference_name}: {statistics.median(theirs):.1f} ms ({span(theirs)})",
        )
    rows.write()


if __name__ == "__main__":
    main()
