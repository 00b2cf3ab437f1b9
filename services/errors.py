"""Domain errors. The API layer maps each `code` onto the contract's `extensions.code`."""

from __future__ import annotations


class ServiceError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.message = message
        # graphql-core copies a dict `extensions` of the underlying error into the response.
        self.extensions: dict[str, object] = {"code": self.code, **extensions}


class Unauthenticated(ServiceError):
    code = "UNAUTHENTICATED"


class Forbidden(ServiceError):
    code = "FORBIDDEN"


class NotFound(ServiceError):
    code = "NOT_FOUND"


class BadInput(ServiceError):
    code = "BAD_USER_INPUT"


class StrategyError(ServiceError):
    """The strategy's own code failed when run: neither a bad argument nor our bug.
    `extensions.reason` says how (RUNTIME_ERROR, TIMEOUT, MEMORY_LIMIT, ...)."""

    code = "STRATEGY_ERROR"


class RateLimited(ServiceError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message, retryAfterSeconds=retry_after_seconds)
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailable(ServiceError):
    """A dependency (database, Redis, sandbox) is down or overloaded: nothing the client
    did wrong, and worth retrying after `retryAfterSeconds`."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message, retryAfterSeconds=retry_after_seconds)
        self.retry_after_seconds = retry_after_seconds
