"""validate_code's exact verdicts, one rule at a time: each error and warning, word for word and
with its line, for code just inside and just outside each rule. Written for `make mutation`
(docs/testing.md): a changed bound, a dropped branch or a reworded message fails a case here.
The messages are what a trader reads, so their wording is part of the contract.
"""

# ruff: noqa: E501  (the table below holds whole strategies, one a line)
from __future__ import annotations

import math

import pytest

from services.validation import (
    ValidationReport,
    extract_default_params,
    extract_description,
    trading_keywords,
    validate_code,
    with_errors,
)

HEAD = "def execute_strategy(market_data, strategy_params):\n"
SIGNAL = "    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n"

# (code, errors, warnings): the whole report's findings, in order.
CASES = [
    pytest.param(
        "from . import x\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 1: Relative imports are not allowed",),
        ("Line 2: 'strategy_params' is never used: the strategy ignores parameters",),
        id="relimport",
    ),
    pytest.param(
        "from math import *\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 1: 'from ... import *' is not allowed: import names",),
        ("Line 2: 'strategy_params' is never used: the strategy ignores parameters",),
        id="star",
    ),
    pytest.param(
        "from math import __dict__\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 1: Access to dunder attribute '__dict__' is not allowed",),
        ("Line 2: 'strategy_params' is never used: the strategy ignores parameters",),
        id="fromdunder",
    ),
    pytest.param(
        "from math import _x\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        (
            "Line 1: Access to private attribute '_x'",
            "Line 2: 'strategy_params' is never used: the strategy ignores parameters",
        ),
        id="fromprivate",
    ),
    pytest.param(
        "import numpy.ctypeslib\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 1: Access to 'ctypeslib' is not allowed (file, OS or internals)",),
        ("Line 2: 'strategy_params' is never used: the strategy ignores parameters",),
        id="importsub",
    ),
    pytest.param(
        "import math as getattr\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 1: 'getattr' cannot be rebound: the sandbox guards it",),
        ("Line 2: 'strategy_params' is never used: the strategy ignores parameters",),
        id="importas",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = __builtins__\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 2: Access to '__builtins__' is not allowed",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="dunder_name",
    ),
    pytest.param(
        "y = __name__\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 2: 'strategy_params' is never used: the strategy ignores parameters",),
        id="allowed_dunder",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    hasattr = 1\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 2: 'hasattr' cannot be rebound: the sandbox guards it",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="bind_hasattr",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    open = market_data['open']\n    x = open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="bind_open_ok",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = open('f')\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 2: Use of 'open' is not allowed",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="open_call",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params, eval=1):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 1: 'eval' cannot be rebound: the sandbox guards it",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="arg",
    ),
    pytest.param(
        "def exec():\n    return 1\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 1: 'exec' cannot be rebound: the sandbox guards it",),
        ("Line 3: 'strategy_params' is never used: the strategy ignores parameters",),
        id="funcname",
    ),
    pytest.param(
        "class vars:\n    pass\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 1: 'vars' cannot be rebound: the sandbox guards it",),
        ("Line 3: 'strategy_params' is never used: the strategy ignores parameters",),
        id="classname",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    try:\n        pass\n    except Exception as dir:\n        pass\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 4: 'dir' cannot be rebound: the sandbox guards it",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="except",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    match 1:\n        case compile:\n            pass\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 3: 'compile' cannot be rebound: the sandbox guards it",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="match",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    match [1]:\n        case [*locals]:\n            pass\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 3: 'locals' cannot be rebound: the sandbox guards it",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="matchstar",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    match {}:\n        case {**globals}:\n            pass\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 3: 'globals' cannot be rebound: the sandbox guards it",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="matchmap",
    ),
    pytest.param(
        "def f():\n    x = 1\n    def g():\n        nonlocal x\n    return g\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 6: 'strategy_params' is never used: the strategy ignores parameters",),
        id="nonlocal",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = market_data._private\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        (
            "Line 2: Access to private attribute '_private'",
            "Line 1: 'strategy_params' is never used: the strategy ignores parameters",
        ),
        id="private_attr",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = 'a__b'\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 2: Strings containing '__' are not allowed",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="dunder_str",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = 2 ** 3 ** 4\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 2: Nested powers are not allowed (result too large)",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="nested_pow",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = 2 ** 10001\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 2: Exponent 10001 is too large",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="big_exp",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = 2 ** 10000\n    y = 2 ** -10000\n    z = 2 ** True\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="ok_exp",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = 2 ** -10001\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="neg_exp",
    ),
    pytest.param(
        "g = 1\ndef execute_strategy(market_data, strategy_params):\n    global g\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        (
            "Line 3: 'global' state does not survive between calls",
            "Line 2: 'strategy_params' is never used: the strategy ignores parameters",
        ),
        id="global",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    while True:\n        pass\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 2: 'while True' loop without break or return never ends",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="whiletrue",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    while 1:\n        break\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="whilebreak",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    while 0:\n        pass\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="while0",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    print('x')\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        (
            "Line 2: print() output is discarded; put details in 'reason'",
            "Line 1: 'strategy_params' is never used: the strategy ignores parameters",
        ),
        id="print",
    ),
    pytest.param(
        "async def execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 1: async functions are not supported",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="async",
    ),
    pytest.param(
        "def f(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("No top-level function execute_strategy(market_data, strategy_params) defined",),
        (),
        id="noentry",
    ),
    pytest.param(
        "def execute_strategy(market_data):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (
            "Line 1: execute_strategy must accept two arguments: execute_strategy(market_data, strategy_params)",
        ),
        (),
        id="onearg",
    ),
    pytest.param(
        "def execute_strategy(a, b, c):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (
            "Line 1: execute_strategy must accept two arguments: execute_strategy(market_data, strategy_params)",
        ),
        (),
        id="threereq",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params, c=1):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="threeopt",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params, *, k):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (
            "Line 1: execute_strategy must accept two arguments: execute_strategy(market_data, strategy_params)",
        ),
        (),
        id="kwreq",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params, *, k=1):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="kwopt",
    ),
    pytest.param(
        "def execute_strategy(data, params):\n    p = params\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        (
            "Line 1: Arguments are conventionally named execute_strategy(market_data, strategy_params)",
        ),
        id="names",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="unused",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = 1\n",
        ("Line 1: execute_strategy never returns a signal",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="noreturn",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    if strategy_params:\n        return\n    return None\n",
        (
            "Line 3: Return a dict with action, confidence, reason and metadata",
            "Line 4: Return a dict with action, confidence, reason and metadata",
        ),
        (),
        id="retnone",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    s = {}\n    return s\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="retvar",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    base = {}\n    return {**base, 'action': 'x'}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="retspread",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'confidence': 1, 'reason': 'price'}\n",
        ("Line 2: The returned signal has no 'action'",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="noaction",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'action': 'short', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 2: action 'short' is not one of buy, sell, hold",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="badaction",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'action': 'BUY', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="upperaction",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'action': 'buy', 'confidence': 1.5, 'reason': 'p', 'metadata': {}}\n",
        ("Line 2: confidence 1.5 is not between 0 and 1",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="conf",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'action': 'buy', 'confidence': -0.1, 'reason': 'p', 'metadata': {}}\n",
        ("Line 2: confidence -0.1 is not between 0 and 1",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="confnegative",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'action': 'buy', 'confidence': +0.5, 'reason': 'p', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="confplus",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'action': 'buy', 'confidence': True, 'reason': 'p', 'metadata': {}}\n",
        ("Line 2: confidence True is not between 0 and 1",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="confbool",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'action': 'buy', 'confidence': '1', 'reason': 'p', 'metadata': {}}\n",
        ("Line 2: confidence '1' is not between 0 and 1",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="confstr",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    if strategy_params:\n        return {'action': 'buy', 'confidence': 0, 'reason': 'p', 'metadata': {}}\n    return {'action': 'buy', 'confidence': 1, 'reason': 'p', 'metadata': {}}\n",
        (),
        (),
        id="conf01",
    ),
    pytest.param(
        "x = 1\ny: int = 2\n'''doc'''\nimport math\nclass A:\n    pass\nprint(1)\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        (
            "Line 7: print() output is discarded; put details in 'reason'",
            "Line 8: 'strategy_params' is never used: the strategy ignores parameters",
            "Line 7: Top-level statements run on every load; keep logic in functions",
        ),
        id="toplevel",
    ),
    pytest.param(
        "def execute_strategy(market_data):\n    return 1\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 3: 'strategy_params' is never used: the strategy ignores parameters",),
        id="twoentry",
    ),
    pytest.param(
        "def (\n",
        ("Syntax error: invalid syntax (line 1)",),
        (),
        id="syntax",
    ),
    pytest.param(
        "x = '\x00'\n",
        ("Syntax error: source code string cannot contain null bytes",),
        (),
        id="nullbyte",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    if x:\n        if x:\n            if x:\n                if x:\n                    if x:\n                        if x:\n                            if x:\n                                if x:\n                                    if x:\n                                        if x:\n                                            if x:\n                                                if x:\n                                                    if x:\n                                                        pass\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        ("Line 13: Code is nested more than 12 levels deep",),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="deep",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    if x:\n        if x:\n            if x:\n                if x:\n                    if x:\n                        if x:\n                            if x:\n                                if x:\n                                    if x:\n                                        if x:\n                                            if x:\n                                                pass\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': {}}\n",
        (),
        ("Line 1: 'strategy_params' is never used: the strategy ignores parameters",),
        id="deep12",
    ),
    # Scoping: a forbidden builtin's name bound as the code's own variable may be read.
    pytest.param(
        "import math as open\ndef execute_strategy(market_data, strategy_params):\n    x = open.pi\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="import_as_open",
    ),
    pytest.param(
        "import open.a.b\ndef execute_strategy(market_data, strategy_params):\n    x = open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (
            "Line 1: Import of 'open.a.b' is not allowed (allowed: collections, functools, itertools, math, numpy, pandas, statistics, typing)",
        ),
        (),
        id="import_dotted_open",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    try:\n        pass\n    except Exception as open:\n        x = open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="except_as_open",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    match 1:\n        case int() as open:\n            x = open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="match_as_open",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    match [1]:\n        case [*open]:\n            x = open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="match_star_open",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    match {}:\n        case {**open}:\n            x = open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="match_rest_open",
    ),
    pytest.param(
        "def open():\n    return 1\ndef execute_strategy(market_data, strategy_params):\n    x = open()\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="def_open",
    ),
    pytest.param(
        "class open:\n    pass\ndef execute_strategy(market_data, strategy_params):\n    x = open()\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="class_open",
    ),
    pytest.param(
        "open = 1\ndef f(x=open):\n    return x\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="default_open",
    ),
    pytest.param(
        "open = 1\ndef f(*, x=open):\n    return x\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="kwdefault_open",
    ),
    pytest.param(
        "open = int\ndef f(x: open):\n    return x\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="annotation_open",
    ),
    pytest.param(
        "open = int\ndef f() -> open:\n    return 1\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="returns_open",
    ),
    pytest.param(
        "open = staticmethod\nclass A:\n    @open\n    def f():\n        return 1\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="decorator_open",
    ),
    pytest.param(
        "open = 1\ndef execute_strategy(market_data, strategy_params):\n    x = {k: open for k in range(3)}\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="dictcomp",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = {open for open in range(3)}\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="setcomp_scope",
    ),
    pytest.param(
        "class A:\n    open = 1\n    def m(self):\n        return open\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        ("Line 4: Use of 'open' is not allowed",),
        (),
        id="class_scope_hidden",
    ),
    pytest.param(
        "open = 1\ndef execute_strategy(market_data, strategy_params):\n    x = open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="module_var_visible",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    f = lambda open: open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="lambda_param",
    ),
    pytest.param(
        "def f():\n    open = 1\n    return open\ndef execute_strategy(market_data, strategy_params):\n    x = open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        ("Line 5: Use of 'open' is not allowed",),
        (),
        id="local_elsewhere",
    ),
    pytest.param(
        "def f():\n    global open\n    open = 1\ndef execute_strategy(market_data, strategy_params):\n    x = open\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        ("Line 5: Use of 'open' is not allowed",),
        ("Line 2: 'global' state does not survive between calls",),
        id="global_decl",
    ),
    pytest.param(
        "import os\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (
            "Line 1: Import of 'os' is not allowed (allowed: collections, functools, itertools, math, numpy, pandas, statistics, typing)",
        ),
        (),
        id="import_os",
    ),
    pytest.param(
        "from os import path\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (
            "Line 1: Import of 'os' is not allowed (allowed: collections, functools, itertools, math, numpy, pandas, statistics, typing)",
        ),
        (),
        id="from_os",
    ),
    pytest.param(
        "import numpy.polynomial.polynomial\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="import_deep_numpy",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    if market_data:\n        pass\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (),
        (),
        id="siblings",
    ),
    pytest.param(
        "async def eval():\n    return 1\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        (
            "Line 1: async functions are not supported",
            "Line 1: 'eval' cannot be rebound: the sandbox guards it",
        ),
        (),
        id="async_eval",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    x = market_data.__class__\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        ("Line 2: Access to dunder attribute '__class__' is not allowed",),
        (),
        id="refused_attribute_line",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    global eval\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        ("Line 2: 'eval' cannot be rebound: the sandbox guards it",),
        ("Line 2: 'global' state does not survive between calls",),
        id="global_eval",
    ),
    pytest.param(
        "def f():\n    eval2 = 1\n    def g():\n        nonlocal exec\n    return g\ndef execute_strategy(market_data, strategy_params):\n    return {'action': 'hold', 'confidence': 0.5, 'reason': 'price', 'metadata': strategy_params}\n",
        ("Line 4: 'exec' cannot be rebound: the sandbox guards it",),
        (),
        id="nonlocal_eval",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    if strategy_params:\n        return None\n    return {'action': 'short', 'confidence': 0.5, 'reason': 'r', 'metadata': {}}\n",
        (
            "Line 3: Return a dict with action, confidence, reason and metadata",
            "Line 4: action 'short' is not one of buy, sell, hold",
        ),
        (),
        id="return_none_then_bad",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    base = {}\n    if strategy_params:\n        return {**base}\n    return {'action': 'short', 'confidence': 0.5, 'reason': 'r', 'metadata': {}}\n",
        ("Line 5: action 'short' is not one of buy, sell, hold",),
        (),
        id="spread_then_bad",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    return {'action': 'buy', 'reason': strategy_params}\n",
        (),
        ("Line 2: The returned signal lacks confidence, metadata",),
        id="lacks",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    r = 'x'\n    return {'reason': r, 'action': 'short', 'confidence': 0.5, 'metadata': strategy_params}\n",
        ("Line 3: action 'short' is not one of buy, sell, hold",),
        (),
        id="computed_key_first",
    ),
    pytest.param(
        "def execute_strategy(market_data, strategy_params):\n    k = 'x'\n    return {k: 1, 'action': 'buy', 'confidence': 2, 'reason': 'r', 'metadata': strategy_params}\n",
        ("Line 3: confidence 2 is not between 0 and 1",),
        (),
        id="computed_value_then_conf",
    ),
]


