"""Properties of the static validator, checked on generated code (hypothesis).

The validator sees untrusted text from users and models, so it must never raise, and its
verdict must follow the code's meaning, not its surface: a forbidden construct invalidates a
strategy wherever it sits, and renaming variables changes nothing. Valid strategies come
from a small grammar of safe statements; forbidden constructs are injected into them.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import json
import keyword
import re
import string
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.code_rules import ACTIONS, MAX_CODE_BYTES
from services.validation import (
    TRADING_KEYWORDS,
    ValidationReport,
    extract_default_params,
    trading_keywords,
    validate_code,
)

# Deterministic for CI; deadline off because the first parse of a big input can be slow.
FAST = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Generating strategies from the grammar costs hypothesis ~15 ms each: fewer, for a fast suite.
GRAMMAR = settings(FAST, max_examples=40)

# --- arbitrary text ------------------------------------------------------------------------

PYTHONISH_TOKENS = [
    *keyword.kwlist,
    *"()[]{}:;,.=+-*/%@<>!~^&|",
    "**",
    "//",
    "->",
    ":=",
    "==",
    "...",
    "\n",
    "\n    ",
    "\t",
    " ",
    "\\\n",
    "'",
    '"',
    '"""',
    "#",
    "0",
    "1e999",
    "0x",
    "_",
    "__",
    "__class__",
    "__import__",
    "eval",
    "open",
    "execute_strategy",
    "market_data",
    "strategy_params",
    "def execute_strategy(market_data, strategy_params):\n",
    "return {'action': 'buy', 'confidence': 1, 'reason': '', 'metadata': {}}",
    "import os",
    "import numpy as np",
    "DEFAULT_PARAMS",
    "\x00",
    "\ud800",
    "\u2028",
    "\x0c",
    "\r",
    "\ufeff",
]

token_soup = st.lists(st.sampled_from(PYTHONISH_TOKENS), max_size=60).map("".join)
# Surrogates and NULs included: the text arrives through JSON, which can carry both.
any_text = st.text(st.characters(), max_size=300)


def deep(opening: str, middle: str, closing: str) -> st.SearchStrategy[str]:
    return st.integers(1, 3000).map(lambda n: opening * n + middle + closing * n)


nesting = st.one_of(
    deep("(", "1", ")"),
    deep("[", "1", "]"),
    deep("{'a': ", "1", "}"),
    deep("-", "1", ""),
    deep("not ", "x", ""),
    deep("", "1", "+1"),
    deep("lambda: ", "1", ""),
    deep("", "x", ".a"),
    deep("", "f", "()"),
    st.integers(1, 200).map(
        lambda n: "".join(" " * i + "if x:\n" for i in range(n)) + " " * n + "pass\n"
    ),
)
huge_literals = st.one_of(
    st.integers(1, 5000).map(lambda n: "x = " + "9" * n),
    st.integers(1, 70_000).map(lambda n: "x = '" + "a" * n + "'"),
    st.integers(1, 70_000).map(lambda n: "#" * n),
    st.integers(1, 3000).map(lambda n: "x = 1\n" * n),
    st.integers(1, 5000).map(lambda n: "x = [" + "1," * n + "]"),
    st.just("x = 1e999 ** 2 ** 9999"),
)
hostile_text = st.one_of(any_text, token_soup, nesting, huge_literals)

SIGNAL_BODY = "    return {'action': 'hold', 'confidence': 0.5, 'reason': 'r', 'metadata': {}}\n"


def as_entrypoint(snippet: str) -> str:
    """`snippet` as an expression statement inside execute_strategy: reaches the later checks."""
    indented = "\n".join("    " + line for line in snippet.splitlines() or [""])
    return f"def execute_strategy(market_data, strategy_params):\n{indented}\n{SIGNAL_BODY}"


@FAST
@given(st.one_of(hostile_text, hostile_text.map(as_entrypoint)))
def test_validate_code_never_raises_and_is_consistent(code: str) -> None:
    report = validate_code(code)
    assert isinstance(report, ValidationReport)
    if report.valid:
        assert report.syntax_valid and report.has_function and report.errors == ()
    else:
        assert report.errors, "an invalid verdict says why"
    if not report.syntax_valid:
        assert not report.has_function and not report.valid
    assert all(isinstance(e, str) and e for e in report.errors + report.warnings)


