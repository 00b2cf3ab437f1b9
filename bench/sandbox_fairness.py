"""Fairness benchmark: does one user saturating the sandbox slow anyone else?

Design. The real server (`python -m server`, SQLite, SANDBOX_MAX_CONCURRENT_JOBS=2 and the
default per-user caps: 1 running, 8 waiting; `--running-per-user 2` lifts the first) with
RUN_TIMEOUT_SECONDS=2 and an execution rate limit high enough for the attack
(RATE_LIMIT_EXECUTE=100000/minute). Two users:

  * user A, the attacker, stores a strategy that counts for ever, so every run of it holds a
    sandbox slot for the full 2-second run timeout, and calls runStrategy on it from
    `--attackers` (40) clients in a closed loop: the next call as soon as the previous is
    answered, `retryAfterSeconds` (1 s) after a RATE_LIMITED. More than the 2 slots and the
    whole 32-place queue hold: the reviewer's attack (34 calls) that locked everyone else out;
  * user B, the victim, calls runStrategy on a quick strategy (a template's, 200 bars) every
    `--interval` s (0.5) on average, open loop (jittered start times, not waiting for the
    previous answer), and records each call's latency and error code.

Phases of `--seconds` (20) alternate, attack off then on, `--rounds` (3) times each; after an
attack phase its calls are let finish before the next phase starts. Prints B's count, p50,
p99 and RATE_LIMITED count per phase, then per condition the median and spread of the
phases' p50 and p99 and the RATE_LIMITED total, beside the target: with the attack on, B's
p99 under 2.5 s and no RATE_LIMITED. Exits 1 when the target is missed.

Usage: .venv/bin/python bench/sandbox_fairness.py [--seconds 20] [--rounds 3]
       [--attackers 40] [--interval 0.5] [--running-per-user N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import Results, add_json_option, results_for, span  # noqa: E402
from services.samples import synthetic_bars  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402
from tests.support.strategy_code import SPIN_STORABLE  # noqa: E402

P99_TARGET_SECONDS = 2.5
REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token } }"""
GENERATE = """mutation($p: String!) { generateStrategy(input: {prompt: $p}) { strategy { id } } }"""
UPDATE = """mutation($id: UUID!, $code: String!) {
  updateStrategy(id: $id, input: {generatedCode: $code}) { id status } }"""
RUN = """mutation($id: UUID!, $data: MarketDataInput!) {
  runStrategy(id: $id, marketData: $data) { action } }"""


@dataclass
class Phase:
    attack: bool
    latencies: list[float] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)  # B's errors by extensions.code
    attacker_calls: dict[str, int] = field(default_factory=dict)  # A's answers by outcome

    @property
    def rate_limited(self) -> int:
        return self.codes.get("RATE_LIMITED", 0)


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        return response.json()

    async def user(self) -> str:
        email = f"fair-{uuid.uuid4().hex[:10]}@example.com"
        body = await self.call(REGISTER, {"email": email, "password": "fairness-password"})
        return str(body["data"]["register"]["token"])

    async def strategy(self, token: str, code: str | None = None) -> str:
        body = await self.call(GENERATE, {"p": "SMA 5/20 crossover"}, token)
        strategy_id = str(body["data"]["generateStrategy"]["strategy"]["id"])
        if code is not None:
            body = await self.call(UPDATE, {"id": strategy_id, "code": code}, token)
            assert body["data"]["updateStrategy"]["status"] == "VALIDATED", body
        return strategy_id


def error_code(body: Any) -> str | None:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return None
    return str(errors[0].get("extensions", {}).get("code", "UNKNOWN"))


async def attacker(client: Client, token: str, strategy: str, data: Any, phase: Phase, stop: float):
    while time.perf_counter() < stop:
        body = await client.call(RUN, {"id": strategy, "data": data}, token)
        outcome = error_code(body) or "OK"
        phase.attacker_calls[outcome] = phase.attacker_calls.get(outcome, 0) + 1
        if outcome == "RATE_LIMITED":
            await asyncio.sleep(body["errors"][0]["extensions"].get("retryAfterSeconds", 1))


