from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from tests.support.api import GraphQLCall, error_codes, register_user

STRATEGY_FIELDS = """
  id name description originalPrompt generatedCode codePreview strategyType status
  parameters performanceMetrics usageCount createdAt updatedAt
  validationResults { valid syntaxValid hasFunction hasImports errors warnings tradingKeywords }
"""
GENERATE = f"""
mutation($input: GenerateStrategyInput!) {{
  generateStrategy(input: $input) {{
    processingTimeSeconds
    strategy {{ {STRATEGY_FIELDS} }}
    generationLog {{
      id status provider model prompt aiResponseRaw extractedCode errorMessage
      processingTimeSeconds tokensUsed createdAt strategy {{ id }}
      attempts {{ number kind verdict httpStatus error durationSeconds }}
    }}
  }}
}}"""
STRATEGY = f"query($id: UUID!) {{ strategy(id: $id) {{ {STRATEGY_FIELDS} }} }}"
STRATEGIES = """
query($status: StrategyStatus, $type: StrategyType, $page: Int, $pageSize: Int) {
  strategies(status: $status, strategyType: $type, page: $page, pageSize: $pageSize) {
    items { id name status strategyType codePreview usageCount }
    totalCount page pageSize hasNextPage hasPreviousPage
  }
}"""
UPDATE = f"""
mutation($id: UUID!, $input: UpdateStrategyInput!) {{
  updateStrategy(id: $id, input: $input) {{ {STRATEGY_FIELDS} }}
}}"""
DELETE = "mutation($id: UUID!) { deleteStrategy(id: $id) }"
LOGS = """
query($status: GenerationStatus, $page: Int, $pageSize: Int) {
  generationLogs(status: $status, page: $page, pageSize: $pageSize) {
    items { id status provider strategy { id name } }
    totalCount page pageSize hasNextPage hasPreviousPage
  }
}"""
LOG = "query($id: UUID!) { generationLog(id: $id) { id status prompt strategy { id } } }"
VALIDATE = """
mutation($code: String!) {
  validateCode(code: $code) {
    valid syntaxValid hasFunction hasImports errors warnings tradingKeywords
  }
}"""

SMA_PROMPT = (
    "Create a simple moving average strategy that: 1. Uses 20 and 50 period MAs "
    "2. Buys when short MA crosses above long MA 3. Sells when short MA crosses below long MA "
    "4. Includes 2% stop loss and 5% take profit"
)
GOOD_CODE = """
import math

DEFAULT_PARAMS = {"period": 5}

def execute_strategy(market_data, strategy_params):
    closes = market_data["close"]
    period = strategy_params.get("period", DEFAULT_PARAMS["period"])
    if len(closes) < period:
        return {"action": "hold", "confidence": 0.0, "reason": "not enough data", "metadata": {}}
    sma = sum(closes[-period:]) / period
    action = "buy" if closes[-1] > sma else "sell"
    return {"action": action, "confidence": 0.5, "reason": "price vs sma signal",
            "metadata": {"indicators": {"sma": sma}}}
"""
BAD_CODE = (
    "import os\n\ndef execute_strategy(market_data, strategy_params):\n    return os.environ\n"
)


async def generate(gql: GraphQLCall, token: str, prompt: str = SMA_PROMPT, **extra: Any) -> dict:
    body = await gql(GENERATE, {"input": {"prompt": prompt, **extra}}, token=token)
    assert "errors" not in body, body
    return body["data"]["generateStrategy"]


@pytest.mark.parametrize(
    ("prompt", "expected_type"),
    [
        (SMA_PROMPT, "TREND_FOLLOWING"),
        ("Create a RSI-based strategy for scalping", "SCALPING"),
        ("RSI scalping, 2% stop loss, 5% take profit", "SCALPING"),
    ],
)
async def test_generate_with_template_provider(
    gql: GraphQLCall, token: str, prompt: str, expected_type: str
) -> None:
    payload = await generate(gql, token, prompt)
    strategy, log = payload["strategy"], payload["generationLog"]
    assert log["status"] == "SUCCESS"
    assert log["provider"] == "template"
    assert log["errorMessage"] is None
    assert log["strategy"]["id"] == strategy["id"]
    assert log["extractedCode"] == strategy["generatedCode"]
    assert "def execute_strategy" in log["aiResponseRaw"]
    assert len(log["attempts"]) == 1
    assert strategy["status"] == "VALIDATED"
    assert strategy["strategyType"] == expected_type
    assert strategy["validationResults"]["valid"] is True
    assert strategy["validationResults"]["errors"] == []
    assert strategy["originalPrompt"] == prompt
    assert strategy["parameters"], "DEFAULT_PARAMS should become the strategy's parameters"
    assert strategy["codePreview"] == "\n".join(strategy["generatedCode"].splitlines()[:10])
    assert strategy["usageCount"] == 0
    assert payload["processingTimeSeconds"] >= log["processingTimeSeconds"] * 0.99


