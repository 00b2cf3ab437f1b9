"""The first layer alone: each probe reaches the job's real globals, files or modules by a route
the Python guards must close (frame, code and traceback introspection however reached, rebound
guard names, `str.format` fields, `operator.attrgetter`, module `__builtins__`, the real `open`,
the import hook). Each probe is refused by the validator with a clear message, and stopped by the
Python layer (SandboxViolation, layer "python") both with the OS layers off, the guards alone,
and with every layer on. Run unstopped, with the OS layers off, each probe succeeds: it returns
a signal carrying what it reached, so these tests fail if a guard is handed out unguarded.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from services.code_rules import (
    ALLOWED_IMPORTS,
    INTROSPECTION_ATTRIBUTES,
    attribute_refusal,
    format_refusal,
)
from services.sandbox import (
    Sandbox,
    SandboxSettings,
    SandboxViolation,
    StrategyRuntimeError,
    warmup,
)
from services.sandbox.guards import ForbiddenCode, check_code
from services.sandbox.warmup import sample_bars
from services.validation import validate_code

BARS = sample_bars(60)
MODES = {
    "guards-alone": SandboxSettings(
        namespaces="none",
        seccomp=False,
        landlock=False,
        allow_unisolated=True,
        python_guards=True,
        memory_limit_mb=256,
        max_concurrent_jobs=2,
    ),
    "all-layers": SandboxSettings(memory_limit_mb=256, max_concurrent_jobs=2),
}


@pytest_asyncio.fixture(scope="module", params=list(MODES))
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    async with Sandbox(MODES[request.param]) as box:
        assert box.probe is not None
        assert box.probe.isolated == (request.param == "all-layers")
        assert box.probe.python_guards
        yield box


ENTRY = "def execute_strategy(market_data, strategy_params):\n"
FOUND = '    return {"action": "hold", "confidence": 0.0, "reason": str(found)[:900]}\n'

# Climbs from a running generator to the first frame whose globals hold `os` (the job
# runner's), reading attributes only through `get(obj, name)`; `found` is its working dir.
WALK_WITH_GET = (
    "    def climb():\n"
    '        yield get(get(gen, "gi_" + "frame"), "f_" + "back")\n'
    "    gen = climb()\n"
    "    frame = next(gen)\n"
    '    while "os" not in get(frame, "f_" + "globals"):\n'
    '        frame = get(frame, "f_" + "back")\n'
    '    found = get(frame, "f_" + "globals")["os"].getcwd()\n'
) + FOUND


def walk_with(getter: str, prelude: str = "") -> str:
    return prelude + ENTRY + f"    {getter}\n" + WALK_WITH_GET


def body(lines: str, prelude: str = "") -> str:
    return prelude + ENTRY + lines + FOUND


# (id, code, what the validator says)
PROBES = [
    (
        "frame-walk-attributes",
        body(
            "    def climb():\n"
            "        yield gen.gi_frame.f_back\n"
            "    gen = climb()\n"
            "    frame = next(gen)\n"
            '    while "os" not in frame.f_globals:\n'
            "        frame = frame.f_back\n"
            '    found = frame.f_globals["os"].getcwd()\n'
        ),
        "Access to 'gi_frame' is not allowed (frame, code and traceback introspection)",
    ),
    (
        "frame-walk-in-a-comprehension-in-a-method",
        body(
            "    class Walker:\n"
            "        def up(self, frames):\n"
            "            return [frame.f_back for frame in frames][0]\n"
            "    def climb():\n"
            "        yield Walker().up([gen.gi_frame])\n"
            "    gen = climb()\n"
            '    found = Walker().up([next(gen)]).f_globals["os"].getcwd()\n'
        ),
        "Access to 'f_back' is not allowed",
    ),
    (
        "getattr-computed-name",
        walk_with("get = getattr"),
        "Use of 'getattr' is not allowed",
    ),
    (
        "getattr-rebound-at-module-level",
        walk_with("get = lambda obj, name: getattr(obj, name)", "getattr = getattr\n"),
        "'getattr' cannot be rebound: the sandbox guards it",
    ),
    (
        "getattr-str-subclass-name",
        body(
            "    class Name(str):\n"
            "        def startswith(self, *args):\n"
            "            return False\n"
            '    dunder = lambda name: Name("_" + "_" + name + "_" + "_")\n'
            '    found = getattr(getattr((), dunder("class")), dunder("mro"))\n'
        ),
        "Use of 'getattr' is not allowed",
    ),
    (
        "operator-attrgetter",
        walk_with(
            "get = lambda obj, name: pd.core.frame.operator.attrgetter(name)(obj)",
            "import pandas as pd\n",
        ),
        "Access to 'attrgetter' is not allowed",
    ),
    (
        "operator-methodcaller",
        walk_with(
            "get = lambda obj, name: pd.core.frame.operator.methodcaller("
            '"_" + "_getattribute_" + "_", name)(obj)',
            "import pandas as pd\n",
        ),
        "Access to 'methodcaller' is not allowed",
    ),
    (
        "object-getattribute",
        walk_with("get = object.__getattribute__"),
        "Access to dunder attribute '__getattribute__' is not allowed",
    ),
    (
        "type-dict-descriptor",
        walk_with("get = lambda obj, name: type(obj).__dict__[name].__get__(obj)"),
        "Access to dunder attribute '__dict__' is not allowed",
    ),
    (
        "format-literal-fields",
        body(
            "    def climb():\n"
            '        yield "{0.gi_frame.f_back.f_back.f_globals[os]}".format(gen)\n'
            "    gen = climb()\n"
            "    found = next(gen)\n"
        ),
        "Format field '{0.gi_frame.f_back.f_back.f_globals[os]}'",
    ),
    (
        "format-computed-template",
        body(
            "    def climb():\n"
            '        yield ("{0.gi_" + "frame.f_back.f_back.f_globals[os]}").format(gen)\n'
            "    gen = climb()\n"
            "    found = next(gen)\n"
        ),
        "'.format' is only allowed on a string literal",
    ),
    (
        "str-format-unbound",
        body(
            "    def climb():\n"
            '        yield str.format("{0.gi_frame.f_back.f_back.f_globals[os]}", gen)\n'
            "    gen = climb()\n"
            "    found = next(gen)\n"
        ),
        "'.format' is only allowed on a string literal",
    ),
    (
        "format-by-getattr",
        body(
            "    def climb():\n"
            '        template = "{0.gi_" + "frame.f_back.f_back.f_globals[os]}"\n'
            '        yield getattr(template, "format")(gen)\n'
            "    gen = climb()\n"
            "    found = next(gen)\n"
        ),
        "Use of 'getattr' is not allowed",
    ),
    (
        "format-map",
        body(
            "    def climb():\n"
            '        yield "{g.gi_frame.f_back.f_back.f_globals[os]}".format_map({"g": gen})\n'
            "    gen = climb()\n"
            "    found = next(gen)\n"
        ),
        "Access to 'format_map' is not allowed",
    ),
    (
        "f-string",
        body(
            "    def climb():\n"
            '        yield f"{gen.gi_frame.f_back.f_back.f_globals}"\n'
            "    gen = climb()\n"
            "    found = next(gen)\n"
        ),
        "Access to 'gi_frame' is not allowed",
    ),
    (
        "coroutine-cr-frame",
        body(
            "    async def inner():\n"
            '        return co.cr_frame.f_back.f_back.f_globals["os"].getcwd()\n'
            "    co = inner()\n"
            "    try:\n"
            "        co.send(None)\n"
            "    except StopIteration as done:\n"
            "        found = done.value\n"
        ),
        "Access to 'cr_frame' is not allowed",
    ),
    (
        "async-generator-ag-frame",
        body(
            "    async def agen():\n"
            '        yield ag.ag_frame.f_back.f_back.f_globals["os"].getcwd()\n'
            "    ag = agen()\n"
            "    try:\n"
            "        ag.asend(None).send(None)\n"
            "    except StopIteration as done:\n"
            "        found = done.value\n"
        ),
        "Access to 'ag_frame' is not allowed",
    ),
    (
        "traceback-tb-frame",
        body(
            "    try:\n"
            "        raise ValueError\n"
            "    except ValueError as error:\n"
            "        frame = error.__traceback__.tb_frame\n"
            '    while "os" not in frame.f_globals:\n'
            "        frame = frame.f_back\n"
            '    found = frame.f_globals["os"].getcwd()\n'
        ),
        "Access to dunder attribute '__traceback__' is not allowed",
    ),
    (
        "code-object-consts",
        body(
            "    def secret():\n"
            '        return "the code object of a function"\n'
            "    found = secret.__code__.co_consts\n"
        ),
        "Access to 'co_consts' is not allowed",
    ),
    (
        "module-builtins-real-open",
        body('    found = np.__builtins__["open"]("/etc/passwd").read()\n', "import numpy as np\n"),
        "Access to dunder attribute '__builtins__' is not allowed",
    ),
    (
        "open",
        body('    found = open("/etc/passwd").read()\n'),
        "Use of 'open' is not allowed",
    ),
    (
        "import-os",
        body("    found = os.getcwd()\n", "import os\n"),
        "Import of 'os' is not allowed",
    ),
    (
        "dunder-import",
        body('    found = __import__("os").getcwd()\n'),
        "Use of '__import__' is not allowed",
    ),
    (
        "from-import-a-module-a-module-imported",
        body(
            '    found = system_module.modules["os"].getcwd()\n',
            "from pandas.core.common import sys as system_module\n",
        ),
        "Access to 'sys' is not allowed",
    ),
    (
        "from-import-star",
        body('    found = sys.modules["os"].getcwd()\n', "from pandas.core.common import *\n"),
        "'from ... import *' is not allowed",
    ),
    (
        "pandas-expression-engine",
        body(
            "    def climb():\n"
            "        scope = pd.core.computation.scope.ensure_scope(0, local_dict={'g': gen})\n"
            "        yield pd.core.computation.expr.Expr(\n"
            "            'g.gi_frame.f_back.f_back.f_globals', engine='python', env=scope\n"
            "        )()\n"
            "    gen = climb()\n"
            '    found = next(gen)["os"].getcwd()\n',
            "import pandas as pd\n",
        ),
        "Access to 'computation' is not allowed",
    ),
    (
        "real-builtins-module-by-another-name",
        body(
            '    found = typing.stdlib_re.enum.bltns.open("/etc/passwd").read()\n',
            "import typing\n",
        ),
        "Access to 'bltns' is not allowed",
    ),
    (
        "typing-forward-reference-evaluated",
        body(
            "    reference = typing.List['open(\"/etc/passwd\").read()']\n"
            "    found = typing._eval_type(reference, {}, None)\n",
            "import typing\n",
        ),
        "Access to '_eval_type' is not allowed",
    ),
    (
        "getattr-module-of-a-module",
        body(
            '    found = getattr(pd.core.common, "s" + "ys").modules["os"].getcwd()\n',
            "import pandas as pd\n",
        ),
        "Use of 'getattr' is not allowed",
    ),
]


# Private library internals by literal names: the validator only warns (honest classes use
# private attributes), the guarded modules refuse them at run time.
PRIVATE_PROBES = [
    (
        "dataclasses-create-fn-exec",
        body(
            "    make = pd.core.groupby.base.dataclasses._create_fn\n"
            "    read = make('read', [], ['return open(\"/etc/passwd\").read()'], globals={})\n"
            "    found = read()\n",
            "import pandas as pd\n",
        ),
        "Access to private attribute '_create_fn'",
    ),
    (
        "module-attribute-set",
        body("    math.floor = print\n    found = math.floor\n", "import math\n"),
        "",
    ),
]
ALL_PROBES = PROBES + PRIVATE_PROBES[:1]


@pytest.mark.parametrize(("code", "message"), [p[1:] for p in PROBES], ids=[p[0] for p in PROBES])
def test_the_validator_refuses_each_probe(code: str, message: str) -> None:
    report = validate_code(code)
    assert not report.valid
    assert any(message in error for error in report.errors), report.errors


def test_the_validator_warns_of_private_attributes() -> None:
    _name, code, message = PRIVATE_PROBES[0]
    assert any(message in warning for warning in validate_code(code).warnings)


@pytest.mark.parametrize(
    "code", [p[1] for p in PROBES + PRIVATE_PROBES], ids=[p[0] for p in PROBES + PRIVATE_PROBES]
)
async def test_the_python_layer_stops_each_probe(sandbox: Sandbox, code: str) -> None:
    with pytest.raises(SandboxViolation) as caught:
        await sandbox.run_signal(code, BARS, {}, timeout_seconds=5.0)
    assert caught.value.extensions["layer"] == "python"
    assert caught.value.extensions["reason"] == "SANDBOX_VIOLATION"
    assert "root:" not in caught.value.message


@pytest_asyncio.fixture(scope="module")
async def unguarded() -> AsyncIterator[Sandbox]:
    """No layer but rlimits: what each probe does when nothing stops it."""
    settings = SandboxSettings(
        namespaces="none",
        seccomp=False,
        landlock=False,
        allow_unisolated=True,
        python_guards=False,
        memory_limit_mb=256,
        max_concurrent_jobs=2,
    )
    async with Sandbox(settings) as box:
        yield box


@pytest.mark.parametrize("code", [p[1] for p in ALL_PROBES], ids=[p[0] for p in ALL_PROBES])
async def test_unstopped_each_probe_reaches_what_it_aims_at(unguarded: Sandbox, code: str) -> None:
    """The probes are live: without the guards they get through, so the test above fails if
    a guard (`open`, the import hook, getattr, the static pass) is handed out unguarded."""
    try:
        signal = await unguarded.run_signal(code, BARS, {}, timeout_seconds=5.0)
    except StrategyRuntimeError as error:  # the real open(), stopped by RLIMIT_NOFILE only
        assert "[Errno 24] Too many open files: '/etc/passwd'" in error.message
    else:
        reached = (os.getcwd(), "<module 'os'", "<class 'object'>", "the code object")
        assert any(target in signal["reason"] for target in reached), signal["reason"]


async def test_a_refused_attribute_is_reported_with_its_line(sandbox: Sandbox) -> None:
    code = ENTRY + "    frame = None\n    frame = frame.f_back\n" + FOUND
    with pytest.raises(SandboxViolation) as caught:
        await sandbox.run_signal(code, BARS, {}, timeout_seconds=5.0)
    assert "'f_back' is not allowed" in caught.value.message
    assert caught.value.message.endswith("(line 3)")


async def test_rebinding_open_still_reaches_the_guarded_open(sandbox: Sandbox) -> None:
    """`open` may be a variable (the price column), so binding it is allowed; bound to the
    builtin, it is the sandbox's refusing `open`, whatever the validator made of it."""
    code = "open = open\n" + body('    found = open("/etc/passwd").read()\n')
    with pytest.raises(SandboxViolation) as caught:
        await sandbox.run_signal(code, BARS, {}, timeout_seconds=5.0)
    assert caught.value.extensions["layer"] == "python"
    assert "open() is not available" in caught.value.message


