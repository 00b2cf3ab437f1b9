"""The GraphQL schema: types and thin resolvers over services/."""

from __future__ import annotations

import strawberry

from schema.errors import ContractErrors
from schema.mutations import Mutation
from schema.queries import Query

schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=[ContractErrors])


def print_schema() -> str:
    return strawberry.printer.print_schema(schema) + "\n"


__all__ = ["print_schema", "schema"]