async def test_generated_parameters_follow_the_prompt(gql: GraphQLCall, token: str) -> None:
    strategy = (await generate(gql, token, SMA_PROMPT))["strategy"]
    values = set(strategy["parameters"].values())
    assert {20, 50} <= values
    assert {2.0, 5.0} <= values


async def test_generate_honours_name_type_and_rejects_bad_prompts(
    gql: GraphQLCall, token: str
) -> None:
    strategy = (
        await generate(gql, token, SMA_PROMPT, name="  My Cross ", strategyType="MOMENTUM")
    )["strategy"]
    assert strategy["name"] == "My Cross"
    assert strategy["strategyType"] == "MOMENTUM"
    for prompt, message in [("   ", "must not be empty"), ("x" * 4001, "at most 4000")]:
        body = await gql(GENERATE, {"input": {"prompt": prompt}}, token=token)
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert message in body["errors"][0]["message"]


async def test_list_filters_and_pages(gql: GraphQLCall, token: str) -> None:
    for prompt in [SMA_PROMPT, "RSI scalping", "MACD momentum strategy"]:
        await generate(gql, token, prompt)
    everything = (await gql(STRATEGIES, {"pageSize": 2}, token=token))["data"]["strategies"]
    assert everything["totalCount"] == 3
    assert len(everything["items"]) == 2
    assert everything["hasNextPage"] is True
    assert everything["hasPreviousPage"] is False
    second = (await gql(STRATEGIES, {"pageSize": 2, "page": 2}, token=token))["data"]["strategies"]
    assert len(second["items"]) == 1
    assert second["hasNextPage"] is False
    assert second["hasPreviousPage"] is True
    ids = {s["id"] for s in everything["items"]} | {s["id"] for s in second["items"]}
    assert len(ids) == 3
    past_the_end = (await gql(STRATEGIES, {"pageSize": 2, "page": 5}, token=token))["data"]
    assert past_the_end["strategies"]["items"] == []
    assert past_the_end["strategies"]["totalCount"] == 3, "the total is known past the end"
    assert past_the_end["strategies"]["hasPreviousPage"] is True

    scalping = (await gql(STRATEGIES, {"type": "SCALPING"}, token=token))["data"]["strategies"]
    assert [s["strategyType"] for s in scalping["items"]] == ["SCALPING"]
    validated = (await gql(STRATEGIES, {"status": "VALIDATED"}, token=token))["data"]
    assert validated["strategies"]["totalCount"] == 3
    archived = (await gql(STRATEGIES, {"status": "ARCHIVED"}, token=token))["data"]
    assert archived["strategies"]["totalCount"] == 0


LIST_AS_DETAIL = f"""
query {{
  strategies {{ items {{ {STRATEGY_FIELDS} version userId versions {{ number }} }} }}
  few: strategies {{ items {{ id ...Preview ... on Strategy {{ status }} }} }}
}}
fragment Preview on Strategy {{ codePreview name }}"""
DETAIL_AS_LIST = f"""
query($id: UUID!) {{
  strategy(id: $id) {{ {STRATEGY_FIELDS} version userId versions {{ number }} }}
}}"""


