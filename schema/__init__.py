"""The GraphQL schema: types and thin resolvers over services/."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import ClassVar

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    Node,
    OperationDefinitionNode,
    StringValueNode,
    Visitor,
    visit,
)
from graphql.validation import NoSchemaIntrospectionCustomRule, ValidationRule
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
from schema.persisted_queries import PersistedQueries
from schema.queries import Query
from schema.subscriptions import Subscription
from schema.telemetry import OperationTelemetry
from schema.types import BIG_INT_SCALAR, BigInt
from services.code_analysis import CURRENT_CODE_ALLOWANCE, CodeAllowance

MAX_QUERY_DEPTH = 12
# Introspection fields included: GraphiQL's introspection query is 14 deep; strawberry's limiter
# skips `__` fields, so a 44-deep `__schema { types { fields { type { ofType ...` passed it.
MAX_DEPTH_WITH_INTROSPECTION = 16
MAX_ALIASES = 30
MAX_TOKENS = 5_000
CACHE_SIZE = 256


class DepthWithIntrospection(ValidationRule):
    """Every field counts, `__schema`, `__type` and `ofType` too, fragments followed once."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        fragments = {
            definition.name.value: definition
            for definition in self.context.document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        if _depth(node, fragments, frozenset()) > MAX_DEPTH_WITH_INTROSPECTION:
            self.report_error(
                GraphQLError(
                    f"The operation exceeds the maximum depth of {MAX_DEPTH_WITH_INTROSPECTION} "
                    "counting introspection fields",
                    node,
                )
            )


def _depth(node: Node, fragments: dict[str, FragmentDefinitionNode], seen: frozenset[str]) -> int:
    selection_set = getattr(node, "selection_set", None)
    if isinstance(node, FragmentSpreadNode):
        name = node.name.value
        if name in seen or name not in fragments:
            return 0
        return _depth(fragments[name], fragments, seen | {name})
    if selection_set is None:
        return 0
    deepest = max((_depth(s, fragments, seen) for s in selection_set.selections), default=0)
    return deepest + 1 if isinstance(node, FieldNode) else deepest


# The limiters create a new rule class per instance; built once here, the rules are the same
# objects on every request, so ValidationCache (keyed by the rules) keeps hitting.
LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_QUERY_DEPTH).validation_rules,
    DepthWithIntrospection,
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
    escapes strawberry's WebSocket (subscription) path. The literals are in the document text,
    so a text that passed once is remembered (like the parse and validation caches): walking
    the whole document was 8% of a small query's time."""

    clean_texts: ClassVar[dict[str, None]] = {}

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        check_storable(context.variables)
        text, document = context.query, context.graphql_document
        if document is not None and (text is None or text not in self.clean_texts):
            visit(document, _StringLiterals())
            if text is not None:
                remember_clean_text(self.clean_texts, text)
        yield


def remember_clean_text(texts: dict[str, None], text: str) -> None:
    if len(texts) >= CACHE_SIZE:
        del texts[next(iter(texts))]  # the oldest: dicts keep insertion order
    texts[text] = None


class CodeAllowancePerOperation(SchemaExtension):
    """Each operation may carry MAX_REQUEST_CODE_BYTES of code to check, summed over all its
    fields: thirty aliased validateCode calls share one allowance. Set as execution starts,
    in the operation's own task (a WebSocket runs each operation in one), so it ends with it."""

    def on_execute(self) -> Iterator[None]:
        services = getattr(self.execution_context.context, "services", None)
        if services is not None:
            CURRENT_CODE_ALLOWANCE.set(CodeAllowance(services.code_checks.per_operation_bytes))
        yield


class TolerantParserCache(ParserCache):
    """ParserCache parses in strawberry's parsing hook, outside the `try` that turns a syntax
    error into a GraphQL error: over a WebSocket the error escaped, and a malformed
    subscription got a bare `complete` instead of the 4400 close graphql-transport-ws
    prescribes. A document that does not parse is left to strawberry, which reports it."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
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
            partial(TolerantParserCache, maxsize=CACHE_SIZE),
            partial(ValidationCache, maxsize=CACHE_SIZE),
            # Last: its refusals replace ValidationCache's result (schema/persisted_queries.py).
            PersistedQueries,
        ],
    )


schema = make_schema()


def print_schema() -> str:
    return strawberry.printer.print_schema(schema) + "\n"


__all__ = ["make_schema", "print_schema", "schema"]
