"""API benchmark (issues 2 and 15): the hot queries against a like-for-like bare Strawberry app.

Prints, in one run:
  * for `strategies(pageSize: 20)`, `strategy(id)` and `me`: requests/s and p99 of this server
    against bench/bare_app.py (the same parse/validation caches, `gc.freeze`, uvicorn command
    line, database and Tortoise configuration; no auth, middleware or limits), measured from
    outside by wrk (a C load generator: the client is not the bottleneck), 32 connections;
    the two servers alternate query by query and round by round, and each round's ratio is
    paired; the median ratio and its spread (min to max over the rounds) go beside the target
    (list and detail >= 0.5, `me` >= 0.7; p99 < 50 ms). On SQLite and on PostgreSQL (a
    scratch database beside --postgres-url, dropped afterwards);
  * the same answers: each query's JSON from both servers is compared before the load;
  * idle memory (RSS of the serving process after start-up) of both;
  * SQL statements per list request for page sizes 1, 20 and 100 (target: at most 3);
  * server-side overhead of generateStrategy over a direct SDK call to the same stand-in, per
    provider: Gemini, OpenAI-compatible, Anthropic (target: under 25 ms at p50).

Usage: .venv/bin/python bench/api.py [--seconds 4] [--rounds 3] [--connections 32]
       [--databases sqlite,postgres] [--postgres-url postgres://postgres@127.0.0.1:5432/test]
wrk comes from Debian's package (apt-get install wrk; scripts/install-system-deps.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import ONE_RUN, Results, add_json_option, results_for, span  # noqa: E402
from tests.support.anthropic_standin import AnthropicStandin  # noqa: E402
from tests.support.gemini_standin import GeminiStandin  # noqa: E402
from tests.support.openai_standin import OpenAIStandin  # noqa: E402
from tests.support.server_process import free_port  # noqa: E402

LIST_QUERY = """query($size: Int) { strategies(pageSize: $size) { items {
  id name strategyType status usageCount codePreview parameters createdAt }
  totalCount page pageSize hasNextPage hasPreviousPage } }"""
DETAIL_QUERY = """query($id: UUID!) { strategy(id: $id) {
  id name description originalPrompt generatedCode strategyType status parameters
  performanceMetrics usageCount version createdAt updatedAt } }"""
ME_QUERY = "{ me { id email isStaff createdAt } }"
GENERATE = """mutation($prompt: String!, $model: String) {
  generateStrategy(input: {prompt: $prompt, model: $model}) {
  strategy { id } generationLog { status provider } } }"""
PROMPT = "SMA crossover 20/50 with 2% stop loss"
PROMPTS = (PROMPT, "RSI scalping, 2% stop loss, 5% take profit", "MACD momentum with ATR stop")
REGISTER = """mutation { register(email: "bench@example.com", password: "bench-password")
  { token user { id } } }"""

# name -> (label, target ratio of the bare app's requests/s)
TARGETS = {"list": 0.5, "detail": 0.5, "me": 0.7}
LABELS = {
    "list": "`strategies(pageSize: 20)`",
    "detail": "`strategy(id)`",
    "me": "`me`",
}
P99_TARGET_MS = 50.0
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
PROVIDER_KEYS = ("GEMINI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY")


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


@dataclass
class Served:
    url: str
    pid: int


@contextmanager
def uvicorn_process(app: str, env: dict[str, str], cwd: Path) -> Iterator[Served]:
    """One uvicorn process, the same command line for this server and the bare app."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *(["--factory"] if "create" in app else []),
        ],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/graphql", process)
        yield Served(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=15)


