"""Every error leaves with one of the contract's codes; unexpected ones say nothing internal.

Done in `Schema.process_errors`, which strawberry calls for every error of every path (parse,
validation, execution, subscriptions), before any extension sees the result. An extension
such as MaskErrors misses errors raised by other extensions' hooks (the parser cache's, say).
"""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql.error import GraphQLError

from services import telemetry
from services.errors import ServiceError
from services.outages import unavailable_from
from services.request_ids import current_request_id

log = logging.getLogger("server.errors")

INTERNAL_MESSAGE = "Internal server error"


def is_unexpected(error: GraphQLError) -> bool:
    """Raised by our code but not a domain error: a bug, whose details stay in the logs."""
    original = error.original_error
    return original is not None and not isinstance(original, ServiceError | GraphQLError)


def apply_contract(error: GraphQLError) -> None:
    """Give `error` a contract code in place; replace an unexpected error's message."""
    if is_unexpected(error) and (unavailable := unavailable_from(error.original_error)):
        # A dependency is down: logged once per outage (services/outages.py), not per request.
        error.message = unavailable.message
        error.extensions = dict(unavailable.extensions)
    elif is_unexpected(error):
        log.error(
            "unexpected error at %s",
            ".".join(str(p) for p in error.path or []) or "(operation)",
            exc_info=error.original_error,
        )
        error.message = INTERNAL_MESSAGE
        error.extensions = {"code": "INTERNAL"}
    elif not (error.extensions or {}).get("code"):
        # Parse, validation and argument coercion errors: the client's input.
        error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
    # A user quoting the request id lets an operator find the logged details.
    if (error.extensions or {}).get("code") == "INTERNAL" and (request_id := current_request_id()):
        error.extensions = {**(error.extensions or {}), "requestId": request_id}


class ContractSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        for error in errors:
            apply_contract(error)
            telemetry.record_graphql_error(str((error.extensions or {}).get("code")))
