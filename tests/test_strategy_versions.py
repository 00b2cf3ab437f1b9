"""Strategy versions: every change of code or parameters is numbered, diffable, revertible,
and keeps the metrics of the backtests run on it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, cast

import httpx
import pytest
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import GeneratedStrategy, StrategyVersion, User
from services import strategies, versions
from services.execution import BacktestRequest, StrategyRunner
from services.providers.templates import TEMPLATE_MODEL
from services.sandbox import Sandbox
from tests.support.api import GraphQLCall, error_codes, register_user
from tests.test_admin_api import register_staff
from tests.test_strategies_api import BAD_CODE, GOOD_CODE, SMA_PROMPT, generate

VERSION_FIELDS = """
  number generatedCode parameters instruction author performanceMetrics createdAt
  validationResults { valid errors }
"""
STRATEGY = f"""
query($id: UUID!, $all: Boolean! = false) {{
  strategy(id: $id, allUsers: $all) {{
    id name version generatedCode parameters status performanceMetrics
    versions {{ {VERSION_FIELDS} }}
  }}
}}"""
DIFF = """
query($id: UUID!, $from: Int!, $to: Int!) {
  strategy(id: $id) { diff(fromVersion: $from, toVersion: $to) }
}"""
UPDATE = """
mutation($id: UUID!, $input: UpdateStrategyInput!) {
  updateStrategy(id: $id, input: $input) { id version name status generatedCode parameters }
}"""
REVERT = f"""
mutation($id: UUID!, $version: Int!, $all: Boolean! = false) {{
  revertStrategy(id: $id, version: $version, allUsers: $all) {{
    id version status generatedCode parameters
    validationResults {{ valid }}
    versions {{ {VERSION_FIELDS} }}
  }}
}}"""
BACKTEST = """
mutation($id: UUID!) {
  backtestStrategy(id: $id, input: {sample: "trending_daily"}) {
    metrics strategy { version performanceMetrics }
  }
}"""
DELETE = "mutation($id: UUID!) { deleteStrategy(id: $id) }"
LIST = "{ strategies(pageSize: 100) { items { id version versions { number author } } } }"


async def email_of(token_user_id: str) -> str:
    return (await User.get(id=token_user_id)).email


async def read(gql: GraphQLCall, token: str, strategy_id: str) -> dict[str, Any]:
    body = await gql(STRATEGY, {"id": strategy_id}, token=token)
    assert "errors" not in body, body
    strategy: dict[str, Any] = body["data"]["strategy"]
    return strategy


async def update(gql: GraphQLCall, token: str, strategy_id: str, **change: Any) -> dict:
    body = await gql(UPDATE, {"id": strategy_id, "input": change}, token=token)
    assert "errors" not in body, body
    updated: dict[str, Any] = body["data"]["updateStrategy"]
    return updated


async def test_a_generation_is_version_one(gql: GraphQLCall, token: str) -> None:
    generated = (await generate(gql, token))["strategy"]
    strategy = await read(gql, token, generated["id"])
    assert strategy["version"] == 1
    [first] = strategy["versions"]
    assert first["number"] == 1
    assert first["generatedCode"] == strategy["generatedCode"]
    assert first["parameters"] == strategy["parameters"] != {}
    assert first["instruction"] == SMA_PROMPT
    assert first["author"] == f"template:{TEMPLATE_MODEL}"
    assert first["validationResults"] == {"valid": True, "errors": []}
    assert first["performanceMetrics"] == {}


async def test_a_hand_written_strategy_is_version_one(
    client: httpx.AsyncClient, gql: GraphQLCall
) -> None:
    token, user_id = await register_user(client)
    body = await gql(
        """mutation($code: String!) {
          createStrategy(input: {name: "Mine", generatedCode: $code}) { id version }
        }""",
        {"code": GOOD_CODE},
        token=token,
    )
    assert "errors" not in body, body
    created = body["data"]["createStrategy"]
    assert created["version"] == 1
    [first] = (await read(gql, token, created["id"]))["versions"]
    assert (first["number"], first["generatedCode"]) == (1, GOOD_CODE)
    assert (first["instruction"], first["author"]) == ("manual edit", await email_of(user_id))
    assert first["parameters"] == {"period": 5}
    assert first["validationResults"] == {"valid": True, "errors": []}


async def test_changes_of_code_or_parameters_are_numbered_versions(
    client: httpx.AsyncClient, gql: GraphQLCall
) -> None:
    token, user_id = await register_user(client)
    email = await email_of(user_id)
    original = (await generate(gql, token))["strategy"]
    strategy_id = original["id"]

    edited = await update(gql, token, strategy_id, generatedCode=GOOD_CODE, name="Edited")
    assert (edited["version"], edited["name"]) == (2, "Edited")
    stored = await read(gql, token, strategy_id)
    assert (stored["version"], stored["name"]) == (2, "Edited"), "saved with the version"
    unversioned = {"name": "R", "description": "d", "strategyType": "MOMENTUM", "status": "ACTIVE"}
    assert (await update(gql, token, strategy_id, **unversioned))["version"] == 2
    same = await update(
        gql, token, strategy_id, generatedCode=GOOD_CODE, parameters=original["parameters"]
    )
    assert same["version"] == 2, "the same code and parameters are no change"
    tuned = await update(gql, token, strategy_id, parameters={"period": 9})
    assert tuned["version"] == 3
    broken = await update(gql, token, strategy_id, generatedCode=BAD_CODE)
    assert (broken["version"], broken["status"]) == (4, "ERROR")

    strategy = await read(gql, token, strategy_id)
    assert strategy["version"] == 4
    history = strategy["versions"]
    assert [v["number"] for v in history] == [1, 2, 3, 4]
    assert [v["instruction"] for v in history] == [SMA_PROMPT] + ["manual edit"] * 3
    assert [v["author"] for v in history[1:]] == [email] * 3
    assert history[0]["generatedCode"] == original["generatedCode"]
    assert history[0]["parameters"] == original["parameters"]
    assert history[1]["generatedCode"] == GOOD_CODE, "an edit of code keeps the parameters"
    assert history[1]["parameters"] == original["parameters"]
    assert (history[2]["generatedCode"], history[2]["parameters"]) == (GOOD_CODE, {"period": 9})
    assert history[2]["validationResults"] == {"valid": True, "errors": []}
    assert history[3]["generatedCode"] == BAD_CODE == strategy["generatedCode"]
    assert history[3]["validationResults"]["valid"] is False
    assert history[0]["createdAt"] <= history[1]["createdAt"] <= history[3]["createdAt"]


async def test_diff_between_versions(gql: GraphQLCall, token: str) -> None:
    strategy_id = (await generate(gql, token))["strategy"]["id"]
    await update(gql, token, strategy_id, generatedCode=GOOD_CODE)
    await update(gql, token, strategy_id, parameters={"period": 9})

    diff = (await gql(DIFF, {"id": strategy_id, "from": 1, "to": 2}, token=token))["data"]
    text = diff["strategy"]["diff"]
    assert text.startswith("--- version 1\n+++ version 2\n@@ ")
    assert '\n+DEFAULT_PARAMS = {"period": 5}\n' in text
    assert "\n+    sma = sum(closes[-period:]) / period\n" in text
    assert text.endswith("\n")
    backwards = (await gql(DIFF, {"id": strategy_id, "from": 2, "to": 1}, token=token))["data"]
    assert backwards["strategy"]["diff"].startswith("--- version 2\n+++ version 1\n")
    same_code = (await gql(DIFF, {"id": strategy_id, "from": 2, "to": 3}, token=token))["data"]
    assert same_code["strategy"]["diff"] == "", "versions 2 and 3 differ in parameters only"

    for numbers in ((1, 9), (0, 1), (-1, 2)):
        body = await gql(
            DIFF, {"id": strategy_id, "from": numbers[0], "to": numbers[1]}, token=token
        )
        assert error_codes(body) == ["NOT_FOUND"], body
        missing = numbers[0] if numbers[0] not in (1, 2) else numbers[1]
        assert body["errors"][0]["message"] == f"Strategy {strategy_id} has no version {missing}"


async def test_a_costly_diff_is_refused_within_the_time_bound(gql: GraphQLCall, token: str) -> None:
    """difflib is quadratic on lines repeated just under its 'popular' threshold (this pair
    took 72 s in-process): the diff runs in the analysis workers and is cut at their bound."""
    strategy_id = (await generate(gql, token))["strategy"]["id"]
    before = "\n".join(str(i % 199) for i in range(25_000))[:60_000]
    after = "\n".join(str(i * 7 % 199) for i in range(25_000))[:60_000]
    await update(gql, token, strategy_id, generatedCode=before)
    await update(gql, token, strategy_id, generatedCode=after)
    started = time.perf_counter()
    body = await gql(DIFF, {"id": strategy_id, "from": 2, "to": 3}, token=token)
    assert time.perf_counter() - started < 10
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["message"].startswith(
        "The diff of version 2 and version 3 is too costly to compute (over 1 s"
    )
    served = await gql(DIFF, {"id": strategy_id, "from": 1, "to": 2}, token=token)
    assert served["data"]["strategy"]["diff"].startswith("--- version 1\n"), "the next is served"


async def test_diffs_count_against_the_requests_code_allowance(
    gql: GraphQLCall, token: str
) -> None:
    strategy_id = (await generate(gql, token))["strategy"]["id"]
    padding = "# " + "x" * 77 + "\n"
    big = GOOD_CODE + padding * 750  # about 60 KB
    await update(gql, token, strategy_id, generatedCode=big)
    await update(gql, token, strategy_id, generatedCode=big + "# the end\n")
    aliases = " ".join(f"d{i}: diff(fromVersion: 2, toVersion: 3)" for i in range(3))
    query = f"query($id: UUID!) {{ strategy(id: $id) {{ {aliases} }} }}"
    body = await gql(query, {"id": strategy_id}, token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert "more than 262144 bytes of code" in body["errors"][0]["message"]
    one = await gql(DIFF, {"id": strategy_id, "from": 2, "to": 3}, token=token)
    assert one["data"]["strategy"]["diff"].endswith("+# the end\n")


async def test_revert_makes_an_old_version_the_next_one(
    client: httpx.AsyncClient, gql: GraphQLCall
) -> None:
    token, user_id = await register_user(client)
    original = (await generate(gql, token))["strategy"]
    strategy_id = original["id"]
    await update(gql, token, strategy_id, generatedCode=BAD_CODE, parameters={"x": 1})

    body = await gql(REVERT, {"id": strategy_id, "version": 1}, token=token)
    assert "errors" not in body, body
    reverted = body["data"]["revertStrategy"]
    assert reverted["version"] == 3
    assert reverted["generatedCode"] == original["generatedCode"]
    assert reverted["parameters"] == original["parameters"]
    assert reverted["status"] == "VALIDATED", "valid code again: no longer ERROR"
    assert reverted["validationResults"] == {"valid": True}
    latest = reverted["versions"][-1]
    assert (latest["number"], latest["instruction"]) == (3, "revert to 1")
    assert latest["author"] == await email_of(user_id)
    assert latest["generatedCode"] == reverted["versions"][0]["generatedCode"]

    again = await gql(REVERT, {"id": strategy_id, "version": 2}, token=token)
    assert again["data"]["revertStrategy"]["status"] == "ERROR", "the code is checked again"
    assert again["data"]["revertStrategy"]["version"] == 4

    current = await gql(REVERT, {"id": strategy_id, "version": 4}, token=token)
    assert error_codes(current) == ["BAD_USER_INPUT"]
    assert "already the current version" in current["errors"][0]["message"]
    for number in (0, 5, 99):
        unknown = await gql(REVERT, {"id": strategy_id, "version": number}, token=token)
        assert error_codes(unknown) == ["NOT_FOUND"]
        assert unknown["errors"][0]["message"] == f"Strategy {strategy_id} has no version {number}"
    assert (await read(gql, token, strategy_id))["version"] == 4, "refusals add nothing"


async def test_versions_are_the_owners_and_staffs_only(
    client: httpx.AsyncClient, gql: GraphQLCall, token: str
) -> None:
    strategy_id = (await generate(gql, token))["strategy"]["id"]
    await update(gql, token, strategy_id, generatedCode=GOOD_CODE)
    intruder, _ = await register_user(client)
    missing = str(uuid.uuid4())
    for some_id in (strategy_id, missing):
        body = await gql(REVERT, {"id": some_id, "version": 1}, token=intruder)
        assert error_codes(body) == ["NOT_FOUND"]
        assert body["errors"][0]["message"] == f"Strategy {some_id} not found"
        assert (await gql(DIFF, {"id": some_id, "from": 1, "to": 2}, token=intruder))["data"] == {
            "strategy": None
        }
    assert (await read(gql, token, strategy_id))["version"] == 2, "the intruder changed nothing"

    staff, staff_id = await register_staff(client)
    as_staff = await gql(REVERT, {"id": strategy_id, "version": 1, "all": True}, token=staff)
    assert "errors" not in as_staff, as_staff
    latest = as_staff["data"]["revertStrategy"]["versions"][-1]
    assert (latest["number"], latest["author"]) == (3, await email_of(staff_id))
    without_all = await gql(REVERT, {"id": strategy_id, "version": 2}, token=staff)
    assert error_codes(without_all) == ["NOT_FOUND"]


async def test_backtest_metrics_are_kept_per_version(gql: GraphQLCall, token: str) -> None:
    strategy_id = (await generate(gql, token))["strategy"]["id"]
    first = (await gql(BACKTEST, {"id": strategy_id}, token=token))["data"]["backtestStrategy"]
    assert first["strategy"]["version"] == 1
    assert first["strategy"]["performanceMetrics"]["finalEquity"] == first["metrics"]["finalEquity"]

    await update(gql, token, strategy_id, generatedCode=GOOD_CODE)
    strategy = await read(gql, token, strategy_id)
    assert strategy["performanceMetrics"] == {}, "version 2 has not been backtested"
    v1, v2 = strategy["versions"]
    assert v1["performanceMetrics"]["finalEquity"] == first["metrics"]["finalEquity"]
    assert v1["performanceMetrics"]["parameters"] == v1["parameters"]
    assert v2["performanceMetrics"] == {}

    second = (await gql(BACKTEST, {"id": strategy_id}, token=token))["data"]["backtestStrategy"]
    strategy = await read(gql, token, strategy_id)
    v1, v2 = strategy["versions"]
    assert v2["performanceMetrics"] == strategy["performanceMetrics"]
    assert v2["performanceMetrics"]["finalEquity"] == second["metrics"]["finalEquity"]
    assert v2["performanceMetrics"]["parameters"] == v2["parameters"]
    assert v1["performanceMetrics"]["finalEquity"] == first["metrics"]["finalEquity"]


class EditDuringBacktest:
    """The session's sandbox, with the strategy's code changed while a backtest waits."""

    def __init__(self, sandbox: Sandbox, edit: Any) -> None:
        self._sandbox = sandbox
        self._edit = edit

    async def run_backtest(self, *args: Any, **kwargs: Any) -> Any:
        await self._edit()
        return await self._sandbox.run_backtest(*args, **kwargs)


async def test_metrics_go_to_the_version_that_ran(
    client: httpx.AsyncClient, gql: GraphQLCall, sandbox: Sandbox
) -> None:
    """Code edited during a backtest does not inherit metrics measured on the code before."""
    token, user_id = await register_user(client)
    strategy_id = uuid.UUID((await generate(gql, token))["strategy"]["id"])
    user = await User.get(id=user_id)

    async def edit() -> None:
        strategy = await GeneratedStrategy.get(id=strategy_id)
        change = versions.NewVersion(GOOD_CODE, {"period": 5}, None, "manual edit", user.email)
        await versions.add_version(strategy, change)

    runner = StrategyRunner(cast(Sandbox, EditDuringBacktest(sandbox, edit)))
    outcome = await runner.backtest(user, strategy_id, BacktestRequest(sample="trending_daily"))
    assert outcome.strategy.version == 2
    assert outcome.strategy.performance_metrics == {}, "version 2 never ran"
    stored = await read(gql, token, str(strategy_id))
    v1, v2 = stored["versions"]
    assert v1["performanceMetrics"]["finalEquity"] == outcome.result.stats.final_equity
    assert v2["performanceMetrics"] == {} == stored["performanceMetrics"]


async def test_versions_of_a_list_take_one_query(
    gql: GraphQLCall, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    for prompt in (SMA_PROMPT, "RSI scalping", "MACD momentum strategy"):
        strategy_id = (await generate(gql, token, prompt))["strategy"]["id"]
        await update(gql, token, strategy_id, parameters={"period": 3})
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        body = await gql(LIST, token=token)
    assert "errors" not in body, body
    items = body["data"]["strategies"]["items"]
    assert [[v["number"] for v in item["versions"]] for item in items] == [[1, 2]] * 3
    assert all(item["version"] == 2 for item in items)
    reads = [r.getMessage() for r in caplog.records if '"strategy_versions"' in r.getMessage()]
    assert len(reads) == 1, reads


async def test_concurrent_changes_get_distinct_numbers(gql: GraphQLCall, token: str) -> None:
    strategy_id = uuid.UUID((await generate(gql, token))["strategy"]["id"])

    async def tune(period: int) -> int:
        strategy = await GeneratedStrategy.get(id=strategy_id)
        change = versions.NewVersion(
            strategy.generated_code, {"period": period}, None, "manual edit", "someone"
        )
        return (await versions.add_version(strategy, change)).number

    numbers = await asyncio.gather(*(tune(p) for p in range(2, 8)))
    assert sorted(numbers) == [2, 3, 4, 5, 6, 7]
    stored = await read(gql, token, str(strategy_id))
    assert stored["version"] == 7
    assert [v["number"] for v in stored["versions"]] == list(range(1, 8))
    assert stored["parameters"] == stored["versions"][-1]["parameters"]


async def test_a_version_lands_with_the_callers_transaction_or_not_at_all(
    gql: GraphQLCall, token: str
) -> None:
    """A caller that stores more with the version (a refinement and its generation log) wraps
    add_version in its own transaction: a failure afterwards takes the version back too."""
    strategy_id = uuid.UUID((await generate(gql, token))["strategy"]["id"])
    strategy = await GeneratedStrategy.get(id=strategy_id)
    change = versions.NewVersion(GOOD_CODE, {"period": 5}, None, "add a filter", "template:x")
    with pytest.raises(RuntimeError):
        async with in_transaction("default"):
            await versions.add_version(strategy, change)
            raise RuntimeError("the log could not be written")
    stored = await read(gql, token, str(strategy_id))
    assert stored["version"] == 1
    assert [v["number"] for v in stored["versions"]] == [1]
    assert stored["generatedCode"] != GOOD_CODE

    async with in_transaction("default"):
        await versions.add_version(await GeneratedStrategy.get(id=strategy_id), change)
    stored = await read(gql, token, str(strategy_id))
    assert (stored["version"], stored["generatedCode"]) == (2, GOOD_CODE)
    assert stored["versions"][-1]["instruction"] == "add a filter"


async def test_deleting_a_strategy_deletes_its_versions(gql: GraphQLCall, token: str) -> None:
    strategy_id = (await generate(gql, token))["strategy"]["id"]
    await update(gql, token, strategy_id, generatedCode=GOOD_CODE)
    assert await StrategyVersion.filter(strategy_id=strategy_id).count() == 2
    body = await gql(
        "mutation($id: UUID!) { deleteStrategy(id: $id) }", {"id": strategy_id}, token=token
    )
    assert body["data"]["deleteStrategy"] is True
    assert await StrategyVersion.filter(strategy_id=strategy_id).count() == 0


async def test_a_strategy_read_before_a_change_never_writes_back_older_state(
    gql: GraphQLCall, token: str
) -> None:
    """A rename (or a new version) saved from a strategy read before another request added a
    version or counted a run keeps that version and that count."""
    strategy_id = uuid.UUID((await generate(gql, token))["strategy"]["id"])
    stale = await GeneratedStrategy.get(id=strategy_id)
    fresh = await GeneratedStrategy.get(id=strategy_id)
    await versions.add_version(
        fresh, versions.NewVersion(GOOD_CODE, {"period": 5}, None, "manual edit", "a")
    )
    await GeneratedStrategy.filter(id=strategy_id).update(usage_count=F("usage_count") + 1)

    stale.name = "Renamed"
    await strategies.save_edits(stale)
    stored = await GeneratedStrategy.get(id=strategy_id)
    assert (stored.name, stored.version, stored.generated_code) == ("Renamed", 2, GOOD_CODE)
    assert stored.usage_count == 1

    await versions.add_version(
        stale, versions.NewVersion(GOOD_CODE, {"period": 9}, None, "manual edit", "b")
    )
    stored = await GeneratedStrategy.get(id=strategy_id)
    assert (stored.version, stored.parameters, stored.usage_count) == (3, {"period": 9}, 1)
    history = (await read(gql, token, str(strategy_id)))["versions"]
    assert [v["number"] for v in history] == [1, 2, 3]


async def test_each_field_of_a_mutation_sees_the_versions_as_they_are_then(
    gql: GraphQLCall, token: str
) -> None:
    """Mutation fields run one after another, each changing versions: none is served a list
    an earlier field read."""
    strategy_id = (await generate(gql, token))["strategy"]["id"]
    fields = "strategy { version versions { number performanceMetrics } }"
    body = await gql(
        f"""mutation($id: UUID!, $code: String!) {{
          a: backtestStrategy(id: $id, input: {{sample: "trending_daily", commissionPct: 0.1}})
            {{ {fields} }}
          b: backtestStrategy(id: $id, input: {{sample: "trending_daily", commissionPct: 0.2}})
            {{ {fields} }}
          c: updateStrategy(id: $id, input: {{generatedCode: $code}})
            {{ version versions {{ number }} }}
        }}""",
        {"id": strategy_id, "code": GOOD_CODE},
        token=token,
    )
    assert "errors" not in body, body
    data = body["data"]
    assert data["a"]["strategy"]["versions"][0]["performanceMetrics"]["commissionPct"] == 0.1
    assert data["b"]["strategy"]["versions"][0]["performanceMetrics"]["commissionPct"] == 0.2
    assert [v["number"] for v in data["c"]["versions"]] == [1, 2]