def rss_mib(pid: int) -> float:
    """Resident memory of one process (not its children: fork server, analysis workers)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class WrkFigures:
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int  # non-2xx answers and socket errors


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * UNIT_MS[unit]


def parse_wrk(output: str) -> WrkFigures:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    if len(percentiles) != 2:
        raise RuntimeError(f"wrk printed no latency distribution:\n{output}")
    failures = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failures += int(non_2xx.group(1)) if non_2xx else 0
    return WrkFigures(rps, _ms(percentiles["50"]), _ms(percentiles["99"]), failures)


def wrk_script(directory: Path, body: dict, headers: dict[str, str]) -> Path:
    """A wrk Lua script that POSTs `body` as JSON with `headers`."""
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{json.dumps(body)}]==]"]
    for name, value in {"Content-Type": "application/json", **headers}.items():
        lines.append(f'wrk.headers["{name}"] = [==[{value}]==]')
    path = Path(tempfile.mkstemp(suffix=".lua", dir=directory)[1])
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url: str, script: Path, seconds: float, connections: int) -> WrkFigures:
    command = [
        "wrk",
        "--threads",
        "1",  # one is plenty at these rates, and leaves the other core to the server
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "--script",
        str(script),
        url,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return parse_wrk(output)


@dataclass
class Comparison:
    """One query, this server against the bare app over alternated rounds."""

    ours: list[WrkFigures]
    bare: list[WrkFigures]

    @property
    def ratios(self) -> list[float]:
        return [o.rps / b.rps for o, b in zip(self.ours, self.bare, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def median(self, side: str, figure: str) -> float:
        return statistics.median(getattr(f, figure) for f in getattr(self, side))

    def values(self, side: str, figure: str) -> list[float]:
        return [getattr(f, figure) for f in getattr(self, side)]

    @property
    def failures(self) -> int:
        return sum(f.failures for f in [*self.ours, *self.bare])


def same_answers(ours: str, bare: str, bodies: dict[str, dict], token: str) -> list[str]:
    """The queries whose JSON differs between the two servers (the bare app has no auth)."""
    differ = []
    for name, body in bodies.items():
        mine = httpx.post(
            ours + "/graphql", json=body, headers={"Authorization": f"Bearer {token}"}
        ).json()
        theirs = httpx.post(bare + "/graphql", json=body).json()
        if "errors" in mine or mine != theirs:
            differ.append(name)
            print(f"{name}: answers differ\n  ours: {mine}\n  bare: {theirs}"[:2000])
    return differ


def compare_throughput(
    ours: str,
    bare: str,
    bodies: dict[str, dict],
    token: str,
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, Comparison]:
    """Each query, each round: both servers under wrk one after the other, the order
    swapped every round so that drifting load from other work hits both alike."""
    scripts = {
        name: (
            wrk_script(workdir, body, {"Authorization": f"Bearer {token}"}),
            wrk_script(workdir, body, {}),
        )
        for name, body in bodies.items()
    }
    for mine, theirs in scripts.values():  # warm-up: caches, pools, lazy imports
        run_wrk(ours + "/graphql", mine, 1, args.connections)
        run_wrk(bare + "/graphql", theirs, 1, args.connections)
    results = {name: Comparison([], []) for name in bodies}
    for round_number in range(args.rounds):
        for name, (mine, theirs) in scripts.items():
            sides = [("ours", ours, mine), ("bare", bare, theirs)]
            if round_number % 2:
                sides.reverse()
            for side, url, script in sides:
                figures = run_wrk(url + "/graphql", script, args.seconds, args.connections)
                getattr(results[name], side).append(figures)
    return results


def migrate_and_count(database_url: str) -> dict[int, int]:
    from server.db import migrate

    asyncio.run(migrate(database_url))
    return count_queries_per_list(database_url)


def count_queries_per_list(database_url: str) -> dict[int, int]:
    """Run list requests in-process and count the SQL statements Tortoise sends."""
    from tortoise import Tortoise

    from server.db import serving_config
    from server.settings import Settings
    from services.providers.templates import TemplateProvider
    from services.sandbox import Sandbox, SandboxSettings
    from tests.support.api import call_graphql, make_client, register_user, shared_analyser

    class Counter(logging.Handler):
        count = 0

        def emit(self, record: logging.LogRecord) -> None:
            Counter.count += 1

    db_logger = logging.getLogger("tortoise.db_client")

    async def run() -> dict[int, int]:
        await Tortoise.init(config=serving_config(database_url), _enable_global_fallback=True)
        settings = Settings(
            _env_file=None,
            database_url=database_url,  # type: ignore[call-arg]
            secret_key="bench",
            rate_limit_generate="100000/minute",
            generation_trial_run=False,  # these generations only seed rows to list
        )
        counts = {}
        sandbox = Sandbox(SandboxSettings())  # never started: no trial runs, no runs
        async with make_client(settings, TemplateProvider(), sandbox=sandbox) as client:
            token, _ = await register_user(client)
            for _ in range(100):
                await call_graphql(client, GENERATE, {"prompt": PROMPT}, token)
            handler = Counter()
            db_logger.addHandler(handler)
            db_logger.setLevel(logging.DEBUG)
            for size in (1, 20, 100):
                Counter.count = 0
                body = await call_graphql(client, LIST_QUERY, {"size": size}, token)
                assert len(body["data"]["strategies"]["items"]) == size, body
                counts[size] = Counter.count
            db_logger.removeHandler(handler)
        await shared_analyser().close()  # its worker processes would outlive this one
        await Tortoise.close_connections()
        return counts

    return asyncio.run(run())


MODELS = {  # provider -> the model the server and the direct SDK calls both ask for
    "gemini": "gemini-bench",
    "openai": "gpt-bench",
    "anthropic": "claude-bench",
}


def direct_calls(urls: dict[str, str]) -> dict[str, Callable[[], Awaitable[object]]]:
    """One direct SDK call per provider, shaped like the server's own request."""
    import anthropic
    import openai
    from google import genai
    from google.genai import types

    from services.providers.prompting import SYSTEM_INSTRUCTION, user_prompt

    gemini = genai.Client(
        api_key="bench-key",
        http_options=types.HttpOptions(base_url=urls["gemini"], timeout=30_000),
    )
    config = types.GenerateContentConfig(
        system_instruction=SYSTEM_INSTRUCTION,
        tools=[types.Tool(code_execution=types.ToolCodeExecution())],
        temperature=0.2,
    )
    chat = openai.AsyncOpenAI(api_key="bench-key", base_url=urls["openai"] + "/v1", max_retries=0)
    claude = anthropic.AsyncAnthropic(
        api_key="bench-key", base_url=urls["anthropic"], max_retries=0
    )
    content = user_prompt(PROMPT)

    def call_gemini() -> Awaitable[object]:
        return gemini.aio.models.generate_content(
            model=MODELS["gemini"], contents=content, config=config
        )

    def call_openai() -> Awaitable[object]:
        return chat.chat.completions.create(
            model=MODELS["openai"],
            messages=[
                {"role": "system", "content": SYSTEM_INSTRUCTION},
                {"role": "user", "content": content},
            ],
            temperature=0.2,
        )

    def call_anthropic() -> Awaitable[object]:
        return claude.messages.create(
            model=MODELS["anthropic"],
            max_tokens=8192,
            system=SYSTEM_INSTRUCTION,
            messages=[{"role": "user", "content": content}],
        )

    return {"gemini": call_gemini, "openai": call_openai, "anthropic": call_anthropic}


