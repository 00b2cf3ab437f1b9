"""The GraphQL side of persisted operations (services/persisted_queries.py holds the rules).

A schema extension, so one boundary covers every transport: GET and POST (where Apollo's
persisted-query link sends hashes) and WebSocket operations (checked in trusted mode).

Strawberry refuses a request without `query` before parsing, so the document is filled in
as the operation starts. A refusal must reach the client as a GraphQL error on every
transport, and an exception raised in `on_operation` escapes strawberry's WebSocket path:
the operation runs a placeholder document (`query <its name> { __typename }`) instead, and
the refusal becomes its only validation error. That needs this extension after
ValidationCache (which overwrites the validation errors): make_schema lists it last.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from services.errors import ServiceError
from services.persisted_queries import PersistedOperations

GRAPHQL_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def placeholder(operation_name: str | None) -> str:
    """A document with the operation the request names, which strawberry looks up."""
    if operation_name and GRAPHQL_NAME.match(operation_name):
        return f"query {operation_name} {{ __typename }}"
    return "{ __typename }"


class PersistedQueries(SchemaExtension):
    refusal: GraphQLError | None = None

    def _operations(self) -> PersistedOperations | None:
        services = getattr(self.execution_context.context, "services", None)
        return getattr(services, "persisted", None)

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context
        operations = self._operations()
        if operations is None or not operations.applies_to(context.operation_extensions):
            yield  # the common case, a plain document in an open server: nothing to do
            return
        try:
            resolved = await operations.resolve(context.query, context.operation_extensions)
        except ServiceError as refused:
            self.refusal = GraphQLError(
                str(refused), original_error=refused, extensions=refused.extensions
            )
            context.query = placeholder(context.operation_name)
            context.graphql_document = None
            yield
            return
        context.query = resolved.document
        yield
        # Reached only when the operation ran (strawberry raises through here otherwise), so
        # only documents that parsed and validated are kept: none that broke the token limit.
        if (
            resolved.register_as is not None
            and resolved.document
            and not context.pre_execution_errors
        ):
            await operations.register(resolved.register_as, resolved.document)

    def on_validate(self) -> Iterator[None]:
        if self.refusal is not None:
            self.execution_context.pre_execution_errors = [self.refusal]
        yield
