"""services/accounts.py at its edges: the exact bounds of emails and passwords, token claims,
the cache of recent users, and the messages each refusal gives. Written for `make mutation`
(docs/testing.md): each test fails when a bound, a claim or a message is changed.
"""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from models import User
from services import accounts
from services.accounts import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    TOKEN_ALGORITHM,
    RecentUsers,
    TokenSigner,
)
from services.errors import BadInput, NotFound, RateLimited, Unauthenticated

SECRET = "s" * 64
PASSWORD = "correct horse battery"


def fresh_email() -> str:
    return f"Edge-{uuid.uuid4().hex[:8]}@Example.com"


# emails ---------------------------------------------------------------------------------


def test_emails_are_trimmed_and_lowercased() -> None:
    assert accounts.normalise_email("  Ann.Lee@Example.COM \n") == "ann.lee@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "a" * 64 + "@example.com",  # the longest local part
        "a@b.co",  # the shortest top-level domain
        "a@" + "b" * 248 + ".com",  # 254 characters in all
    ],
)
def test_emails_at_the_bounds_are_accepted(email: str) -> None:
    assert accounts.normalise_email(email) == email


@pytest.mark.parametrize(
    "email",
    [
        "a" * 65 + "@example.com",
        "a@b.c",
        "a@" + "b" * 249 + ".com",  # 255 characters
        "no-at-sign.example.com",
        "two@@example.com",
        "white space@example.com",
        "@example.com",
        "a@example",
        "",
    ],
)
def test_emails_past_the_bounds_are_refused(email: str) -> None:
    with pytest.raises(BadInput, match=r"^Invalid email address$"):
        accounts.normalise_email(email)


# passwords ------------------------------------------------------------------------------


def test_password_bounds_are_inclusive() -> None:
    accounts.check_password_rules("p" * MIN_PASSWORD_LENGTH)
    accounts.check_password_rules("p" * MAX_PASSWORD_LENGTH)
    with pytest.raises(BadInput, match=r"^Password must be at least 8 characters$"):
        accounts.check_password_rules("p" * (MIN_PASSWORD_LENGTH - 1))
    with pytest.raises(BadInput, match=r"^Password must be at most 256 characters$"):
        accounts.check_password_rules("p" * (MAX_PASSWORD_LENGTH + 1))


def test_login_key_folds_spacing_and_case_and_is_bounded() -> None:
    assert accounts.login_key("  Ann  Lee@Example.com ") == "ann lee@example.com"
    assert accounts.login_key("A" * 300) == "a" * 254


# tokens ---------------------------------------------------------------------------------


def test_a_token_carries_subject_issue_time_and_expiry() -> None:
    user_id = uuid.uuid4()
    before = int(time.time())
    token = TokenSigner(SECRET, 600).issue(user_id)
    claims = jwt.decode(token, SECRET, algorithms=[TOKEN_ALGORITHM])
    assert claims["sub"] == str(user_id)
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert TokenSigner(SECRET, 600).user_id(token) == user_id
    assert TokenSigner(SECRET, 600).accepts(token) is True