@pytest.mark.parametrize(("code", "errors", "warnings"), CASES)
def test_each_rule_gives_its_exact_findings(
    code: str, errors: tuple[str, ...], warnings: tuple[str, ...]
) -> None:
    report = validate_code(code)
    assert report.errors == errors
    assert report.warnings == warnings
    assert report.valid is (not errors)
    assert report.syntax_valid is not any(e.startswith("Syntax error") for e in errors)


def test_the_report_flags_follow_the_code() -> None:
    report = validate_code("import math\n" + HEAD + SIGNAL.replace("0.5", "strategy_params['c']"))
    assert (report.valid, report.syntax_valid, report.has_function, report.has_imports) == (
        True,
        True,
        True,
        True,
    )
    assert report.trading_keywords == ("hold", "strategy", "price")
    broken = validate_code("def (\n")
    assert (broken.valid, broken.syntax_valid, broken.has_function, broken.has_imports) == (
        False,
        False,
        False,
        False,
    )
    unrunnable = validate_code("import math\ndef f():\n    return 1\n")
    assert (unrunnable.valid, unrunnable.syntax_valid, unrunnable.has_function) == (
        False,
        True,
        False,
    )
    assert unrunnable.has_imports is True


def test_has_function_and_has_imports_say_what_the_code_has() -> None:
    for wrong in ("def execute_strategy(market_data):\n", "def execute_strategy(a, b, c):\n"):
        report = validate_code(wrong + SIGNAL)
        assert (report.has_function, report.valid) == (False, False)
    plain = validate_code(HEAD + SIGNAL)
    assert (plain.has_function, plain.has_imports) == (True, False)
    assert validate_code("from math import pi\n" + HEAD + SIGNAL).has_imports is True