# What a module reachable from the allowed imports may be (by top-level name): computation,
# data formats and codecs, regular expressions, dates. Not the builtins module, files,
# processes, code objects.
HARMLESS_MODULES = frozenset(
    {
        *("_random", "_sre", "abc", "ast", "bisect", "calendar", "cmath", "collections"),
        *("contextlib", "copy", "copyreg", "dataclasses", "datetime", "decimal", "encodings"),
        *("enum", "functools", "itertools", "json", "keyword", "locale", "math", "numbers"),
        *("operator", "random", "re", "statistics", "stringprep", "struct", "textwrap"),
        *("time", "types", "typing", "unicodedata", "weakref", "zoneinfo"),
    }
)


def test_no_dangerous_module_is_reachable() -> None:
    """Every module strategy code can reach by attribute names the guards allow, starting at
    the allowed imports (after the fork server's warm-up): numpy and pandas, except their
    file I/O, and harmless standard modules. A new alias in a library upgrade fails here."""
    assert warmup.run() == []
    pending = [sys.modules[name] for name in ALLOWED_IMPORTS]
    seen = {id(module) for module in pending}
    reached: dict[str, str] = {}
    while pending:
        module = pending.pop()
        for name, value in list(vars(module).items()):
            if not isinstance(value, types.ModuleType) or attribute_refusal(name):
                continue
            reached.setdefault(value.__name__, f"{module.__name__}.{name}")
            if id(value) not in seen:
                seen.add(id(value))
                pending.append(value)
    libraries = ("numpy", "pandas")
    unexpected = {
        name: path
        for name, path in reached.items()
        if (not name.startswith(libraries) and name.partition(".")[0] not in HARMLESS_MODULES)
        or name.startswith(("pandas.io", "numpy.lib.npyio", "numpy.lib._npyio", "numpy.f2py"))
    }
    assert unexpected == {}


