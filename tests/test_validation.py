"""The static validator: every rule says what is wrong, on which line."""

from __future__ import annotations

import pytest

from services.code_rules import MAX_CODE_BYTES, MAX_NESTING_DEPTH
from services.validation import (
    ValidationReport,
    extract_default_params,
    extract_description,
    validate_code,
)

SIGNAL = "{'action': 'hold', 'confidence': 0.5, 'reason': 'r', 'metadata': {}}"


def strategy(body: str = f"return {SIGNAL}", prelude: str = "") -> str:
    lines = "\n".join("    " + line for line in body.splitlines())
    return f"{prelude}\ndef execute_strategy(market_data, strategy_params):\n{lines}\n"


def test_a_clean_strategy_is_valid() -> None:
    code = strategy(
        "closes = market_data['close']\n"
        "price = closes[-1]\n"
        "if price > strategy_params.get('level', 0):\n"
        "    return {'action': 'buy', 'confidence': 0.8, 'reason': 'price above level',"
        " 'metadata': {}}\n"
        f"return {SIGNAL}",
        prelude="import math\nimport numpy as np\nfrom collections import deque\n",
    )
    report = validate_code(code)
    assert report.valid, report.errors
    assert report.syntax_valid and report.has_function and report.has_imports
    assert report.errors == ()
    assert {"buy", "hold", "price"} <= set(report.trading_keywords)


def test_syntax_error_names_the_line() -> None:
    report = validate_code("def execute_strategy(market_data, strategy_params):\n    return (\n")
    assert not report.valid and not report.syntax_valid and not report.has_function
    assert report.errors[0].startswith("Syntax error")
    assert "line" in report.errors[0]


def test_missing_entrypoint() -> None:
    report = validate_code("def strategy(data):\n    return 'buy'\n")
    assert not report.valid and report.syntax_valid and not report.has_function
    assert report.errors == (
        "No top-level function execute_strategy(market_data, strategy_params) defined",
    )


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (strategy(prelude="import os"), "Import of 'os' is not allowed"),
        (strategy(prelude="import numpy.ctypeslib"), "'ctypeslib' is not allowed"),
        (strategy(prelude="from subprocess import run"), "Import of 'subprocess'"),
        (strategy(prelude="from . import x"), "Relative imports"),
        (strategy(prelude="from math import *"), "import *"),
        (strategy("x = eval('1')\n" + f"return {SIGNAL}"), "Use of 'eval'"),
        (strategy("exec('x=1')\n" + f"return {SIGNAL}"), "Use of 'exec'"),
        (strategy("f = open('/etc/passwd')\n" + f"return {SIGNAL}"), "Use of 'open'"),
        (strategy("m = __import__('os')\n" + f"return {SIGNAL}"), "'__import__'"),
        (strategy("g = getattr(1, 'real')\n" + f"return {SIGNAL}"), "Use of 'getattr'"),
        (strategy("b = __builtins__\n" + f"return {SIGNAL}"), "'__builtins__'"),
        (strategy("s = ().__class__.__base__\n" + f"return {SIGNAL}"), "dunder attribute"),
        (strategy("s = '{0.__class__}'.format(1)\n" + f"return {SIGNAL}"), "'__'"),
        (strategy("s = ('_' * 2 + 'class' + '_' * 2)\n" + f"return {SIGNAL}"), None),
        (strategy("g = (x for x in [1])\nf = g.gi_frame\n" + f"return {SIGNAL}"), "'gi_frame'"),
        (
            strategy("import numpy as np\nnp.load('x', allow_pickle=True)\n" + f"return {SIGNAL}"),
            "'load'",
        ),
        (
            strategy("import pandas as pd\npd.read_csv('/etc/passwd')\n" + f"return {SIGNAL}"),
            "'read_csv'",
        ),
        (strategy("market_data['close'].tofile('x')\n" + f"return {SIGNAL}"), "'tofile'"),
        (strategy("x = 10 ** (10 ** 9)\n" + f"return {SIGNAL}"), "Nested powers"),
        (strategy("x = 2 ** 100000\n" + f"return {SIGNAL}"), "too large"),
        (strategy("while True:\n    pass"), "never ends"),
        (strategy("return None"), "Return a dict"),
        (strategy("return {'confidence': 1}"), "no 'action'"),
        (
            strategy("return {'action': 'long', 'confidence': 0.5, 'reason': '', 'metadata': {}}"),
            "'long' is not one of buy, sell, hold",
        ),
        (
            strategy("return {'action': 'buy', 'confidence': 1.5, 'reason': '', 'metadata': {}}"),
            "confidence 1.5 is not between 0 and 1",
        ),
        ("async def execute_strategy(market_data, strategy_params):\n    return 1\n", "async"),
        ("def execute_strategy(market_data):\n    return 1\n", "must accept two arguments"),
        ("def execute_strategy(market_data, strategy_params):\n    x = 1\n", "never returns"),
    ],
)
def test_forbidden_or_broken_code_is_rejected(code: str, message: str | None) -> None:
    report = validate_code(code)
    if message is None:  # built strings are harmless without getattr; the sandbox owns the rest
        assert report.valid, report.errors
        return
    assert not report.valid
    assert any(message in error for error in report.errors), report.errors


