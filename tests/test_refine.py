"""refineStrategy: the model gets the current code, parameters and the instruction, and its
answer becomes the next version after the generation's checks and repair rounds; a failed
refinement leaves the strategy as it was. Models through the real SDK and a stand-in; the
template provider does what its templates can and says plainly what it cannot.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from services.providers.templates import NOT_TEMPLATE_CODE
from services.sandbox import Sandbox
from tests.support import openai_standin as openai_replies
from tests.support.api import GenerationSession, error_codes, generation_session
from tests.support.broken_answers import BROKEN_ANSWERS, repairing
from tests.support.databases import scratch_database
from tests.support.http_standin import DEFAULT_CODE
from tests.support.openai_standin import OpenAIStandin
from tests.support.server_process import server_env

REFINE = """
mutation($id: UUID!, $input: RefineStrategyInput!) {
  refineStrategy(id: $id, input: $input) {
    strategy {
      id version generatedCode parameters status
      versions { number instruction generatedCode }
    }
    generationLog {
      status errorMessage prompt provider repairRounds ignoredRequirements interpretation
      strategy { id }
      attempts { number kind verdict errorMessage prompt }
    }
  }
}"""
GENERATE = """
mutation($input: GenerateStrategyInput!) {
  generateStrategy(input: $input) { strategy { id version generatedCode parameters } }
}"""
CREATE = """
mutation($input: CreateStrategyInput!) { createStrategy(input: $input) { id } }"""
UPDATE = """
mutation($id: UUID!, $parameters: JSON!) {
  updateStrategy(id: $id, input: {parameters: $parameters}) { version }
}"""
STRATEGY = "query($id: UUID!) { strategy(id: $id) { version generatedCode } }"
# The stand-in's strategy with a take profit added, as a model would answer the instruction.
WITH_TAKE_PROFIT = DEFAULT_CODE.replace(
    '"stop_loss_pct": 0.02}', '"stop_loss_pct": 0.02, "take_profit_pct": 0.05}'
)


async def generate(api: GenerationSession, prompt: str, **input: Any) -> dict[str, Any]:
    body = await api.call(GENERATE, {"input": {"prompt": prompt, **input}})
    assert "errors" not in body, body
    return dict(body["data"]["generateStrategy"]["strategy"])


async def refine(api: GenerationSession, strategy_id: str, **input: Any) -> dict[str, Any]:
    body = await api.call(REFINE, {"id": strategy_id, "input": input})
    assert "errors" not in body, body
    return dict(body["data"]["refineStrategy"])


@pytest.fixture
async def openai_api(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> AsyncIterator[GenerationSession]:
    config = {
        "openai_api_key": "sk-test",
        "openai_base_url": openai_standin.api_base_url,
        "openai_model": "gpt-4.1",
        "openai_timeout_seconds": 5.0,
        "openai_max_attempts": 1,
        "generation_repair_rounds": 2,
    }
    async with generation_session(settings, sandbox, **config) as api:
        yield api


@pytest.fixture
async def template_api(
    database: str, settings: Settings, sandbox: Sandbox
) -> AsyncIterator[GenerationSession]:
    async with generation_session(settings, sandbox) as api:
        yield api


async def test_a_model_refinement_becomes_the_next_version(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    strategy = await generate(openai_api, "SMA crossover 5/20 with 2% stop loss")
    openai_standin.script(openai_replies.code_answer(WITH_TAKE_PROFIT))
    payload = await refine(openai_api, strategy["id"], instruction="add a 5% take profit")
    log, refined = payload["generationLog"], payload["strategy"]
    assert log["status"] == "SUCCESS", log["errorMessage"]
    assert (log["prompt"], log["provider"], log["strategy"]["id"]) == (
        "add a 5% take profit",
        "openai",
        strategy["id"],
    )
    assert [(a["kind"], a["verdict"]) for a in log["attempts"]] == [("REFINE", "valid")]
    assert refined["id"] == strategy["id"] and refined["version"] == 2
    assert refined["generatedCode"].strip() == WITH_TAKE_PROFIT.strip()
    assert refined["parameters"]["take_profit_pct"] == 0.05
    assert [(v["number"], v["instruction"]) for v in refined["versions"]] == [
        (1, "SMA crossover 5/20 with 2% stop loss"),
        (2, "add a 5% take profit"),
    ]
    # The model got the current code, its parameters and the instruction, fenced.
    request = openai_standin.requests[-1]
    message = request.body["messages"][-1]["content"]
    assert DEFAULT_CODE.strip() in message
    assert json.dumps(strategy["parameters"], sort_keys=True) in message
    assert "<<<STRATEGY\nadd a 5% take profit\nSTRATEGY>>>" in message
    assert message == log["attempts"][0]["prompt"]


async def test_a_refinement_is_repaired_like_a_generation(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    strategy = await generate(openai_api, "SMA crossover 5/20")
    openai_standin.script(*repairing(BROKEN_ANSWERS[2], openai_replies.code_answer))
    payload = await refine(openai_api, strategy["id"], instruction="tidy it up")
    log = payload["generationLog"]
    assert log["status"] == "SUCCESS" and log["repairRounds"] == 1
    assert [(a["kind"], a["verdict"]) for a in log["attempts"]] == [
        ("REFINE", "trial run failed"),
        ("REPAIR", "valid"),
    ]
    assert payload["strategy"]["version"] == 2


async def test_a_failed_refinement_leaves_the_strategy_as_it_was(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    strategy = await generate(openai_api, "SMA crossover 5/20")
    openai_standin.set_default(openai_replies.code_answer(BROKEN_ANSWERS[0].code))
    payload = await refine(openai_api, strategy["id"], instruction="add a volume filter")
    log = payload["generationLog"]
    assert log["status"] == "FAILURE" and log["repairRounds"] == 2
    assert "Syntax error" in log["errorMessage"]
    assert "The strategy was left as it was (version 1)" in log["errorMessage"]
    assert payload["strategy"]["version"] == 1
    body = await openai_api.call(STRATEGY, {"id": strategy["id"]})
    assert body["data"]["strategy"] == {
        "version": 1,
        "generatedCode": strategy["generatedCode"],
    }


@pytest.mark.parametrize(
    ("instruction", "added", "removed"),
    [
        ("make the stop trailing", {"trailing_stop_pct": 2.0}, {"stop_loss_pct"}),
        ("add a volume filter", {"volume_multiple": 1.5, "volume_period": 20}, set()),
        (
            "use a 3% trailing stop and only buy on 2x average volume",
            {"trailing_stop_pct": 3.0, "volume_multiple": 2.0},
            {"stop_loss_pct"},
        ),
    ],
)
async def test_the_templates_refine_what_they_support(
    template_api: GenerationSession, instruction: str, added: dict[str, Any], removed: set[str]
) -> None:
    strategy = await generate(template_api, "SMA 20/50 crossover with 2% stop loss")
    payload = await refine(template_api, strategy["id"], instruction=instruction)
    log, refined = payload["generationLog"], payload["strategy"]
    assert log["status"] == "SUCCESS", log["errorMessage"]
    assert log["ignoredRequirements"] == []
    assert [(a["kind"], a["verdict"]) for a in log["attempts"]] == [("REFINE", "valid")]
    assert refined["version"] == 2 and refined["status"] == "VALIDATED"
    assert added.items() <= refined["parameters"].items()
    assert not removed & refined["parameters"].keys()
    assert log["interpretation"]["changes"]


async def test_the_templates_keep_the_parameters_the_user_tuned(
    template_api: GenerationSession,
) -> None:
    strategy = await generate(template_api, "SMA 20/50 crossover with 2% stop loss")
    tuned = {**strategy["parameters"], "fast_period": 10, "stop_loss_pct": 3.0}
    body = await template_api.call(UPDATE, {"id": strategy["id"], "parameters": tuned})
    assert "errors" not in body, body
    payload = await refine(template_api, strategy["id"], instruction="add a volume filter")
    parameters = payload["strategy"]["parameters"]
    assert (parameters["fast_period"], parameters["stop_loss_pct"]) == (10, 3.0)
    assert payload["strategy"]["version"] == 3  # 2 was the tuning


async def test_the_templates_say_what_they_cannot_refine(
    template_api: GenerationSession,
) -> None:
    strategy = await generate(template_api, "SMA 20/50 crossover with 2% stop loss")
    payload = await refine(template_api, strategy["id"], instruction="add an RSI filter")
    log = payload["generationLog"]
    assert log["status"] == "FAILURE"
    assert "cannot make this change" in log["errorMessage"]
    assert "make the stop trailing" in log["errorMessage"]  # what it can do
    assert "models query" in log["errorMessage"]  # and how to get a model
    assert log["ignoredRequirements"] == ["add an RSI filter"]
    assert payload["strategy"]["version"] == 1


async def test_the_templates_refine_in_part_and_say_which_part(
    template_api: GenerationSession,
) -> None:
    strategy = await generate(template_api, "EMA 9/21 crossover")
    payload = await refine(
        template_api, strategy["id"], instruction="add a volume filter; add an RSI filter"
    )
    log = payload["generationLog"]
    assert log["status"] == "PARTIAL"
    assert log["ignoredRequirements"] == ["add an RSI filter"]
    assert payload["strategy"]["version"] == 2
    assert "volume_multiple" in payload["strategy"]["parameters"]


async def test_the_templates_do_not_refine_code_they_did_not_write(
    template_api: GenerationSession,
) -> None:
    body = await template_api.call(
        CREATE, {"input": {"name": "Mine", "generatedCode": DEFAULT_CODE}}
    )
    assert "errors" not in body, body
    strategy_id = body["data"]["createStrategy"]["id"]
    payload = await refine(template_api, strategy_id, instruction="make the stop trailing")
    assert payload["generationLog"]["status"] == "FAILURE"
    assert NOT_TEMPLATE_CODE in payload["generationLog"]["errorMessage"]


async def test_bad_refinements_are_errors(
    template_api: GenerationSession, settings: Settings, sandbox: Sandbox
) -> None:
    strategy = await generate(template_api, "SMA 20/50 crossover")
    cases = [
        (strategy["id"], {"instruction": "   "}, "BAD_USER_INPUT"),
        (strategy["id"], {"instruction": "x" * 4001}, "BAD_USER_INPUT"),
        (
            strategy["id"],
            {"instruction": "add a volume filter", "model": "gpt-9"},
            "BAD_USER_INPUT",
        ),
        ("00000000-0000-0000-0000-000000000000", {"instruction": "add"}, "NOT_FOUND"),
    ]
    for strategy_id, input, code in cases:
        body = await template_api.call(REFINE, {"id": strategy_id, "input": input})
        assert error_codes(body) == [code], (input, body)
    async with generation_session(settings, sandbox) as stranger:
        body = await stranger.call(REFINE, {"id": strategy["id"], "input": {"instruction": "a"}})
    assert error_codes(body) == ["NOT_FOUND"]


@pytest.mark.process
def test_the_cli_refines_as_the_api_does(tmp_path: Path) -> None:
    with scratch_database(tmp_path, "sg_refine_cli") as database_url:
        env = server_env(DATABASE_URL=database_url, COLUMNS="200")

        def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "server", *args],
                env=env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=120,
            )

        assert cli("migrate").returncode == 0
        email = "refiner@example.com"
        made = cli("create-user", "--email", email, "--password-stdin", stdin="pw-123456789\n")
        assert made.returncode == 0, made.stderr
        generated = cli("generate", "SMA 20/50 crossover with 2% stop loss", "--user", email)
        match = re.search(r"^strategy: ([0-9a-f-]{36}) ", generated.stderr, re.M)
        assert generated.returncode == 0 and match, generated.stderr
        strategy_id = match[1]

        refined = cli("refine", strategy_id, "make the stop trailing", "--json")
        assert refined.returncode == 0, refined.stderr
        data = json.loads(refined.stdout)
        assert data["status"] == "SUCCESS"
        assert data["strategy"]["version"] == 2
        assert data["strategy"]["parameters"]["trailing_stop_pct"] == 2.0
        assert data["rounds"] == [{"kind": "REFINE", "verdict": "valid"}]

        refused = cli("refine", strategy_id, "add an RSI filter", "--user", email)
        assert refused.returncode == 1
        assert "cannot make this change" in refused.stderr
        assert "version 2)" in refused.stderr  # still the version the first refinement made
