"""Rate limits on top of the `limits` library: moving windows, in memory or in Redis.

In memory, each server process counts for itself; with Redis (REDIS_URL) every process
shares the same counts, so a limit holds however many workers serve the API.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from services.errors import RateLimited


def make_limiter(
    redis_url: str = "", *, key_prefix: str = "strategy-generator"
) -> MovingWindowRateLimiter:
    if not redis_url:
        return MovingWindowRateLimiter(storage_from_string("async+memory://"))
    uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
    storage = storage_from_string(uri, implementation="redispy", key_prefix=key_prefix)
    return MovingWindowRateLimiter(storage)


class RateLimit:
    def __init__(self, spec: str, *, scope: str, limiter: MovingWindowRateLimiter | None = None):
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
    ) -> RateLimits:
        limiter = make_limiter(redis_url)
        return cls(
            generate=RateLimit(generate, scope="generateStrategy", limiter=limiter),
            execute=RateLimit(execute, scope="strategy execution", limiter=limiter),
            login=RateLimit(login, scope="login", limiter=limiter),
            auth_by_address=RateLimit(auth_by_address, scope="register/login", limiter=limiter),
            code_validation=RateLimit(
                code_validation, scope="code validation (KiB of code)", limiter=limiter
            ),
        )