def test_code_without_trading_words_is_warned_about() -> None:
    report = validate_code("x = 1\n")
    assert report.trading_keywords == ()
    assert report.warnings[-1] == "No trading keywords found (buy, sell, signal, price, ...)"


def test_the_same_finding_is_reported_once() -> None:
    report = validate_code(HEAD + "    x = open(1) + open(2)\n" + SIGNAL)
    assert report.errors == ("Line 2: Use of 'open' is not allowed",)


def test_size_limits_name_the_figure() -> None:
    big = HEAD + "    x = 1  # price" + " " * 70_000 + "\n" + SIGNAL
    report = validate_code(big)
    size = len(big.encode())
    assert report.errors == (f"Code is {size} bytes; the limit is 65536",)
    assert (report.syntax_valid, report.has_function, report.has_imports) == (False, False, False)
    assert report.trading_keywords == ("hold", "strategy", "price")
    at_limit = "#" * (65536 - 1) + "\n"
    assert not any("bytes" in e for e in validate_code(at_limit).errors)
    long = HEAD + "    x = 1\n" * 2000 + SIGNAL
    assert validate_code(long).errors == ("Code has 2003 lines; the limit is 2000",)
    just = "\n" * 1999
    assert not any("lines" in e for e in validate_code(just).errors)