def test_errors_carry_line_numbers() -> None:
    report = validate_code(strategy(prelude="import os\n"))
    assert report.errors[0].startswith("Line 1: Import of 'os'")


def test_size_and_nesting_bounds() -> None:
    huge = strategy() + "#" * MAX_CODE_BYTES
    assert any("bytes; the limit" in e for e in validate_code(huge).errors)

    depth = MAX_NESTING_DEPTH + 1
    body = "".join("    " * i + "if True:\n" for i in range(depth)) + "    " * depth + "pass\n"
    report = validate_code(strategy(body + f"return {SIGNAL}"))
    assert any("nested more than" in e for e in report.errors)

    pathological = "x = " + "(" * 5000 + "1" + ")" * 5000
    report = validate_code(pathological)
    assert not report.valid and not report.syntax_valid


def test_a_variable_named_like_a_builtin_is_fine() -> None:
    code = strategy("open = market_data['open']\n" + f"return {SIGNAL}")
    assert validate_code(code).valid


def test_warnings_do_not_invalidate() -> None:
    code = strategy("print('debug')\nx = market_data['close']._values\n" + f"return {SIGNAL}")
    report = validate_code(code + "\nexecute_strategy({}, {})\n")
    assert report.valid, report.errors
    assert any("print()" in w for w in report.warnings)
    assert any("private attribute '_values'" in w for w in report.warnings)
    assert any("Top-level statements" in w for w in report.warnings)
    assert any("never used" in w for w in report.warnings)


def test_nested_helper_returns_do_not_count_for_the_entrypoint() -> None:
    code = strategy("def helper():\n    return 1\nhelper()")
    assert "execute_strategy never returns a signal" in " ".join(validate_code(code).errors)


def test_report_round_trips_through_storage() -> None:
    report = validate_code(strategy(prelude="import os"))
    assert ValidationReport.from_dict(report.as_dict()) == report


def test_default_params_and_description() -> None:
    code = (
        'DEFAULT_PARAMS = {"fast": 5, "slow": 20.5, "name": "x", "nested": {"a": [1, 2]}}\n'
        "def execute_strategy(market_data, strategy_params):\n"
        '    """Buys dips.\n\n    Details here."""\n'
        f"    return {SIGNAL}\n"
    )
    assert extract_default_params(code) == {
        "fast": 5,
        "slow": 20.5,
        "name": "x",
        "nested": {"a": [1, 2]},
    }
    assert extract_description(code) == "Buys dips."
    assert extract_default_params("DEFAULT_PARAMS = compute()") == {}
    assert extract_default_params("def (") == {}
    assert extract_description("x = 1") == ""