async def victim(
    client: Client, token: str, strategy: str, data: Any, phase: Phase, stop: float, every: float
) -> None:
    """Open loop: calls start on a jittered schedule whether or not earlier ones were answered,
    so their timing owes nothing to A's (a closed loop would lock onto A's job ends)."""

    async def one() -> None:
        began = time.perf_counter()
        try:
            body = await client.call(RUN, {"id": strategy, "data": data}, token)
            code = error_code(body)
        except httpx.HTTPError as exc:
            code = type(exc).__name__
        phase.latencies.append(time.perf_counter() - began)
        if code is not None:
            phase.codes[code] = phase.codes.get(code, 0) + 1

    calls = []
    next_at = time.perf_counter() + 1.0  # the attack is under way by then
    while next_at < stop:
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        calls.append(asyncio.create_task(one()))
        next_at += every * random.uniform(0.5, 1.5)
    await asyncio.gather(*calls)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def drive(base: str, args: argparse.Namespace) -> list[Phase]:
    limits = httpx.Limits(max_connections=args.attackers + 4)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        client = Client(http)
        token_a, token_b = await client.user(), await client.user()
        spin = await client.strategy(token_a, SPIN_STORABLE)
        quick = await client.strategy(token_b)
        data = synthetic_bars("trending", 200, timeframe="1d", seed=3).as_columns()
        await client.call(RUN, {"id": quick, "data": data}, token_b)  # warm-up
        phases = []
        for round_ in range(args.rounds):
            for attack in (False, True):
                phase = Phase(attack)
                stop = time.perf_counter() + args.seconds
                tasks = [victim(client, token_b, quick, data, phase, stop, args.interval)]
                if attack:
                    tasks += [
                        attacker(client, token_a, spin, data, phase, stop)
                        for _ in range(args.attackers)
                    ]
                await asyncio.gather(*tasks)  # the attack's last calls end here too
                p50, p99 = (percentile(phase.latencies, q) for q in (0.5, 0.99))
                print(
                    f"round {round_ + 1} attack {'on ' if attack else 'off'}: "
                    f"B {len(phase.latencies)} calls, p50 {p50:.3f} s, p99 {p99:.3f} s, "
                    f"RATE_LIMITED {phase.rate_limited}, errors {phase.codes or 'none'}"
                    + (f"; A's calls {phase.attacker_calls}" if attack else ""),
                    flush=True,
                )
                phases.append(phase)
        return phases


def summary(phases: list[Phase], results: Results, args: argparse.Namespace) -> bool:
    print()
    print(f"{'attack':8}{'p50 s (median, spread)':28}{'p99 s (median, spread)':28}RATE_LIMITED")
    met = True
    figures: dict[bool, tuple[list[float], list[float], int]] = {}
    for attack in (False, True):
        chosen = [phase for phase in phases if phase.attack is attack]
        p50s = [percentile(phase.latencies, 0.5) for phase in chosen]
        p99s = [percentile(phase.latencies, 0.99) for phase in chosen]
        limited = sum(phase.rate_limited for phase in chosen)
        figures[attack] = (p50s, p99s, limited)
        print(
            f"{'on' if attack else 'off':8}"
            f"{statistics.median(p50s):.3f} ({min(p50s):.3f}-{max(p50s):.3f}){'':11}"
            f"{statistics.median(p99s):.3f} ({min(p99s):.3f}-{max(p99s):.3f}){'':11}{limited}"
        )
        if attack:
            met = max(p99s) < P99_TARGET_SECONDS and limited == 0
            met = met and not any(phase.codes for phase in chosen)
    print(
        f"target, attack on: B's p99 < {P99_TARGET_SECONDS} s and 0 RATE_LIMITED "
        f"(every phase): {'met' if met else 'MISSED'}"
    )
    (off_p50s, off_p99s, _), (on_p50s, on_p99s, limited) = figures[False], figures[True]
    results.add(
        f"sandbox fairness: another user's `runStrategy` (200 bars, every {args.interval:g} s) "
        f"while one user holds the sandbox ({args.attackers} concurrent calls of a 2-second "
        f"strategy, 2 slots); off and on alternated, {args.rounds} rounds of {args.seconds:g} s",
        f"p99 {statistics.median(on_p99s):.3f} s, p50 {statistics.median(on_p50s):.3f} s; "
        f"{limited} `RATE_LIMITED` (off: p99 {statistics.median(off_p99s):.3f} s, "
        f"p50 {statistics.median(off_p50s):.3f} s)",
        f"p99 on {span(on_p99s, '{:.3f}', ' s')}; off {span(off_p99s, '{:.3f}', ' s')}",
        f"p99 < {P99_TARGET_SECONDS} s in every phase, 0 `RATE_LIMITED`",
        met,
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs")
    parser.add_argument("--attackers", type=int, default=40, help="user A's concurrent clients")
    parser.add_argument(
        "--interval", type=float, default=0.5, help="mean seconds between B's calls"
    )
    parser.add_argument(
        "--running-per-user",
        default="",
        help="SANDBOX_MAX_RUNNING_PER_USER (default: unset, all slots but one)",
    )
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        server = ServerProcess(
            Path(workdir),
            SECRET_KEY="fairness-benchmark-secret-key-0123456789abcdef",
            RATE_LIMIT_EXECUTE="100000/minute",
            RATE_LIMIT_GENERATE="1000/minute",
            SANDBOX_MAX_CONCURRENT_JOBS="2",
            RUN_TIMEOUT_SECONDS="2",
            LOG_LEVEL="warning",
            **(
                {"SANDBOX_MAX_RUNNING_PER_USER": args.running_per_user}
                if args.running_per_user
                else {}
            ),
        )
        with server:
            print(
                "server: SANDBOX_MAX_CONCURRENT_JOBS=2, RUN_TIMEOUT_SECONDS=2, "
                f"SANDBOX_MAX_RUNNING_PER_USER={args.running_per_user or 'unset (1)'}; "
                f"A: {args.attackers} clients on a 2-second strategy; B: a call every "
                f"{args.interval} s on average; {args.rounds} x ({args.seconds:g} s off, "
                f"{args.seconds:g} s on)",
                flush=True,
            )
            phases = asyncio.run(drive(server.base, args))
    results = results_for(args)
    met = summary(phases, results, args)
    results.write()
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