def test_the_warm_up_code_passes_the_guards() -> None:
    """The fork server warms lazy imports by running this code as a job, guards on: code the
    guards refused would leave them cold, and honest jobs would then trip seccomp."""
    assert validate_code(warmup.WARMUP_CODE).valid
    assert warmup.run() == []


# --- the validator's rules, case by case --------------------------------------------------------

SIGNAL = '    return {"action": "hold", "confidence": 0.0, "reason": "", "metadata": {}}\n'


def strategy(lines: str, prelude: str = "") -> str:
    return prelude + ENTRY + "    price = market_data['close'][-1]\n" + lines + SIGNAL


@pytest.mark.parametrize(
    "code",
    [
        strategy("", "getattr = getattr\n"),
        strategy("    setattr = 1\n"),
        strategy("    hasattr += 1\n"),
        strategy("    x: int = (vars := 1)\n"),
        strategy("    for delattr in range(3):\n        pass\n"),
        strategy("    with x as exec:\n        pass\n"),
        strategy("    try:\n        pass\n    except ValueError as eval:\n        pass\n"),
        strategy("", "def compile():\n    return 1\n"),
        strategy("", "class globals:\n    pass\n"),
        strategy("", "def helper(locals=1):\n    return locals\n"),
        strategy("    f = lambda dir: dir\n"),
        strategy("", "import math as getattr\n"),
        strategy("", "from math import floor as setattr\n"),
        strategy("    global getattr\n"),
        strategy("    hasattr = 0\n    def inner():\n        nonlocal hasattr\n"),
        strategy("    del memoryview\n"),
        strategy("    match price:\n        case breakpoint:\n            pass\n"),
        strategy("    match price:\n        case [*exit]:\n            pass\n"),
        strategy("    match price:\n        case {**quit}:\n            pass\n"),
        strategy("", "def helper(__builtins__):\n    return 1\n"),
        strategy("", "import math as __import__\n"),
    ],
)
def test_binding_a_guard_name_is_refused(code: str) -> None:
    report = validate_code(code)
    assert not report.valid
    assert any("cannot be rebound: the sandbox guards it" in e for e in report.errors), (
        report.errors
    )


