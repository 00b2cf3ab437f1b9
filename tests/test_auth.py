from __future__ import annotations

import asyncio
import logging
import time
import uuid

import jwt
import pytest

from models import User
from server.settings import Settings
from services import accounts
from services.accounts import RecentUsers, TokenSigner
from services.errors import Unauthenticated
from services.providers.templates import TemplateProvider
from services.sandbox import Sandbox
from tests.support.api import (
    PASSWORD,
    REGISTER,
    GraphQLCall,
    call_graphql,
    error_codes,
    make_client,
    register_user,
)

LOGIN = """
mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { token user { id email } }
}"""
ME = "{ me { id email isStaff createdAt } }"


def fresh_email() -> str:
    return f"Trader-{uuid.uuid4().hex[:8]}@Example.com"


async def test_register_login_and_me(gql: GraphQLCall) -> None:
    email = fresh_email()
    registered = await gql(REGISTER, {"email": f"  {email} ", "password": PASSWORD})
    user = registered["data"]["register"]["user"]
    assert user["email"] == email.lower()
    assert user["isStaff"] is False

    logged_in = await gql(LOGIN, {"email": email.upper(), "password": PASSWORD})
    token = logged_in["data"]["login"]["token"]
    me = await gql(ME, token=token)
    assert me["data"]["me"]["id"] == user["id"]
    assert me["data"]["me"]["email"] == email.lower()


async def test_password_is_stored_as_argon2_hash(gql: GraphQLCall) -> None:
    email = fresh_email()
    await gql(REGISTER, {"email": email, "password": PASSWORD})
    stored = await User.get(email=email.lower())
    assert stored.password_hash.startswith("$argon2")
    assert PASSWORD not in stored.password_hash


async def test_register_rejects_bad_input(gql: GraphQLCall) -> None:
    email = fresh_email()
    await gql(REGISTER, {"email": email, "password": PASSWORD})
    cases = [
        ({"email": email.lower(), "password": PASSWORD}, "already exists"),
        ({"email": "not-an-email", "password": PASSWORD}, "Invalid email"),
        ({"email": fresh_email(), "password": "short"}, "at least 8"),
        ({"email": fresh_email(), "password": "x" * 300}, "at most 256"),
    ]
    for variables, message in cases:
        body = await gql(REGISTER, variables)
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert message in body["errors"][0]["message"]
        assert body["data"] is None


async def test_login_failures_look_the_same(gql: GraphQLCall) -> None:
    email = fresh_email()
    await gql(REGISTER, {"email": email, "password": PASSWORD})
    wrong_password = await gql(LOGIN, {"email": email, "password": "wrong password!"})
    unknown_user = await gql(LOGIN, {"email": fresh_email(), "password": PASSWORD})
    for body in (wrong_password, unknown_user):
        assert error_codes(body) == ["UNAUTHENTICATED"]
        assert body["errors"][0]["message"] == "Wrong email or password"


async def test_me_requires_a_valid_token(gql: GraphQLCall, settings) -> None:
    key = settings.secret_key
    now = int(time.time())
    expired = jwt.encode({"sub": str(uuid.uuid4()), "exp": now - 10, "iat": now - 100}, key)
    forged = jwt.encode(
        {"sub": str(uuid.uuid4()), "exp": now + 100},
        "another-key-entirely-and-long-enough-for-hs256",
    )
    unknown_user = jwt.encode({"sub": str(uuid.uuid4()), "exp": now + 100}, key)
    for token, message in [
        (None, "Authentication required"),
        ("garbage", "Invalid token"),
        (expired, "Token expired"),
        (forged, "Invalid token"),
        (unknown_user, "no longer exists"),
    ]:
        body = await gql(ME, token=token)
        assert error_codes(body) == ["UNAUTHENTICATED"], (token, body)
        assert message in body["errors"][0]["message"]


async def test_authorization_header_must_be_bearer(client) -> None:
    response = await client.post(
        "/graphql", json={"query": ME}, headers={"Authorization": "Basic abc"}
    )
    body = response.json()
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert "Bearer" in body["errors"][0]["message"]


async def test_recent_users_spare_the_lookup_for_a_few_seconds_only(database: str) -> None:
    signer = TokenSigner("k" * 48, 3600)
    user = await accounts.register(fresh_email(), PASSWORD)
    token = signer.issue(user.id)
    now = [1000.0]
    recent = RecentUsers(ttl_seconds=5, clock=lambda: now[0])
    assert (await accounts.user_for_token(signer, token, recent)).id == user.id
    await User.filter(id=user.id).update(is_staff=True)
    now[0] += 5
    cached = await accounts.user_for_token(signer, token, recent)
    assert cached.is_staff is False, "within the TTL the remembered row answers"
    now[0] += 0.01
    assert (await accounts.user_for_token(signer, token, recent)).is_staff is True
    await User.filter(id=user.id).delete()
    now[0] += 5.01
    with pytest.raises(Unauthenticated, match="no longer exists"):
        await accounts.user_for_token(signer, token, recent)