@FAST
@given(hostile_text)
def test_report_round_trips_through_dict_and_json(code: str) -> None:
    report = validate_code(code)
    assert ValidationReport.from_dict(report.as_dict()) == report
    stored = json.loads(json.dumps(report.as_dict()))  # what the database keeps
    assert ValidationReport.from_dict(stored) == report


@FAST
@given(hostile_text)
def test_trading_keywords_are_known_keywords(code: str) -> None:
    found = trading_keywords(code)
    assert set(found) <= set(TRADING_KEYWORDS)
    assert len(found) == len(set(found))
    assert validate_code(code).trading_keywords == found


keyword_soup = st.lists(
    st.one_of(st.sampled_from(TRADING_KEYWORDS), st.sampled_from(["_", " ", "x", "(", "S", "1"])),
    max_size=30,
).map("".join)


@FAST
@given(st.one_of(keyword_soup, hostile_text))
def test_trading_keywords_agree_with_one_search_per_word(code: str) -> None:
    """The single-pass pattern finds what a separate search for each word finds."""
    lowered = code.lower()
    expected = tuple(
        word
        for word in TRADING_KEYWORDS
        if re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", lowered)
    )
    assert trading_keywords(code) == expected


# --- DEFAULT_PARAMS --------------------------------------------------------------------------

literal_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.binary(max_size=5),
    st.complex_numbers(max_magnitude=10),
)
literals = st.recursive(
    literal_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.frozensets(st.integers(), max_size=3).map(set),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers(), st.booleans()), inner),
    ),
    max_leaves=15,
)


def literal_source(value: Any) -> str:
    """Source that evaluates to `value`; repr spells infinities as `inf`, Python as `1e999`."""
    return repr(value).replace("inf", "1e999").replace("nan", "(1e999 - 1e999)")


@FAST
@given(
    st.one_of(
        st.dictionaries(st.text(max_size=8), literals, max_size=6).map(literal_source),
        literals.map(literal_source),
        token_soup,
        any_text,
    )
)
def test_default_params_are_always_a_json_object(source: str) -> None:
    params = extract_default_params(f"DEFAULT_PARAMS = {source}\n")
    assert isinstance(params, dict)
    encoded = json.dumps(params, allow_nan=False)  # strict JSON: PostgreSQL's jsonb and browsers
    assert json.loads(encoded) == params


def test_default_params_drop_what_json_cannot_hold() -> None:
    params = extract_default_params(
        "DEFAULT_PARAMS = {'a': 1e999, 'b': [1, -1e999, 2], 'c': {'d': 1e999, 'e': 1}, 'f': 2}"
    )
    assert params == {"b": [1, 2], "c": {"e": 1}, "f": 2}


# --- a grammar of valid strategies ---------------------------------------------------------

VARIABLES = ("price", "fast", "slow", "level", "total", "count", "ratio", "spread", "score")
KEYS = ("period", "threshold", "stop_loss_pct", "take_profit_pct", "fast", "slow")


