"""Load benchmark: a mixed workload on the real server while ~50 generations wait on the model.

Design. The stand-in Gemini (its CLI, a subprocess) answers every call after `--latency`
seconds (1 s); the server is `python -m server` (one uvicorn process, a subprocess) with
SQLite by default, or the PostgreSQL database named by DATABASE_URL. Users are registered
and each gets `--seed` generated strategies first, so lists return full pages and details
and runs have ids. Then, for `--seconds`, 70 clients run side by side:

  * 50 `--generators` call generateStrategy in a closed loop (the next call as soon as the
    previous one is answered): with the model's 1 s latency about 50 generations are always
    waiting, the situation the list target is about. They start spread over one latency, as
    real traffic would (`--burst` starts them together: their answers then keep arriving in
    one burst a second);
  * the other clients are paced at a fixed offered load, so their latencies measure the
    server at that load rather than how many clients queue (`--closed` drops the pacing):
    8 listers, strategies(pageSize: 20), 40/s in all; 4 detailers, strategy(id), 20/s;
    4 validators, validateCode with smokeTest false and true (a sandbox run), 10/s; 4
    runners, runStrategy on a generated strategy with 200 bars (a sandbox run), 10/s.

The rate limits and the sandbox queue are raised via the environment so none refuses work:
any refusal (RATE_LIMITED included), GraphQL error, transport error or non-SUCCESS
generation counts as an error. Afterwards every user's `strategies { totalCount }` and
`generationLogs { totalCount }` are compared with what the clients saw: each successful
generation must be a stored strategy and each answered one a stored log (zero lost writes).

Prints per operation: count, throughput, p50/p99 latency, errors; the CPU used by the server
(and its event-loop thread) and by this client; then the verdicts (zero errors, zero lost
writes, list p99 under 100 ms). Exits 1 when a verdict fails. `--generators 0` gives the
same mix without generations, for comparison; `--no-trial-run` turns GENERATION_TRIAL_RUN
off and `--trial-run-limit` sets its budget (default 5/second; "1000/second" is unbounded
here), to see what the trial runs cost.

Usage: .venv/bin/python bench/load.py [--seconds 30] [--generators 50] [--burst] [--closed]
       [--no-trial-run] [--trial-run-limit 5/second]
DATABASE_URL may point at PostgreSQL (an existing database; users are fresh per run);
WORKERS=N runs N server processes (the CPU figures then add up the workers).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import ONE_RUN, Results, add_json_option, results_for  # noqa: E402
from services.samples import synthetic_bars  # noqa: E402
from tests.support.gemini_standin import DEFAULT_CODE  # noqa: E402
from tests.support.server_process import free_port  # noqa: E402

REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token } }"""
LIST = """query { strategies(pageSize: 20) { items {
  id name strategyType status usageCount codePreview parameters createdAt }
  totalCount page pageSize hasNextPage hasPreviousPage } }"""
DETAIL = """query($id: UUID!) { strategy(id: $id) {
  id name description generatedCode parameters status validationResults { valid errors } } }"""
GENERATE = """mutation($prompt: String!) { generateStrategy(input: {prompt: $prompt}) {
  strategy { id } generationLog { id status errorMessage } } }"""
VALIDATE = """mutation($code: String!, $smoke: Boolean!) {
  validateCode(code: $code, smokeTest: $smoke) { valid errors } }"""
RUN = """mutation($id: UUID!, $data: MarketDataInput!) {
  runStrategy(id: $id, marketData: $data) { action confidence } }"""
