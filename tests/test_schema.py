"""The committed schema matches the code, and the code keeps every promise of the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
)

from schema import print_schema

ROOT = Path(__file__).resolve().parent.parent
# The public contract, kept in the repository so the check runs in every clone; the copy must
# equal the steering files (../shared) wherever those exist.
CONTRACT = ROOT / "contract" / "api-contract.graphql"
CONTRACT_COPIES = ("api-contract.graphql", "api-contract-next.graphql")
SHARED = ROOT.parent / "shared"


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == print_schema(), (
        "schema.graphql is stale: run `make schema` (python -m server export-schema)"
    )


def contract_differences(contract: GraphQLSchema, served: GraphQLSchema) -> list[str]:
    """Every type, field, argument, default and enum value of `contract` must exist in `served`."""
    problems: list[str] = []
    for name, expected in contract.type_map.items():
        if name.startswith("__"):
            continue
        actual = served.type_map.get(name)
        if actual is None or type(actual) is not type(expected):
            problems.append(f"type {name} missing or of another kind")
            continue
        if isinstance(expected, GraphQLEnumType):
            missing = set(expected.values) - set(actual.values)  # type: ignore[union-attr]
            problems += [f"enum value {name}.{v} missing" for v in sorted(missing)]
        if isinstance(expected, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
            for field_name, field in expected.fields.items():
                served_field = actual.fields.get(field_name)  # type: ignore[union-attr]
                if served_field is None:
                    problems.append(f"field {name}.{field_name} missing")
                    continue
                if str(served_field.type) != str(field.type):
                    problems.append(
                        f"{name}.{field_name}: {served_field.type} instead of {field.type}"
                    )
                if isinstance(expected, GraphQLInputObjectType):
                    if served_field.default_value != field.default_value:
                        problems.append(f"{name}.{field_name}: default differs")
                    continue
                for arg_name, arg in field.args.items():
                    served_arg = served_field.args.get(arg_name)
                    if served_arg is None:
                        problems.append(f"argument {name}.{field_name}({arg_name}) missing")
                    elif str(served_arg.type) != str(arg.type):
                        problems.append(f"{name}.{field_name}({arg_name}): type differs")
                    elif served_arg.default_value != arg.default_value:
                        problems.append(f"{name}.{field_name}({arg_name}): default differs")
                extra_required = [
                    a
                    for a, v in served_field.args.items()
                    if a not in field.args and "!" in str(v.type) and v.default_value is None
                ]
                problems += [f"{name}.{field_name}: new required arg {a}" for a in extra_required]
    return problems


@pytest.mark.parametrize("name", CONTRACT_COPIES)
def test_contract_copy_matches_the_shared_one(name: str) -> None:
    copy = ROOT / "contract" / name
    assert copy.exists(), f"contract/{name} is missing: copy it from ../shared"
    shared = SHARED / name
    if shared.exists():
        assert copy.read_text() == shared.read_text(), f"contract/{name} differs from {shared}"


def test_schema_is_a_superset_of_the_contract() -> None:
    contract = build_schema(CONTRACT.read_text())
    served = build_schema(print_schema())
    assert contract_differences(contract, served) == []


def test_contract_check_catches_drift() -> None:
    contract = build_schema("type Query { a(x: Int = 1): String!  b: [Int!] } enum E { A B }")
    served = build_schema("type Query { a(x: Int = 2): String  c: Int } enum E { A }")
    problems = contract_differences(contract, served)
    assert "Query.a: String instead of String!" in problems
    assert "field Query.b missing" in problems
    assert "enum value E.B missing" in problems