def test_expired_forged_and_malformed_tokens_are_refused_with_their_reason() -> None:
    signer = TokenSigner(SECRET, 600)
    expired = jwt.encode({"sub": str(uuid.uuid4()), "exp": int(time.time()) - 60}, SECRET)
    with pytest.raises(Unauthenticated, match=r"^Token expired: log in again$"):
        signer.user_id(expired)
    assert signer.accepts(expired) is False
    forged = TokenSigner("x" * 48, 600).issue(uuid.uuid4())
    no_subject = jwt.encode({"exp": int(time.time()) + 60}, SECRET)
    no_expiry = jwt.encode({"sub": str(uuid.uuid4())}, SECRET)
    not_a_uuid = jwt.encode({"sub": "admin", "exp": int(time.time()) + 60}, SECRET)
    other_algorithm = jwt.encode(
        {"sub": str(uuid.uuid4()), "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"
    )
    for token in (forged, no_subject, no_expiry, not_a_uuid, other_algorithm, "garbage"):
        with pytest.raises(Unauthenticated, match=r"^Invalid token$"):
            signer.user_id(token)
        assert signer.accepts(token) is False


# the cache of recent users --------------------------------------------------------------


def test_recent_users_expire_just_after_their_lifetime() -> None:
    now = [100.0]
    recent = RecentUsers(ttl_seconds=5, clock=lambda: now[0])
    user = User(id=uuid.uuid4(), email="a@example.com")
    assert recent.get(user.id) is None
    recent.put(user)
    now[0] = 105.0
    assert recent.get(user.id) is user
    now[0] = 105.001
    assert recent.get(user.id) is None
    assert user.id not in recent._entries  # dropped, not kept stale
    recent.put(user)
    assert recent.get(user.id) is user  # put again, lives again from now


def test_a_full_cache_drops_the_oldest_tenth() -> None:
    recent = RecentUsers(ttl_seconds=60, max_entries=20)
    users = [User(id=uuid.uuid4(), email=f"u{i}@example.com") for i in range(21)]
    for user in users[:20]:
        recent.put(user)
    assert len(recent._entries) == 20
    recent.put(users[20])
    assert len(recent._entries) == 19  # two dropped (a tenth of 20), one added
    assert recent.get(users[0].id) is None and recent.get(users[1].id) is None
    assert recent.get(users[2].id) is users[2]


def test_a_tiny_cache_still_makes_room() -> None:
    recent = RecentUsers(ttl_seconds=60, max_entries=3)
    users = [User(id=uuid.uuid4(), email=f"t{i}@example.com") for i in range(4)]
    for user in users:
        recent.put(user)
    assert len(recent._entries) == 3
    assert recent.get(users[0].id) is None
    assert recent.get(users[3].id) is users[3]


def test_putting_a_known_user_again_refreshes_it_in_place() -> None:
    now = [0.0]
    recent = RecentUsers(ttl_seconds=5, max_entries=2, clock=lambda: now[0])
    first = User(id=uuid.uuid4(), email="f@example.com")
    second = User(id=uuid.uuid4(), email="s@example.com")
    recent.put(first)
    recent.put(second)
    now[0] = 4.0
    recent.put(first)  # refreshed: now the newest
    assert list(recent._entries) == [second.id, first.id]
    now[0] = 8.0
    assert recent.get(first.id) is first
    assert recent.get(second.id) is None


# with the database ----------------------------------------------------------------------


async def test_register_stores_a_normalised_email_and_the_staff_flag(database: str) -> None:
    email = fresh_email()
    user = await accounts.register(f"  {email} ", PASSWORD, is_staff=True)
    assert user.email == email.lower()
    assert user.is_staff is True
    assert user.password_hash.startswith("$argon2")
    plain = await accounts.register(fresh_email(), PASSWORD)
    assert plain.is_staff is False


async def test_register_refuses_a_taken_email_however_spelled(database: str) -> None:
    email = fresh_email()
    await accounts.register(email, PASSWORD)
    with pytest.raises(BadInput, match=r"^An account with this email already exists$"):
        await accounts.register(email.upper(), PASSWORD)
    with pytest.raises(BadInput, match=r"^Password must be at least"):
        await accounts.register(fresh_email(), "short")


async def test_authenticate_checks_the_password_and_folds_the_email(database: str) -> None:
    email = fresh_email()
    user = await accounts.register(email, PASSWORD)
    assert (await accounts.authenticate(f" {email.upper()} ", PASSWORD)).id == user.id
    for wrong_email, password in [
        (email, PASSWORD + "x"),
        (fresh_email(), PASSWORD),
        ("not an email", PASSWORD),
        (email, "p" * (MAX_PASSWORD_LENGTH + 1)),
    ]:
        with pytest.raises(Unauthenticated, match=r"^Wrong email or password$"):
            await accounts.authenticate(wrong_email, password)


async def test_user_by_email_names_the_missing_account(database: str) -> None:
    email = fresh_email()
    user = await accounts.register(email, PASSWORD)
    assert (await accounts.user_by_email(email.upper())).id == user.id
    missing = fresh_email()
    with pytest.raises(NotFound, match=f"^No user with email {missing}$"):
        await accounts.user_by_email(f"  {missing} ")


async def test_a_token_without_a_cache_looks_the_user_up(database: str) -> None:
    signer = TokenSigner(SECRET, 600)
    user = await accounts.register(fresh_email(), PASSWORD)
    assert (await accounts.user_for_token(signer, signer.issue(user.id))).id == user.id
    with pytest.raises(Unauthenticated, match=r"^Invalid token: the account no longer exists$"):
        await accounts.user_for_token(signer, signer.issue(uuid.uuid4()))
    recent = RecentUsers()
    await accounts.user_for_token(signer, signer.issue(user.id), recent)
    assert recent.get(user.id) is not None  # remembered after the lookup


# rate limits ----------------------------------------------------------------------------


def limits(login: str = "100/minute", by_address: str = "100/minute") -> accounts.RateLimits:
    return accounts.RateLimits.from_specs(
        generate="100/minute",
        execute="100/minute",
        login=login,
        auth_by_address=by_address,
        code_validation="1000/minute",
    )


async def test_logins_are_counted_per_account_however_spelled(database: str) -> None:
    email = fresh_email()
    await accounts.register(email, PASSWORD)
    attempt = accounts.AuthAttempt(limits(login="2/minute"), "10.0.0.1")
    await accounts.authenticate(email, PASSWORD, attempt)
    with pytest.raises(Unauthenticated):
        await accounts.authenticate(f" {email.upper()}", "wrong password", attempt)
    with pytest.raises(RateLimited, match=r"for login exceeded"):
        await accounts.authenticate(email, PASSWORD, attempt)
    # Another account from the same address is not slowed by this one's failures.
    other = fresh_email()
    await accounts.register(other, PASSWORD)
    assert (await accounts.authenticate(other, PASSWORD, attempt)).email == other.lower()


async def test_register_and_login_are_counted_per_client_address(database: str) -> None:
    shared = limits(by_address="2/minute")
    first = accounts.AuthAttempt(shared, "10.0.0.2")
    await accounts.register(fresh_email(), PASSWORD, attempt=first)
    with pytest.raises(Unauthenticated):
        await accounts.authenticate(fresh_email(), PASSWORD, first)
    with pytest.raises(RateLimited, match=r"for register/login exceeded"):
        await accounts.register(fresh_email(), PASSWORD, attempt=first)
    # A different address has its own allowance.
    await accounts.register(
        fresh_email(), PASSWORD, attempt=accounts.AuthAttempt(shared, "10.0.0.3")
    )


async def test_the_longest_allowed_password_can_log_in(database: str) -> None:
    email = fresh_email()
    longest = "p" * MAX_PASSWORD_LENGTH
    user = await accounts.register(email, longest)
    assert (await accounts.authenticate(email, longest)).id == user.id
