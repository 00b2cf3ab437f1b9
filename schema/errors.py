"""Every error leaves with one of the contract's codes; unexpected ones say nothing internal."""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from services.errors import ServiceError

log = logging.getLogger("server.errors")

INTERNAL_MESSAGE = "Internal server error"


def _is_unexpected(error: GraphQLError) -> bool:
    """Errors raised by resolvers that are not domain errors; GraphQL's own errors pass."""
    original = error.original_error
    return original is not None and not isinstance(original, (ServiceError, GraphQLError))


class ContractErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=self._should_mask, error_message=INTERNAL_MESSAGE)

    @staticmethod
    def _should_mask(error: GraphQLError) -> bool:
        # Also used to label the errors we keep: parse/validation/argument errors are the
        # client's, so they get BAD_USER_INPUT unless they already carry a code.
        if _is_unexpected(error):
            return True
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
        return False

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        log.error(
            "unexpected error at %s",
            ".".join(str(p) for p in error.path or []),
            exc_info=error.original_error,
        )
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL"}
        return masked
