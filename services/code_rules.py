"""The contract every strategy's code follows: one source for the prompt, validator and sandbox."""

from __future__ import annotations

import _string  # the field-name parser str.format itself uses
import ast
import string
import types

ENTRYPOINT = "execute_strategy"
ENTRYPOINT_ARGS = ("market_data", "strategy_params")
DEFAULT_PARAMS_NAME = "DEFAULT_PARAMS"
# A strategy sees the most recent DEFAULT_LOOKBACK bars unless its module declares
# `LOOKBACK = N`, an integer literal (services/backtesting.py, `lookback_for`; capped by the
# LOOKBACK_MAX_BARS setting). The server's defaults come from settings; this is the
# production default the model's instructions quote.
LOOKBACK_NAME = "LOOKBACK"
DEFAULT_LOOKBACK = 500

# Top-level modules strategy code may import. The sandbox hands out nothing else.
ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {"math", "statistics", "numpy", "pandas", "typing", "collections", "itertools", "functools"}
)

ACTIONS = ("buy", "sell", "hold")

MAX_CODE_BYTES = 64 * 1024
MAX_CODE_LINES = 2000
MAX_NESTING_DEPTH = 12

# --- attributes: one rule for the validator, the sandbox's static pass and its getattr --------

# Attributes that reach files, processes, the network, native code or interpreter internals
# through the allowed libraries (numpy and pandas re-export plenty of them), and the library
# functions that read attributes by a name given as data (operator, inspect, string, pandas'
# expression engine).
FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "ctypes",
        "ctypeslib",
        "f2py",
        "distutils",
        "testing",
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "tofile",
        "dump",
        "dumps",
        "memmap",
        "DataSource",
        "fromregex",
        "format_map",
        "vformat",
        "get_field",
        "attrgetter",
        "methodcaller",
        "inspect",
        "getmembers",
        "currentframe",
        "system",
        "popen",
        "spawn",
        "fork",
        "environ",
        "getenv",
        "get_type_hints",
        "ForwardRef",
        "eval",
        "query",
        "computation",  # pandas' expression engine: it reads attributes named in a string
        "style",  # pandas' Styler: renders cells through str.format with the caller's strings
        # Modules and constructors that numpy, pandas and the standard library re-export
        # under other names (`typing.stdlib_re.enum.bltns` is the real builtins module);
        # tests/test_guard_probes.py::test_no_dangerous_module_is_reachable lists the rest.
        "bltns",
        "builtins",
        "CodeType",
        "FunctionType",
        "LambdaType",
        "FrameType",
        "TracebackType",
        "dis",
        "codeobj",
        "marshal",
        "_os",
        "posix",
        "posixpath",
        "genericpath",
        "_sys",
        "_io",
        "subprocess",
        "shutil",
        "_shutil",
        "tempfile",
        "pathlib",
        "zipfile",
        "tarfile",
        "gzip",
        "bz2",
        "lzma",
        "codecs",
        "importlib",
        "_imp",
        "_bootstrap",
        "_bootstrap_external",
        "platform",
        "threading",
        "_thread",
        "fcntl",
        "pwd",
        "grp",
        "sysconfig",
        "pickle",
        "_compat_pickle",
        "pickle_compat",
        "warnings",
        "_warnings",
        "formatwarning",
        "showwarning",
        "_tzpath",
        "fmt",
        "printing",
        "console",
        "save_to_buffer",
        "get_buffer",
        # typing evaluates forward references (any expression) with the real builtins
        "_eval_type",
        "_evaluate",
        "mro",
        "io",
        "os",
        "sys",
        "lib",
        "stride_tricks",
        "as_strided",
    }
)
# pandas/numpy `read_*`/`to_*` do file and clipboard I/O; these few are pure conversions.
SAFE_CONVERSIONS: frozenset[str] = frozenset(
    {"to_numpy", "to_list", "to_dict", "to_frame", "to_datetime", "to_numeric", "to_timedelta"}
)
# Every attribute CPython gives generators, coroutines, async generators, frames, tracebacks
# and code objects under these prefixes (gi_frame, f_back, f_globals, tb_frame, co_consts, ...):
# the way from a generator to the job's real globals. Read off the running interpreter, so
# the list is exact for its version and honest names like `f_score` stay free.
INTROSPECTION_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_")
INTROSPECTION_ATTRIBUTES: frozenset[str] = frozenset(
    name
    for kind in (
        types.GeneratorType,
        types.CoroutineType,
        types.AsyncGeneratorType,
        types.FrameType,
        types.TracebackType,
        types.CodeType,
    )
    for name in dir(kind)
    if name.startswith(INTROSPECTION_PREFIXES)
)
# str.format looks attributes up by the names in its replacement fields.
FORMAT_METHOD = "format"