def test_an_unparseable_text_says_why() -> None:
    deep = "x = " + "(" * 300 + ")" * 300 + "\n"
    report = validate_code(deep)
    assert report.syntax_valid is False
    assert len(report.errors) == 1 and report.errors[0].startswith("Syntax error")


def test_with_errors_invalidates_and_keeps_what_was_found() -> None:
    report = validate_code(HEAD + SIGNAL)
    assert with_errors(report, []) is report
    failed = with_errors(report, ["Runtime: boom"])
    assert failed.valid is False
    assert failed.errors == (*report.errors, "Runtime: boom")
    assert failed.warnings == report.warnings


def test_reports_round_trip_and_tolerate_missing_keys() -> None:
    report = validate_code("import math\n" + HEAD + "    x = open(1)\n" + SIGNAL)
    data = report.as_dict()
    assert isinstance(data["errors"], list) and isinstance(data["trading_keywords"], list)
    assert isinstance(data["warnings"], list)
    assert ValidationReport.from_dict(data) == report
    empty = ValidationReport.from_dict({})
    assert empty == ValidationReport(False, False, False, False)
    assert ValidationReport.from_dict({"valid": 1, "errors": None}).valid is True


def test_trading_keywords_are_whole_words_in_their_listed_order() -> None:
    assert trading_keywords("RSI above 70: SELL; buy_signal") == ("buy", "sell", "signal", "rsi")
    assert trading_keywords("buyer prices trendy") == ()
    assert trading_keywords("stop_loss take_profit") == ("stop_loss", "take_profit")