@pytest.mark.parametrize(
    "code",
    [
        strategy("    id = 1\n    type = 'x'\n    max = min = sum = 0\n    input = price\n"),
        strategy("    open = market_data['open']\n    spread = price - open[-1]\n"),
        strategy("    score = price.f_score + price.co_value + price.tb_size\n"),
        strategy("    text = '{0:.2f} {x[0]} {0.real}'.format(price, x=[1])\n"),
        strategy("    text = f'{price:.2f}'\n"),
        strategy("", "class Box:\n    def __init__(self):\n        self.size = 1\n"),
    ],
    ids=[
        "builtins-shadowed",
        "open-price-column",
        "prefix-lookalikes",
        "format-literal",
        "fstr",
        "dunder-method",
    ],
)
def test_honest_code_still_validates(code: str) -> None:
    report = validate_code(code)
    assert report.valid, report.errors


def test_pandas_styler_format_strings_are_refused() -> None:
    """`df.style.format_index("{0.gi_frame}")` applies str.format to cells at render time.
    Rendering needs modules the fork server does not load, so this is not a live probe."""
    code = strategy(
        "    styled = pd.DataFrame({'a': [1]}).style.format_index('{0.gi_frame}')\n",
        "import pandas as pd\n",
    )
    report = validate_code(code)
    assert any("Access to 'style' is not allowed" in e for e in report.errors), report.errors
    with pytest.raises(ForbiddenCode, match="'style'"):
        check_code(code, compile(code, "<strategy>", "exec"))


