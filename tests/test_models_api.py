"""Which model writes the code: `models`, generateStrategy's `model`, DEFAULT_MODEL, the default
order, and what each generation cost (generationLogs, generationStats per model).

Every provider is the real SDK against its stand-in server (tests/support/*_standin.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from server.settings import Settings
from services.sandbox import Sandbox
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.api import error_codes, generation_session
from tests.support.gemini_standin import GeminiStandin
from tests.support.gemini_standin import code_answer as gemini_code_answer
from tests.support.openai_standin import OpenAIStandin
from tests.support.openai_standin import code_answer as openai_code_answer

MODELS = "{ models { id provider model isDefault } }"
LOG_COUNT = "{ generationLogs { totalCount } }"
STATS = """
query($since: DateTime) {
  generationStats(since: $since) {
    tokensByModel { provider model generations tokensUsed estimatedCostUsd }
  }
}"""
GEMINI_ID = "gemini:gemini-2.5-pro"
OPENAI_ID = "openai:llama3.1:8b"  # a local model: no list price
ANTHROPIC_ID = "anthropic:claude-sonnet-4-6"
TEMPLATE_ID = "template:templates-v1"


def configured(
    gemini: GeminiStandin | None = None,
    openai: OpenAIStandin | None = None,
    anthropic: AnthropicStandin | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Settings with the given vendors configured, pointed at their stand-ins."""
    updates: dict[str, Any] = {"generation_trial_run": False, **extra}
    if gemini is not None:
        updates |= {
            "gemini_api_key": "g-key",
            "gemini_base_url": gemini.base_url,
            "gemini_model": "gemini-2.5-pro",
        }
    if openai is not None:  # as for Ollama: a base URL, no key
        updates |= {"openai_base_url": openai.api_base_url, "openai_model": "llama3.1:8b"}
    if anthropic is not None:
        updates |= {
            "anthropic_api_key": "a-key",
            "anthropic_base_url": anthropic.base_url,
            "anthropic_model": "claude-sonnet-4-6",
        }
    return updates


@pytest.fixture
def standins(
    gemini_standin: GeminiStandin,
    openai_standin: OpenAIStandin,
    anthropic_standin: AnthropicStandin,
) -> dict[str, Any]:
    return {"gemini": gemini_standin, "openai": openai_standin, "anthropic": anthropic_standin}


async def test_models_lists_every_configured_model_gemini_first(
    database: str, settings: Settings, sandbox: Sandbox, standins: dict[str, Any]
) -> None:
    async with generation_session(settings, sandbox, **configured(**standins)) as api:
        models = (await api.call(MODELS))["data"]["models"]
    assert models == [
        {"id": GEMINI_ID, "provider": "gemini", "model": "gemini-2.5-pro", "isDefault": True},
        {"id": OPENAI_ID, "provider": "openai", "model": "llama3.1:8b", "isDefault": False},
        {
            "id": ANTHROPIC_ID,
            "provider": "anthropic",
            "model": "claude-sonnet-4-6",
            "isDefault": False,
        },
        {"id": TEMPLATE_ID, "provider": "template", "model": "templates-v1", "isDefault": False},
    ]


@pytest.mark.parametrize(
    ("vendors", "default"),
    [
        (("openai", "anthropic"), OPENAI_ID),
        (("anthropic",), ANTHROPIC_ID),
        ((), TEMPLATE_ID),
    ],
    ids=["openai-before-anthropic", "anthropic-before-templates", "templates-last"],
)
async def test_default_is_the_first_configured(
    database: str,
    settings: Settings,
    sandbox: Sandbox,
    standins: dict[str, Any],
    vendors: tuple[str, ...],
    default: str,
) -> None:
    chosen = configured(**{vendor: standins[vendor] for vendor in vendors})
    async with generation_session(settings, sandbox, **chosen) as api:
        models = (await api.call(MODELS))["data"]["models"]
        log = (await api.generate())["generationLog"]
    assert [m["id"] for m in models if m["isDefault"]] == [default]
    assert f"{log['provider']}:{log['model']}" == default


