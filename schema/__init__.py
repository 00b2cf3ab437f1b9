"""The GraphQL schema: types and thin resolvers over services/."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import strawberry
from graphql import GraphQLError, StringValueNode, Visitor, visit
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from schema.errors import ContractSchema
from schema.mutations import Mutation
from schema.queries import Query
from schema.subscriptions import Subscription
from schema.telemetry import OperationTelemetry
from schema.types import BIG_INT_SCALAR, BigInt
from services.code_analysis import CURRENT_CODE_ALLOWANCE, CodeAllowance

MAX_QUERY_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 5_000
CACHE_SIZE = 256

# The limiters create a new rule class per instance; built once here, the rules are the same
# objects on every request, so ValidationCache (keyed by the rules) keeps hitting.
LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_QUERY_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


def check_storable(value: object) -> None:
    """Refuse text nothing downstream can hold: NUL (PostgreSQL's text and jsonb have no room
    for it) and unpaired surrogates (not UTF-8: argon2, asyncpg, sqlite3 and `str.encode` raise).
    JSON carries both, as \\u0000 and \\ud800; refused here they are BAD_USER_INPUT.
    Iterative: a variable may nest as deep as the JSON decoder allows."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise GraphQLError("Text must not contain NUL characters (\\u0000)")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise GraphQLError("Text must not contain unpaired surrogates") from None
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


class _StringLiterals(Visitor):
    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        check_storable(node.value)


class StorableText(SchemaExtension):
    """Every string a request brings, in variables or in literals, passes `check_storable`.

    Checked as execution starts (before any resolver or variable coercion): an error raised
    there becomes a GraphQL error on every transport, where one raised while validating
    escapes strawberry's WebSocket (subscription) path."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        check_storable(context.variables)
        if context.graphql_document is not None:
            visit(context.graphql_document, _StringLiterals())
        yield


class CodeAllowancePerOperation(SchemaExtension):
    """Each operation may carry MAX_REQUEST_CODE_BYTES of code to check, summed over all its
    fields: thirty aliased validateCode calls share one allowance. Set as execution starts,
    in the operation's own task (a WebSocket runs each operation in one), so it ends with it."""

    def on_execute(self) -> Iterator[None]:
        services = getattr(self.execution_context.context, "services", None)
        if services is not None:
            CURRENT_CODE_ALLOWANCE.set(CodeAllowance(services.code_checks.per_operation_bytes))
        yield


def make_schema(*, introspection: bool = True) -> ContractSchema:
    """The API's schema; production may turn introspection off (GRAPHQL_INTROSPECTION)."""
    rules = [*LIMIT_RULES, *([] if introspection else [NoSchemaIntrospectionCustomRule])]
    return ContractSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Suggestions ("Did you mean ...?") would leak the schema when introspection is off.
        config=StrawberryConfig(
            disable_field_suggestions=True, scalar_map={BigInt: BIG_INT_SCALAR}
        ),
        extensions=[
            OperationTelemetry,
            StorableText,
            CodeAllowancePerOperation,
            partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
            partial(AddValidationRules, rules),
            # Parsing and validating the same documents again on every request is most of the
            # GraphQL overhead of a small query: cache both by document text.
            partial(ParserCache, maxsize=CACHE_SIZE),
            partial(ValidationCache, maxsize=CACHE_SIZE),
        ],
    )


schema = make_schema()


def print_schema() -> str:
    return strawberry.printer.print_schema(schema) + "\n"


__all__ = ["make_schema", "print_schema", "schema"]
