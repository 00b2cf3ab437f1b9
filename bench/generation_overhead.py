"""Generation overhead (issue 12): what a round of generateStrategy costs on top of the model.

The real server, every provider through its real SDK against its vendor's stand-in. Per
provider, rounds alternate a direct SDK call to the stand-in (the same system instruction
and message the server sends) with generateStrategy through the API naming that model; a
round's overhead is the difference. It covers everything the server adds: GraphQL, auth,
rate limit, extraction and validation in the code-analysis workers, the trial run in the
sandbox (every generation gets one here: GENERATION_TRIAL_RUN_LIMIT is lifted) and the
transaction storing the strategy, its version and the log.

A repaired generation (OpenAI-compatible: a broken answer, then the fix) takes two rounds;
its overhead per round is (API time - two direct calls) / 2.

With --reference PATH (another checkout, e.g. main's), a server from there answers the same
first-round cases in the same alternated rounds, for a like-with-like comparison.

Then the same with GENERATION_TRIAL_RUN=false: the server's own work without the sandbox
job, for context. Prints each overhead's median (p25-p75) beside the target: under 25 ms
p50 per round, with the trial run.
Usage: .venv/bin/python bench/generation_overhead.py [--rounds 60] [--reference PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.model_standins import MODELS, Served, served  # noqa: E402
from bench.results import add_json_option, results_for  # noqa: E402
from services.providers.prompting import (  # noqa: E402
    repair_prompt,
    system_instruction,
    user_prompt,
)
from tests.support import openai_standin  # noqa: E402
from tests.support.broken_answers import BROKEN_ANSWERS, repairing  # noqa: E402

GENERATE = """mutation($prompt: String!, $model: String) {
  generateStrategy(input: {prompt: $prompt, model: $model}) {
  strategy { id } generationLog { status provider repairRounds } } }"""
# For a reference checkout that may predate repair rounds.
GENERATE_PLAIN = """mutation($prompt: String!, $model: String) {
  generateStrategy(input: {prompt: $prompt, model: $model}) {
  strategy { id } generationLog { status provider } } }"""
PROMPT = "SMA crossover 5/20 with 2% stop loss"
TARGET_MS = 25.0
Call = Callable[[], Awaitable[object]]


def direct_calls(urls: dict[str, str]) -> dict[str, Call]:
    """One direct SDK call per provider, the request the server sends for a first round."""
    import anthropic
    import openai
    from google import genai
    from google.genai import types

    gemini = genai.Client(
        api_key="bench-key",
        http_options=types.HttpOptions(
            base_url=urls["gemini"], api_version="v1beta", timeout=30_000
        ),
    )
    config = types.GenerateContentConfig(
        system_instruction=system_instruction(code_execution=True),
        tools=[types.Tool(code_execution=types.ToolCodeExecution())],
        temperature=0.2,
    )
    chat = openai.AsyncOpenAI(api_key="bench-key", base_url=urls["openai"], max_retries=0)
    claude = anthropic.AsyncAnthropic(
        api_key="bench-key", base_url=urls["anthropic"], max_retries=0
    )
    content = user_prompt(PROMPT)
    plain = system_instruction(code_execution=False)

    def call_gemini() -> Awaitable[object]:
        contents = [types.Content(role="user", parts=[types.Part(text=content)])]
        return gemini.aio.models.generate_content(
            model=MODELS["gemini"], contents=contents, config=config
        )

    def call_openai() -> Awaitable[object]:
        return chat.chat.completions.create(
            model=MODELS["openai"],
            messages=[
                {"role": "system", "content": plain},
                {"role": "user", "content": content},
            ],
            temperature=0.2,
        )

    def call_anthropic() -> Awaitable[object]:
        return claude.messages.create(
            model=MODELS["anthropic"],
            max_tokens=8192,
            system=plain,
            messages=[{"role": "user", "content": content}],
        )

    async def call_openai_repaired() -> object:
        """The two calls of a repaired generation: the first, then the repair."""
        await call_openai()
        broken = BROKEN_ANSWERS[0]
        return await chat.chat.completions.create(
            model=MODELS["openai"],
            messages=[
                {"role": "system", "content": plain},
                {"role": "user", "content": content},
                {"role": "assistant", "content": f"```python\n{broken.code}\n```"},
                {"role": "user", "content": repair_prompt([broken.phrase], broken.code)},
            ],
            temperature=0.2,
        )

    return {
        "gemini": call_gemini,
        "openai": call_openai,
        "anthropic": call_anthropic,
        "openai, repaired (2 rounds)": call_openai_repaired,
    }


def _api_call(
    served_: Served, http: httpx.AsyncClient, case: str, provider: str, per_generation: int
) -> Call:
    """generateStrategy with `provider`'s model; for the repaired case, the stand-in answers
    with a broken module first and the fix once told the error."""
    standin = served_.standins[provider]

    async def via_api() -> None:
        if per_generation == 2:
            standin.script(*repairing(BROKEN_ANSWERS[0], openai_standin.code_answer, 2))
        variables = {"prompt": PROMPT, "model": served_.model_id(provider)}
        query = GENERATE if per_generation == 2 else GENERATE_PLAIN
        body = await served_.graphql(http, query, variables)
        log = body["data"]["generateStrategy"]["generationLog"]
        assert (log["status"], log["provider"]) == ("SUCCESS", provider), (case, log)
        if per_generation == 2:
            assert log["repairRounds"] == 1, (case, log)

    return via_api


async def measure(served_: Served, rounds: int) -> dict[str, dict[str, float]]:
    calls = direct_calls(served_.urls)
    figures: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(timeout=60) as http:
        for case, direct_call in calls.items():
            provider = case.split(",")[0]
            per_generation = 2 if "repaired" in case else 1
            standin = served_.standins[provider]
            via_api = _api_call(served_, http, case, provider, per_generation)
            reference = served_.reference if per_generation == 1 else None
            via_reference = (
                _api_call(reference, http, case, provider, 1) if reference is not None else None
            )

            for _ in range(5):  # warm-up of every path
                await direct_call()
                await via_api()
                if via_reference is not None:
                    await via_reference()
            overheads, direct_ms, api_ms, reference_overheads = [], [], [], []
            for _ in range(rounds):
                started = time.perf_counter()
                await direct_call()
                direct = time.perf_counter() - started
                started = time.perf_counter()
                await via_api()
                api = time.perf_counter() - started
                if via_reference is not None:
                    started = time.perf_counter()
                    await via_reference()
                    reference_overheads.append((time.perf_counter() - started - direct) * 1000)
                standin.reset()
                direct_ms.append(direct * 1000)
                api_ms.append(api * 1000)
                overheads.append((api - direct) * 1000 / per_generation)
            quartiles = statistics.quantiles(overheads, n=4)
            figures[case] = {
                "direct_p50": statistics.median(direct_ms),
                "api_p50": statistics.median(api_ms),
                "p50": statistics.median(overheads),
                "p25": quartiles[0],
                "p75": quartiles[2],
            }
            if reference_overheads:
                figures[case]["reference_p50"] = statistics.median(reference_overheads)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="alternated rounds per case")
    parser.add_argument(
        "--reference",
        type=Path,
        help="another checkout (e.g. main's) served beside this one, its overhead measured "
        "in the same alternated rounds, for the first-round cases",
    )
    add_json_option(parser)
    args = parser.parse_args()

    results = results_for(args)
    met_all = True
    # As users get it (every generation's code runs once in the sandbox), then without the
    # trial run: the server's own work alone, for context (no target).
    for trial_run in (True, False):
        settings = {
            "GENERATION_TRIAL_RUN": "true" if trial_run else "false",
            "GENERATION_TRIAL_RUN_LIMIT": "100000/second",
        }
        with served(args.reference, **settings) as server:
            figures = asyncio.run(measure(server, args.rounds))
        label = "trial run included" if trial_run else "GENERATION_TRIAL_RUN=false"
        print(
            f"\n{label}: {args.rounds} alternated rounds per case, a direct SDK call then the API"
        )
        print(f"{'case':<30}{'direct p50':>12}{'API p50':>10}{'overhead/round p50 (p25-p75)':>32}")
        for case, f in figures.items():
            met = f["p50"] < TARGET_MS
            if trial_run:
                met_all &= met
            spread = f"({f['p25']:.1f}-{f['p75']:.1f})"
            target = f"target < {TARGET_MS:g} ms -> {'MET' if met else 'NOT MET'}"
            reference = (
                f"; reference checkout {f['reference_p50']:.1f} ms" if "reference_p50" in f else ""
            )
            print(
                f"{case:<30}{f['direct_p50']:>9.1f} ms{f['api_p50']:>7.1f} ms"
                f"{f['p50']:>14.1f} ms {spread:>13}   {target if trial_run else 'context'}"
                f"{reference}"
            )
            results.add(
                f"Generation overhead per round over a direct SDK call ({case}; stand-in, "
                f"{label}), {args.rounds} alternated rounds",
                f"p50 {f['p50']:.1f} ms ({f['api_p50']:.1f} vs {f['direct_p50']:.1f} ms)"
                + (f"; reference {f['reference_p50']:.1f} ms" if "reference_p50" in f else ""),
                f"p25-p75 {f['p25']:.1f} to {f['p75']:.1f} ms",
                f"< {TARGET_MS:g} ms" if trial_run else "",
                met if trial_run else None,
            )
    results.write()
    return 0 if met_all else 1


if __name__ == "__main__":
    sys.exit(main())