def test_calling_dir_is_refused_like_the_sandbox_does() -> None:
    report = validate_code(strategy("    names = dir(price)\n"))
    assert any("Use of 'dir' is not allowed" in e for e in report.errors), report.errors


@pytest.mark.parametrize(
    "name",
    [
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "gi_running",
        "gi_suspended",
        "cr_frame",
        "cr_await",
        "cr_origin",
        "ag_frame",
        "ag_await",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
        "co_names",
    ],
)
def test_every_introspection_attribute_is_refused(name: str) -> None:
    assert name in INTROSPECTION_ATTRIBUTES
    report = validate_code(strategy(f"    x = price.{name}\n"))
    assert not report.valid
    assert any(f"'{name}' is not allowed (frame, code" in e for e in report.errors)


@pytest.mark.parametrize(
    ("template", "refused"),
    [
        ("{0.gi_frame}", True),
        ("{0:{1.f_back}}", True),  # a nested field in the format spec
        ("{x[0].tb_frame}", True),
        ("{0._private}", True),
        ("{0.format}", True),
        ("{", True),  # malformed
        ("{0.real} {x[key]} {:>10.2f}", False),
    ],
)
def test_format_fields_are_checked(template: str, refused: bool) -> None:
    assert (format_refusal(template) is not None) == refused
