"""The retry loop every HTTP provider shares: one logged Attempt per call, backoff with
jitter that honours the server's Retry-After, and an error that says when it gave up.

The SDKs' own retries are switched off so that each HTTP call shows in the generation log.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping

from services.providers.base import Attempt, ProviderResult

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 30.0
MAX_RAW_CHARS = 200_000


class Retryable(Exception):
    """This attempt failed, the next one may not (rate limit, overload, timeout, bad body)."""

    def __init__(self, message: str, delay_hint: float | None = None) -> None:
        super().__init__(message)
        self.delay_hint = delay_hint


class Final(Exception):
    """No point trying again (bad key, unknown model, refusal, blocked prompt)."""


# One HTTP call: returns when the answer was accepted into the result, else raises.
AttemptCall = Callable[[Attempt], Awaitable[None]]


async def with_retries(
    result: ProviderResult,
    call: AttemptCall,
    *,
    max_attempts: int,
    retry_base_seconds: float,
) -> ProviderResult:
    for number in range(1, max_attempts + 1):
        attempt = Attempt(number=number, duration_seconds=0.0)
        result.attempts.append(attempt)
        started = time.perf_counter()
        delay = 0.0
        try:
            await call(attempt)
            result.error = None
            return result
        except Retryable as exc:
            result.error = attempt.error = str(exc)
            delay = backoff(retry_base_seconds, number, exc.delay_hint)
        except Final as exc:
            result.error = attempt.error = str(exc)
            return result
        finally:
            attempt.duration_seconds = time.perf_counter() - started
        if number < max_attempts:
            await asyncio.sleep(delay)
    if len(result.attempts) > 1:
        result.error = f"{result.error} (gave up after {len(result.attempts)} attempts)"
    return result


def backoff(base_seconds: float, attempt_number: int, hint: float | None) -> float:
    """Exponential with jitter, never shorter than the server asked, never over 30 s."""
    delay = base_seconds * 2 ** (attempt_number - 1) * random.uniform(0.5, 1.0)
    if hint is not None:
        delay = max(delay, hint)
    return min(delay, MAX_BACKOFF_SECONDS)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After (or OpenAI's retry-after-ms) header; dates are ignored."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    seconds = headers.get("retry-after")
    try:
        if milliseconds is not None:
            return float(milliseconds) / 1000
        return float(seconds) if seconds is not None else None
    except ValueError:
        return None
