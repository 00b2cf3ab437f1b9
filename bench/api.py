"""API benchmark (issue 2): the real `strategies(pageSize: 20)` against a bare Strawberry app.

Prints, side by side in one run:
  * requests/s, p50, p99 of an authenticated list query on this server vs bench/bare_app.py,
    both under uvicorn with the same settings (one worker, same loop and HTTP implementation);
  * SQL statements per list request for page sizes 1, 20 and 100 (target: at most 3);
  * server-side overhead of generateStrategy over a direct SDK call to the same stand-in
    Gemini (target: under 25 ms at p50).

Usage: .venv/bin/python bench/api.py [--seconds 10] [--concurrency 16]
DATABASE_URL may point at PostgreSQL; by default a fresh SQLite file is used.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import ONE_RUN, add_json_option, results_for  # noqa: E402
from tests.support.gemini_standin import GeminiStandin  # noqa: E402
from tests.support.server_process import free_port  # noqa: E402

LIST_QUERY = """query($size: Int) { strategies(pageSize: $size) { items {
  id name strategyType status usageCount codePreview parameters createdAt }
  totalCount page pageSize hasNextPage hasPreviousPage } }"""
GENERATE = """mutation($prompt: String!) { generateStrategy(input: {prompt: $prompt}) {
  strategy { id } generationLog { status } } }"""
PROMPT = "SMA crossover 20/50 with 2% stop loss"
REGISTER = """mutation { register(email: "bench@example.com", password: "bench-password")
  { token } }"""


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


@contextmanager
def uvicorn_process(app: str, env: dict[str, str], cwd: Path) -> Iterator[str]:
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
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


async def drive(url: str, body: dict, headers: dict, seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        for _ in range(20):  # warm-up
            await http.post(url, json=body, headers=headers)
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = await http.post(url, json=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or "errors" in response.json():
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
        "n": len(latencies),
    }


def count_queries_per_list(database_url: str) -> dict[int, int]:
    """Run list requests in-process and count the SQL statements Tortoise sends."""
    from tortoise import Tortoise

    from server.db import serving_config
    from server.settings import Settings
    from services.sandbox import Sandbox, SandboxSettings
    from services.templates import TemplateProvider
    from tests.support.api import call_graphql, make_client, register_user

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
        await Tortoise.close_connections()
        return counts

    return asyncio.run(run())


async def generation_overhead(server: str, token: str, standin_url: str, n: int) -> dict:
    from google import genai
    from google.genai import types

    from services.prompting import SYSTEM_INSTRUCTION

    client = genai.Client(
        api_key="bench-key", http_options=types.HttpOptions(base_url=standin_url, timeout=30_000)
    )
    config = types.GenerateContentConfig(
        system_instruction=SYSTEM_INSTRUCTION,
        tools=[types.Tool(code_execution=types.ToolCodeExecution())],
        temperature=0.2,
    )
    direct: list[float] = []
    via_api: list[float] = []
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(5):  # warm-up both paths
            await client.aio.models.generate_content(
                model="gemini-bench", contents=PROMPT, config=config
            )
            await http.post(
                "/graphql",
                json={"query": GENERATE, "variables": {"prompt": PROMPT}},
                headers=headers,
            )
        for _ in range(n):
            started = time.perf_counter()
            await client.aio.models.generate_content(
                model="gemini-bench", contents=PROMPT, config=config
            )
            direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = await http.post(
                "/graphql",
                json={"query": GENERATE, "variables": {"prompt": PROMPT}},
                headers=headers,
            )
            via_api.append(time.perf_counter() - started)
            status = response.json()["data"]["generateStrategy"]["generationLog"]["status"]
            assert status == "SUCCESS", response.text
    return {
        "direct_p50": statistics.median(direct) * 1000,
        "api_p50": statistics.median(via_api) * 1000,
        "overhead_p50": (statistics.median(via_api) - statistics.median(direct)) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--generations", type=int, default=100)
    add_json_option(parser)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite://{workdir / 'bench.sqlite3'}"
    from server.db import migrate

    asyncio.run(migrate(database_url))
    dialect = database_url.split("://")[0]
    print(f"database: {dialect}; load: {args.concurrency} clients for {args.seconds:.0f} s each")

    queries = count_queries_per_list(database_url)

    with GeminiStandin() as standin:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret",
            "GEMINI_API_KEY": "bench-key",
            "GEMINI_BASE_URL": standin.base_url,
            "GEMINI_MODEL": "gemini-bench",
            "RATE_LIMIT_GENERATE": "1000000/minute",
            "LOG_LEVEL": "warning",
        }
        with uvicorn_process("server.app:create_app", env, workdir) as server:
            register = httpx.post(
                server + "/graphql",
                json={"query": REGISTER},
            ).json()
            token = register["data"]["register"]["token"]
            for _ in range(20):
                httpx.post(
                    server + "/graphql",
                    json={"query": GENERATE, "variables": {"prompt": PROMPT}},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
            ours = asyncio.run(
                drive(
                    server + "/graphql",
                    {"query": LIST_QUERY, "variables": {"size": 20}},
                    {"Authorization": f"Bearer {token}"},
                    args.seconds,
                    args.concurrency,
                )
            )
            overhead = asyncio.run(
                generation_overhead(server, token, standin.base_url, args.generations)
            )
        with uvicorn_process("bench.bare_app:app", env, ROOT) as bare_server:
            bare = asyncio.run(
                drive(
                    bare_server + "/graphql",
                    {"query": LIST_QUERY, "variables": {"size": 20}},
                    {},
                    args.seconds,
                    args.concurrency,
                )
            )

    print()
    print(f"{'strategies(pageSize: 20)':<28}{'this server':>14}{'bare strawberry':>18}{'ratio':>9}")
    ratio = ours["rps"] / bare["rps"]
    print(f"{'requests/s':<28}{ours['rps']:>14.0f}{bare['rps']:>18.0f}{ratio:>8.0%}")
    print(f"{'p50 ms':<28}{ours['p50']:>14.1f}{bare['p50']:>18.1f}")
    print(f"{'p99 ms':<28}{ours['p99']:>14.1f}{bare['p99']:>18.1f}")
    print(f"{'errors':<28}{ours['errors']:>14}{bare['errors']:>18}")
    print(f"target: >= 70% of the bare app's throughput -> {verdict(ratio >= 0.7)}")
    print()
    print(
        "SQL statements per list request: "
        + ", ".join(f"pageSize {k}: {v}" for k, v in queries.items())
    )
    print(f"target: <= 3 whatever the page size -> {verdict(max(queries.values()) <= 3)}")
    print()
    print(f"generateStrategy, {args.generations} sequential calls against the stand-in Gemini:")
    print(
        f"  direct SDK call p50 {overhead['direct_p50']:.1f} ms, "
        f"through the API p50 {overhead['api_p50']:.1f} ms"
    )
    print(
        f"  server-side overhead p50 {overhead['overhead_p50']:.1f} ms "
        f"(target < 25 ms -> {'MET' if overhead['overhead_p50'] < 25 else 'NOT MET'})"
    )

    results = results_for(args)
    results.add(
        f"`strategies(pageSize: 20)` throughput, {args.concurrency} clients for "
        f"{args.seconds:g} s, {dialect}, against a bare Strawberry app",
        f"{ratio:.0%} ({ours['rps']:.0f} vs {bare['rps']:.0f} req/s; "
        f"p50 {ours['p50']:.1f} vs {bare['p50']:.1f} ms)",
        ONE_RUN,
        ">= 70% of the bare app",
        ratio >= 0.7,
    )
    results.add(
        "SQL statements per list request, page sizes 1, 20, 100",
        ", ".join(str(v) for v in queries.values()),
        "exact count",
        "<= 3",
        max(queries.values()) <= 3,
    )
    results.add(
        f"`generateStrategy` overhead over a direct SDK call (stand-in Gemini), "
        f"{args.generations} calls",
        f"p50 {overhead['overhead_p50']:.1f} ms ({overhead['api_p50']:.1f} vs "
        f"{overhead['direct_p50']:.1f} ms)",
        ONE_RUN,
        "< 25 ms",
        overhead["overhead_p50"] < 25,
    )
    results.write()


if __name__ == "__main__":
    main()
