"""API benchmark (issue 2): the real `strategies(pageSize: 20)` against a bare Strawberry app.

Prints, side by side in one run:
  * requests/s, p50, p99 of an authenticated list query on this server vs bench/bare_app.py,
    both under uvicorn with the same settings (one worker, same loop and HTTP implementation);
  * SQL statements per list request for page sizes 1, 20 and 100 (target: at most 3);
  * server-side overhead of generateStrategy over a direct SDK call to the same stand-in, per
    provider: Gemini, OpenAI-compatible, Anthropic (target: under 25 ms at p50).

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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import ONE_RUN, add_json_option, results_for  # noqa: E402
from tests.support.anthropic_standin import AnthropicStandin  # noqa: E402
from tests.support.gemini_standin import GeminiStandin  # noqa: E402
from tests.support.openai_standin import OpenAIStandin  # noqa: E402
from tests.support.server_process import free_port  # noqa: E402

LIST_QUERY = """query($size: Int) { strategies(pageSize: $size) { items {
  id name strategyType status usageCount codePreview parameters createdAt }
  totalCount page pageSize hasNextPage hasPreviousPage } }"""
GENERATE = """mutation($prompt: String!, $model: String) {
  generateStrategy(input: {prompt: $prompt, model: $model}) {
  strategy { id } generationLog { status provider } } }"""
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
    from services.providers.templates import TemplateProvider
    from services.sandbox import Sandbox, SandboxSettings
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

    with GeminiStandin() as gemini, OpenAIStandin() as openai, AnthropicStandin() as anthropic:
        urls = {
            "gemini": gemini.base_url,
            "openai": openai.base_url,
            "anthropic": anthropic.base_url,
        }
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret",
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
            overhead = asyncio.run(generation_overhead(server, token, urls, args.generations))
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
    print(
        f"generateStrategy, {args.generations} rounds per provider, each a direct SDK call to "
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
    for provider, figures in overhead.items():
        results.add(
            f"`generateStrategy` overhead over a direct SDK call (stand-in {provider}), "
            f"{args.generations} alternated rounds",
            f"p50 {figures['overhead_p50']:.1f} ms ({figures['api_p50']:.1f} vs "
            f"{figures['direct_p50']:.1f} ms)",
            f"p25-p75 {figures['overhead_p25']:.1f}-{figures['overhead_p75']:.1f} ms",
            "< 25 ms",
            figures["overhead_p50"] < 25,
        )
    results.write()


if __name__ == "__main__":
    main()
