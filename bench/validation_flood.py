"""Validation flood (issue 10, item 1): does one user's code-validation attack slow the others?

Design. The real server (`python -m server`, a subprocess, SQLite, the template provider) in a
scratch directory. User B gets 20 strategies, then measures, paced (`--rate` a second each),
`strategies(pageSize: 20)` and `GET /healthz` latencies over their own keep-alive connections.
User A, meanwhile, sends the tester's probe in a closed loop from `--attackers` connections:
one operation of 30 aliased `validateCode(smokeTest: false)` calls, each code a different
64 KiB chained comparison (`x = a<a<...<1`, ~0.2 s of CPU to validate) passed as a variable.
Phases alternate, attack OFF then ON, `--rounds` times, `--seconds` each, and the p99s are
summarised as median and spread (min to max) beside the targets: list p99 < 250 ms, /healthz
p99 < 100 ms while the attack runs.

Two servers in turn: one with a validation budget so high the attack reaches the worker pool
every time (what the pool and the per-request cap must absorb: each probe is cut at 256 KiB,
4 codes), and one with the default budget (1024 KiB a minute: after the first minute's 16
codes the attacker is refused RATE_LIMITED before anything is parsed). The client is raw
asyncio HTTP/1.1 (httpx costs more CPU than the server's answers).

Usage: .venv/bin/python bench/validation_flood.py [--seconds 8] [--rounds 3] [--rate 20]
       [--attackers 3] [--only high|default]
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import Results, add_json_option, results_for, span  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402

REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token } }"""
GENERATE = """mutation($prompt: String!) { generateStrategy(input: {prompt: $prompt}) {
  strategy { id } } }"""
LIST = """query { strategies(pageSize: 20) { items {
  id name strategyType status usageCount codePreview parameters createdAt }
  totalCount page pageSize hasNextPage hasPreviousPage } }"""
ALIASES = 30
REASONS = {"RATE_LIMITED": "over budget", "answered": "all checked"}
LIST_TARGET_MS = 250.0
HEALTHZ_TARGET_MS = 100.0


def probe() -> tuple[str, dict[str, str]]:
    """The tester's probe: 30 aliases, each a different 64 KiB chained comparison."""
    variables = ", ".join(f"$c{i}: String!" for i in range(ALIASES))
    fields = " ".join(
        f"v{i}: validateCode(code: $c{i}, smokeTest: false) {{ valid }}" for i in range(ALIASES)
    )
    names = [random.choice("abcdefgh") for _ in range(ALIASES)]
    codes = {
        f"c{i}": f"x = {names[i]}{i}" + f"<{names[i]}" * 31_990 + "<1\n" for i in range(ALIASES)
    }
    return f"mutation({variables}) {{ {fields} }}", codes