def is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


def attribute_refusal(name: str) -> str | None:
    """Why strategy code may not reach attribute `name`, or None if it may."""
    if is_dunder(name):
        return f"Access to dunder attribute '{name}' is not allowed"
    if name in INTROSPECTION_ATTRIBUTES:
        return f"Access to '{name}' is not allowed (frame, code and traceback introspection)"
    if name in FORBIDDEN_ATTRIBUTES:
        return f"Access to '{name}' is not allowed (file, OS or internals)"
    if name.startswith(("read_", "to_")) and name not in SAFE_CONVERSIONS:
        return f"'{name}' is not allowed: strategies do no file I/O"
    return None


def computed_attribute_refusal(name: str) -> str | None:
    """The rule for a name computed at run time (getattr, hasattr, setattr, delattr, imports):
    stricter than for a literal `.name`, as the object and the purpose are not known."""
    if name.startswith("_"):
        return f"the private or special attribute name {name!r} is not allowed"
    if name == FORMAT_METHOD:
        return "'format' by a computed name is not allowed: call it on a string literal"
    return attribute_refusal(name)


def format_refusal(template: str) -> str | None:
    """Why the literal `template` may not be used with str.format, or None.

    Its replacement fields read attributes by name (`"{0.gi_frame}".format(gen)`), so each
    attribute in a field, nested format specs included, follows the computed-name rule.
    """
    pending = [template]
    while pending:
        try:
            parsed = list(string.Formatter().parse(pending.pop()))
        except ValueError as exc:
            return f"The format string is malformed ({exc})"
        for _text, field_name, spec, _conversion in parsed:
            if spec:
                pending.append(spec)
            if not field_name:
                continue
            try:
                _first, rest = _string.formatter_field_name_split(field_name)
                parts = list(rest)
            except ValueError as exc:
                return f"The format string is malformed ({exc})"
            for is_attribute, part in parts:
                if is_attribute and (refusal := computed_attribute_refusal(str(part))):
                    return f"Format field '{{{field_name}}}': {refusal}"
    return None


def attribute_node_refusal(node: ast.Attribute) -> str | None:
    """Why the attribute expression `node` may not appear in strategy code, or None.

    `.format` is allowed on a string literal only, whose fields can be checked here; on a
    computed string (or `str.format`) the fields are not known before the code runs.
    """
    if node.attr == FORMAT_METHOD:
        receiver = node.value
        if not (isinstance(receiver, ast.Constant) and isinstance(receiver.value, str)):
            return "'.format' is only allowed on a string literal (use an f-string)"
        return format_refusal(receiver.value)
    return attribute_refusal(node.attr)


def lookback_assignments(tree: ast.Module) -> list[tuple[ast.stmt, int | None]]:
    """Each module-level `LOOKBACK = ...` with its value when that is a positive integer
    literal (else None: the default window applies). Only a literal counts: the server reads
    it from the syntax tree and never runs the code to find it."""
    found: list[tuple[ast.stmt, int | None]] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == LOOKBACK_NAME for t in targets):
            number = value.value if isinstance(value, ast.Constant) else None
            found.append((node, number if type(number) is int and number > 0 else None))
    return found
