"""Schemathesis fuzzes every query and mutation of the real server, as an authenticated user.

Whatever the input, the server must answer within the error contract: no 5xx, nothing of its
internals (tracebacks, file paths) in a body, every error coded UNAUTHENTICATED, FORBIDDEN,
NOT_FOUND, BAD_USER_INPUT, RATE_LIMITED, STRATEGY_ERROR or SERVICE_UNAVAILABLE (a dependency
down or overloaded). INTERNAL is in the contract but always a bug.

Schemathesis writes each operation's queries; the test also sends them with their arguments
as variables, and with hostile text appended to one string. Random inputs reach a given place
only by luck, so deterministic companions put the text no store can hold (NUL, unpaired
surrogates) in every text argument of otherwise valid requests, and send deeply nested JSON.

FUZZ_EXAMPLES sets the examples per operation (default 50; the module takes about 15 s on two
cores). The run is derandomized, so CI sees the same inputs every time.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes
from schemathesis.specs.graphql.scalars import CUSTOM_SCALARS

from tests.support.api import PASSWORD, REGISTER, ROOT
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.process

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
CONTRACT_CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "RATE_LIMITED",
    "STRATEGY_ERROR",
    "SERVICE_UNAVAILABLE",
}
SEED = """mutation($prompt: String!) {
  generateStrategy(input: {prompt: $prompt}) { strategy { id } generationLog { id } }
}"""


@pytest.fixture(scope="module")
def fuzz_server(
    database_url: str, database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """`python -m server` on the run's database, in a scratch directory (its ./data)."""
    server = ServerProcess(
        tmp_path_factory.mktemp("fuzz"),
        DATABASE_URL=database_url,
        SECRET_KEY="fuzz-secret-key-with-enough-entropy-0123456789",
        # Limits high enough never to answer RATE_LIMITED, which would hide what lies behind them.
        RATE_LIMIT_GENERATE="100000/minute",
        RATE_LIMIT_EXECUTE="100000/minute",
        RATE_LIMIT_LOGIN="100000/minute",
        RATE_LIMIT_AUTH_BY_ADDRESS="100000/minute",
        BACKTEST_TIMEOUT_SECONDS="10",
        LOG_LEVEL="warning",
    )
    # The `database` fixture migrated already; migrating must be a no-op, as on a deployed server.
    with server:
        yield server


def json_values() -> st.SearchStrategy[graphql.ValueNode]:
    """GraphQL literals for the JSON scalar (schemathesis has no strategy for custom scalars)."""
    names = st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,8}\Z")
    leaves = st.one_of(
        st.just(nodes.Null),
        st.booleans().map(nodes.Boolean),
        st.integers(-(2**31), 2**31 - 1).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.text(max_size=20).map(nodes.String),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(nodes.List),
            st.dictionaries(names, inner, max_size=4).map(
                lambda d: nodes.Object(
                    [
                        graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v)
                        for k, v in d.items()
                    ]
                )
            ),
        ),
        max_leaves=8,
    )


@pytest.fixture(scope="module")
def fuzz_user(fuzz_server: ServerProcess) -> tuple[dict[str, str], list[str]]:
    """A registered user's auth header, and ids of real rows for UUID arguments to hit."""
    base = fuzz_server.base
    with httpx.Client(base_url=base, timeout=60) as http:
        registered = http.post(
            "/graphql",
            json={
                "query": REGISTER,
                "variables": {"email": "fuzzer@example.com", "password": PASSWORD},
            },
        ).json()
        auth = {"Authorization": f"Bearer {registered['data']['register']['token']}"}
        ids = [registered["data"]["register"]["user"]["id"]]
        for prompt in ("RSI scalping, 2% stop loss", "SMA 10/50 crossover", "Bollinger breakout"):
            seeded = http.post(
                "/graphql", headers=auth, json={"query": SEED, "variables": {"prompt": prompt}}
            ).json()
            payload = seeded["data"]["generateStrategy"]
            ids += [payload["strategy"]["id"], payload["generationLog"]["id"]]
    return auth, ids


@pytest.fixture(scope="module", autouse=True)
def scalar_strategies(fuzz_user: tuple[dict[str, str], list[str]]) -> Iterator[None]:
    """Strategies for the custom scalars; UUIDs are often ids of real rows, to get past lookups.

    Schemathesis reads its registry on every draw, so registering here (and undoing it after,
    the registry being global) is enough.
    """
    saved = dict(CUSTOM_SCALARS)
    schemathesis.graphql.scalar("JSON", json_values())
    schemathesis.graphql.scalar(
        "UUID", st.one_of(st.sampled_from(fuzz_user[1]), st.uuids().map(str)).map(nodes.String)
    )
    yield
    CUSTOM_SCALARS.clear()
    CUSTOM_SCALARS.update(saved)