async def test_a_list_reads_only_the_columns_its_fields_need_and_answers_the_same(
    gql: GraphQLCall, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The list reads the columns its selection needs (fragments and aliases included); every
    field answers as the detail query, which reads whole rows."""
    await generate(gql, token, SMA_PROMPT)
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        few = await gql(STRATEGIES, token=token)
    assert "errors" not in few, few
    reads = [r.getMessage() for r in caplog.records if "generated_strategies" in r.getMessage()]
    assert len(reads) == 1, reads
    for column in ("generated_code", "validation_results", "original_prompt", "description"):
        if column == "generated_code":  # codePreview needs it
            assert column in reads[0]
        else:
            assert column not in reads[0], reads[0]

    both = await gql(LIST_AS_DETAIL, token=token)
    assert "errors" not in both, both
    [item] = both["data"]["strategies"]["items"]
    detail = await gql(DETAIL_AS_LIST, {"id": item["id"]}, token=token)
    assert item == detail["data"]["strategy"]
    [few_item] = both["data"]["few"]["items"]
    assert few_item == {key: item[key] for key in ("id", "codePreview", "name", "status")}
    assert few_item["codePreview"].startswith(item["generatedCode"].splitlines()[0])


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"page": 0}, "page must be 1 or more"),
        ({"pageSize": 101}, "between 1 and 100"),
        ({"pageSize": 0}, "between 1 and 100"),
    ],
)
async def test_paging_bounds(gql: GraphQLCall, token: str, variables: dict, message: str) -> None:
    for query in (STRATEGIES, LOGS):
        body = await gql(query, variables, token=token)
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert message in body["errors"][0]["message"]


async def test_update_revalidates_code(gql: GraphQLCall, token: str) -> None:
    strategy_id = (await generate(gql, token))["strategy"]["id"]

    broken = await gql(
        UPDATE, {"id": strategy_id, "input": {"generatedCode": BAD_CODE}}, token=token
    )
    updated = broken["data"]["updateStrategy"]
    assert updated["status"] == "ERROR"
    assert updated["generatedCode"] == BAD_CODE, "the user's edit is kept"
    assert any("'os'" in e for e in updated["validationResults"]["errors"])

    refused = await gql(UPDATE, {"id": strategy_id, "input": {"status": "ACTIVE"}}, token=token)
    assert error_codes(refused) == ["BAD_USER_INPUT"]

    fixed = await gql(
        UPDATE,
        {
            "id": strategy_id,
            "input": {
                "generatedCode": GOOD_CODE,
                "name": "Fixed",
                "status": "ACTIVE",
                "parameters": {"period": 7},
                "description": "d",
            },
        },
        token=token,
    )
    strategy = fixed["data"]["updateStrategy"]
    assert strategy["status"] == "ACTIVE"
    assert strategy["name"] == "Fixed"
    assert strategy["parameters"] == {"period": 7}
    assert strategy["validationResults"]["valid"] is True
    assert strategy["updatedAt"] >= strategy["createdAt"]

    stored = (await gql(STRATEGY, {"id": strategy_id}, token=token))["data"]["strategy"]
    assert stored["generatedCode"] == GOOD_CODE
    assert stored["status"] == "ACTIVE"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "   "}, "name must be 1 to 200"),
        ({"name": "n" * 201}, "name must be 1 to 200"),
        ({"parameters": [1, 2]}, "JSON object"),
        ({"parameters": {"k": "v" * 20000}}, "at most"),
        ({"status": "ERROR"}, "set by validation"),
        ({"generatedCode": "x" * (64 * 1024 + 1)}, "at most"),
    ],
)
async def test_update_rejects_bad_input_and_loses_nothing(
    gql: GraphQLCall, token: str, change: dict, message: str
) -> None:
    before = (await generate(gql, token))["strategy"]
    body = await gql(UPDATE, {"id": before["id"], "input": change}, token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert message in body["errors"][0]["message"]
    after = (await gql(STRATEGY, {"id": before["id"]}, token=token))["data"]["strategy"]
    assert after == before


async def test_delete_strategy_keeps_its_log(gql: GraphQLCall, token: str) -> None:
    payload = await generate(gql, token)
    strategy_id, log_id = payload["strategy"]["id"], payload["generationLog"]["id"]
    assert (await gql(DELETE, {"id": strategy_id}, token=token))["data"]["deleteStrategy"] is True
    assert (await gql(STRATEGY, {"id": strategy_id}, token=token))["data"]["strategy"] is None
    log = (await gql(LOG, {"id": log_id}, token=token))["data"]["generationLog"]
    assert log["id"] == log_id
    assert log["strategy"] is None
    again = await gql(DELETE, {"id": strategy_id}, token=token)
    assert error_codes(again) == ["NOT_FOUND"]


async def test_generation_logs_list_and_filter(gql: GraphQLCall, token: str) -> None:
    await generate(gql, token)
    await generate(gql, token, "RSI scalping")
    logs = (await gql(LOGS, {}, token=token))["data"]["generationLogs"]
    assert logs["totalCount"] == 2
    assert all(item["strategy"]["id"] for item in logs["items"])
    assert all(item["provider"] == "template" for item in logs["items"])
    failures = (await gql(LOGS, {"status": "FAILURE"}, token=token))["data"]["generationLogs"]
    assert failures["totalCount"] == 0


async def test_users_cannot_see_each_other(client, gql: GraphQLCall, token: str) -> None:
    payload = await generate(gql, token)
    strategy_id, log_id = payload["strategy"]["id"], payload["generationLog"]["id"]
    intruder, _ = await register_user(client)
    missing = str(uuid.uuid4())

    for some_id in (strategy_id, missing):
        assert (await gql(STRATEGY, {"id": some_id}, token=intruder))["data"] == {"strategy": None}
        update = await gql(UPDATE, {"id": some_id, "input": {"name": "mine"}}, token=intruder)
        delete = await gql(DELETE, {"id": some_id}, token=intruder)
        assert error_codes(update) == error_codes(delete) == ["NOT_FOUND"]
        assert update["errors"][0]["message"] == f"Strategy {some_id} not found"
    for some_id in (log_id, missing):
        assert (await gql(LOG, {"id": some_id}, token=intruder))["data"] == {"generationLog": None}
    assert (await gql(STRATEGIES, {}, token=intruder))["data"]["strategies"]["totalCount"] == 0
    assert (await gql(LOGS, {}, token=intruder))["data"]["generationLogs"]["totalCount"] == 0

    owner_view = (await gql(STRATEGY, {"id": strategy_id}, token=token))["data"]["strategy"]
    assert owner_view["name"] == payload["strategy"]["name"], "the intruder changed nothing"


async def test_everything_requires_authentication(gql: GraphQLCall) -> None:
    some_id = str(uuid.uuid4())
    for query, variables in [
        (STRATEGIES, {}),
        (STRATEGY, {"id": some_id}),
        (LOGS, {}),
        (LOG, {"id": some_id}),
        (GENERATE, {"input": {"prompt": "RSI"}}),
        (UPDATE, {"id": some_id, "input": {}}),
        (DELETE, {"id": some_id}),
        (VALIDATE, {"code": GOOD_CODE}),
    ]:
        body = await gql(query, variables)
        assert error_codes(body) == ["UNAUTHENTICATED"], (query, body)


async def test_validate_code(gql: GraphQLCall, token: str) -> None:
    good = (await gql(VALIDATE, {"code": GOOD_CODE}, token=token))["data"]["validateCode"]
    assert good["valid"] is True
    assert good["syntaxValid"] and good["hasFunction"] and good["hasImports"]
    assert good["errors"] == []
    assert "signal" in good["tradingKeywords"]

    bad = (await gql(VALIDATE, {"code": BAD_CODE}, token=token))["data"]["validateCode"]
    assert bad["valid"] is False
    assert any("'os'" in e for e in bad["errors"])

    broken = (await gql(VALIDATE, {"code": "def execute_strategy(:"}, token=token))["data"]
    assert broken["validateCode"]["syntaxValid"] is False
    assert broken["validateCode"]["valid"] is False

    huge = await gql(VALIDATE, {"code": "#" * (64 * 1024 + 1)}, token=token)
    assert error_codes(huge) == ["BAD_USER_INPUT"]


async def test_malformed_requests_get_bad_user_input(gql: GraphQLCall, token: str) -> None:
    bad_uuid = await gql(STRATEGY, {"id": "not-a-uuid"}, token=token)
    syntax = await gql("{ strategies { items { id } ", token=token)
    unknown_field = await gql("{ strategies { items { nope } } }", token=token)
    bad_enum = await gql(STRATEGIES, {"status": "BOGUS"}, token=token)
    for body in (bad_uuid, syntax, unknown_field, bad_enum):
        assert error_codes(body) == ["BAD_USER_INPUT"], body


async def test_unexpected_errors_are_masked(gql: GraphQLCall, token: str, monkeypatch) -> None:
    from services import strategies

    async def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret detail: /srv/app/db.py line 42")

    monkeypatch.setattr(strategies, "list_strategies", explode)
    monkeypatch.setattr(strategies, "list_strategy_rows", explode)
    body = await gql(STRATEGIES, {}, token=token)
    assert error_codes(body) == ["INTERNAL"]
    assert body["errors"][0]["message"] == "Internal server error"
    assert "secret" not in str(body) and "Traceback" not in str(body)