async def generation_overhead(server: str, token: str, urls: dict[str, str], n: int) -> dict:
    """Per provider, `n` rounds alternating a direct SDK call and generateStrategy with that
    model; the overhead of a round is the difference of the two."""
    calls = direct_calls(urls)
    results: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        headers = {"Authorization": f"Bearer {token}"}

        async def via_api(provider: str) -> None:
            variables = {"prompt": PROMPT, "model": f"{provider}:{MODELS[provider]}"}
            response = await http.post(
                "/graphql", json={"query": GENERATE, "variables": variables}, headers=headers
            )
            log = response.json()["data"]["generateStrategy"]["generationLog"]
            assert (log["status"], log["provider"]) == ("SUCCESS", provider), response.text

        for provider, direct_call in calls.items():
            for _ in range(5):  # warm-up both paths
                await direct_call()
                await via_api(provider)
            direct: list[float] = []
            api: list[float] = []
            for _ in range(n):
                started = time.perf_counter()
                await direct_call()
                direct.append(time.perf_counter() - started)
                started = time.perf_counter()
                await via_api(provider)
                api.append(time.perf_counter() - started)
            overheads = sorted((b - a) * 1000 for a, b in zip(direct, api, strict=True))
            quartiles = statistics.quantiles(overheads, n=4)
            results[provider] = {
                "direct_p50": statistics.median(direct) * 1000,
                "api_p50": statistics.median(api) * 1000,
                "overhead_p50": statistics.median(overheads),
                "overhead_p25": quartiles[0],
                "overhead_p75": quartiles[2],
            }
    return results


