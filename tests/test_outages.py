"""Which failures mean "the database is down": the server's own reports of it included."""

from __future__ import annotations

import asyncpg
import pytest
from tortoise.exceptions import OperationalError

from services.errors import ServiceUnavailable
from services.outages import unavailable_from


def _raised_while_handling(cause: BaseException, error: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException:
            raise error  # noqa: B904 - the implicit context is the point
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    "failure",
    [
        asyncpg.exceptions.CrashShutdownError("the postmaster died"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle of operation"),
    ],
    ids=["crash-shutdown", "admin-shutdown", "connection-gone"],
)
def test_a_dead_server_is_unavailable_however_it_is_reported(failure: BaseException) -> None:
    assert isinstance(unavailable_from(failure), ServiceUnavailable)
    wrapped = _raised_while_handling(failure, OperationalError("query failed"))
    assert isinstance(unavailable_from(wrapped), ServiceUnavailable)


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionResetError("reset by peer"),
        asyncpg.exceptions.InternalClientError("the connection went away mid-use"),
    ],
    ids=["socket-reset", "driver-client-error"],
)
def test_a_lost_connection_underneath_is_unavailable(failure: BaseException) -> None:
    wrapped = _raised_while_handling(failure, RuntimeError("while reading the row"))
    assert isinstance(unavailable_from(wrapped), ServiceUnavailable)


def test_a_wrong_query_is_not_an_outage() -> None:
    assert unavailable_from(OperationalError("syntax error at or near")) is None
    assert unavailable_from(asyncpg.exceptions.UndefinedTableError("no such table")) is None