def test_default_params_become_json_safe() -> None:
    code = (
        "DEFAULT_PARAMS = {'period': 14, 'ratio': 0.5, 'name': 'x', 'on': True, 'none': None,\n"
        "    'nan': float('nan') if False else 1e999, 'nested': {1: 2.5}, 'list': [1, 1e999, 'a'],\n"
        "    'tuple': (2, 3), 'bad': {1, 2}}\n" + HEAD + SIGNAL
    )
    # The float('nan') expression is not a literal: the whole value is refused.
    assert extract_default_params(code) == {}
    literal = (
        "DEFAULT_PARAMS = {'period': 14, 'ratio': 0.5, 'name': 'x', 'on': True, 'none': None,\n"
        "    'inf': 1e999, 'nested': {1: 2.5}, 'list': [1, 1e999, 'a', None, 0.5], 'tuple': (2, 3),\n"
        "    'bad': {1, 2}}\n" + HEAD + SIGNAL
    )
    assert extract_default_params(literal) == {
        "period": 14,
        "ratio": 0.5,
        "name": "x",
        "on": True,
        "none": None,
        "nested": {"1": 2.5},
        "list": [1, "a", 0.5],
        "tuple": [2, 3],
    }
    assert extract_default_params("DEFAULT_PARAMS = [1]\n") == {}
    assert extract_default_params("DEFAULT_PARAMS = a = {'x': 1}\n") == {}
    assert extract_default_params("PARAMS = {'x': 1}\n") == {}
    assert extract_default_params("def (") == {}
    assert extract_default_params("x = 1\nDEFAULT_PARAMS = {'x': 1}\n") == {"x": 1}
    assert math.isfinite(extract_default_params("DEFAULT_PARAMS = {'x': 1e308}\n")["x"])


