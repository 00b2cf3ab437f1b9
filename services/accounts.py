"""Registration, login and bearer tokens."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError

from models import User
from services.errors import BadInput, NotFound, Unauthenticated
from services.rate_limits import RateLimits

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
TOKEN_ALGORITHM = "HS256"

_hasher = PasswordHasher()
# Verifying against this keeps login timing the same whether or not the email exists.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


MAX_VERIFIED_TOKENS = 10_000


@dataclass(frozen=True)
class TokenSigner:
    """Issues and checks bearer tokens. A token that passed the check is remembered with its
    expiry: a client sends the same token with every request, and decoding and verifying it
    each time was a fifth of the work of a small query. Only the exact text that passed is
    remembered, and it still stops working at its `exp`."""

    secret_key: str
    ttl_seconds: int
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    _verified: dict[str, tuple[uuid.UUID, int]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def issue(self, user_id: uuid.UUID) -> str:
        now = int(self.clock())
        claims = {"sub": str(user_id), "iat": now, "exp": now + self.ttl_seconds}
        return jwt.encode(claims, self.secret_key, algorithm=TOKEN_ALGORITHM)

    def accepts(self, token: str) -> bool:
        """A valid, unexpired token of ours (its user may since have been deleted)."""
        try:
            self.user_id(token)
        except Unauthenticated:
            return False
        return True

    def user_id(self, token: str) -> uuid.UUID:
        verified = self._verified.get(token)
        if verified is not None and self.clock() < verified[1]:
            return verified[0]
        try:
            claims = jwt.decode(
                token,
                self.secret_key,
                algorithms=[TOKEN_ALGORITHM],
                options={"require": ["exp", "sub"]},
            )
            user_id, expires = uuid.UUID(claims["sub"]), int(claims["exp"])
        except jwt.ExpiredSignatureError:
            self._verified.pop(token, None)
            raise Unauthenticated("Token expired: log in again") from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise Unauthenticated("Invalid token") from None
        if self.clock() >= expires:  # the clock that checks remembered tokens decides
            raise Unauthenticated("Token expired: log in again")
        if len(self._verified) >= MAX_VERIFIED_TOKENS:
            del self._verified[next(iter(self._verified))]  # the oldest: insertion order
        self._verified[token] = (user_id, expires)
        return user_id


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL_PATTERN.match(email):
        raise BadInput("Invalid email address")
    return email


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadInput(f"Password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadInput(f"Password must be at most {MAX_PASSWORD_LENGTH} characters")


async def _hash(password: str) -> str:
    # argon2 costs ~50 ms of CPU: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


@dataclass(frozen=True)
class AuthAttempt:
    """Where a register or login over the API comes from: its rate limits apply to it.
    The operator's CLI makes none."""

    limits: RateLimits
    client_address: str


async def register(
    email: str, password: str, *, is_staff: bool = False, attempt: AuthAttempt | None = None
) -> User:
    if attempt is not None:
        await attempt.limits.auth_by_address.hit(attempt.client_address)
    email = normalise_email(email)
    check_password_rules(password)
    # Hashed before the lookup, taken or not: an early "already exists" answered in
    # milliseconds against ~100 ms for a new address, which told who has an account.
    password_hash = await _hash(password)
    if await User.exists(email=email):
        raise BadInput("An account with this email already exists")
    try:
        return await User.create(email=email, password_hash=password_hash, is_staff=is_staff)
    except IntegrityError:
        raise BadInput("An account with this email already exists") from None


async def user_by_email(email: str) -> User:
    """The account for an operator naming it (the CLI's --user); NotFound if there is none."""
    user = await User.get_or_none(email=normalise_email(email))
    if user is None:
        raise NotFound(f"No user with email {email.strip()}")
    return user


def login_key(email: str) -> str:
    """What login attempts are counted by: the account they aim at, however spelled."""
    return " ".join(email.split()).lower()[:MAX_EMAIL_LENGTH]


async def authenticate(email: str, password: str, attempt: AuthAttempt | None = None) -> User:
    if attempt is not None:
        await attempt.limits.auth_by_address.hit(attempt.client_address)
        await attempt.limits.login.hit(login_key(email))
    failure = Unauthenticated("Wrong email or password")
    try:
        email = normalise_email(email)
    except BadInput:
        raise failure from None
    if len(password) > MAX_PASSWORD_LENGTH:
        raise failure
    user = await User.get_or_none(email=email)
    if not await _verify(user.password_hash if user else _DUMMY_HASH, password) or user is None:
        raise failure
    return user


class RecentUsers:
    """Users looked up by token in the last few seconds.

    Every authenticated request needs its user; under load that lookup was the most frequent
    query and, on SQLite, a wait for the only connection. A changed account (staff flag,
    removal) takes effect within `ttl_seconds` (plus the one lookup that refreshes it).

    A refresh is single-flight: when an entry expires under load, every request in flight
    misses at once, and each used to queue its own lookup (a stampede that stalled `me` for
    hundreds of ms every few seconds). Now the first miss looks the user up and the others
    wait for that one lookup.
    """

    def __init__(
        self,
        ttl_seconds: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[uuid.UUID, tuple[float, User]] = {}
        self._lookups: dict[uuid.UUID, asyncio.Future[User | None]] = {}

    def get(self, user_id: uuid.UUID) -> User | None:
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        if self.clock() - entry[0] > self.ttl_seconds:
            del self._entries[user_id]
            return None
        return entry[1]

    def put(self, user: User) -> None:
        if len(self._entries) >= self.max_entries:
            # Oldest first: dicts keep insertion order.
            for stale in list(self._entries)[: self.max_entries // 10 or 1]:
                del self._entries[stale]
        self._entries.pop(user.id, None)
        self._entries[user.id] = (self.clock(), user)

    async def get_or_look_up(
        self, user_id: uuid.UUID, look_up: Callable[[uuid.UUID], Awaitable[User | None]]
    ) -> User | None:
        """The remembered user, else the result of one `look_up` shared by every caller that
        misses while it runs. The lookup is a task of its own: a caller that gives up
        (a client gone) does not cancel it for the others."""
        user = self.get(user_id)
        if user is not None:
            return user
        lookup = self._lookups.get(user_id)
        if lookup is None:

            async def refresh() -> User | None:
                found = await look_up(user_id)
                if found is not None:
                    self.put(found)
                return found

            lookup = self._lookups[user_id] = asyncio.ensure_future(refresh())
            lookup.add_done_callback(lambda _: self._lookups.pop(user_id, None))
        return await asyncio.shield(lookup)


async def _user_by_id(user_id: uuid.UUID) -> User | None:
    return await User.get_or_none(id=user_id)


async def user_for_token(
    signer: TokenSigner, token: str, recent: RecentUsers | None = None
) -> User:
    user_id = signer.user_id(token)
    if recent is not None:
        user = await recent.get_or_look_up(user_id, _user_by_id)
    else:
        user = await _user_by_id(user_id)
    if user is None:
        raise Unauthenticated("Invalid token: the account no longer exists")
    return user