class Http:
    """One keep-alive HTTP/1.1 connection; answers carry Content-Length (Starlette's do)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", token: str | None = None
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        headers = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        ]
        if token:
            headers.append(f"Authorization: Bearer {token}")
        self.writer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def graphql(self, query: str, variables: Any = None, token: str | None = None) -> Any:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        status, answer = await self.request("POST", "/graphql", body, token)
        assert status == 200, (status, answer[:300])
        return json.loads(answer)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass
class Phase:
    attack: bool
    lists: list[float] = field(default_factory=list)
    healthz: list[float] = field(default_factory=list)
    probes: int = 0
    probe_outcomes: dict[str, int] = field(default_factory=dict)
    errors: int = 0


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def paced(stop_at: float, interval: float, step: Any) -> None:
    next_at = time.perf_counter()
    while (now := time.perf_counter()) < stop_at:
        if now < next_at:
            await asyncio.sleep(next_at - now)
        next_at += interval
        await step()


async def run_phase(
    host: str, port: int, tokens: dict[str, str], attack: bool, args: argparse.Namespace
) -> Phase:
    phase = Phase(attack)
    stop_at = time.perf_counter() + args.seconds
    lister, checker = Http(host, port), Http(host, port)

    async def list_once() -> None:
        started = time.perf_counter()
        body = await lister.graphql(LIST, token=tokens["B"])
        phase.lists.append(time.perf_counter() - started)
        if "errors" in body:
            phase.errors += 1

    async def healthz_once() -> None:
        started = time.perf_counter()
        status, _ = await checker.request("GET", "/healthz")
        phase.healthz.append(time.perf_counter() - started)
        if status != 200:
            phase.errors += 1

    async def attacker() -> None:
        http = Http(host, port)
        try:
            while time.perf_counter() < stop_at:
                query, variables = probe()
                body = await http.graphql(query, variables, tokens["A"])
                errors = body.get("errors") or [{}]
                code = errors[0].get("extensions", {}).get("code", "answered")
                outcome = f"{code}: {REASONS.get(code, errors[0].get('message', ''))[:40]}"
                if code == "BAD_USER_INPUT":
                    outcome = f"{code}: {errors[0]['message'][:36]}"
                phase.probe_outcomes[outcome] = phase.probe_outcomes.get(outcome, 0) + 1
                phase.probes += 1
        finally:
            await http.close()

    interval = 1 / args.rate
    jobs = [paced(stop_at, interval, list_once), paced(stop_at, interval, healthz_once)]
    if attack:
        jobs += [attacker() for _ in range(args.attackers)]
    await asyncio.gather(*jobs)
    await lister.close()
    await checker.close()
    return phase


async def setup(host: str, port: int) -> dict[str, str]:
    http = Http(host, port)
    tokens = {}
    for who in ("A", "B"):
        email = f"flood-{who}-{uuid.uuid4().hex[:8]}@example.com"
        body = await http.graphql(REGISTER, {"email": email, "password": "correct horse battery"})
        tokens[who] = body["data"]["register"]["token"]
    for n in range(20):
        await http.graphql(GENERATE, {"prompt": f"SMA crossover {n}"}, tokens["B"])
    await http.close()
    return tokens


async def measure(server: ServerProcess, args: argparse.Namespace) -> list[Phase]:
    host, port = "127.0.0.1", server.port
    tokens = await setup(host, port)
    phases = []
    for _ in range(args.rounds):
        for attack in (False, True):
            phases.append(await run_phase(host, port, tokens, attack, args))
            await asyncio.sleep(1)  # let the last probes drain
    return phases


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ms ({min(values):.1f} to {max(values):.1f})"


def report(
    label: str, short_label: str, phases: list[Phase], results: Results, args: argparse.Namespace
) -> bool:
    print(f"\n== {label}")
    print(f"{'phase':<12}{'list p50':>10}{'list p99':>10}{'hz p50':>9}{'hz p99':>9}  probes")
    for phase in phases:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(phase.probe_outcomes.items()))
        print(
            f"{'attack ON' if phase.attack else 'attack OFF':<12}"
            f"{p(phase.lists, 0.5):10.1f}{p(phase.lists, 0.99):10.1f}"
            f"{p(phase.healthz, 0.5):9.1f}{p(phase.healthz, 0.99):9.1f}"
            f"  {phase.probes} {f'({outcomes})' if outcomes else ''}"
            f"{f'  ERRORS {phase.errors}' if phase.errors else ''}"
        )
    ok = True
    print(
        "p99, median of rounds (spread)        attack OFF                   attack ON"
        "                    target (ON)"
    )
    for name, pick, target in (
        ("strategies list", lambda ph: ph.lists, LIST_TARGET_MS),
        ("/healthz", lambda ph: ph.healthz, HEALTHZ_TARGET_MS),
    ):
        off = [p(pick(ph), 0.99) for ph in phases if not ph.attack]
        on = [p(pick(ph), 0.99) for ph in phases if ph.attack]
        met = statistics.median(on) < target
        ok &= met
        print(
            f"  {name:<20}{summary(off):>28}  {summary(on):>30}   < {target:.0f} ms "
            f"{'met' if met else 'MISSED'}"
        )
        results.add(
            f"validation flood, {short_label}: another user's `{name}` p99 under attack; "
            f"off and on alternated, {args.rounds} rounds of {args.seconds:g} s",
            f"{statistics.median(on):.1f} ms (off: {statistics.median(off):.1f} ms)",
            f"on {span(on)}; off {span(off)}",
            f"< {target:.0f} ms",
            met,
        )
    return ok and not any(ph.errors for ph in phases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="lists and healthz a second")
    parser.add_argument("--attackers", type=int, default=3)
    parser.add_argument("--only", choices=("high", "default"))
    add_json_option(parser)
    args = parser.parse_args()
    results = results_for(args)
    budgets = {"high": "1000000", "default": ""}
    ok = True
    for name, budget in budgets.items():
        if args.only and args.only != name:
            continue
        settings = {
            "RATE_LIMIT_GENERATE": "1000/minute",
            "LOG_LEVEL": "warning",
            **({"CODE_VALIDATION_KIB_PER_MINUTE": budget} if budget else {}),
        }
        with (
            tempfile.TemporaryDirectory() as workdir,
            ServerProcess(Path(workdir), **settings) as server,
        ):
            phases = asyncio.run(measure(server, args))
        label = (
            "attacker budget 1,000,000 KiB/minute: every probe reaches the worker pool"
            if budget
            else "default budget (1024 KiB/minute): the attacker is soon RATE_LIMITED"
        )
        short_label = (
            "every probe reaching the worker pool (budget 1,000,000 KiB a minute)"
            if budget
            else "default budget (1024 KiB a minute)"
        )
        ok &= report(label, short_label, phases, results, args)
    results.write()
    print("\nverdict:", "targets met" if ok else "TARGETS MISSED (or errors)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
