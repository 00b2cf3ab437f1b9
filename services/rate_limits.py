"""Per-key rate limits on top of the `limits` library (in memory, or any `limits` storage URI)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from services.errors import RateLimited


class RateLimit:
    def __init__(self, spec: str, *, scope: str, storage_uri: str = "async+memory://") -> None:
        self.item: RateLimitItem = parse(spec)
        self.scope = scope
        self.spec = spec
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    async def hit(self, key: str) -> None:
        """Count one request for `key`, or refuse it with the wait until the next free slot."""
        if await self._limiter.hit(self.item, self.scope, key):
            return
        stats = await self._limiter.get_window_stats(self.item, self.scope, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Rate limit of {self.spec} for {self.scope} exceeded; retry in {retry_after} s",
            retry_after_seconds=retry_after,
        )