def test_the_description_is_the_first_paragraph_of_the_docstring() -> None:
    code = HEAD + '    """  Buys dips.\n\n    Details.\n    """\n' + SIGNAL
    assert extract_description(code) == "Buys dips."
    module_doc = '"""Module: sells rips.\n\nMore."""\n' + HEAD + SIGNAL
    assert extract_description(module_doc) == "Module: sells rips."
    assert extract_description(HEAD + SIGNAL) == ""
    assert extract_description("def (") == ""
    three = HEAD + '    """A.\n\n    B.\n\n    C."""\n' + SIGNAL
    assert extract_description(three) == "A."


def test_a_non_dict_return_does_not_hide_a_later_bad_one() -> None:
    code = (
        HEAD
        + "    s = {}\n    if strategy_params:\n        return s\n"
        + "    return {'action': 'short', 'confidence': 0.5, 'reason': 'r', 'metadata': {}}\n"
    )
    assert validate_code(code).errors == ("Line 5: action 'short' is not one of buy, sell, hold",)


def test_nesting_is_counted_back_down_after_each_block() -> None:
    siblings = "".join(f"if x{i}:\n    pass\n" for i in range(7)) + HEAD + SIGNAL
    assert not any("nested" in e for e in validate_code(siblings).errors)
    # 13 levels reached only after leaving a sibling block: counted from the right depth.
    deep = (
        HEAD
        + "    if a:\n        if b:\n            pass\n        if c:\n"
        + "".join("    " * (i + 3) + "if c:\n" for i in range(10))
        + "    " * 13
        + "pass\n"
        + SIGNAL
    )
    assert validate_code(deep).errors == ("Line 15: Code is nested more than 12 levels deep",)


def test_an_expression_too_deep_to_walk_is_refused_not_crashed() -> None:
    code = HEAD + "    x = " + "+".join(["1"] * 1500) + "\n" + SIGNAL
    report = validate_code(code)
    assert report.errors == ("Code is nested more than 12 levels deep",)
    assert (report.valid, report.syntax_valid, report.has_function) == (False, True, True)


def test_a_text_too_deep_to_parse_is_a_syntax_error() -> None:
    report = validate_code("x = " + "+".join(["1"] * 30000) + "\n")
    assert report.errors == ("Syntax error: the code cannot be parsed (nested too deeply)",)
    assert report.trading_keywords == ()
    priced = validate_code("price = " + "+".join(["1"] * 30000) + "\n")
    assert priced.trading_keywords == ("price",)
    assert (report.valid, report.syntax_valid, report.has_function, report.has_imports) == (
        False,
        False,
        False,
        False,
    )
    assert report.warnings == ()


def test_a_syntax_error_report_has_no_function_and_no_imports() -> None:
    report = validate_code("import math\ndef execute_strategy(market_data, strategy_params)\n")
    assert report.errors == ("Syntax error: expected ':' (line 2)",)
    assert report.trading_keywords == ("strategy",)  # kept for the report even so
    assert (report.valid, report.syntax_valid, report.has_function, report.has_imports) == (
        False,
        False,
        False,
        False,
    )


def test_an_oversized_text_is_not_parsed() -> None:
    report = validate_code("import math\n" + HEAD + SIGNAL + "#" * 70_000)
    assert report.errors[0].startswith("Code is ")
    assert (report.syntax_valid, report.has_function, report.has_imports) == (False, False, False)


def test_a_dotted_import_binds_its_first_name() -> None:
    code = "import eval.a.b\n" + HEAD + SIGNAL
    assert validate_code(code).errors == (
        "Line 1: Import of 'eval.a.b' is not allowed (allowed: collections, functools, "
        "itertools, math, numpy, pandas, statistics, typing)",
        "Line 1: 'eval' cannot be rebound: the sandbox guards it",
    )
