"""strategyTemplates lists what the template provider builds; createStrategy stores code the
user wrote, checked as generated code is (static rules, then a run in the sandbox)."""

from __future__ import annotations

from server.settings import Settings
from services.prompt_analysis import analyse_prompt
from services.sandbox import Sandbox
from tests.support.api import GraphQLCall, call_graphql, error_codes, make_client, register_user

TEMPLATES = (
    """{ strategyTemplates { key name strategyType description parameters examplePrompts } }"""
)
CREATE = """mutation($input: CreateStrategyInput!) { createStrategy(input: $input) {
  id name strategyType status parameters description validationResults { valid errors }
} }"""
CODE = '''
DEFAULT_PARAMS = {"threshold": 100.0}


def execute_strategy(market_data, strategy_params):
    """Buys above a fixed price, sells below it."""
    params = {**DEFAULT_PARAMS, **(strategy_params or {})}
    price = float(market_data["close"][-1])
    action = "buy" if price > params["threshold"] else "sell"
    return {"action": action, "confidence": 0.5, "reason": "fixed threshold",
            "metadata": {"indicators": {}}}
'''
CRASHING = CODE.replace('float(market_data["close"][-1])', 'float(market_data["close"][-1]) / 0')


async def test_templates_are_listed_with_ranges_and_working_examples(
    gql: GraphQLCall, token: str
) -> None:
    body = await gql(TEMPLATES, None, token)
    templates = body["data"]["strategyTemplates"]
    keys = {t["key"] for t in templates}
    assert keys == {"sma", "ema", "rsi", "macd", "bollinger", "breakout", "dip", "squeeze"}
    for template in templates:
        for name, spec in template["parameters"].items():
            assert spec["min"] <= spec["default"] <= spec["max"], (template["key"], name)
        assert template["examplePrompts"]
        for prompt in template["examplePrompts"]:
            intent = analyse_prompt(prompt)
            assert intent.template == template["key"] and intent.ignored == (), prompt
            assert set(intent.params) <= set(template["parameters"]), prompt


async def test_create_strategy_from_own_code(gql: GraphQLCall, token: str) -> None:
    body = await gql(CREATE, {"input": {"name": " Fixed level ", "generatedCode": CODE}}, token)
    created = body["data"]["createStrategy"]
    assert created["name"] == "Fixed level"
    assert created["status"] == "VALIDATED" and created["strategyType"] == "CUSTOM"
    assert created["parameters"] == {"threshold": 100.0}
    assert created["description"].startswith("Buys above a fixed price")
    mine = await gql("query($id: UUID!) { strategy(id: $id) { id } }", {"id": created["id"]}, token)
    assert mine["data"]["strategy"]["id"] == created["id"]


async def test_created_code_is_run_once_like_generated_code(gql: GraphQLCall, token: str) -> None:
    body = await gql(CREATE, {"input": {"name": "Crash", "generatedCode": CRASHING}}, token)
    created = body["data"]["createStrategy"]
    assert created["status"] == "ERROR"
    assert any("ZeroDivisionError" in e for e in created["validationResults"]["errors"])
    unchecked = await gql(
        CREATE,
        {
            "input": {
                "name": "Draft",
                "generatedCode": CRASHING,
                "validateCode": False,
                "strategyType": "MOMENTUM",
                "parameters": {"threshold": 5},
            }
        },
        token,
    )
    draft = unchecked["data"]["createStrategy"]
    assert (draft["status"], draft["strategyType"]) == ("DRAFT", "MOMENTUM")
    assert draft["parameters"] == {"threshold": 5}


async def test_create_strategy_rejects_bad_input(gql: GraphQLCall, token: str) -> None:
    for bad in (
        {"name": "", "generatedCode": CODE},
        {"name": "x", "generatedCode": "   "},
        {"name": "x", "generatedCode": CODE, "parameters": [1, 2]},
        {"name": "x", "generatedCode": "x = 1\n" * 40000},
    ):
        body = await gql(CREATE, {"input": bad}, token)
        assert error_codes(body) == ["BAD_USER_INPUT"], body
    anonymous = await gql(CREATE, {"input": {"name": "x", "generatedCode": CODE}})
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]


async def test_the_trial_run_counts_against_the_execution_limit(
    database: str, settings: Settings, sandbox: Sandbox
) -> None:
    limited = settings.model_copy(update={"rate_limit_execute": "1/minute"})
    async with make_client(limited, sandbox=sandbox) as client:
        token, _ = await register_user(client)
        mine = {"input": {"name": "mine", "generatedCode": CODE}}
        first = await call_graphql(client, CREATE, mine, token)
        assert first["data"]["createStrategy"]["status"] == "VALIDATED", first
        refused = await call_graphql(client, CREATE, mine, token)
        assert error_codes(refused) == ["RATE_LIMITED"], refused
        unchecked = {"input": {**mine["input"], "validateCode": False}}
        draft = await call_graphql(client, CREATE, unchecked, token)
        assert draft["data"]["createStrategy"]["status"] == "DRAFT", draft