numbers = st.one_of(
    st.integers(0, 500).map(str),
    st.floats(0, 100, allow_nan=False).map(lambda f: repr(round(f, 3))),
)
expressions = st.recursive(
    st.one_of(
        st.sampled_from(VARIABLES),
        numbers,
        st.just("market_data['close'][-1]"),
        st.integers(1, 50).map(lambda n: f"market_data['close'][-{n}:]"),
        st.tuples(st.sampled_from(KEYS), numbers).map(
            lambda t: f"strategy_params.get('{t[0]}', {t[1]})"
        ),
        st.just("len(market_data['close'])"),
    ),
    lambda sub: st.one_of(
        st.tuples(sub, st.sampled_from("+-*"), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub, sub).map(lambda t: f"({t[0]} / ({t[1]} or 1))"),
        st.tuples(st.sampled_from(("abs", "float", "round")), sub).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(("max", "min")), sub, sub).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        sub.map(lambda e: f"math.sqrt(abs({e}))"),
        sub.map(lambda e: f"float(np.mean({e}))"),
        sub.map(lambda e: f"sum(v * 2 for v in [{e}])"),
        sub.map(lambda e: f"({e}) ** 2"),
    ),
    max_leaves=4,
)
conditions = st.one_of(
    st.tuples(expressions, st.sampled_from((">", "<", ">=", "<=", "==")), expressions).map(
        " ".join
    ),
    st.sampled_from(VARIABLES).map(lambda v: f"not {v}"),
)
signals = st.builds(
    lambda action, confidence, reason: (
        f"return {{'action': '{action}', 'confidence': {confidence}, "
        f"'reason': {reason!r}, 'metadata': {{'price': price}}}}"
    ),
    st.sampled_from(ACTIONS),
    st.floats(0, 1, allow_nan=False).map(lambda f: round(f, 2)),
    st.text(string.ascii_letters + " ", max_size=20),
)


def indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def flatten(statements: list[list[str]]) -> list[str]:
    return [line for statement in statements for line in statement]


# A statement is a list of lines; a block a non-empty list of statements, flattened.
simple_statements = st.one_of(
    st.tuples(st.sampled_from(VARIABLES), expressions).map(lambda t: [f"{t[0]} = {t[1]}"]),
    st.tuples(st.sampled_from(VARIABLES), st.sampled_from("+-*"), expressions).map(
        lambda t: [f"{t[0]} {t[1]}= {t[2]}"]
    ),
    signals.map(lambda s: [s]),
    st.just(["pass"]),
)


