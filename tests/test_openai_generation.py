"""generateStrategy through the real `openai` SDK against a stand-in chat completions server.

Nothing of the SDK is mocked: the server is configured as a user would configure it
(OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL) and the stand-in answers over HTTP, faults
scripted: rate limits, server errors, timeouts, refusals, blocked prompts, bodies that are
not JSON, answers without code and answers cut at the token limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.settings import Settings
from services.generation import TRUNCATED_NOTE
from services.providers.prompting import system_instruction
from services.sandbox import Sandbox
from tests.support.api import GenerationSession, generation_session, http_exchanges
from tests.support.openai_standin import (
    DEFAULT_CODE,
    OpenAIStandin,
    blocked_prompt,
    code_answer,
    content_filtered,
    error,
    hang,
    no_choices,
    non_json,
    refusal,
    text_answer,
    truncated_answer,
)

API_KEY = "sk-test-openai-key"
MODEL = "gpt-4.1"  # a model with a list price: 2 USD in, 8 USD out per million tokens


def openai_settings(standin: OpenAIStandin, **extra: object) -> dict[str, object]:
    return {
        "openai_api_key": API_KEY,
        "openai_base_url": standin.api_base_url,
        "openai_model": MODEL,
        "openai_timeout_seconds": 1.0,
        "openai_max_attempts": 3,
        "openai_retry_base_seconds": 0.01,
        # One round: these tests are about one answer (tests/test_repair_loop.py repairs).
        "generation_repair_rounds": 0,
        **extra,
    }


@pytest.fixture
async def openai_api(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> AsyncIterator[GenerationSession]:
    async with generation_session(settings, sandbox, **openai_settings(openai_standin)) as api:
        yield api


async def test_code_answer_with_tokens_and_cost(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(code_answer(DEFAULT_CODE, tokens=(100, 400)))
    payload = await openai_api.generate("SMA crossover 5/20 with 2% stop loss")
    log, strategy = payload["generationLog"], payload["strategy"]
    assert log["status"] == "SUCCESS", log["errorMessage"]
    assert (log["provider"], log["model"]) == ("openai", MODEL)
    assert (log["inputTokens"], log["outputTokens"], log["tokensUsed"]) == (100, 400, 500)
    assert log["estimatedCostUsd"] == pytest.approx((100 * 2.0 + 400 * 8.0) / 1e6)
    assert log["extractedCode"].strip() == DEFAULT_CODE.strip()
    assert [a["httpStatus"] for a in http_exchanges(log)] == [200]
    assert strategy["status"] == "VALIDATED"

    (request,) = openai_standin.requests
    assert request.path == "/v1/chat/completions"
    assert request.api_key == API_KEY
    assert request.body["model"] == MODEL
    system, user = request.body["messages"]
    assert system == {"role": "system", "content": system_instruction(code_execution=False)}
    assert user["role"] == "user"
    assert "SMA crossover 5/20 with 2% stop loss" in user["content"]


async def test_a_local_server_needs_no_key_and_has_no_price(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> None:
    """As with Ollama: OPENAI_BASE_URL=http://127.0.0.1:11434/v1, OPENAI_MODEL=llama3.1:8b."""
    local = {"openai_api_key": "", "openai_model": "llama3.1:8b"}
    async with generation_session(
        settings, sandbox, **openai_settings(openai_standin, **local)
    ) as api:
        log = (await api.generate())["generationLog"]
    assert log["status"] == "SUCCESS"
    assert (log["provider"], log["model"]) == ("openai", "llama3.1:8b")
    assert log["estimatedCostUsd"] is None
    (request,) = openai_standin.requests
    assert request.body["model"] == "llama3.1:8b"