async def test_default_model_setting_wins(
    database: str, settings: Settings, sandbox: Sandbox, standins: dict[str, Any]
) -> None:
    chosen = configured(**standins, default_model=ANTHROPIC_ID)
    async with generation_session(settings, sandbox, **chosen) as api:
        models = (await api.call(MODELS))["data"]["models"]
        log = (await api.generate())["generationLog"]
    assert [m["id"] for m in models if m["isDefault"]] == [ANTHROPIC_ID]
    assert log["provider"] == "anthropic"
    assert len(standins["anthropic"].requests) == 1
    assert standins["gemini"].requests == []


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        (OPENAI_ID, "openai"),
        ("claude-sonnet-4-6", "anthropic"),  # a model name alone, served by one provider
        (TEMPLATE_ID, "template"),
        (GEMINI_ID, "gemini"),
    ],
)
async def test_generate_with_a_model_uses_that_provider(
    database: str,
    settings: Settings,
    sandbox: Sandbox,
    standins: dict[str, Any],
    model: str,
    provider: str,
) -> None:
    async with generation_session(settings, sandbox, **configured(**standins)) as api:
        log = (await api.generate("RSI 14 below 30", model=model))["generationLog"]
    assert log["status"] == "SUCCESS", log["errorMessage"]
    assert log["provider"] == provider
    called = {name for name, standin in standins.items() if standin.requests}
    assert called == ({provider} - {"template"})


async def test_unknown_model_is_bad_input_and_logs_nothing(
    database: str, settings: Settings, sandbox: Sandbox, standins: dict[str, Any]
) -> None:
    async with generation_session(settings, sandbox, **configured(**standins)) as api:
        body = await api.call(
            "mutation($input: GenerateStrategyInput!) "
            "{ generateStrategy(input: $input) { generationLog { id } } }",
            {"input": {"prompt": "SMA crossover", "model": "gpt-9"}},
        )
        logs = (await api.call(LOG_COUNT))["data"]["generationLogs"]["totalCount"]
    assert error_codes(body) == ["BAD_USER_INPUT"]
    message = body["errors"][0]["message"]
    assert "'gpt-9' is not configured" in message and ANTHROPIC_ID in message
    assert "Traceback" not in str(body)
    assert logs == 0
    assert all(not standin.requests for standin in standins.values())


async def test_models_needs_a_signed_in_user(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    async with generation_session(settings, sandbox) as api:
        api.token = ""
        body = await api.call(MODELS)
    assert error_codes(body) == ["UNAUTHENTICATED"]


def test_an_unconfigured_default_model_is_refused_at_start(settings: Settings) -> None:
    message = re.escape("DEFAULT_MODEL='openai:gpt-4.1' is not a configured model")
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({**settings.model_dump(), "default_model": "openai:gpt-4.1"})


async def test_cost_per_generation_and_per_model(
    database: str, settings: Settings, sandbox: Sandbox, standins: dict[str, Any]
) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    standins["gemini"].script(gemini_code_answer(tokens=(100, 400)), gemini_code_answer())
    standins["openai"].script(openai_code_answer(tokens=(1000, 3000)))
    async with generation_session(settings, sandbox, **configured(**standins)) as api:
        gemini_logs = [(await api.generate(model=GEMINI_ID))["generationLog"] for _ in range(2)]
        local_log = (await api.generate(model=OPENAI_ID))["generationLog"]
        template_log = (await api.generate(model=TEMPLATE_ID))["generationLog"]
        body = await api.call(STATS, {"since": since})
    first = gemini_logs[0]
    assert (first["inputTokens"], first["outputTokens"], first["tokensUsed"]) == (100, 400, 500)
    gemini_cost = (100 * 1.25 + 400 * 10.0) / 1e6  # gemini-2.5-pro's list price
    assert first["estimatedCostUsd"] == pytest.approx(gemini_cost)
    second_cost = (120 * 1.25 + 480 * 10.0) / 1e6  # the stand-in's default usage
    assert gemini_logs[1]["estimatedCostUsd"] == pytest.approx(second_cost)
    assert (local_log["inputTokens"], local_log["outputTokens"]) == (1000, 3000)
    assert local_log["estimatedCostUsd"] is None
    assert template_log["estimatedCostUsd"] == 0.0

    by_model = {
        (m["provider"], m["model"]): m for m in body["data"]["generationStats"]["tokensByModel"]
    }
    assert by_model[("gemini", "gemini-2.5-pro")]["generations"] == 2
    assert by_model[("gemini", "gemini-2.5-pro")]["estimatedCostUsd"] == pytest.approx(
        gemini_cost + second_cost
    )
    assert by_model[("openai", "llama3.1:8b")]["estimatedCostUsd"] is None
    assert by_model[("template", "templates-v1")]["estimatedCostUsd"] == 0.0