# The exported schema, which test_schema keeps identical to the server's. Plain pytest
# parametrization over its operations: with pytest 9.2, schemathesis' own (`@schema.parametrize`,
# `schemathesis.pytest.from_fixture`) sets `Node._nodeid`, which pytest no longer has, so every
# item gets the same id or the lazy loader fails.
OPERATIONS = [
    result.ok()
    for result in schemathesis.graphql.from_path(ROOT / "schema.graphql").get_all_operations()
]


def leaked_internals(text: str, workdir: Path) -> list[str]:
    markers = ["Traceback", 'File "', str(ROOT), str(workdir), sys.prefix, "site-packages"]
    return [m for m in markers if m in text]


# Text that has broken servers: NUL (PostgreSQL refuses it), unpaired surrogates (not UTF-8),
# bidi overrides, sizes past the limits, and the usual injection probes.
HOSTILE_TEXT = (
    "\x00",
    "\ud800",
    "a\udfffb",
    "\u202eevil",
    "\U0001f4a5",
    "\\",
    '"',
    "'; DROP TABLE users; --",
    "../../../../etc/passwd",
    "{{7*7}}${7*7}%s%n",
    "\r\n\t\x0b\x0c\x1b[31m",
    "A" * 70_000,
)


def with_variables(document: graphql.DocumentNode, operation: Any) -> tuple[str, dict[str, Any]]:
    """The same request with the root field's arguments passed as variables.

    Variables take another path through the server (JSON, then coercion) than literals, and
    carry what a GraphQL literal cannot (unpaired surrogates, as JSON escapes).
    """
    definition = document.definitions[0]
    assert isinstance(definition, graphql.OperationDefinitionNode)
    field = definition.selection_set.selections[0]
    assert isinstance(field, graphql.FieldNode)
    declared = operation.definition.raw.args  # a graphql.GraphQLField's arguments
    variables: dict[str, Any] = {}
    definitions, arguments = [], []
    for number, argument in enumerate(field.arguments or ()):
        name = argument.name.value
        if name not in declared:  # a negative case's unknown argument stays as it is
            arguments.append(argument)
            continue
        variable = graphql.VariableNode(name=graphql.NameNode(value=f"v{number}"))
        variables[f"v{number}"] = graphql.value_from_ast_untyped(argument.value)
        definitions.append(
            graphql.VariableDefinitionNode(
                variable=variable, type=graphql.parse_type(str(declared[name].type))
            )
        )
        arguments.append(graphql.ArgumentNode(name=argument.name, value=variable))
    rebuilt = graphql.OperationDefinitionNode(
        operation=definition.operation,
        variable_definitions=tuple(definitions),
        directives=definition.directives,
        selection_set=graphql.SelectionSetNode(
            selections=(
                graphql.FieldNode(
                    alias=field.alias,
                    name=field.name,
                    arguments=tuple(arguments),
                    directives=field.directives,
                    selection_set=field.selection_set,
                ),
            )
        ),
    )
    return graphql.print_ast(graphql.DocumentNode(definitions=(rebuilt,))), variables


def string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in string_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in string_paths(v, (*path, i))]
    return []


def replace_at(value: Any, path: tuple[Any, ...], change: Any) -> Any:
    if not path:
        return change(value)
    head, *rest = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = replace_at(value[head], tuple(rest), change)
    return copy


class _AppendToString(graphql.Visitor):
    """Appends `text` to the `target`-th string literal of a document (counting them too)."""

    def __init__(self, target: int, text: str) -> None:
        super().__init__()
        self.seen, self.target, self.text = 0, target, text

    def enter_string_value(self, node: graphql.StringValueNode, *_: Any) -> Any:
        self.seen += 1
        if self.seen - 1 == self.target:
            return graphql.StringValueNode(value=node.value + self.text)
        return None


def append_to_a_literal(document: graphql.DocumentNode, where: int, text: str) -> str:
    counter = _AppendToString(-1, "")
    graphql.visit(document, counter)
    if counter.seen:
        document = graphql.visit(document, _AppendToString(where % counter.seen, text))
    return graphql.print_ast(document)