async def test_the_operator_sets_prices(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> None:
    prices = {"llama3.1:8b": {"input": 0.5, "output": 1.5}, MODEL: {"input": 1, "output": 1}}
    async with generation_session(
        settings,
        sandbox,
        **openai_settings(openai_standin, openai_model="llama3.1:8b", model_prices=prices),
    ) as api:
        openai_standin.script(code_answer(tokens=(1000, 2000)))
        log = (await api.generate())["generationLog"]
    assert log["estimatedCostUsd"] == pytest.approx((1000 * 0.5 + 2000 * 1.5) / 1e6)


async def test_answer_without_code_fails(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(text_answer("I cannot help with trading strategies."))
    payload = await openai_api.generate()
    assert payload["strategy"] is None
    log = payload["generationLog"]
    assert log["status"] == "FAILURE"
    assert "no Python code" in log["errorMessage"]
    assert "I cannot help" in log["aiResponseRaw"]
    assert (log["inputTokens"], log["outputTokens"]) == (120, 40)


async def test_truncated_answer_says_it_was_cut(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(truncated_answer(keep=400))
    payload = await openai_api.generate()
    log = payload["generationLog"]
    assert log["status"] == "PARTIAL"
    assert "Syntax error" in log["errorMessage"]
    assert TRUNCATED_NOTE in log["errorMessage"]
    assert payload["strategy"]["status"] == "ERROR"
    assert len(http_exchanges(log)) == 1


async def test_429_then_success_honours_retry_after(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(error(429, "Rate limit reached", retry_after=0.3), code_answer())
    log = (await openai_api.generate())["generationLog"]
    assert log["status"] == "SUCCESS"
    assert [a["httpStatus"] for a in http_exchanges(log)] == [429, 200]
    assert "rate limit" in http_exchanges(log)[0]["error"]
    assert log["processingTimeSeconds"] >= 0.3


async def test_exhausted_quota_is_not_retried(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(error(429, "You exceeded your current quota", code="insufficient_quota"))
    log = (await openai_api.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "billing" in log["errorMessage"]
    assert [a["httpStatus"] for a in http_exchanges(log)] == [429]


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retried_then_reported(
    openai_api: GenerationSession, openai_standin: OpenAIStandin, status: int
) -> None:
    openai_standin.script(error(status), error(status), error(status))
    payload = await openai_api.generate()
    log = payload["generationLog"]
    assert payload["strategy"] is None
    assert log["status"] == "FAILURE"
    assert [a["httpStatus"] for a in http_exchanges(log)] == [status] * 3
    assert f"error {status}" in log["errorMessage"]
    assert "gave up after 3 attempts" in log["errorMessage"]
    assert openai_standin.pending == 0


async def test_503_then_success(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(error(503, "overloaded"), code_answer())
    log = (await openai_api.generate())["generationLog"]
    assert log["status"] == "SUCCESS"
    assert [a["httpStatus"] for a in http_exchanges(log)] == [503, 200]


async def test_timeout_is_bounded_then_success(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(hang(10), code_answer())
    log = (await openai_api.generate())["generationLog"]
    assert log["status"] == "SUCCESS"
    assert "did not answer within 1 s" in http_exchanges(log)[0]["error"]
    assert http_exchanges(log)[0]["durationSeconds"] < 2.5


async def test_timeouts_give_up(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.set_default(hang(10))
    log = (await openai_api.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "did not answer within 1 s" in log["errorMessage"]
    assert len(http_exchanges(log)) == 3
    assert log["processingTimeSeconds"] < 8


@pytest.mark.parametrize(
    ("reply", "message", "status"),
    [
        (refusal("I can't help with that."), "The model refused: I can't help with that.", 200),
        (content_filtered(), "withheld the answer (content_filter)", 200),
        (blocked_prompt(), "blocked the prompt (content_policy_violation)", 400),
    ],
    ids=["refusal", "content-filter", "blocked-prompt"],
)
async def test_refusals_fail_without_retry(
    openai_api: GenerationSession,
    openai_standin: OpenAIStandin,
    reply: object,
    message: str,
    status: int,
) -> None:
    openai_standin.script(reply)  # type: ignore[arg-type]
    payload = await openai_api.generate()
    log = payload["generationLog"]
    assert payload["strategy"] is None
    assert log["status"] == "FAILURE"
    assert message in log["errorMessage"]
    assert "rephrase" in log["errorMessage"]
    assert [a["httpStatus"] for a in http_exchanges(log)] == [status]


async def test_no_choices_is_retried(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(no_choices(), code_answer())
    log = (await openai_api.generate())["generationLog"]
    assert log["status"] == "SUCCESS"
    assert http_exchanges(log)[0]["error"] == "The OpenAI-compatible API returned no choices"


@pytest.mark.parametrize("content_type", ["text/html", "application/json"])
async def test_non_json_body_is_a_clear_failure(
    openai_api: GenerationSession, openai_standin: OpenAIStandin, content_type: str
) -> None:
    reply = non_json("<html>Bad gateway</html>")
    if content_type == "application/json":  # says JSON, is not
        from dataclasses import replace

        reply = replace(reply, content_type=content_type)
    openai_standin.set_default(reply)
    log = (await openai_api.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "not JSON" in log["errorMessage"] or "not valid JSON" in log["errorMessage"]
    assert len(http_exchanges(log)) == 3
    assert "Traceback" not in log["errorMessage"]


async def test_invalid_key_is_not_retried(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> None:
    openai_standin.expected_api_key = "the-right-key"
    async with generation_session(settings, sandbox, **openai_settings(openai_standin)) as api:
        log = (await api.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "OPENAI_API_KEY" in log["errorMessage"]
    assert [a["httpStatus"] for a in http_exchanges(log)] == [401]
    assert "invalid_api_key" in log["aiResponseRaw"]


async def test_unknown_model_is_reported(
    openai_api: GenerationSession, openai_standin: OpenAIStandin
) -> None:
    openai_standin.script(error(404, "The model `gpt-x` does not exist", code="model_not_found"))
    log = (await openai_api.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert "OPENAI_MODEL" in log["errorMessage"]
    assert "does not exist" in log["errorMessage"]


async def test_unreachable_server_is_a_failure_not_an_error(
    database: str, settings: Settings, sandbox: Sandbox, openai_standin: OpenAIStandin
) -> None:
    unreachable = {"openai_base_url": "http://127.0.0.1:9/v1", "openai_max_attempts": 2}
    async with generation_session(
        settings, sandbox, **openai_settings(openai_standin, **unreachable)
    ) as api:
        log = (await api.generate())["generationLog"]
    assert log["status"] == "FAILURE"
    assert (
        "Could not reach the OpenAI-compatible API at http://127.0.0.1:9/v1"
        in (log["errorMessage"])
    )
    assert "OPENAI_BASE_URL" in log["errorMessage"]
    assert len(http_exchanges(log)) == 2
