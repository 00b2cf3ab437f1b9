"""Rate limits on top of the `limits` library: moving windows, in memory or in Redis.

In memory, each server process counts for itself; with Redis (REDIS_URL) every process
shares the same counts, so a limit holds however many workers serve the API.

When Redis fails or is slow (REDIS_TIMEOUT_SECONDS), limits are counted in this process
instead, as without Redis: register, login and the rest keep working, each worker enforcing
the limits on its own, and Redis is tried again after REDIS_RETRY_SECONDS. The outage is
logged once when it starts and once when it ends (services/outages.py), and counted by
`rate_limit_local_fallbacks_total` and `dependency_up{dependency="redis"}`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from limits import RateLimitItem, WindowStats, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from prometheus_client import Counter

from services import telemetry
from services.errors import RateLimited
from services.outages import OUTAGES, REDIS

T = TypeVar("T")

LOCAL_FALLBACKS = Counter(
    "rate_limit_local_fallbacks_total",
    "Rate limit checks counted in this process because Redis failed or was skipped after a "
    "failure (REDIS_RETRY_SECONDS).",
    registry=telemetry.REGISTRY,
)


class FallbackLimiter:
    """Redis's counts while Redis answers within `timeout`; this process's own otherwise."""

    def __init__(
        self, shared: MovingWindowRateLimiter, *, timeout: float, retry_after: float
    ) -> None:
        self.shared = shared
        self.local = MovingWindowRateLimiter(storage_from_string("async+memory://"))
        self.timeout = timeout
        self.retry_after = retry_after
        self._skip_until = 0.0  # monotonic time before which Redis is not tried

    @property
    def storage(self) -> Storage:
        return self.shared.storage

    async def _use(self, call: Callable[[MovingWindowRateLimiter], Awaitable[T]]) -> T:
        if time.monotonic() >= self._skip_until:
            try:
                async with asyncio.timeout(self.timeout):
                    result = await call(self.shared)
            except (StorageError, TimeoutError, OSError) as exc:
                self._skip_until = time.monotonic() + self.retry_after
                OUTAGES.failed(REDIS, getattr(exc, "storage_error", exc))
            else:
                OUTAGES.answered(REDIS)
                return result
        LOCAL_FALLBACKS.inc()
        return await call(self.local)

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return await self._use(lambda limiter: limiter.hit(item, *identifiers, cost=cost))

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        return await self._use(lambda limiter: limiter.get_window_stats(item, *identifiers))

    async def reachable(self) -> bool:
        """Does Redis answer a ping within the timeout? (For /readyz; the outcome is recorded
        as any request's would be.)"""
        try:
            async with asyncio.timeout(self.timeout):
                ok = await self.shared.storage.check()
        except (StorageError, TimeoutError, OSError) as exc:
            OUTAGES.failed(REDIS, exc)
            return False
        if ok:
            OUTAGES.answered(REDIS)
        else:
            OUTAGES.failed(REDIS, ConnectionError("no answer to PING"))
        return bool(ok)


Limiter = MovingWindowRateLimiter | FallbackLimiter


def make_limiter(
    redis_url: str = "",
    *,
    key_prefix: str = "strategy-generator",
    timeout: float = 0.25,
    retry_after: float = 5.0,
) -> Limiter:
    if not redis_url:
        return MovingWindowRateLimiter(storage_from_string("async+memory://"))
    uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
    storage = storage_from_string(
        uri,
        implementation="redispy",
        key_prefix=key_prefix,
        wrap_exceptions=True,
        # redis-py's own bounds, below ours: a dead socket is given up, not left half-read.
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    assert isinstance(storage, RedisStorage)
    return FallbackLimiter(
        MovingWindowRateLimiter(storage), timeout=timeout, retry_after=retry_after
    )


class RateLimit:
    def __init__(self, spec: str, *, scope: str, limiter: Limiter | None = None):
        self.item: RateLimitItem = parse(spec)
        self.scope = scope
        self.spec = spec
        self._limiter = limiter or make_limiter()

    async def hit(self, key: str, cost: int = 1) -> None:
        """Count one request (or `cost` units) for `key`, or refuse it with the wait until the
        next free slot. The moving window stores one entry per unit: keep costs small."""
        if await self._limiter.hit(self.item, self.scope, key, cost=cost):
            return
        stats = await self._limiter.get_window_stats(self.item, self.scope, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Rate limit of {self.spec} for {self.scope} exceeded; retry in {retry_after} s",
            retry_after_seconds=retry_after,
        )


@dataclass(frozen=True)
class RateLimits:
    """Every limit of the API, keyed by user id, email or client address."""

    generate: RateLimit  # per user
    execute: RateLimit  # per user: runStrategy, backtestStrategy, validateCode's trial run
    login: RateLimit  # per email: slows password guessing against one account
    auth_by_address: RateLimit  # per client address: register and login
    code_validation: RateLimit  # per user, in KiB of code checked (services/code_analysis.py)
    shared: FallbackLimiter | None = None  # Redis's counts, when REDIS_URL is set

    @classmethod
    def from_specs(
        cls,
        *,
        generate: str,
        execute: str,
        login: str,
        auth_by_address: str,
        code_validation: str,
        redis_url: str = "",
        redis_timeout: float = 0.25,
        redis_retry_after: float = 5.0,
    ) -> RateLimits:
        limiter = make_limiter(redis_url, timeout=redis_timeout, retry_after=redis_retry_after)
        return cls(
            generate=RateLimit(generate, scope="generateStrategy", limiter=limiter),
            execute=RateLimit(execute, scope="strategy execution", limiter=limiter),
            login=RateLimit(login, scope="login", limiter=limiter),
            auth_by_address=RateLimit(auth_by_address, scope="register/login", limiter=limiter),
            code_validation=RateLimit(
                code_validation, scope="code validation (KiB of code)", limiter=limiter
            ),
            shared=limiter if isinstance(limiter, FallbackLimiter) else None,
        )
