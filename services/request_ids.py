"""The id of the request being served, for every layer's logs and errors.

The server's middleware sets `REQUEST_ID` for the length of one request; log formatting and
the GraphQL error contract (an INTERNAL error carries the id, so a user can quote it) read it.
"""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served (None outside of one)."""
    return REQUEST_ID.get()