COUNTS = "{ strategies { totalCount } generationLogs { totalCount } }"
PROMPTS = [
    "SMA crossover 20/50 with 2% stop loss",
    "RSI scalping, 2% stop loss, 5% take profit",
    "Bollinger band mean reversion on 4h candles",
    "MACD momentum with a trailing stop",
    "Breakout of the 20-day high with 3% stop loss",
]
PASSWORD = "load-bench-password"
LIST_P99_TARGET_MS = 100.0


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log is not None else ""
            raise SystemExit(f"{url}: process exited with {process.returncode}\n{tail}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


@contextmanager
def subprocess_server(
    argv: list[str], env: dict[str, str], cwd: Path, health: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process serving HTTP; output to `log` so a full pipe never stalls it."""
    with log.open("ab") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(health, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: dict[str, int] = field(default_factory=dict)
    first: float = float("inf")
    last: float = 0.0

    def rate(self) -> float:
        return len(self.latencies) / (self.last - self.first) if self.last > self.first else 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        key = what[:160]
        self.samples[key] = self.samples.get(key, 0) + 1


@dataclass
class User:
    token: str
    strategy_ids: list[str] = field(default_factory=list)
    generations_answered: int = 0
    generations_succeeded: int = 0


class Load:
    """The clients and what they saw."""

    def __init__(self, http: httpx.AsyncClient, users: list[User], bars: dict[str, Any]) -> None:
        self.http = http
        self.users = users
        self.bars = bars
        self.stats: dict[str, OpStats] = {}
        self.cpu = (0.0, 0.0, 0.0)  # server, its event loop, this client: cores busy

    async def call(
        self, op: str, user: User, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """One request, timed and judged; the `data` of a clean answer, else None."""
        stats = self.stats.setdefault(op, OpStats())
        started = time.perf_counter()
        stats.first = min(stats.first, started)
        try:
            response = await self.http.post(
                "/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {user.token}"},
            )
        except httpx.HTTPError as exc:
            stats.latencies.append(time.perf_counter() - started)
            stats.error(f"{type(exc).__name__}: {exc}")
            return None
        stats.latencies.append(time.perf_counter() - started)
        stats.last = time.perf_counter()
        if response.status_code != 200:
            stats.error(f"HTTP {response.status_code}")
            return None
        body = response.json()
        if body.get("errors"):
            error = body["errors"][0]
            stats.error(f"{error.get('extensions', {}).get('code')}: {error.get('message')}")
            return None
        data: dict[str, Any] = body["data"]
        return data

    async def generate(self, user: User, op: str = "generateStrategy") -> None:
        data = await self.call(op, user, GENERATE, {"prompt": PROMPTS[len(user.strategy_ids) % 5]})
        if data is None:
            return
        payload = data["generateStrategy"]
        user.generations_answered += 1
        if payload["generationLog"]["status"] != "SUCCESS" or payload["strategy"] is None:
            self.stats[op].error(f"generation {payload['generationLog']}")
            return
        user.generations_succeeded += 1
        user.strategy_ids.append(payload["strategy"]["id"])

    async def generate_step(self, user: User, n: int) -> None:
        await self.generate(user)

    async def list(self, user: User, n: int) -> None:
        data = await self.call("strategies(pageSize: 20)", user, LIST)
        if data is not None and len(data["strategies"]["items"]) != 20:
            self.stats["strategies(pageSize: 20)"].error("a page of fewer than 20 items")

    async def detail(self, user: User, n: int) -> None:
        sid = user.strategy_ids[n % len(user.strategy_ids)]
        data = await self.call("strategy(id)", user, DETAIL, {"id": sid})
        if data is not None and (data["strategy"] or {}).get("id") != sid:
            self.stats["strategy(id)"].error("strategy not found")

    async def validate(self, user: User, smoke: bool, n: int) -> None:
        op = f"validateCode(smokeTest: {'true' if smoke else 'false'})"
        data = await self.call(op, user, VALIDATE, {"code": DEFAULT_CODE, "smoke": smoke})
        if data is not None and not data["validateCode"]["valid"]:
            self.stats[op].error(f"invalid: {data['validateCode']['errors']}")

    async def run(self, user: User, n: int) -> None:
        sid = user.strategy_ids[n % len(user.strategy_ids)]
        await self.call("runStrategy (200 bars)", user, RUN, {"id": sid, "data": self.bars})


async def closed_loop(
    stop_at: float, step: Callable[[int], Awaitable[None]], start_within: float = 0.0
) -> None:
    """The next request as soon as the previous one is answered (first one after a delay)."""
    await asyncio.sleep(random.uniform(0, start_within))
    n = 0
    while time.perf_counter() < stop_at:
        await step(n)
        n += 1


async def paced(stop_at: float, interval: float, step: Callable[[int], Awaitable[None]]) -> None:
    """One request every `interval` s; a late answer delays the next (seen as lower rate)."""
    n = 0
    next_at = time.perf_counter() + random.uniform(0, interval)  # clients out of phase
    while next_at < stop_at:
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await step(n)
        n += 1
        next_at = max(next_at + interval, time.perf_counter())


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time so far of a process, or of one of its threads (Linux /proc)."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread is not None else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serving_pids(pid: int) -> list[int]:
    """The processes that serve requests: the worker children with WORKERS > 1, else `pid`."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return workers or [pid]


def tree_cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """CPU of the serving processes, and of their event-loop (main) threads."""
    return sum(cpu_seconds(p) for p in pids), sum(cpu_seconds(p, p) for p in pids)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


async def drive(base: str, server_pid: int, args: argparse.Namespace) -> tuple[Load, float, bool]:
    connections = args.generators + args.listers + args.detailers + args.validators
    connections += args.runners + 10
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        tag = uuid.uuid4().hex[:8]
        users = []
        for i in range(args.users):
            email = f"load-{tag}-{i}@example.com"
            response = await http.post(
                "/graphql",
                json={"query": REGISTER, "variables": {"email": email, "password": PASSWORD}},
            )
            users.append(User(response.json()["data"]["register"]["token"]))
        bars = synthetic_bars("trending", 200, timeframe="1d", seed=3).as_columns()
        load = Load(http, users, bars)

        # Seed: full pages for the lists, ids for details and runs (not part of the figures).
        seeding = asyncio.Semaphore(50)

        async def seed(user: User) -> None:
            async with seeding:
                await load.generate(user, op="seed generations")

        print(f"seeding {args.seed} strategies for each of {args.users} users ...", flush=True)
        await asyncio.gather(*(seed(u) for u in users for _ in range(args.seed)))
        if any(len(u.strategy_ids) < args.seed for u in users):
            raise SystemExit(f"seeding failed: {load.stats['seed generations']}")

        def pick(i: int) -> User:
            return users[i % len(users)]

        print(f"load: {args.seconds:.0f} s ...", flush=True)
        began = time.perf_counter()
        stop_at = began + args.seconds
        # The main thread runs the event loop: at 1.0 every request queues behind another.
        serving = serving_pids(server_pid)
        server_cpu, loop_cpu = tree_cpu_seconds(serving)
        client_cpu = time.process_time()
        # Generators start spread over one model latency (unless --burst), as real traffic
        # would; started together, their answers keep arriving together, in one burst a second.
        spread = 0.0 if args.burst else args.latency
        clients: list[Awaitable[None]] = [
            closed_loop(stop_at, functools.partial(load.generate_step, pick(i)), spread)
            for i in range(args.generators)
        ]
        Step = Callable[[int], Awaitable[None]]
        others: list[tuple[int, float, Callable[[User, int], Step]]] = [
            (args.listers, args.list_rate, lambda u, i: functools.partial(load.list, u)),
            (args.detailers, args.detail_rate, lambda u, i: functools.partial(load.detail, u)),
            (
                args.validators,
                args.validate_rate,
                lambda u, i: functools.partial(load.validate, u, i % 2 == 1),
            ),
            (args.runners, args.run_rate, lambda u, i: functools.partial(load.run, u)),
        ]
        for count, rate, make in others:
            for i in range(count if rate > 0 or args.closed else 0):
                if args.closed:
                    clients.append(closed_loop(stop_at, make(pick(i), i)))
                else:
                    clients.append(paced(stop_at, count / rate, make(pick(i), i)))
        await asyncio.gather(*clients)
        elapsed = time.perf_counter() - began
        server_cpu_after, loop_cpu_after = tree_cpu_seconds(serving)
        load.cpu = (
            (server_cpu_after - server_cpu) / elapsed,
            (loop_cpu_after - loop_cpu) / elapsed,
            (time.process_time() - client_cpu) / elapsed,
        )

        # Zero lost writes: what the database holds, per user, against what the clients saw.
        lost = False
        for number, user in enumerate(users):
            data = await load.call("final counts", user, COUNTS)
            if data is None:
                lost = True
                continue
            strategies = data["strategies"]["totalCount"]
            logs = data["generationLogs"]["totalCount"]
            if strategies != user.generations_succeeded or logs != user.generations_answered:
                lost = True
                print(
                    f"user {number}: {strategies} strategies stored vs "
                    f"{user.generations_succeeded} seen; {logs} logs vs "
                    f"{user.generations_answered} answered"
                )
    return load, elapsed, lost


def report(load: Load, elapsed: float, lost: bool, results: Results, setup: str) -> bool:
    seen_ok = sum(u.generations_succeeded for u in load.users)
    print()
    print(f"{'operation':<34}{'count':>8}{'per s':>9}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    total_errors = 0
    for op, stats in load.stats.items():
        if op in ("seed generations", "final counts"):
            total_errors += stats.errors
            continue
        values = sorted(stats.latencies)
        total_errors += stats.errors
        print(
            f"{op:<34}{len(values):>8}{stats.rate():>9.1f}"
            f"{percentile(values, 0.5) * 1e3:>10.1f}{percentile(values, 0.99) * 1e3:>10.1f}"
            f"{stats.errors:>8}"
        )
    for op, stats in load.stats.items():
        for sample, count in stats.samples.items():
            print(f"  {op}: {count} x {sample}")
    print()
    generating = load.stats.get("generateStrategy", OpStats()).latencies
    in_flight = sum(generating) / elapsed
    print(
        f"window {elapsed:.1f} s; mean generations in flight {in_flight:.1f}\n"
        f"CPU (cores busy, of {os.cpu_count()}): server {load.cpu[0]:.2f}, of which event "
        f"loop threads {load.cpu[1]:.2f}; load client {load.cpu[2]:.2f}"
    )
    lists = sorted(load.stats.get("strategies(pageSize: 20)", OpStats()).latencies)
    list_p99 = percentile(lists, 0.99) * 1e3
    checks = [
        (f"errors: {total_errors} (target 0)", total_errors == 0),
        (f"lost writes: strategies stored == {seen_ok} successful generations seen", not lost),
        (
            f"list p99 {list_p99:.1f} ms (target < {LIST_P99_TARGET_MS:.0f} ms)",
            bool(lists) and list_p99 < LIST_P99_TARGET_MS,
        ),
    ]
    for text, met in checks:
        print(f"{text} -> {'MET' if met else 'NOT MET'}")
    results.add(
        f"mixed load, {elapsed:.0f} s: {setup}: errors and lost writes",
        f"{total_errors} errors, "
        + (
            "lost writes (stored counts differ from what the clients saw)"
            if lost
            else f"0 lost writes (all {seen_ok:,} successful generations seen are stored)"
        ),
        ONE_RUN,
        "0 and 0",
        total_errors == 0 and not lost,
    )
    results.add(
        "mixed load, same run: `strategies(pageSize: 20)` latency while generations wait",
        f"p99 {list_p99:.1f} ms, p50 {percentile(lists, 0.5) * 1e3:.1f} ms",
        ONE_RUN,
        f"p99 < {LIST_P99_TARGET_MS:.0f} ms",
        bool(lists) and list_p99 < LIST_P99_TARGET_MS,
    )
    runs = sorted(load.stats.get("runStrategy (200 bars)", OpStats()).latencies)
    if runs:
        generations = load.stats.get("generateStrategy", OpStats())
        results.add(
            "mixed load, same run: `runStrategy` (200 bars) latency; generations a second",
            f"p50 {percentile(runs, 0.5) * 1e3:.1f} ms, p99 {percentile(runs, 0.99) * 1e3:.1f} "
            f"ms; {generations.rate():.1f} generations/s",
            ONE_RUN,
        )
    return all(met for _, met in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--latency", type=float, default=1.0, help="stand-in Gemini latency, s")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20, help="strategies per user before the run")
    parser.add_argument("--generators", type=int, default=50)
    parser.add_argument("--listers", type=int, default=8)
    parser.add_argument("--detailers", type=int, default=4)
    parser.add_argument("--validators", type=int, default=4, help="half of them smokeTest true")
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--list-rate", type=float, default=40.0, help="lists per s, all listers")
    parser.add_argument("--detail-rate", type=float, default=20.0)
    parser.add_argument("--validate-rate", type=float, default=10.0)
    parser.add_argument("--run-rate", type=float, default=10.0)
    parser.add_argument(
        "--closed", action="store_true", help="no pacing: every client as fast as it can"
    )
    parser.add_argument(
        "--burst", action="store_true", help="start all generators at once (answers in bursts)"
    )
    parser.add_argument("--sandbox-jobs", type=int, default=2, help="SANDBOX_MAX_CONCURRENT_JOBS")
    parser.add_argument(
        "--no-trial-run", dest="trial_run", action="store_false", help="GENERATION_TRIAL_RUN off"
    )
    parser.add_argument("--trial-run-limit", default="5/second", help="GENERATION_TRIAL_RUN_LIMIT")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (database, server log)"
    )
    add_json_option(parser)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite://{workdir / 'load.sqlite3'}"
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "SANDBOX_", "RATE_", "REDIS_", "GENERATION_"))
    }
    base_env["PYTHONPATH"] = str(ROOT)

    standin_port = free_port()
    standin_argv = [sys.executable, "-m", "tests.support.gemini_standin"]
    standin_argv += ["--port", str(standin_port), "--latency", str(args.latency)]
    standin_url = f"http://127.0.0.1:{standin_port}"
    port = free_port()
    sandbox_clients = args.validators + args.runners + (args.generators if args.trial_run else 0)
    env = {
        **base_env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "load-bench-secret-key-0123456789-0123456789",
        "GEMINI_API_KEY": "load-bench-key",
        "GEMINI_BASE_URL": standin_url,
        "GEMINI_MODEL": "gemini-load",
        "GEMINI_TIMEOUT_SECONDS": str(max(30.0, args.latency * 5)),
        "RATE_LIMIT_GENERATE": "10000000/minute",
        "RATE_LIMIT_EXECUTE": "10000000/minute",
        "RATE_LIMIT_LOGIN": "10000000/minute",
        "RATE_LIMIT_AUTH_BY_ADDRESS": "10000000/minute",
        "SANDBOX_MAX_CONCURRENT_JOBS": str(args.sandbox_jobs),
        "SANDBOX_MAX_QUEUE": str(max(64, 2 * sandbox_clients)),
        "GENERATION_TRIAL_RUN": "true" if args.trial_run else "false",
        "GENERATION_TRIAL_RUN_LIMIT": args.trial_run_limit,
        "LOG_LEVEL": "warning",
    }
    migrate = subprocess.run(
        [sys.executable, "-m", "server", "migrate"], cwd=workdir, env=env, capture_output=True
    )
    if migrate.returncode != 0:
        raise SystemExit(migrate.stderr.decode(errors="replace"))
    dialect = database_url.split("://", 1)[0]
    print(
        f"database: {dialect}; model latency {args.latency:g} s; clients: {args.generators} "
        f"generate, {args.listers} list, {args.detailers} detail, {args.validators} validate, "
        f"{args.runners} run; trial runs "
        + (f"at most {args.trial_run_limit}" if args.trial_run else "off")
    )
    with (
        subprocess_server(
            standin_argv, base_env, ROOT, standin_url + "/healthz", workdir / "standin.log"
        ),
        subprocess_server(
            [sys.executable, "-m", "server"],
            env,
            workdir,
            f"http://127.0.0.1:{port}/healthz",
            workdir / "server.log",
        ) as server,
    ):
        print(f"server pid {server.pid}", flush=True)
        load, elapsed, lost = asyncio.run(drive(f"http://127.0.0.1:{port}", server.pid, args))
    setup = (
        f"{dialect}, ~{args.generators} generations waiting on a {args.latency:g} s model, "
        f"lists {args.list_rate:g}/s, details {args.detail_rate:g}/s, validations "
        f"{args.validate_rate:g}/s, runs {args.run_rate:g}/s, trial runs "
        + (f"at most {args.trial_run_limit}" if args.trial_run else "off")
    )
    results = results_for(args)
    met = report(load, elapsed, lost, results, setup)
    results.write()
    server_log = (workdir / "server.log").read_text(errors="replace").strip()
    if server_log:
        print(f"\nserver log ({workdir / 'server.log'}), last lines:")
        print("\n".join(server_log.splitlines()[-10:]))
    if args.keep:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
