"""Typed sandbox errors: the API maps `code` onto `extensions.code`, `reason` tells which limit.

Problems caused by the strategy's code are `StrategyError`s, code STRATEGY_ERROR (the user fixes
them in the code, not in the arguments); problems of the host (no isolation, too busy) are
`ServiceError`s the user cannot fix by editing code.
"""

from __future__ import annotations

from services.errors import RateLimited, ServiceError, StrategyError


class StrategySandboxError(StrategyError):
    """Base of every error the strategy's own code caused; `reason` names the kind."""

    reason = "SANDBOX_ERROR"

    def __init__(self, message: str, **extensions: object) -> None:
        extensions.setdefault("reason", self.reason)
        super().__init__(message, **extensions)


class ExecutionTimeout(StrategySandboxError):
    """Wall-clock or CPU-time limit reached; the job's process was killed."""

    reason = "TIMEOUT"


class MemoryLimitExceeded(StrategySandboxError):
    """The job tried to use more memory (address space) than it may."""

    reason = "MEMORY_LIMIT"


class SandboxViolation(StrategySandboxError):
    """Forbidden import, builtin or system call: the sandbox stopped the code."""

    reason = "SANDBOX_VIOLATION"


class StrategyRuntimeError(StrategySandboxError):
    """The strategy raised; the message carries the type, text, line and bar index."""

    reason = "RUNTIME_ERROR"


class InvalidStrategyOutput(StrategySandboxError):
    """`execute_strategy` returned something that breaks the signal contract."""

    reason = "INVALID_OUTPUT"


class OutputTooLarge(StrategySandboxError):
    """The job produced more result bytes than the cap allows."""

    reason = "OUTPUT_TOO_LARGE"


class SandboxUnavailable(ServiceError):
    """Isolation cannot be provided on this host, or the fork server cannot be (re)started."""

    code = "INTERNAL"


class ForkServerDown(SandboxUnavailable):
    """The fork server died and could not be restarted (yet). The server log says why; the
    client gets a retryable SERVICE_UNAVAILABLE naming nothing internal (launcher, paths)."""

    code = "SERVICE_UNAVAILABLE"
    MESSAGE = "Strategy execution is temporarily unavailable; retry shortly"

    def __init__(self, reason: str, retry_after_seconds: int = 5) -> None:
        super().__init__(self.MESSAGE, reason=reason, retryAfterSeconds=retry_after_seconds)
        self.retry_after_seconds = retry_after_seconds


class SandboxBusy(RateLimited):
    """Too many jobs already wait for a slot: the caller should retry shortly."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message, retry_after_seconds)