def cases(operation: Any) -> st.SearchStrategy[Any]:
    """Valid queries, and (where the operation has arguments) ones of the wrong types."""
    valid = operation.as_strategy(GenerationMode.POSITIVE)
    if not operation.definition.raw.args:  # a graphql.GraphQLField
        return valid
    return st.one_of(valid, operation.as_strategy(GenerationMode.NEGATIVE))


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_any_input_gets_a_contract_answer(
    operation: Any, fuzz_server: ServerProcess, fuzz_user: tuple[dict[str, str], list[str]]
) -> None:
    base = fuzz_server.base
    auth, _ = fuzz_user

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=cases(operation),
        as_variables=st.booleans(),
        hostile=st.sampled_from((None, None, None, None, *HOSTILE_TEXT)),
        where=st.integers(0, 50),
    )
    def answers_within_contract(
        case: Any, as_variables: bool, hostile: str | None, where: int
    ) -> None:
        document = graphql.parse(case.body)
        if as_variables:
            query, variables = with_variables(document, operation)
            paths = string_paths(variables)
            if hostile is not None and paths:
                path = paths[where % len(paths)]
                variables = replace_at(variables, path, lambda text: text + hostile)
            case.body = json.dumps({"query": query, "variables": variables}).encode()
        elif hostile is not None:
            case.body = append_to_a_literal(document, where, hostile)
        headers = {**auth, "Content-Type": "application/json"}
        response = case.call(base_url=f"{base}/graphql", headers=headers, timeout=60)
        assert_contract(response.status_code, response.text, repr(case.body), fuzz_server)

    answers_within_contract()


BARS = [100.0 + i % 7 for i in range(60)]
MARKET = {"open": BARS, "high": BARS, "low": BARS, "close": BARS, "volume": BARS}
CSV = "timestamp,open,high,low,close,volume\n" + "\n".join(
    f"{1_700_000_000 + 86_400 * i},{p},{p},{p},{p},1000" for i, p in enumerate(BARS)
)
CODE = (
    "def execute_strategy(market_data, strategy_params):\n"
    "    return {'action': 'hold', 'confidence': 0.5, 'reason': 'x', 'metadata': {}}\n"
)
UPDATE = (
    "mutation($id: UUID!, $i: UpdateStrategyInput!) { updateStrategy(id: $id, input: $i) { id } }"
)
RUN = """mutation($id: UUID!, $m: MarketDataInput!, $p: JSON) {
  runStrategy(id: $id, marketData: $m, parameters: $p) { action } }"""
BACKTEST = (
    "mutation($id: UUID!, $i: BacktestInput!) { backtestStrategy(id: $id, input: $i) { bars } }"
)
GENERATE = (
    "mutation($i: GenerateStrategyInput!) { generateStrategy(input: $i) { strategy { id } } }"
)
VALIDATE = "mutation($c: String!, $s: Boolean!) { validateCode(code: $c, smokeTest: $s) { valid } }"
LOGIN = REGISTER.replace("register(", "login(").replace(" user { id email isStaff }", "")
Variables = Callable[[str, "Targets"], dict[str, Any]]


@dataclass(frozen=True)
class Targets:
    """Rows of this test's own: the fuzzing before it may have deleted the seeded ones."""

    email: str  # unique per case, so a registration is never refused as a duplicate
    updated: str  # a strategy that updates may break
    run: str  # a strategy kept intact for runs and backtests


