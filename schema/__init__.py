"""The GraphQL schema: types and thin resolvers over services/."""

from __future__ import annotations

from functools import partial

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from schema.errors import ContractSchema
from schema.mutations import Mutation
from schema.queries import Query

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


def make_schema(*, introspection: bool = True) -> ContractSchema:
    """The API's schema; production may turn introspection off (GRAPHQL_INTROSPECTION)."""
    rules = [*LIMIT_RULES, *([] if introspection else [NoSchemaIntrospectionCustomRule])]
    return ContractSchema(
        query=Query,
        mutation=Mutation,
        # Suggestions ("Did you mean ...?") would leak the schema when introspection is off.
        config=StrawberryConfig(disable_field_suggestions=True),
        extensions=[
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