async def test_an_expired_user_is_looked_up_once_by_all_the_requests_that_miss(
    database: str, settings: Settings, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """No stampede: when the remembered user expires, the requests in flight share one lookup
    (they used to send one each, all queued on SQLite's only connection)."""
    now = [1000.0]
    async with make_client(settings, TemplateProvider(), sandbox=sandbox) as client:
        services = client._transport.app.state.services  # type: ignore[attr-defined]
        services.recent_users = RecentUsers(ttl_seconds=5, clock=lambda: now[0])
        token, _ = await register_user(client)
        assert "errors" not in await call_graphql(client, ME, token=token)  # remembered now
        now[0] += 5.01  # ... and expired: every request below misses at once
        with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
            answers = await asyncio.gather(
                *(call_graphql(client, ME, token=token) for _ in range(20))
            )
    assert all("errors" not in answer for answer in answers), answers
    assert len({answer["data"]["me"]["id"] for answer in answers}) == 1
    lookups = [r.getMessage() for r in caplog.records if '"users"' in r.getMessage()]
    assert len(lookups) == 1, lookups


async def test_a_failed_shared_lookup_fails_its_waiters_and_the_next_miss_retries() -> None:
    recent = RecentUsers()
    user = User(id=uuid.uuid4(), email="someone@example.com")
    calls: list[uuid.UUID] = []
    release = asyncio.Event()

    async def failing(user_id: uuid.UUID) -> User | None:
        calls.append(user_id)
        await release.wait()
        raise ConnectionError("database gone")

    waiting = [asyncio.ensure_future(recent.get_or_look_up(user.id, failing)) for _ in range(5)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # one client gives up: the others still get the lookup's outcome
    release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert all(isinstance(o, ConnectionError) for o in outcomes[1:]), outcomes
    assert len(calls) == 1

    async def found(user_id: uuid.UUID) -> User | None:
        calls.append(user_id)
        return user

    assert await recent.get_or_look_up(user.id, found) is user
    assert await recent.get_or_look_up(user.id, found) is user  # remembered: no third call
    assert len(calls) == 2


def test_a_remembered_token_still_expires_and_only_its_exact_text_is_remembered() -> None:
    now = [time.time()]
    signer = TokenSigner("k" * 48, 60, clock=lambda: now[0])
    user_id = uuid.uuid4()
    token = signer.issue(user_id)
    assert signer.user_id(token) == user_id
    assert signer.user_id(token) == user_id  # remembered
    header, payload, signature = token.split(".")
    with pytest.raises(Unauthenticated, match="Invalid token"):
        signer.user_id(f"{header}.{payload}.{signature[:-2]}AA")
    other = TokenSigner("x" * 48, 60, clock=lambda: now[0])
    with pytest.raises(Unauthenticated, match="Invalid token"):
        other.user_id(token)  # another key: never this signer's memory
    now[0] += 60
    with pytest.raises(Unauthenticated, match="expired"):
        signer.user_id(token)


def test_recent_users_stay_bounded() -> None:
    recent = RecentUsers(ttl_seconds=60, max_entries=10)
    users = [User(id=uuid.uuid4(), email=f"u{i}@example.com") for i in range(25)]
    for user in users:
        recent.put(user)
    assert len(recent._entries) <= 10
    assert recent.get(users[-1].id) is users[-1], "the newest stay"
    assert recent.get(users[0].id) is None, "the oldest went first"


class _CountingHasher(accounts.PasswordHasher):
    """The real hasher, counting its work: timing leaks are the absence of that work."""

    def __init__(self) -> None:
        super().__init__()
        self.hashes = 0
        self.verifies = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.hashes += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifies += 1
        return super().verify(hash, password)


async def test_password_work_is_the_same_whether_or_not_the_account_exists(
    gql: GraphQLCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers that skip the ~100 ms of argon2 tell, by their speed, who has an account."""
    hasher = _CountingHasher()
    monkeypatch.setattr(accounts, "_hasher", hasher)
    email = fresh_email()
    for attempt in ("new", "taken"):
        before = hasher.hashes
        await gql(REGISTER, {"email": email, "password": PASSWORD})
        assert hasher.hashes - before == 1, f"register of a {attempt} address"
    for who in (email, fresh_email()):
        before = hasher.verifies
        body = await gql(LOGIN, {"email": who, "password": "wrong password!"})
        assert error_codes(body) == ["UNAUTHENTICATED"]
        assert hasher.verifies - before == 1, f"login as {who}"
