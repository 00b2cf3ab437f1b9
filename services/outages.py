"""Which dependencies (database, Redis, storage) are down, as this process last saw them.

A dead PostgreSQL fails every request: logging a traceback for each buries the one fact an
operator needs. Here each outage is logged once when it starts (a warning naming the error
class, never the driver's message, which carries hosts and users) and once when it ends,
and the `dependency_up` gauge says the same to a scraper.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import time

import asyncpg
from prometheus_client import Counter, Gauge
from tortoise.exceptions import DBConnectionError

from services import telemetry
from services.errors import ServiceUnavailable

log = logging.getLogger(__name__)

DATABASE = "database"
REDIS = "redis"
# The database answers but cannot write: a full disk (SQLite's "database or disk is full",
# PostgreSQL's 53100 disk_full), an I/O error, a read-only file system.
STORAGE = "storage"
# What a client is told to wait before retrying: about one probe interval of a load balancer.
RETRY_AFTER_SECONDS = 5

DEPENDENCY_UP = Gauge(
    "dependency_up",
    "1 while this process reaches the dependency (database, redis), 0 during an outage it saw.",
    ["dependency"],
    multiprocess_mode="livemin",
    registry=telemetry.REGISTRY,
)
DEPENDENCY_OUTAGES = Counter(
    "dependency_outages_total",
    "Outages of a dependency this process saw start (one per outage, not per failed request).",
    ["dependency"],
    registry=telemetry.REGISTRY,
)

# Failures that mean "the database is unreachable or too slow", not "this query is wrong":
# refused or reset connections, timeouts (connect, pool wait, command), a server starting
# up or shutting down, a connection the server dropped.
DATABASE_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    DBConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # 57P*: shut down by an admin, by a crash of another backend or of the postmaster (as a
    # killed server's backends report), starting up, database dropped, idle session cut.
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)

# Those recognisable outside the client: the driver's own connection errors.
ESCAPED_DATABASE_FAILURES = (
    DBConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)


class Outages:
    def __init__(self) -> None:
        self._down_since: dict[str, float] = {}
        self._last_failure: dict[str, float] = {}

    def is_down(self, dependency: str) -> bool:
        return dependency in self._down_since

    def down_for(self, dependency: str) -> float:
        """Seconds since the last failure of `dependency` (0 when it is up)."""
        since = self._last_failure.get(dependency)
        return time.monotonic() - since if since is not None and self.is_down(dependency) else 0.0

    def failed(self, dependency: str, error: BaseException) -> None:
        """`dependency` failed: log and count it if it was up until now."""
        self._last_failure[dependency] = time.monotonic()
        if dependency in self._down_since:
            return
        self._down_since[dependency] = time.monotonic()
        DEPENDENCY_UP.labels(dependency).set(0)
        DEPENDENCY_OUTAGES.labels(dependency).inc()
        log.warning(
            "%s unavailable (%s); answering SERVICE_UNAVAILABLE until it recovers",
            dependency,
            type(error).__name__,
            extra={"dependency": dependency, "outage": "started"},
        )

    def answered(self, dependency: str) -> None:
        """`dependency` answered: log the end of its outage, if there was one."""
        since = self._down_since.pop(dependency, None)
        DEPENDENCY_UP.labels(dependency).set(1)
        if since is not None:
            log.warning(
                "%s recovered after %.1f s",
                dependency,
                time.monotonic() - since,
                extra={"dependency": dependency, "outage": "ended"},
            )


OUTAGES = Outages()


def database_unavailable(error: BaseException) -> ServiceUnavailable:
    """The client's answer for a database failure; the outage is logged once, here."""
    OUTAGES.failed(DATABASE, error)
    return ServiceUnavailable(
        "The database is unavailable; retry shortly", retry_after_seconds=RETRY_AFTER_SECONDS
    )


def _is_connection_failure(error: BaseException) -> bool:
    """The driver's connection errors, its other client-side errors (raised on a connection
    that went away mid-use; a PostgresError is the server's answer, unless 08/57), and lost or
    refused sockets or timeouts underneath."""
    if isinstance(error, (*ESCAPED_DATABASE_FAILURES, ConnectionError, TimeoutError)):
        return True
    from_driver = type(error).__module__.startswith("asyncpg")
    return from_driver and not isinstance(error, asyncpg.PostgresError)


SQLITE_STORAGE_MESSAGES = (
    "database or disk is full",
    "disk i/o error",
    "attempt to write a readonly database",
)
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


def is_storage_failure(error: BaseException) -> bool:
    """Writes fail for want of disk (or a disk that fails), not for what was written."""
    if isinstance(error, sqlite3.OperationalError):
        return any(text in str(error).lower() for text in SQLITE_STORAGE_MESSAGES)
    if isinstance(error, asyncpg.exceptions.DiskFullError):
        return True
    return isinstance(error, OSError) and error.errno in STORAGE_ERRNOS


def storage_unavailable(error: BaseException) -> ServiceUnavailable:
    """The client's answer when the database cannot write; the outage is logged once."""
    OUTAGES.failed(STORAGE, error)
    return ServiceUnavailable(
        "The server cannot store data right now; retry shortly",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )


def unavailable_from(error: BaseException | None) -> ServiceUnavailable | None:
    """A database failure that escaped the client's own translation (a transaction's commit
    on a dropped connection, say) as the same answer; None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ServiceUnavailable):
            return current
        if is_storage_failure(current):
            return storage_unavailable(current)
        if _is_connection_failure(current):
            return database_unavailable(current)
        # Explicit chains first; a driver error raised while handling a dropped connection
        # carries it as the context only.
        current = current.__cause__ or current.__context__
    return None
