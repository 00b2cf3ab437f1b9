"""Large request bodies (issue 17, item 1): do they stall the event loop or keep memory?

Design. The real server (`python -m server`, a subprocess, SQLite) in a scratch directory.
A poller sends `GET /healthz` every 20 ms over its own keep-alive connection throughout.
Each round: the server's RSS (from /proc) before; then, at once, `--large` authenticated
requests of about 8 MB (a backtestStrategy whose market data has 170,000 bars, over the
100,000 a request may carry, so refused once parsed) and `--anonymous` requests of about
10 MB without a token; when all are answered, 2 s of quiet and the RSS again. Printed per
round and as median and spread: /healthz p99 and worst latency during the burst, RSS
before, peak and after, and how the requests were answered. The reference is the outside
check's figures on the code before this work (RSS 207 MB -> 1.24 GB, kept; /healthz
stalled 6 s); the targets: /healthz p99 < 250 ms, RSS after the burst < before + 100 MB.

The client is raw asyncio HTTP/1.1 with Content-Length (no library cost on our side).

Usage: .venv/bin/python bench/large_bodies.py [--rounds 3] [--large 20] [--anonymous 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import add_json_option, results_for, span  # noqa: E402
from tests.support.raw_http import HealthPoller, error_codes_of, post, rss_mb  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402

REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token } }"""
BACKTEST = """mutation($id: UUID!, $input: BacktestInput!) {
  backtestStrategy(id: $id, input: $input) { bars } }"""
HEALTHZ_TARGET_MS = 250.0
RSS_GROWTH_TARGET_MB = 100.0


def large_body(bars: int) -> bytes:
    """A backtest whose market data has `bars` bars: about 48 bytes a bar."""
    rng = random.Random(bars)
    close = [round(100 + rng.random() * 10, 4) for _ in range(bars)]
    market = {
        "open": close,
        "high": [round(c + 0.5, 4) for c in close],
        "low": [round(c - 0.5, 4) for c in close],
        "close": close,
        "volume": [float(1000 + i % 97) for i in range(bars)],
    }
    variables = {"id": str(uuid.uuid4()), "input": {"marketData": market}}
    return json.dumps({"query": BACKTEST, "variables": variables}).encode()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@dataclass
class Round:
    rss_before: float = 0
    rss_peak: float = 0
    rss_after: float = 0
    healthz_p99: float = 0
    healthz_max: float = 0
    seconds: float = 0
    answers: dict[str, int] = field(default_factory=dict)


def outcome(status: int, body: bytes) -> str:
    if status == 0:
        return "refused before it was sent (reset)"
    return f"{status} {'/'.join(sorted(set(error_codes_of(body)))) or 'ok'}"


async def one_round(server: ServerProcess, token: str, args: argparse.Namespace) -> Round:
    port = server.port
    large = large_body(170_000)
    anonymous = large_body(210_000)
    result = Round(rss_before=rss_mb(server.pid))
    poller = HealthPoller(port, interval=0.02)
    polling = asyncio.create_task(poller.run())
    await asyncio.sleep(0.5)
    peak = result.rss_before
    done = False

    async def watch_rss() -> None:
        nonlocal peak
        while not done:
            peak = max(peak, rss_mb(server.pid))
            await asyncio.sleep(0.05)

    watching = asyncio.create_task(watch_rss())
    first = len(poller.latencies)
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(post(port, large, token) for _ in range(args.large)),
        *(post(port, anonymous) for _ in range(args.anonymous)),
    )
    result.seconds = time.perf_counter() - started
    burst = [seconds * 1000 for seconds in poller.latencies[first:]]
    done = True
    await watching
    await asyncio.sleep(2)
    poller.running = False
    await polling
    result.rss_peak = peak
    result.rss_after = rss_mb(server.pid)
    result.healthz_p99 = p99(burst)
    result.healthz_max = max(burst)
    for status, _, answer in answers:
        key = outcome(status, answer)
        result.answers[key] = result.answers.get(key, 0) + 1
    return result


async def measure(server: ServerProcess, args: argparse.Namespace) -> list[Round]:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    body = json.dumps(
        {"query": REGISTER, "variables": {"email": email, "password": "bench-password-1"}}
    ).encode()
    _, _, answer = await post(server.port, body)
    token = json.loads(answer)["data"]["register"]["token"]
    rounds = []
    for number in range(args.rounds):
        found = await one_round(server, token, args)
        print(
            f"round {number + 1}: {found.seconds:.1f} s; /healthz p99 {found.healthz_p99:.0f} ms,"
            f" max {found.healthz_max:.0f} ms; RSS {found.rss_before:.0f} -> peak"
            f" {found.rss_peak:.0f} -> after {found.rss_after:.0f} MB; answers {found.answers}"
        )
        rounds.append(found)
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large", type=int, default=20)
    parser.add_argument("--anonymous", type=int, default=8)
    parser.add_argument("--slots", type=int, default=2, help="the server's MAX_LARGE_REQUESTS")
    add_json_option(parser)
    args = parser.parse_args()
    results = results_for(args)
    with (
        tempfile.TemporaryDirectory() as scratch,
        ServerProcess(
            Path(scratch), LOG_LEVEL="warning", MAX_LARGE_REQUESTS=str(args.slots)
        ) as server,
    ):
        rounds = asyncio.run(measure(server, args))
    p99s = [r.healthz_p99 for r in rounds]
    growth = [r.rss_after - r.rss_before for r in rounds]
    peaks = [r.rss_peak - r.rss_before for r in rounds]
    print(
        f"/healthz p99 during the burst: median {statistics.median(p99s):.0f} ms"
        f" ({span(p99s, '{:.0f}')}); target < {HEALTHZ_TARGET_MS:.0f} ms; before this work 6 s"
    )
    print(
        f"RSS kept after the burst: median {statistics.median(growth):+.0f} MB"
        f" ({span(growth, '{:+.0f}', ' MB')}); peak {statistics.median(peaks):+.0f} MB;"
        f" target < +{RSS_GROWTH_TARGET_MB:.0f} MB; before this work +1030 MB, kept"
    )
    results.add(
        f"/healthz p99 during {args.large} x 8 MB + {args.anonymous} x 10 MB bodies",
        f"{statistics.median(p99s):.0f} ms",
        span(p99s, "{:.0f}"),
        f"< {HEALTHZ_TARGET_MS:.0f} ms (6 s before)",
        statistics.median(p99s) < HEALTHZ_TARGET_MS,
    )
    results.add(
        "RSS kept 2 s after that burst",
        f"{statistics.median(growth):+.0f} MB",
        span(growth, "{:+.0f}", " MB"),
        f"< +{RSS_GROWTH_TARGET_MB:.0f} MB (+1030 MB before)",
        statistics.median(growth) < RSS_GROWTH_TARGET_MB,
    )
    results.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
