"""The repair loop through the real SDKs against the vendors' stand-ins: code that fails the
checks goes back to the model with its errors, and the model's fix is stored; every round is
a GenerationAttempt. The stand-in fixes only what it is told (tests/support/broken_answers.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.settings import Settings
from server.wiring import build_services
from services import accounts
from services.generation import GenerationRequest, GenerationStage
from services.providers.prompting import system_instruction
from services.sandbox import Sandbox
from tests.support import anthropic_standin as anthropic_replies
from tests.support import gemini_standin as gemini_replies
from tests.support import openai_standin as openai_replies
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.api import (
    GenerationSession,
    generation_session,
    http_exchanges,
    shared_analyser,
)
from tests.support.broken_answers import BROKEN_ANSWERS, BrokenAnswer, repairing
from tests.support.gemini_standin import GeminiStandin
from tests.support.http_standin import DEFAULT_CODE
from tests.support.openai_standin import OpenAIStandin

ROUNDS_QUERY = """
mutation($input: GenerateStrategyInput!) {
  generateStrategy(input: $input) {
    strategy { id status generatedCode validationResults { valid errors } }
    generationLog {
      status errorMessage repairRounds repaired extractedCode
      tokensUsed inputTokens outputTokens
      attempts {
        number kind verdict errorMessage extractedCode tokensUsed processingTimeSeconds
        prompt response httpStatus error durationSeconds
        httpExchanges { number httpStatus error durationSeconds }
      }
    }
  }
}"""


PROMPT = "SMA crossover 5/20 with 2% stop loss"


def openai_config(standin: OpenAIStandin, **extra: object) -> dict[str, object]:
    return {
        "openai_api_key": "sk-test",
        "openai_base_url": standin.api_base_url,
        "openai_model": "gpt-4.1",
        "openai_timeout_seconds": 5.0,
        "openai_max_attempts": 2,
        "openai_retry_base_seconds": 0.01,
        "generation_repair_rounds": 2,
        **extra,
    }


async def generate(api: GenerationSession, **input: Any) -> dict[str, Any]:
    variables = {"input": {"prompt": PROMPT, **input}}
    body = await api.call(ROUNDS_QUERY, variables)
    assert "errors" not in body, body
    return dict(body["data"]["generateStrategy"])


@pytest.fixture
async def openai_api(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> AsyncIterator[GenerationSession]:
    async with generation_session(settings, sandbox, **openai_config(openai_standin)) as api:
        yield api


@pytest.mark.parametrize("broken", BROKEN_ANSWERS, ids=[b.name for b in BROKEN_ANSWERS])
async def test_each_fault_is_repaired_in_one_round(
    openai_api: GenerationSession, openai_standin: OpenAIStandin, broken: BrokenAnswer
) -> None:
    openai_standin.script(*repairing(broken, openai_replies.code_answer))
    payload = await generate(openai_api)
    log, strategy = payload["generationLog"], payload["strategy"]
    assert log["status"] == "SUCCESS", log["errorMessage"]
    assert (log["repairRounds"], log["repaired"]) == (1, True)
    assert log["errorMessage"] is None
    assert strategy["status"] == "VALIDATED"
    assert strategy["generatedCode"].strip() == DEFAULT_CODE.strip()

    first, repair = log["attempts"]
    assert (first["number"], first["kind"], first["verdict"]) == (1, "GENERATE", broken.verdict)
    assert broken.phrase in first["errorMessage"]
    assert first["extractedCode"].strip() == broken.code.strip()
    assert (repair["number"], repair["kind"], repair["verdict"]) == (2, "REPAIR", "valid")
    assert repair["errorMessage"] is None
    assert broken.phrase in repair["prompt"] and broken.code.strip() in repair["prompt"]
    assert "SMA crossover 5/20" in first["prompt"]
    for attempt in log["attempts"]:
        assert attempt["tokensUsed"] == 600 and attempt["processingTimeSeconds"] > 0
        assert attempt["httpStatus"] == 200 and attempt["response"]
    assert log["tokensUsed"] == 1200 and (log["inputTokens"], log["outputTokens"]) == (240, 960)

    # The repair request is the conversation so far: prompt, broken answer, the errors.
    first_request, repair_request = openai_standin.requests
    system, user, answer, feedback = repair_request.body["messages"]
    assert system == first_request.body["messages"][0]
    assert user == first_request.body["messages"][1]
    assert answer["role"] == "assistant" and broken.code.strip() in answer["content"]
    assert feedback == {"role": "user", "content": repair["prompt"]}


async def test_a_fault_that_stays_is_partial_after_the_rounds_allowed(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    broken = BROKEN_ANSWERS[0]
    openai_standin.set_default(openai_replies.code_answer(broken.code))  # never fixed
    payload = await generate(openai_api)
    log = payload["generationLog"]
    assert log["status"] == "PARTIAL"
    assert (log["repairRounds"], log["repaired"]) == (2, False)
    assert "not repaired in 2 rounds" in log["errorMessage"]
    assert [a["kind"] for a in log["attempts"]] == ["GENERATE", "REPAIR", "REPAIR"]
    assert {a["verdict"] for a in log["attempts"]} == {"syntax error"}
    assert len(openai_standin.requests) == 3
    assert payload["strategy"]["status"] == "ERROR"


async def test_repair_rounds_follow_the_setting(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> None:
    config = openai_config(openai_standin, generation_repair_rounds=0)
    async with generation_session(settings, sandbox, **config) as api:
        openai_standin.script(*repairing(BROKEN_ANSWERS[2], openai_replies.code_answer))
        log = (await generate(api))["generationLog"]
    assert log["status"] == "PARTIAL" and log["repairRounds"] == 0
    assert [a["kind"] for a in log["attempts"]] == ["GENERATE"]


async def test_unchecked_code_is_not_repaired(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(*repairing(BROKEN_ANSWERS[2], openai_replies.code_answer))
    payload = await generate(openai_api, validateCode=False)  # no trial run: no crash seen
    assert payload["generationLog"]["repairRounds"] == 0
    assert payload["strategy"]["status"] == "DRAFT"
    assert len(openai_standin.requests) == 1


async def test_retries_within_a_round_are_its_http_exchanges(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    broken = BROKEN_ANSWERS[1]
    openai_standin.script(
        openai_replies.error(503),
        openai_replies.code_answer(broken.code),
        openai_replies.error(429, "slow down"),
        openai_replies.code_answer(DEFAULT_CODE),
    )
    log = (await generate(openai_api))["generationLog"]
    assert log["status"] == "SUCCESS" and log["repairRounds"] == 1
    first, repair = log["attempts"]
    assert [e["httpStatus"] for e in first["httpExchanges"]] == [503, 200]
    assert [e["httpStatus"] for e in repair["httpExchanges"]] == [429, 200]
    assert "rate limit" in repair["httpExchanges"][0]["error"]
    assert (repair["httpStatus"], repair["error"]) == (200, None)  # its last exchange
    assert [e["httpStatus"] for e in http_exchanges(log)] == [503, 200, 429, 200]


async def test_a_provider_failure_in_a_repair_keeps_the_code_it_had(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    broken = BROKEN_ANSWERS[2]
    openai_standin.script(openai_replies.code_answer(broken.code), openai_replies.error(400, "no"))
    payload = await generate(openai_api)
    log = payload["generationLog"]
    assert log["status"] == "PARTIAL" and log["repairRounds"] == 1
    assert [a["verdict"] for a in log["attempts"]] == ["trial run failed", "provider error"]
    assert log["extractedCode"].strip() == broken.code.strip()
    assert "the last round: The OpenAI-compatible API error 400" in log["errorMessage"]
    assert payload["strategy"]["generatedCode"].strip() == broken.code.strip()


async def test_the_time_limit_bounds_every_round(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> None:
    config = openai_config(openai_standin, generation_timeout_seconds=2.0)
    broken = BROKEN_ANSWERS[0]
    openai_standin.script(openai_replies.code_answer(broken.code), openai_replies.hang(4.0))
    async with generation_session(settings, sandbox, **config) as api:
        payload = await generate(api)
    log = payload["generationLog"]
    assert log["status"] == "PARTIAL"
    assert [a["verdict"] for a in log["attempts"]] == ["syntax error", "timed out"]
    assert "GENERATION_TIMEOUT_SECONDS" in log["attempts"][1]["errorMessage"]
    assert sum(a["processingTimeSeconds"] for a in log["attempts"]) < 3.5


async def test_anthropic_repairs_through_its_messages(
    database: str, settings: Settings, sandbox: Sandbox, anthropic_standin: AnthropicStandin
) -> None:
    config = {
        "anthropic_api_key": "sk-ant-test",
        "anthropic_base_url": anthropic_standin.base_url,
        "anthropic_timeout_seconds": 5.0,
        "generation_repair_rounds": 2,
    }
    broken = BROKEN_ANSWERS[3]
    anthropic_standin.script(*repairing(broken, anthropic_replies.code_answer))
    async with generation_session(settings, sandbox, **config) as api:
        log = (await generate(api))["generationLog"]
    assert log["status"] == "SUCCESS" and log["repairRounds"] == 1
    assert [a["verdict"] for a in log["attempts"]] == ["trial run failed", "valid"]
    roles = [m["role"] for m in anthropic_standin.requests[1].body["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert anthropic_standin.requests[1].body["system"] == system_instruction(False)


async def test_gemini_repairs_through_its_contents(
    database: str, settings: Settings, sandbox: Sandbox, gemini_standin: GeminiStandin
) -> None:
    config = {
        "gemini_api_key": "g-test",
        "gemini_base_url": gemini_standin.base_url,
        "gemini_timeout_seconds": 5.0,
        "generation_repair_rounds": 2,
    }
    broken = BROKEN_ANSWERS[4]
    gemini_standin.script(*repairing(broken, gemini_replies.code_answer))
    async with generation_session(settings, sandbox, **config) as api:
        log = (await generate(api))["generationLog"]
    assert log["status"] == "SUCCESS" and log["repairRounds"] == 1
    assert [a["verdict"] for a in log["attempts"]] == ["invalid code", "valid"]
    roles = [c["role"] for c in gemini_standin.requests[1].body["contents"]]
    assert roles == ["user", "model", "user"]


async def test_the_template_provider_has_no_rounds_to_repair_with(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    async with generation_session(settings, sandbox, generation_repair_rounds=2) as api:
        log = (await generate(api))["generationLog"]
    assert log["status"] == "SUCCESS" and log["repairRounds"] == 0
    (attempt,) = log["attempts"]
    assert (attempt["kind"], attempt["verdict"], attempt["prompt"]) == ("GENERATE", "valid", None)


async def test_each_round_reports_its_stages(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> None:
    """What generateStrategyProgress streams: SENT to VALIDATED for every round, then STORED."""
    configured = settings.model_validate({**settings.model_dump(), **openai_config(openai_standin)})
    generator = build_services(configured, None, sandbox, shared_analyser()).generator
    user = await accounts.register(f"stages-{uuid.uuid4().hex[:8]}@example.com", "pw-12345678")
    openai_standin.script(*repairing(BROKEN_ANSWERS[2], openai_replies.code_answer))
    stages: list[GenerationStage] = []
    outcome = await generator.generate(user, GenerationRequest(PROMPT), on_stage=stages.append)
    assert outcome.log.repair_rounds == 1
    one_round = ["SENT", "RECEIVED", "EXTRACTED", "VALIDATED"]
    assert [stage.value for stage in stages] == [*one_round, *one_round, "STORED"]


def test_only_gemini_is_told_of_a_code_execution_tool() -> None:
    assert "code-execution tool" in system_instruction(code_execution=True)
    without = system_instruction(code_execution=False)
    assert "code-execution" not in without and "cannot run code" in without
    assert "you get the errors back" in without