def compound(block: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.one_of(
        st.tuples(conditions, block).map(lambda t: [f"if {t[0]}:", *indent(t[1])]),
        st.tuples(conditions, block, block).map(
            lambda t: [f"if {t[0]}:", *indent(t[1]), "else:", *indent(t[2])]
        ),
        st.tuples(st.sampled_from(VARIABLES), st.integers(1, 20), block).map(
            lambda t: [f"for {t[0]} in range({t[1]}):", *indent(t[2])]
        ),
        st.tuples(st.sampled_from(VARIABLES), block).map(
            lambda t: [f"while {t[0]} > 0:", *indent([*t[1], f"{t[0]} -= 1"])]
        ),
        st.tuples(block, block).map(
            lambda t: ["try:", *indent(t[0]), "except ZeroDivisionError:", *indent(t[1])]
        ),
    )


# max_leaves bounds the nesting too, well under the validator's limit of 12 levels.
statements = st.recursive(
    simple_statements,
    lambda sub: compound(st.lists(sub, min_size=1, max_size=3).map(flatten)),
    max_leaves=6,
)
blocks = st.lists(statements, min_size=1, max_size=3).map(flatten)


# Helpers a model commonly writes next to the entrypoint; two bind builtin names as variables
# (`open` and `input` may be; guard names such as `compile` may not: tests/test_guard_probes.py).
HELPERS = (
    "def average(values):\n"
    "    total = 0\n"
    "    for value in values:\n"
    "        total += value\n"
    "    return total / max(len(values), 1)\n",
    "def bar_range(market_data):\n"
    "    open = market_data['open']\n"
    "    close = market_data['close']\n"
    "    return close[-1] - open[-1]\n",
    "def describe(input):\n    return [len(c) for c in input]\n",
)


@st.composite
def strategies(draw: st.DrawFn) -> str:
    prelude = draw(
        st.lists(
            st.sampled_from(
                (
                    "import math",
                    "import numpy as np",
                    "import pandas as pd",
                    "from collections import deque",
                    "DEFAULT_PARAMS = {'period': 14, 'threshold': 0.5}",
                    '"""A strategy."""',
                )
            ),
            unique=True,
        )
    )
    helpers = draw(st.lists(st.sampled_from(HELPERS), unique=True))
    body = [*draw(blocks), draw(signals)]
    function = "def execute_strategy(market_data, strategy_params):\n" + "\n".join(indent(body))
    return "\n".join([*prelude, *helpers, function]) + "\n"


@GRAMMAR
@given(strategies())
def test_the_grammar_yields_valid_strategies(code: str) -> None:
    report = validate_code(code)
    assert report.valid, (code, report.errors)


FORBIDDEN_STATEMENTS = (
    "import os",
    "import subprocess",
    "from os import path",
    "import numpy.ctypeslib",
    "from math import *",
    "x = eval('1')",
    "exec('x = 1')",
    "f = open('/etc/passwd')",
    "c = compile('1', 'f', 'eval')",
    "m = __import__('os')",
    "g = getattr(market_data, 'x')",
    "b = __builtins__",
    "k = market_data.__class__",
    "k = ().__class__.__bases__[0].__subclasses__()",
    "s = '{0.__class__}'.format(1)",
    "np.load('x', allow_pickle=True)",
    "pd.read_csv('/etc/passwd')",
    "market_data['close'].tofile('x')",
    "e = np.ctypeslib",
    "x = 10 ** (10 ** 9)",
    "x = 2 ** 100000",
    "while True:\n    pass",
    "g = (v for v in [1])\nf = g.gi_frame",
    "def helper():\n    return open('/etc/passwd')",
    "x = (lambda: eval('1'))()",
    "x = [open(p) for p in ('a', 'b')]",
)


def bodies(function: ast.FunctionDef) -> list[list[ast.stmt]]:
    """Every statement list inside `function`, the function's own body included."""
    found = [function.body]
    for node in ast.walk(function):
        if node is function:
            continue
        for name in ("body", "orelse", "finalbody"):
            value = getattr(node, name, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                found.append(value)
        for handler in getattr(node, "handlers", []):
            found.append(handler.body)
    return found


def entrypoint(tree: ast.Module) -> ast.FunctionDef:
    return next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "execute_strategy"
    )


@GRAMMAR
@given(strategies(), st.sampled_from(FORBIDDEN_STATEMENTS), st.data())
def test_a_forbidden_statement_anywhere_in_the_body_invalidates(
    code: str, forbidden: str, data: st.DataObject
) -> None:
    tree = ast.parse(code)
    block = data.draw(st.sampled_from(bodies(entrypoint(tree))), label="block")
    position = data.draw(st.integers(0, len(block)), label="position")
    block[position:position] = ast.parse(forbidden).body
    injected = ast.unparse(tree)
    report = validate_code(injected)
    assert report.syntax_valid, injected
    assert not report.valid, (injected, report)


FORBIDDEN_EXPRESSIONS = (
    "eval('1')",
    "open('/etc/passwd')",
    "getattr(market_data, 'close')",
    "vars()",
    "__import__('os')",
    "market_data.__class__",
    "'__'",
    "np.ctypeslib",
    "pd.read_pickle('x')",
    "market_data.to_csv('x')",
    "np.save",
    "market_data['close'].os",
    "2 ** 10 ** 9",
)


@GRAMMAR
@given(strategies(), st.sampled_from(FORBIDDEN_EXPRESSIONS), st.data())
def test_a_forbidden_expression_anywhere_in_the_body_invalidates(
    code: str, forbidden: str, data: st.DataObject
) -> None:
    tree = ast.parse(code)
    replaceable = [
        n
        for n in ast.walk(entrypoint(tree))
        if isinstance(n, ast.expr) and not isinstance(getattr(n, "ctx", ast.Load()), ast.Store)
    ]
    target = data.draw(st.sampled_from(replaceable), label="target")
    replacement = ast.parse(forbidden, mode="eval").body
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, name, replacement)
            elif isinstance(value, list):
                value[:] = [replacement if item is target else item for item in value]
    injected = ast.unparse(tree)
    report = validate_code(injected)
    assert not report.valid, (injected, report)


# --- renaming --------------------------------------------------------------------------------

RESERVED = (
    set(keyword.kwlist)
    | set(keyword.softkwlist)
    | set(dir(builtins))
    | {"np", "pd", "math", "deque", "market_data", "strategy_params", "execute_strategy"}
    | {"average", "bar_range", "describe", "v", "value", "values", "DEFAULT_PARAMS"}
    | set(VARIABLES)
)
fresh_names = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "_", max_size=8),
).filter(lambda n: n not in RESERVED and "__" not in n)


