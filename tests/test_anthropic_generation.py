"""generateStrategy through the real `anthropic` SDK against a stand-in Messages API server.

Nothing of the SDK is mocked: the server is configured as a user would configure it
(ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, ANTHROPIC_MODEL) and the stand-in answers over HTTP,
faults scripted: rate limits, overload, server errors, timeouts, refusals, bodies that are not
JSON, answers without code and answers cut at max_tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from server.settings import Settings
from services.generation import TRUNCATED_NOTE
from services.providers.prompting import system_instruction
from services.sandbox import Sandbox
from tests.support.anthropic_standin import (
    DEFAULT_CODE,
    AnthropicStandin,
    code_answer,
    empty_answer,
    error,
    hang,
    non_json,
    refusal,
    text_answer,
    truncated_answer,
)
from tests.support.api import GenerationSession, generation_session, http_exchanges

API_KEY = "sk-ant-test-key"
MODEL = "claude-sonnet-4-6"  # list price: 3 USD in, 15 USD out per million tokens


def anthropic_settings(standin: AnthropicStandin, **extra: object) -> dict[str, object]:
    return {
        "anthropic_api_key": API_KEY,
        "anthropic_base_url": standin.base_url,
        "anthropic_model": MODEL,
        "anthropic_max_tokens": 4000,
        "anthropic_timeout_seconds": 1.0,
        "anthropic_max_attempts": 3,
        "anthropic_retry_base_seconds": 0.01,
        # One round: these tests are about one answer (tests/test_repair_loop.py repairs).
        "generation_repair_rounds": 0,
        **extra,
    }


@pytest.fixture
async def claude(
    database: str, settings: Settings, sandbox: Sandbox, anthropic_standin: AnthropicStandin
) -> AsyncIterator[GenerationSession]:
    configured = anthropic_settings(anthropic_standin)
    async with generation_session(settings, sandbox, **configured) as api:
        yield api


async def test_code_answer_with_tokens_and_cost(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(code_answer(DEFAULT_CODE, tokens=(100, 400)))
    payload = await claude.generate("RSI below 30 buys, above 70 sells")
    log, strategy = payload["generationLog"], payload["strategy"]
    assert log["status"] == "SUCCESS", log["errorMessage"]
    assert (log["provider"], log["model"]) == ("anthropic", MODEL)
    assert (log["inputTokens"], log["outputTokens"], log["tokensUsed"]) == (100, 400, 500)
    assert log["estimatedCostUsd"] == pytest.approx((100 * 3.0 + 400 * 15.0) / 1e6)
    assert log["extractedCode"].strip() == DEFAULT_CODE.strip()
    assert strategy["status"] == "VALIDATED"

    (request,) = anthropic_standin.requests
    assert request.path == "/v1/messages"
    assert request.api_key == API_KEY
    assert "anthropic-version" in request.headers
    assert request.body["model"] == MODEL
    assert request.body["max_tokens"] == 4000
    assert request.body["system"] == system_instruction(code_execution=False)
    (message,) = request.body["messages"]
    assert message["role"] == "user"
    assert "RSI below 30 buys, above 70 sells" in message["content"]


async def test_answer_without_code_fails(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(text_answer("I'd rather not write trading code."))
    payload = await claude.generate()
    log = payload["generationLog"]
    assert payload["strategy"] is None
    assert log["status"] == "FAILURE"
    assert "no Python code" in log["errorMessage"]
    assert "rather not" in log["aiResponseRaw"]


async def test_truncated_answer_says_it_was_cut(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(truncated_answer(keep=400))
    payload = await claude.generate()
    log = payload["generationLog"]
    assert log["status"] == "PARTIAL"
    assert TRUNCATED_NOTE in log["errorMessage"]
    assert payload["strategy"]["status"] == "ERROR"


async def test_truncated_before_any_text_names_the_setting(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(truncated_answer(keep=0))
    log = (await claude.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "ANTHROPIC_MAX_TOKENS" in log["errorMessage"]
    assert len(http_exchanges(log)) == 1


async def test_429_then_success_honours_retry_after(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(error(429, "Number of requests has exceeded", 0.3), code_answer())
    log = (await claude.generate())["generationLog"]
    assert log["status"] == "SUCCESS"
    assert [a["httpStatus"] for a in http_exchanges(log)] == [429, 200]
    assert "rate limit" in http_exchanges(log)[0]["error"]
    assert log["processingTimeSeconds"] >= 0.3


async def test_overloaded_then_success(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(error(529, "Overloaded"), code_answer())
    log = (await claude.generate())["generationLog"]
    assert log["status"] == "SUCCESS"
    assert [a["httpStatus"] for a in http_exchanges(log)] == [529, 200]
    assert "overloaded_error" in http_exchanges(log)[0]["error"]


@pytest.mark.parametrize("status", [500, 529])
async def test_server_errors_are_retried_then_reported(
    claude: GenerationSession, anthropic_standin: AnthropicStandin, status: int
) -> None:
    anthropic_standin.script(error(status), error(status), error(status))
    payload = await claude.generate()
    log = payload["generationLog"]
    assert payload["strategy"] is None
    assert log["status"] == "FAILURE"
    assert [a["httpStatus"] for a in http_exchanges(log)] == [status] * 3
    assert f"Anthropic error {status}" in log["errorMessage"]
    assert "gave up after 3 attempts" in log["errorMessage"]


async def test_timeouts_are_bounded(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(hang(10), hang(10), hang(10))
    log = (await claude.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "Anthropic did not answer within 1 s" in log["errorMessage"]
    assert len(http_exchanges(log)) == 3
    assert all(a["durationSeconds"] < 2.5 for a in http_exchanges(log))


async def test_timeout_then_success(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(hang(10), code_answer())
    log = (await claude.generate())["generationLog"]
    assert log["status"] == "SUCCESS"
    assert http_exchanges(log)[0]["error"].startswith("Anthropic did not answer")


@pytest.mark.parametrize(
    "reply",
    [refusal(None), refusal("I can start on that, but")],
    ids=["blocked-prompt", "refusal-mid-answer"],
)
async def test_refusals_fail_without_retry(
    claude: GenerationSession, anthropic_standin: AnthropicStandin, reply: object
) -> None:
    anthropic_standin.script(reply)  # type: ignore[arg-type]
    payload = await claude.generate()
    log = payload["generationLog"]
    assert payload["strategy"] is None
    assert log["status"] == "FAILURE"
    assert "declined to answer (refusal); rephrase the strategy" in log["errorMessage"]
    assert len(http_exchanges(log)) == 1


async def test_empty_answer_is_retried(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(empty_answer(), code_answer())
    log = (await claude.generate())["generationLog"]
    assert log["status"] == "SUCCESS"
    assert http_exchanges(log)[0]["error"] == "Anthropic returned an empty answer"


@pytest.mark.parametrize("content_type", ["text/html", "application/json"])
async def test_non_json_body_is_a_clear_failure(
    claude: GenerationSession, anthropic_standin: AnthropicStandin, content_type: str
) -> None:
    anthropic_standin.set_default(
        replace(non_json("<html>Bad gateway</html>"), content_type=content_type)
    )
    log = (await claude.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "not JSON" in log["errorMessage"] or "not valid JSON" in log["errorMessage"]
    assert len(http_exchanges(log)) == 3


async def test_invalid_key_is_not_retried(
    database: str, settings: Settings, sandbox: Sandbox, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.expected_api_key = "the-right-key"
    configured = anthropic_settings(anthropic_standin)
    async with generation_session(settings, sandbox, **configured) as api:
        log = (await api.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "ANTHROPIC_API_KEY" in log["errorMessage"]
    assert [a["httpStatus"] for a in http_exchanges(log)] == [401]
    assert "authentication_error" in log["aiResponseRaw"]


async def test_unknown_model_is_reported(
    claude: GenerationSession, anthropic_standin: AnthropicStandin
) -> None:
    anthropic_standin.script(error(404, "model: claude-x"))
    log = (await claude.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "ANTHROPIC_MODEL" in log["errorMessage"]
    assert "not_found_error" in log["errorMessage"]


async def test_unreachable_server_is_a_failure_not_an_error(
    database: str, settings: Settings, sandbox: Sandbox, anthropic_standin: AnthropicStandin
) -> None:
    unreachable = {"anthropic_base_url": "http://127.0.0.1:9", "anthropic_max_attempts": 2}
    configured = anthropic_settings(anthropic_standin, **unreachable)
    async with generation_session(settings, sandbox, **configured) as api:
        log = (await api.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "Could not reach Anthropic at http://127.0.0.1:9" in log["errorMessage"]
    assert len(http_exchanges(log)) == 2
