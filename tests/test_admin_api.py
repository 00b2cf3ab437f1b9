"""Staff manage any user's strategies and logs with an explicit allUsers: true.

Everyone else gets FORBIDDEN for asking, and without the argument another user's id looks
exactly like a missing one, for staff too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from models import User
from tests.support.api import GraphQLCall, error_codes, register_user

GENERATE = """mutation($p: String!) { generateStrategy(input: {prompt: $p}) {
  strategy { id } generationLog { id } } }"""
STRATEGY = """query($id: UUID!, $all: Boolean! = false) { strategy(id: $id, allUsers: $all) {
  id name status userId } }"""
LOG = """query($id: UUID!, $all: Boolean! = false) { generationLog(id: $id, allUsers: $all) {
  id status userId strategy { id userId } } }"""
UPDATE = """mutation($id: UUID!, $input: UpdateStrategyInput!, $all: Boolean! = false) {
  updateStrategy(id: $id, input: $input, allUsers: $all) { id name status userId } }"""
DELETE = """mutation($id: UUID!, $all: Boolean! = false) {
  deleteStrategy(id: $id, allUsers: $all) }"""
ADMIN_LISTS = """{
  strategies(allUsers: true, pageSize: 100) { items { id userId } }
  generationLogs(allUsers: true, pageSize: 100) { items { id userId } } }"""


@dataclass(frozen=True)
class Owned:
    token: str
    user_id: str
    strategy_id: str
    log_id: str


async def register_staff(client: httpx.AsyncClient) -> tuple[str, str]:
    """Promoted before the token is first used (the server remembers users for a moment)."""
    token, user_id = await register_user(client)
    await User.filter(id=user_id).update(is_staff=True)
    return token, user_id


@pytest.fixture
async def owned(client: httpx.AsyncClient, gql: GraphQLCall) -> Owned:
    """A user with one generated strategy and its log."""
    token, user_id = await register_user(client)
    body = await gql(GENERATE, {"p": "SMA crossover 10/30"}, token=token)
    assert "errors" not in body, body
    payload = body["data"]["generateStrategy"]
    return Owned(token, user_id, payload["strategy"]["id"], payload["generationLog"]["id"])


async def read_strategy(gql: GraphQLCall, owned: Owned) -> dict[str, Any] | None:
    body = await gql(STRATEGY, {"id": owned.strategy_id}, token=owned.token)
    assert "errors" not in body, body
    found: dict[str, Any] | None = body["data"]["strategy"]
    return found


async def test_staff_read_any_strategy_and_log_with_all_users(
    client: httpx.AsyncClient, gql: GraphQLCall, owned: Owned
) -> None:
    staff, _ = await register_staff(client)
    strategy = (await gql(STRATEGY, {"id": owned.strategy_id, "all": True}, token=staff))["data"]
    assert strategy["strategy"]["id"] == owned.strategy_id
    assert strategy["strategy"]["userId"] == owned.user_id

    log = (await gql(LOG, {"id": owned.log_id, "all": True}, token=staff))["data"]["generationLog"]
    assert log["id"] == owned.log_id
    assert log["userId"] == owned.user_id
    assert log["strategy"] == {"id": owned.strategy_id, "userId": owned.user_id}

    lists = (await gql(ADMIN_LISTS, token=staff))["data"]
    assert {"id": owned.strategy_id, "userId": owned.user_id} in lists["strategies"]["items"]
    assert {"id": owned.log_id, "userId": owned.user_id} in lists["generationLogs"]["items"]


async def test_staff_update_and_delete_any_strategy_with_all_users(
    client: httpx.AsyncClient, gql: GraphQLCall, owned: Owned
) -> None:
    staff, _ = await register_staff(client)
    changes = {"name": "Archived by staff", "status": "ARCHIVED"}
    body = await gql(UPDATE, {"id": owned.strategy_id, "input": changes, "all": True}, token=staff)
    assert "errors" not in body, body
    assert body["data"]["updateStrategy"]["userId"] == owned.user_id
    assert await read_strategy(gql, owned) == {
        "id": owned.strategy_id,
        "name": "Archived by staff",
        "status": "ARCHIVED",
        "userId": owned.user_id,
    }

    # The rules of an update hold for staff too.
    refused = await gql(
        UPDATE, {"id": owned.strategy_id, "input": {"status": "ERROR"}, "all": True}, token=staff
    )
    assert error_codes(refused) == ["BAD_USER_INPUT"]

    deleted = await gql(DELETE, {"id": owned.strategy_id, "all": True}, token=staff)
    assert deleted["data"] == {"deleteStrategy": True}
    assert await read_strategy(gql, owned) is None
    log = (await gql(LOG, {"id": owned.log_id}, token=owned.token))["data"]["generationLog"]
    assert log["id"] == owned.log_id and log["strategy"] is None, "the log outlives it"

    again = await gql(DELETE, {"id": owned.strategy_id, "all": True}, token=staff)
    assert error_codes(again) == ["NOT_FOUND"]


async def test_without_all_users_other_ids_look_missing_even_to_staff(
    client: httpx.AsyncClient, gql: GraphQLCall, owned: Owned
) -> None:
    other, _ = await register_user(client)
    staff, _ = await register_staff(client)
    missing = str(uuid.uuid4())
    for token in (other, staff):
        for query, target in ((STRATEGY, owned.strategy_id), (LOG, owned.log_id)):
            body = await gql(query, {"id": target}, token=token)
            assert "errors" not in body, body
            assert next(iter(body["data"].values())) is None

        for mutation, variables in (
            (UPDATE, {"input": {"name": "Taken over"}}),
            (DELETE, {}),
        ):
            theirs = await gql(mutation, {"id": owned.strategy_id, **variables}, token=token)
            absent = await gql(mutation, {"id": missing, **variables}, token=token)
            assert error_codes(theirs) == error_codes(absent) == ["NOT_FOUND"]
            message = theirs["errors"][0]["message"]
            assert message == absent["errors"][0]["message"].replace(missing, owned.strategy_id)

    strategy = await read_strategy(gql, owned)
    assert strategy is not None and strategy["name"] != "Taken over"


@pytest.mark.parametrize("who", ["other user", "owner"])
async def test_all_users_is_forbidden_to_non_staff(
    client: httpx.AsyncClient, gql: GraphQLCall, owned: Owned, who: str
) -> None:
    token = owned.token if who == "owner" else (await register_user(client))[0]
    calls: list[tuple[str, dict[str, Any]]] = [
        (STRATEGY, {"id": owned.strategy_id}),
        (LOG, {"id": owned.log_id}),
        (UPDATE, {"id": owned.strategy_id, "input": {"name": "Changed"}}),
        (DELETE, {"id": owned.strategy_id}),
    ]
    for query, variables in calls:
        body = await gql(query, {**variables, "all": True}, token=token)
        assert error_codes(body) == ["FORBIDDEN"], body
        assert "staff" in body["errors"][0]["message"]

    strategy = await read_strategy(gql, owned)
    assert strategy is not None and strategy["name"] != "Changed", "nothing was changed"


async def test_owner_sees_their_own_user_id(gql: GraphQLCall, owned: Owned) -> None:
    strategy = await read_strategy(gql, owned)
    assert strategy is not None and strategy["userId"] == owned.user_id
    log = (await gql(LOG, {"id": owned.log_id}, token=owned.token))["data"]["generationLog"]
    assert log["userId"] == owned.user_id
