"""The GraphQL schema: types and thin resolvers over services/."""

from __future__ import annotations

from functools import partial

import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from schema.errors import ContractSchema
from schema.mutations import Mutation
from schema.queries import Query

# Parsing and validating the same documents again on every request is most of the GraphQL
# overhead of a small query: cache both by document text.
schema = ContractSchema(
    query=Query,
    mutation=Mutation,
    extensions=[
        partial(ParserCache, maxsize=256),
        partial(ValidationCache, maxsize=256),
    ],
)


def print_schema() -> str:
    return strawberry.printer.print_schema(schema) + "\n"


__all__ = ["print_schema", "schema"]