class Rename(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node


def verdict(report: ValidationReport) -> tuple[bool, bool, bool, int]:
    return (report.valid, report.syntax_valid, report.has_function, len(report.errors))


@GRAMMAR
@given(
    strategies(),
    st.none() | st.sampled_from(FORBIDDEN_STATEMENTS),
    st.lists(fresh_names, min_size=len(VARIABLES), max_size=len(VARIABLES), unique=True),
)
def test_renaming_local_variables_never_changes_the_verdict(
    code: str, forbidden: str | None, new_names: list[str]
) -> None:
    if forbidden:  # so that invalid strategies are renamed too
        tree = ast.parse(code)
        entrypoint(tree).body[0:0] = ast.parse(forbidden).body
        code = ast.unparse(tree)
    original = ast.unparse(ast.parse(code))
    renamed = ast.unparse(
        Rename(dict(zip(VARIABLES, new_names, strict=True))).visit(ast.parse(code))
    )
    assume(renamed != original or not code)
    assert verdict(validate_code(renamed)) == verdict(validate_code(original)), renamed


# --- the signature --------------------------------------------------------------------------


@st.composite
def signatures(draw: st.DrawFn) -> str:
    names = iter(["market_data", "strategy_params", "a", "b", "c", "d", "e", "f"])
    posonly = [next(names) for _ in range(draw(st.integers(0, 2)))]
    regular = [next(names) for _ in range(draw(st.integers(0, 3)))]
    positional = posonly + regular
    defaults = draw(st.integers(0, len(positional)))
    spelled = [
        p + ("=1" if i >= len(positional) - defaults else "") for i, p in enumerate(positional)
    ]
    parts = spelled[: len(posonly)] + (["/"] if posonly else []) + spelled[len(posonly) :]
    if draw(st.booleans()):
        parts.append("*args")
    kwonly = [
        next(names) + draw(st.sampled_from(("", "=1"))) for _ in range(draw(st.integers(0, 2)))
    ]
    if kwonly:
        parts += ([] if "*args" in parts else ["*"]) + kwonly
    if draw(st.booleans()):
        parts.append("**kwargs")
    return f"def execute_strategy({', '.join(parts)}):\n{SIGNAL_BODY}"


@FAST
@given(signatures())
def test_an_accepted_signature_can_be_called_with_two_arguments(code: str) -> None:
    report = validate_code(code)
    namespace: dict[str, Any] = {}
    exec(compile(code, "<strategy>", "exec"), namespace)  # generated above: a def, nothing else
    try:
        inspect.signature(namespace["execute_strategy"]).bind({}, {})
        callable_with_two = True
    except TypeError:
        callable_with_two = False
    if report.has_function:
        assert callable_with_two, (code, report)
    if code.startswith("def execute_strategy(market_data, strategy_params):"):
        assert report.has_function, report


def test_size_limit_is_checked_before_parsing() -> None:
    report = validate_code("(" * (MAX_CODE_BYTES + 1))
    assert not report.valid and any("bytes; the limit" in e for e in report.errors)


def test_a_builtin_named_variable_is_local_to_its_scope() -> None:
    """Pins the scoping the injection properties rely on (they may not draw these cases)."""
    entry = "def execute_strategy(market_data, strategy_params):\n"
    signal = SIGNAL_BODY
    same_function = entry + "    open = market_data['open']\n    x = open[-1]\n" + signal
    other_function = HELPERS[1] + entry + "    f = open('/etc/passwd')\n" + signal
    default_argument = "def execute_strategy(market_data, strategy_params, open=open):\n" + signal
    comprehension = entry + "    x = [1 for open in 'ab']\n    f = open('/etc/passwd')\n" + signal
    nested_closure = entry + (
        "    input = market_data['close']\n    inner = lambda: input[-1]\n" + signal
    )
    assert validate_code(same_function).valid
    assert validate_code(nested_closure).valid
    for code in (other_function, default_argument, comprehension):
        report = validate_code(code)
        assert not report.valid and any("'open'" in e for e in report.errors), code