class DatabaseUnavailable(Exception):
    pass


@contextmanager
def bench_database(dialect: str, workdir: Path, postgres_url: str) -> Iterator[str]:
    """A fresh database: a SQLite file, or a PostgreSQL database created beside
    `postgres_url`'s and dropped afterwards (tests/support/databases.py)."""
    if dialect == "sqlite":
        yield f"sqlite://{workdir / 'bench.sqlite3'}"
        return
    from tests.support.databases import scratch_database

    try:
        asyncio.run(_postgres_answers(postgres_url))
    except Exception as exc:  # refused, unknown host, auth: asyncpg's errors share no base
        raise DatabaseUnavailable(f"no PostgreSQL at {postgres_url}: {exc}") from None
    previous = os.environ.get("TEST_DATABASE_URL")
    os.environ["TEST_DATABASE_URL"] = postgres_url
    try:
        with scratch_database(workdir, "bench_api") as url:
            yield url
    finally:
        if previous is None:
            del os.environ["TEST_DATABASE_URL"]
        else:
            os.environ["TEST_DATABASE_URL"] = previous


async def _postgres_answers(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=5)
    await connection.close()


def seed(server: str, token: str) -> str:
    """20 strategies for the bench user, through the API; the id of one of them."""
    ids = []
    for number in range(20):
        answer = httpx.post(
            server + "/graphql",
            json={"query": GENERATE, "variables": {"prompt": PROMPTS[number % len(PROMPTS)]}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).json()
        ids.append(answer["data"]["generateStrategy"]["strategy"]["id"])
    return ids[len(ids) // 2]


@dataclass
class DatabaseRun:
    dialect: str
    queries: dict[int, int]
    comparisons: dict[str, Comparison]
    differ: list[str]
    rss_ours: float  # the three providers configured: their SDKs loaded
    rss_plain: float  # no provider configured (the template provider only)
    rss_bare: float


def run_on(
    database_url: str,
    dialect: str,
    env: dict[str, str],
    workdir: Path,
    args: argparse.Namespace,
    generation: Callable[[str, str], None] | None,
) -> DatabaseRun:
    # In a process of its own: Tortoise keeps the first dialect's query builders for good.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        queries = pool.submit(migrate_and_count, database_url).result()
    env = {**env, "DATABASE_URL": database_url}
    with uvicorn_process("server.app:create_app", env, workdir) as server:
        rss_ours = rss_mib(server.pid)
        registered = httpx.post(server.url + "/graphql", json={"query": REGISTER}).json()
        token = registered["data"]["register"]["token"]
        user_id = registered["data"]["register"]["user"]["id"]
        strategy_id = seed(server.url, token)
        bodies = {
            "list": {"query": LIST_QUERY, "variables": {"size": 20}},
            "detail": {"query": DETAIL_QUERY, "variables": {"id": strategy_id}},
            "me": {"query": ME_QUERY},
        }
        bare_env = {**env, "BARE_USER_ID": user_id}
        with uvicorn_process("bench.bare_app:app", bare_env, workdir) as bare:
            rss_bare = rss_mib(bare.pid)
            differ = same_answers(server.url, bare.url, bodies, token)
            comparisons = compare_throughput(server.url, bare.url, bodies, token, args, workdir)
        if generation is not None:
            generation(server.url, token)
    without_models = {**env, **{key: "" for key in PROVIDER_KEYS}}
    with uvicorn_process("server.app:create_app", without_models, workdir) as plain:
        rss_plain = rss_mib(plain.pid)
    return DatabaseRun(dialect, queries, comparisons, differ, rss_ours, rss_plain, rss_bare)


def report(run: DatabaseRun, args: argparse.Namespace, results: Results) -> None:
    method = (
        f"wrk, {args.connections} connections, {args.rounds} rounds of {args.seconds:g} s per "
        "server, alternated"
    )
    print(f"\n{run.dialect}: {method}; this server against bench/bare_app.py (like for like)")
    print(
        f"{'query':<28}{'ours req/s':>11}{'bare req/s':>11}{'ratio (min-max)':>20}"
        f"{'target':>8}{'ours p99':>10}{'bare p99':>10}"
    )
    for name, comparison in run.comparisons.items():
        ratios = comparison.ratios
        target = TARGETS[name]
        p99 = comparison.median("ours", "p99_ms")
        print(
            f"{LABELS[name]:<28}{comparison.median('ours', 'rps'):>11.0f}"
            f"{comparison.median('bare', 'rps'):>11.0f}"
            f"{comparison.ratio:>8.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
            f"{'>= ' + format(target, '.1f'):>8}{p99:>8.1f}ms"
            f"{comparison.median('bare', 'p99_ms'):>8.1f}ms"
            f"   ratio {verdict(comparison.ratio >= target)}, p99 < {P99_TARGET_MS:.0f} ms "
            f"{verdict(p99 < P99_TARGET_MS)}"
        )
        results.add(
            f"{LABELS[name]} requests/s against a like-for-like bare Strawberry app "
            f"(bench/bare_app.py), {run.dialect}; {method}",
            f"{comparison.ratio:.2f} ({comparison.median('ours', 'rps'):.0f} vs "
            f"{comparison.median('bare', 'rps'):.0f} req/s)",
            f"ratio {min(ratios):.2f} to {max(ratios):.2f}",
            f">= {target} of the bare app",
            comparison.ratio >= target,
        )
        results.add(
            f"{LABELS[name]} p99 latency, {args.connections} connections, {run.dialect}",
            f"{p99:.1f} ms (bare app {comparison.median('bare', 'p99_ms'):.1f} ms)",
            span(comparison.values("ours", "p99_ms")),
            f"< {P99_TARGET_MS:.0f} ms",
            p99 < P99_TARGET_MS,
        )
    failures = sum(c.failures for c in run.comparisons.values())
    same = not run.differ
    print(
        f"same answers from both: {'yes' if same else 'NO: ' + ', '.join(run.differ)}; "
        f"failed requests (non-2xx, socket errors): {failures}"
    )
    results.add(
        f"the three queries answer the same JSON on both servers; failed requests under "
        f"load, {run.dialect}",
        f"{'same' if same else 'differ: ' + ', '.join(run.differ)}; {failures} failed",
        "exact",
        "same, 0",
        same and failures == 0,
    )
    print(
        f"idle memory after start-up (RSS of the serving process): this server "
        f"{run.rss_ours:.0f} MiB with three providers configured, {run.rss_plain:.0f} MiB "
        f"with none; bare app {run.rss_bare:.0f} MiB"
    )
    results.add(
        f"idle memory after start-up, RSS of the serving process (not the sandbox's or code "
        f"analysis's processes), {run.dialect}: three providers configured (Gemini, "
        "OpenAI, Anthropic SDKs loaded); none (template provider only)",
        f"{run.rss_ours:.0f} MiB; {run.rss_plain:.0f} MiB",
        ONE_RUN,
        f"bare app {run.rss_bare:.0f} MiB",
    )
    print(
        "SQL statements per list request: "
        + ", ".join(f"pageSize {k}: {v}" for k, v in run.queries.items())
        + f" -> {verdict(max(run.queries.values()) <= 3)} (target <= 3)"
    )
    results.add(
        f"SQL statements per list request, page sizes 1, 20, 100, {run.dialect}",
        ", ".join(str(v) for v in run.queries.values()),
        "exact count",
        "<= 3",
        max(run.queries.values()) <= 3,
    )


def report_generation(overhead: dict, rounds: int, results: Results) -> None:
    print(
        f"\ngenerateStrategy, {rounds} rounds per provider, each a direct SDK call to "
        "its stand-in then the same through the API:"
    )
    print(f"{'provider':<12}{'direct p50':>12}{'API p50':>10}{'overhead p50 (p25-p75)':>26}")
    for provider, figures in overhead.items():
        spread = f"({figures['overhead_p25']:.1f}-{figures['overhead_p75']:.1f})"
        print(
            f"{provider:<12}{figures['direct_p50']:>9.1f} ms{figures['api_p50']:>7.1f} ms"
            f"{figures['overhead_p50']:>12.1f} ms {spread:>13}"
            f"   target < 25 ms -> {verdict(figures['overhead_p50'] < 25)}"
        )
        results.add(
            f"`generateStrategy` overhead over a direct SDK call (stand-in {provider}), "
            f"{rounds} alternated rounds",
            f"p50 {figures['overhead_p50']:.1f} ms ({figures['api_p50']:.1f} vs "
            f"{figures['direct_p50']:.1f} ms)",
            f"p25-p75 {figures['overhead_p25']:.1f}-{figures['overhead_p75']:.1f} ms",
            "< 25 ms",
            figures["overhead_p50"] < 25,
        )


def postgres_default() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    return url if url.startswith("postgres") else DEFAULT_POSTGRES_URL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per server, per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        default=postgres_default(),
        help="a PostgreSQL server's database; the bench creates and drops its own beside it",
    )
    add_json_option(parser)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install Debian's package (apt-get install wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    results = results_for(args)
    load = os.getloadavg()
    print(f"load average at the start: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
    all_met = True
    with GeminiStandin() as gemini, OpenAIStandin() as openai, AnthropicStandin() as anthropic:
        urls = {
            "gemini": gemini.base_url,
            "openai": openai.base_url,
            "anthropic": anthropic.base_url,
        }
        env = {
            **os.environ,
            "SECRET_KEY": "bench-secret-key-long-enough-for-hs256-0123456789",
            "GEMINI_API_KEY": "bench-key",
            "GEMINI_BASE_URL": urls["gemini"],
            "GEMINI_MODEL": MODELS["gemini"],
            "OPENAI_API_KEY": "bench-key",
            "OPENAI_BASE_URL": urls["openai"] + "/v1",
            "OPENAI_MODEL": MODELS["openai"],
            "ANTHROPIC_API_KEY": "bench-key",
            "ANTHROPIC_BASE_URL": urls["anthropic"],
            "ANTHROPIC_MODEL": MODELS["anthropic"],
            "DEFAULT_MODEL": "",
            "RATE_LIMIT_GENERATE": "1000000/minute",
            "LOG_LEVEL": "warning",
        }
        overhead: dict = {}

        def generation(server: str, token: str) -> None:
            overhead.update(asyncio.run(generation_overhead(server, token, urls, args.generations)))

        for number, dialect in enumerate(d.strip() for d in args.databases.split(",")):
            try:
                with bench_database(dialect, workdir, args.postgres_url) as database_url:
                    run = run_on(
                        database_url,
                        dialect,
                        env,
                        workdir,
                        args,
                        generation if number == 0 else None,
                    )
            except DatabaseUnavailable as exc:
                print(f"\n{dialect}: not run: {exc}")
                results.add(f"API figures on {dialect}", f"not run: {exc}", met=False)
                all_met = False
                continue
            report(run, args, results)
            all_met = all_met and all(row.met is not False for row in results.rows)
    if overhead:
        report_generation(overhead, args.generations, results)
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
    results.write()
    return 0 if all(row.met is not False for row in results.rows) and all_met else 1


if __name__ == "__main__":
    sys.exit(main())
