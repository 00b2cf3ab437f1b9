"""Sandbox benchmark: round-trip latency of `run_signal` on the fast path (fork server) and
what each isolation layer costs, at start-up and per job.

Prints:
  * p50/p99 of N `run_signal` round trips (server -> fork server -> fresh job -> result) with
    every layer on (target: p50 under 20 ms), and for a backtest of 2,000 bars;
  * for each layer configuration: `Sandbox.start()` time (spawn, imports, warm-up, probe)
    and p50/p99 of run_signal, so the cost of bwrap/unshare, seccomp and Landlock shows;
  * the raw cost of the pieces: a bare `python -c pass`, `bwrap ... true` over `true`, and
    building/loading the seccomp filter and entering a Landlock domain in a forked child.

Usage: .venv/bin/python bench/sandbox.py [--calls 200] [--layer-calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import ONE_RUN, add_json_option, results_for, span  # noqa: E402
from services.backtesting import BacktestOptions  # noqa: E402
from services.sandbox import Sandbox, SandboxSettings, launcher, oslayers  # noqa: E402  # noqa: E402
from services.sandbox.warmup import sample_bars  # noqa: E402

SIGNAL = """
import pandas as pd

def execute_strategy(market_data, strategy_params):
    close = pd.Series(market_data["close"])
    fast, slow = close.rolling(5).mean().iloc[-1], close.rolling(20).mean().iloc[-1]
    return {"action": "buy" if fast > slow else "sell", "confidence": 0.5}
"""

CONFIGS = {
    "rlimits only (unisolated)": SandboxSettings(
        namespaces="none", seccomp=False, landlock=False, allow_unisolated=True
    ),
    "+ seccomp": SandboxSettings(namespaces="none", landlock=False),
    "+ seccomp + landlock": SandboxSettings(namespaces="none"),
    "+ seccomp + landlock + unshare": SandboxSettings(namespaces="unshare"),
    "+ seccomp + landlock + bwrap (default)": SandboxSettings(namespaces="bwrap"),
}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


async def _signal_latency(box: Sandbox, calls: int) -> list[float]:
    bars = sample_bars(500)
    for _ in range(5):  # the first jobs page in the fork server's memory
        await box.run_signal(SIGNAL, bars, {})
    timings = []
    for _ in range(calls):
        began = time.perf_counter()
        await box.run_signal(SIGNAL, bars, {})
        timings.append(time.perf_counter() - began)
    return timings


def _command_ms(argv: list[str], runs: int = 20) -> float:
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        timings.append(time.perf_counter() - began)
    return statistics.median(timings) * 1000


def _in_child_ms(action: str, runs: int = 50) -> float:
    """Median time, measured inside a forked child, to load the seccomp filter or enter a
    Landlock domain (the per-job cost of that layer)."""
    flt = oslayers.build_seccomp_filter()
    abi = oslayers.landlock_abi()
    timings = []
    for _ in range(runs):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            began = time.perf_counter()
            if action == "seccomp":
                flt.load()
            else:
                oslayers.apply_landlock(abi)
            os.write(write_end, struct.pack("d", time.perf_counter() - began))
            os._exit(0)
        os.close(write_end)
        timings.append(struct.unpack("d", os.read(read_end, 8))[0])
        os.close(read_end)
        os.waitpid(pid, 0)
    return statistics.median(timings) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--layer-calls", type=int, default=50)
    add_json_option(parser)
    args = parser.parse_args()
    results = results_for(args)

    async with Sandbox() as box:
        assert box.probe is not None
        print(f"probe: {box.probe.summary()}")
        p50, p99 = _percentiles(await _signal_latency(box, args.calls))
        print(f"run_signal, all layers, {args.calls} calls: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        results.add(
            f"sandbox round trip alone (`run_signal`, all layers, a pandas strategy on 500 "
            f"bars), {args.calls} calls",
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            ONE_RUN,
            "p50 < 20 ms",
            p50 < 20,
        )
        bars = sample_bars(2000)
        timings = []
        for _ in range(5):
            began = time.perf_counter()
            await box.run_backtest(SIGNAL, bars, {}, BacktestOptions())
            timings.append(time.perf_counter() - began)
        print(
            f"run_backtest, 2,000 bars, 5 runs: median {statistics.median(timings) * 1000:.0f} ms"
        )
        results.add(
            "sandboxed backtest of 2,000 bars in one job, 5 runs",
            f"{statistics.median(timings) * 1000:.0f} ms",
            span([t * 1000 for t in timings], "{:.0f}"),
        )

    print("\nper layer configuration (start = spawn + imports + warm-up + probe):")
    print(f"  {'configuration':42} {'start ms':>9} {'p50 ms':>8} {'p99 ms':>8}")
    baseline = ""
    for name, settings in CONFIGS.items():
        if "bwrap" in name and not shutil.which("bwrap"):
            print(f"  {name:42} (bwrap not installed)")
            continue
        began = time.perf_counter()
        async with Sandbox(settings) as box:
            start_ms = (time.perf_counter() - began) * 1000
            p50, p99 = _percentiles(await _signal_latency(box, args.layer_calls))
        print(f"  {name:42} {start_ms:9.0f} {p50:8.1f} {p99:8.1f}")
        figure = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; start-up {start_ms:.0f} ms"
        results.add(
            f"sandbox layers: {name}, {args.layer_calls} `run_signal` calls",
            figure,
            ONE_RUN,
            baseline or "the baseline of the layer rows",
        )
        baseline = baseline or f"rlimits only: {figure}"

    print("\nraw pieces:")
    python_ms = _command_ms([sys.executable, "-c", "pass"])
    print(f"  python -c pass: {python_ms:.1f} ms")
    # As root, what the sandbox runs: root's bwrap (the view), setpriv, the inner bwrap.
    drop_to = launcher.privilege_drop(launcher.DEFAULT_HOST_UID)
    bwrap = launcher.bwrap_argv(sys.executable, user_namespace=True, drop_to=drop_to)
    if bwrap:
        plain = _command_ms(["/bin/true"])
        wrapped = _command_ms([*bwrap, "/bin/true"])
        how = "" if drop_to is None else f", as uid {drop_to} via an outer bwrap"
        print(f"  bwrap (all namespaces, binds{how}) over /bin/true: +{wrapped - plain:.1f} ms")
    seccomp_ms = _in_child_ms("seccomp")
    print(f"  seccomp filter load in a forked child: +{seccomp_ms:.2f} ms")
    pieces = f"seccomp filter load +{seccomp_ms:.2f} ms"
    if oslayers.landlock_abi():
        landlock_ms = _in_child_ms("landlock")
        print(f"  Landlock domain in a forked child: +{landlock_ms:.2f} ms")
        pieces += f", Landlock domain +{landlock_ms:.2f} ms"
    results.add(
        "per-job cost of the OS layers, in a forked child (median of 50)",
        pieces,
        ONE_RUN,
        f"`python -c pass` {python_ms:.1f} ms",
    )
    results.write()


if __name__ == "__main__":
    asyncio.run(main())