# Requests valid but for `t`, so the text travels as far as it can: to storage, the sandbox.
TEXT_PLACES: dict[str, tuple[str, Variables]] = {
    "register.email": (REGISTER, lambda t, x: {"email": f"a{t}{x.email}", "password": PASSWORD}),
    "register.password": (REGISTER, lambda t, x: {"email": x.email, "password": PASSWORD + t}),
    "login.email": (LOGIN, lambda t, x: {"email": f"{t}fuzzer@example.com", "password": PASSWORD}),
    "login.password": (LOGIN, lambda t, x: {"email": "fuzzer@example.com", "password": t * 20}),
    "generateStrategy.prompt": (GENERATE, lambda t, x: {"i": {"prompt": f"RSI {t} scalping"}}),
    "generateStrategy.name": (GENERATE, lambda t, x: {"i": {"prompt": "RSI", "name": t}}),
    "updateStrategy.name": (UPDATE, lambda t, x: {"id": x.updated, "i": {"name": t}}),
    "updateStrategy.description": (UPDATE, lambda t, x: {"id": x.updated, "i": {"description": t}}),
    "updateStrategy.generatedCode": (
        UPDATE,
        lambda t, x: {"id": x.updated, "i": {"generatedCode": CODE + f"# {t}\n"}},
    ),
    "updateStrategy.parameters": (
        UPDATE,
        lambda t, x: {"id": x.updated, "i": {"parameters": {"k": t, t: 1}}},
    ),
    "validateCode.code": (VALIDATE, lambda t, x: {"c": CODE + f"# {t}\n", "s": False}),
    "validateCode.code.smoke": (VALIDATE, lambda t, x: {"c": CODE + f"X = '{t}'\n", "s": True}),
    "runStrategy.symbol": (RUN, lambda t, x: {"id": x.run, "m": {**MARKET, "symbol": t}}),
    "runStrategy.parameters": (RUN, lambda t, x: {"id": x.run, "m": MARKET, "p": {"k": t}}),
    "backtestStrategy.sample": (BACKTEST, lambda t, x: {"id": x.run, "i": {"sample": t}}),
    "backtestStrategy.csv": (BACKTEST, lambda t, x: {"id": x.run, "i": {"csv": CSV + t}}),
    "backtestStrategy.parameters": (
        BACKTEST,
        lambda t, x: {"id": x.run, "i": {"csv": CSV, "parameters": {"k": t}}},
    ),
}


@pytest.fixture(scope="module")
def own_strategies(
    fuzz_server: ServerProcess, fuzz_user: tuple[dict[str, str], list[str]]
) -> tuple[str, str]:
    base = fuzz_server.base
    made = []
    for prompt in ("RSI scalping", "SMA crossover"):
        body = httpx.post(
            f"{base}/graphql",
            headers=fuzz_user[0],
            json={"query": GENERATE, "variables": {"i": {"prompt": prompt}}},
            timeout=60,
        ).json()
        made.append(body["data"]["generateStrategy"]["strategy"]["id"])
    return made[0], made[1]


@pytest.mark.parametrize("text", ["\x00", "\ud800"], ids=["NUL", "lone-surrogate"])
@pytest.mark.parametrize("place", list(TEXT_PLACES))
def test_text_no_store_can_hold_gets_a_contract_answer(
    place: str,
    text: str,
    fuzz_server: ServerProcess,
    fuzz_user: tuple[dict[str, str], list[str]],
    own_strategies: tuple[str, str],
) -> None:
    """Deterministic companion of the fuzzing: JSON carries NUL and unpaired surrogates, which
    PostgreSQL (NUL) and UTF-8 (surrogates) cannot hold; the answer must still be a contract
    one, not INTERNAL. Random fuzzing reaches these places only by luck."""
    base = fuzz_server.base
    query, variables = TEXT_PLACES[place]
    targets = Targets(f"{place}.{ord(text)}@example.com", *own_strategies)
    payload = json.dumps({"query": query, "variables": variables(text, targets)})  # \\u escapes
    response = httpx.post(
        f"{base}/graphql",
        content=payload.encode(),
        headers={**fuzz_user[0], "Content-Type": "application/json"},
        timeout=60,
    )
    assert_contract(response.status_code, response.text, payload, fuzz_server)


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deeply_nested_json_is_not_a_server_error(
    depth: int, fuzz_server: ServerProcess, fuzz_user: tuple[dict[str, str], list[str]]
) -> None:
    """JSON nested past Python's recursion limit must be refused as the client's error."""
    base = fuzz_server.base
    nested = '{"a":' * depth + "1" + "}" * depth
    payload = '{"query": "mutation($c: String!) { validateCode(code: $c) { valid } }",'
    payload += f'"variables": {{"c": "x", "extra": {nested}}}}}'
    response = httpx.post(
        f"{base}/graphql",
        content=payload.encode(),
        headers={**fuzz_user[0], "Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert not leaked_internals(response.text, fuzz_server.workdir), response.text[:2000]


def assert_contract(status: int, text: str, request: str, server: ServerProcess) -> None:
    """No 5xx, no internals in the body, only the contract's error codes and never INTERNAL."""
    request = request[:3000]
    assert status < 500, (status, text[:2000], request)
    assert not leaked_internals(text, server.workdir), (text[:2000], request)
    body = json.loads(text)
    codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
    server_log = server.output()[-3000:]
    assert "INTERNAL" not in codes, (body, request, server_log)
    assert set(codes) <= CONTRACT_CODES, (body, request)
