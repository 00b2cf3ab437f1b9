"""Static checks of strategy code: the first, cheap layer in front of the sandbox.

The sandbox is the security boundary; this validator exists so users get early, precise
feedback (line numbers, names) and so obviously hostile or broken code is never stored as
VALIDATED. Everything it reports is a plain sentence a trader can act on.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from services.code_ast import parse_module
from services.code_rules import (
    ACTIONS,
    ALLOWED_IMPORTS,
    DEFAULT_LOOKBACK,
    DEFAULT_PARAMS_NAME,
    ENTRYPOINT,
    ENTRYPOINT_ARGS,
    LOOKBACK_NAME,
    MAX_CODE_BYTES,
    MAX_CODE_LINES,
    MAX_NESTING_DEPTH,
    attribute_node_refusal,
    attribute_refusal,
    is_dunder,
    lookback_assignments,
)

RETURN_KEYS = ("action", "confidence", "reason", "metadata")

FORBIDDEN_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "globals",
        "locals",
        "vars",
        "dir",
        "getattr",
        "setattr",
        "delattr",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "memoryview",
    }
)
# Names strategy code may not bind at all (assign, import as, def, parameter, for, with, except,
# global, del, ...): the validator would take later reads for the code's own variable while the
# sandbox still hands out its guard, so `getattr = getattr` hid `getattr(x, name)` from it.
# Dunder names are refused by the Name check already, and `def __init__` stays free. Other
# builtins may be shadowed (`id`, `type`, `max`, `sum`, `input`, and `open`, the price
# column): the guards do not rely on them, and `open` and `input` refuse to work at run time
# whatever the code binds to them.
UNBINDABLE_NAMES = (FORBIDDEN_NAMES - {"open", "input"}) | {"hasattr", "__builtins__"}
ALLOWED_DUNDER_NAMES = frozenset({"__name__", "__doc__"})
MAX_EXPONENT = 10_000

TRADING_KEYWORDS = (
    "buy",
    "sell",
    "hold",
    "signal",
    "strategy",
    "position",
    "stop_loss",
    "take_profit",
    "price",
    "volume",
    "trend",
    "momentum",
    "crossover",
    "breakout",
    "indicator",
    "risk",
    "sma",
    "ema",
    "rsi",
    "macd",
    "bollinger",
    "atr",
)
# One pass over the code for all of them (a pattern per word was a twentieth of the event
# loop's time under bench/load.py). Zero-width, so matches may overlap.
_KEYWORDS_PATTERN = re.compile(
    r"(?<![a-z])(?=(" + "|".join(map(re.escape, TRADING_KEYWORDS)) + r")(?![a-z]))"
)


@dataclass(frozen=True)
class ValidationReport:
    valid: bool
    syntax_valid: bool
    has_function: bool
    has_imports: bool
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    trading_keywords: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("errors", "warnings", "trading_keywords"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        return cls(
            valid=bool(data.get("valid")),
            syntax_valid=bool(data.get("syntax_valid")),
            has_function=bool(data.get("has_function")),
            has_imports=bool(data.get("has_imports")),
            errors=tuple(data.get("errors") or ()),
            warnings=tuple(data.get("warnings") or ()),
            trading_keywords=tuple(data.get("trading_keywords") or ()),
        )


@dataclass
class _Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, node: ast.AST | None, message: str) -> None:
        self.errors.append(_at(node, message))

    def warn(self, node: ast.AST | None, message: str) -> None:
        self.warnings.append(_at(node, message))


def _at(node: ast.AST | None, message: str) -> str:
    line = getattr(node, "lineno", None)
    return f"Line {line}: {message}" if line else message


def with_errors(report: ValidationReport, errors: list[str]) -> ValidationReport:
    """`report` plus errors found later (e.g. by running the code); any error invalidates."""
    if not errors:
        return report
    return replace(report, valid=False, errors=(*report.errors, *errors))


def trading_keywords(code: str) -> tuple[str, ...]:
    lowered = code.lower()
    found = {match.group(1) for match in _KEYWORDS_PATTERN.finditer(lowered)}
    return tuple(word for word in TRADING_KEYWORDS if word in found)


def validate_code(code: str) -> ValidationReport:
    """Check `code` against the strategy contract; never raises."""
    findings = _Findings()
    keywords = trading_keywords(code)
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > MAX_CODE_BYTES:
        findings.error(None, f"Code is {size} bytes; the limit is {MAX_CODE_BYTES}")
    lines = code.count("\n") + 1
    if lines > MAX_CODE_LINES:
        findings.error(None, f"Code has {lines} lines; the limit is {MAX_CODE_LINES}")
    if findings.errors:
        return _report(
            findings, syntax_valid=False, has_function=False, has_imports=False, keywords=keywords
        )

    try:
        tree = parse_module(code)
    except SyntaxError as exc:
        location = f" (line {exc.lineno})" if exc.lineno else ""
        findings.error(None, f"Syntax error: {exc.msg}{location}")
        return _report(
            findings, syntax_valid=False, has_function=False, has_imports=False, keywords=keywords
        )
    except (RecursionError, MemoryError, ValueError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError | MemoryError) else exc
        findings.error(None, f"Syntax error: the code cannot be parsed ({reason})")
        return _report(
            findings, syntax_valid=False, has_function=False, has_imports=False, keywords=keywords
        )

    checker = _Checker(findings, _variable_reads(tree))
    try:
        checker.visit(tree)
    except RecursionError:
        findings.error(None, f"Code is nested more than {MAX_NESTING_DEPTH} levels deep")
    entrypoint = _check_entrypoint(tree, findings)
    _check_top_level(tree, findings)
    if not keywords:
        findings.warn(None, "No trading keywords found (buy, sell, signal, price, ...)")
    return _report(
        findings,
        syntax_valid=True,
        has_function=entrypoint,
        has_imports=checker.has_imports,
        keywords=keywords,
    )


def _report(
    findings: _Findings,
    *,
    syntax_valid: bool,
    has_function: bool,
    has_imports: bool,
    keywords: tuple[str, ...],
) -> ValidationReport:
    return ValidationReport(
        valid=not findings.errors and syntax_valid and has_function,
        syntax_valid=syntax_valid,
        has_function=has_function,
        has_imports=has_imports,
        errors=tuple(dict.fromkeys(findings.errors)),
        warnings=tuple(dict.fromkeys(findings.warnings)),
        trading_keywords=keywords,
    )


_BLOCKS = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.TryStar,
    ast.Match,
)


class _Checker(ast.NodeVisitor):
    def __init__(self, findings: _Findings, variable_reads: set[int]) -> None:
        self.findings = findings
        # `open = market_data["open"]` is a variable, not the builtin (which the sandbox removes):
        # the ids of the Name nodes that read such variables rather than builtins.
        self.variable_reads = variable_reads
        self.has_imports = False
        self.depth = 0

    def generic_visit(self, node: ast.AST) -> None:
        nested = isinstance(node, _BLOCKS)
        if nested:
            self.depth += 1
            if self.depth == MAX_NESTING_DEPTH + 1:
                self.findings.error(
                    node, f"Code is nested more than {MAX_NESTING_DEPTH} levels deep"
                )
        super().generic_visit(node)
        if nested:
            self.depth -= 1

    def visit_Import(self, node: ast.Import) -> None:
        self.has_imports = True
        for alias in node.names:
            self._check_module(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.has_imports = True
        if node.level:
            self.findings.error(node, "Relative imports are not allowed")
        else:
            self._check_module(node, node.module or "")
        for alias in node.names:
            if alias.name == "*":
                self.findings.error(node, "'from ... import *' is not allowed: import names")
            else:
                self._check_attribute(node, alias.name)
        self.generic_visit(node)

    def _check_module(self, node: ast.AST, module: str) -> None:
        top = module.split(".", 1)[0]
        if top not in ALLOWED_IMPORTS:
            allowed = ", ".join(sorted(ALLOWED_IMPORTS))
            self.findings.error(node, f"Import of '{module}' is not allowed (allowed: {allowed})")
        for part in module.split(".")[1:]:
            self._check_attribute(node, part)

    def visit_Name(self, node: ast.Name) -> None:
        if (
            node.id in FORBIDDEN_NAMES
            and isinstance(node.ctx, ast.Load)
            and id(node) not in self.variable_reads
        ):
            self.findings.error(node, f"Use of '{node.id}' is not allowed")
        elif is_dunder(node.id) and node.id not in ALLOWED_DUNDER_NAMES:
            self.findings.error(node, f"Access to '{node.id}' is not allowed")
        elif not isinstance(node.ctx, ast.Load):
            self._check_binding(node, node.id)

    def _check_binding(self, node: ast.AST, name: str | None) -> None:
        if name in UNBINDABLE_NAMES:
            self.findings.error(node, f"'{name}' cannot be rebound: the sandbox guards it")

    def visit_alias(self, node: ast.alias) -> None:
        self._check_binding(node, node.asname or node.name.split(".", 1)[0])

    def visit_arg(self, node: ast.arg) -> None:
        self._check_binding(node, node.arg)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._check_binding(node, node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._check_binding(node, node.rest)
        self.generic_visit(node)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        for name in node.names:
            self._check_binding(node, name)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        refusal = attribute_node_refusal(node)
        if refusal:
            self.findings.error(node, refusal)
        elif node.attr.startswith("_"):
            self.findings.warn(node, f"Access to private attribute '{node.attr}'")
        self.generic_visit(node)

    def _check_attribute(self, node: ast.AST, name: str) -> None:
        refusal = attribute_refusal(name)
        if refusal:
            self.findings.error(node, refusal)
        elif name.startswith("_"):
            self.findings.warn(node, f"Access to private attribute '{name}'")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "__" in node.value:
            self.findings.error(node, "Strings containing '__' are not allowed")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Pow):
            exponent = node.right
            if isinstance(exponent, ast.BinOp) and isinstance(exponent.op, ast.Pow):
                self.findings.error(node, "Nested powers are not allowed (result too large)")
            elif (
                isinstance(exponent, ast.Constant)
                and isinstance(exponent.value, int | float)
                and not isinstance(exponent.value, bool)
                and abs(exponent.value) > MAX_EXPONENT
            ):
                self.findings.error(node, f"Exponent {exponent.value} is too large")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.findings.warn(node, "'global' state does not survive between calls")
        for name in node.names:
            self._check_binding(node, name)

    def visit_While(self, node: ast.While) -> None:
        always_true = isinstance(node.test, ast.Constant) and bool(node.test.value)
        if always_true and not any(isinstance(n, ast.Break | ast.Return) for n in ast.walk(node)):
            self.findings.error(node, "'while True' loop without break or return never ends")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "print":
            self.findings.warn(node, "print() output is discarded; put details in 'reason'")
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.findings.error(node, "async functions are not supported")
        self._check_binding(node, node.name)
        self.generic_visit(node)


_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)
# The scopes a name is looked up in, innermost last: (is a class body, the names it binds).
_Chain = tuple[tuple[bool, frozenset[str]], ...]


def _variable_reads(tree: ast.Module) -> set[int]:
    """Ids of the Name nodes that read a variable of the code's own rather than a builtin.

    Python's scoping, slightly simplified: a name bound anywhere in a function (lambda,
    comprehension, class body) is local to all of it; enclosing functions' and the module's
    names are visible inside, class bodies' are not. So a variable `open` in one function
    does not license `open(...)` in another. Iterative: deeply nested code must not recurse.
    """
    reads: set[int] = set()
    stack: list[tuple[ast.AST, _Chain]] = [(tree, ((False, _bindings(tree.body)),))]
    while stack:
        node, chain = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            *enclosing, (_, own) = chain
            if node.id in own or any(node.id in names for c, names in enclosing if not c):
                reads.add(id(node))
        elif isinstance(node, _SCOPES):
            outside, inside, parameters = _split_scope(node)
            bound = _bindings(inside) | parameters
            inner = (*chain, (isinstance(node, ast.ClassDef), bound))
            stack.extend((child, chain) for child in outside)
            stack.extend((child, inner) for child in inside)
        else:
            stack.extend((child, chain) for child in ast.iter_child_nodes(node))
    return reads


def _split_scope(node: ast.AST) -> tuple[list[ast.AST], list[ast.AST], frozenset[str]]:
    """A scope's parts run in the enclosing scope (defaults, decorators...), its own parts
    and its parameters."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        args = node.args
        every = [
            a
            for a in (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg)
            if a is not None
        ]
        outside: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d)]
        parameters = frozenset(a.arg for a in every)
        if isinstance(node, ast.Lambda):
            return outside, [node.body], parameters
        outside += [a.annotation for a in every if a.annotation is not None]
        outside += [*node.decorator_list, *([node.returns] if node.returns else [])]
        return outside, list(node.body), parameters
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords], list(node.body), frozenset()
    assert isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp)
    first, *rest = node.generators
    own = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    return [first.iter], [first.target, *first.ifs, *rest, *own], frozenset()


def _bindings(inside: Sequence[ast.AST]) -> frozenset[str]:
    """The names a scope binds itself: not those of scopes nested in it, nor `global` ones."""
    bound: set[str] = set()
    declared_global: set[str] = set()
    stack: list[ast.AST] = list(inside)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.alias):
            bound.add(node.asname or node.name.split(".", 1)[0])
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
        if isinstance(node, _SCOPES):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(node.name)
        else:
            stack.extend(ast.iter_child_nodes(node))
    return frozenset(bound - declared_global)


def _find_entrypoint(tree: ast.Module) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    found = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == ENTRYPOINT:
            found = node
    return found


def _check_entrypoint(tree: ast.Module, findings: _Findings) -> bool:
    function = _find_entrypoint(tree)
    signature = f"{ENTRYPOINT}({', '.join(ENTRYPOINT_ARGS)})"
    if function is None:
        findings.error(None, f"No top-level function {signature} defined")
        return False
    args = function.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    required = len(positional) - len(args.defaults)
    if (
        len(positional) < 2
        or required > 2
        or any(default is None for default in args.kw_defaults)  # a required keyword
    ):
        findings.error(function, f"{ENTRYPOINT} must accept two arguments: {signature}")
        return False
    if tuple(positional[:2]) != ENTRYPOINT_ARGS:
        findings.warn(function, f"Arguments are conventionally named {signature}")
    params_name = positional[1]
    if not any(isinstance(n, ast.Name) and n.id == params_name for n in ast.walk(function)):
        findings.warn(function, f"'{params_name}' is never used: the strategy ignores parameters")
    _check_returns(function, findings)
    return True


def _check_returns(function: ast.FunctionDef | ast.AsyncFunctionDef, findings: _Findings) -> None:
    own = _own_returns(function)
    if not own:
        findings.error(function, f"{ENTRYPOINT} never returns a signal")
        return
    for node in own:
        value = node.value
        if value is None or (isinstance(value, ast.Constant) and value.value is None):
            findings.error(node, "Return a dict with action, confidence, reason and metadata")
            continue
        if not isinstance(value, ast.Dict):
            continue
        keys = {k.value for k in value.keys if isinstance(k, ast.Constant)}
        if any(k is None for k in value.keys):
            continue  # {**base, ...}: keys not known statically
        missing = [k for k in RETURN_KEYS if k not in keys]
        if "action" in missing:
            findings.error(node, "The returned signal has no 'action'")
        elif missing:
            findings.warn(node, f"The returned signal lacks {', '.join(missing)}")
        for key_node, item in zip(value.keys, value.values, strict=True):
            literal = _literal(item)
            if not isinstance(key_node, ast.Constant) or literal is None:
                continue
            (found,) = literal
            if key_node.value == "action" and str(found).lower() not in ACTIONS:
                findings.error(node, f"action {found!r} is not one of {', '.join(ACTIONS)}")
            if key_node.value == "confidence" and (
                not isinstance(found, int | float) or isinstance(found, bool) or not 0 <= found <= 1
            ):
                findings.error(node, f"confidence {found!r} is not between 0 and 1")


def _literal(node: ast.expr | None) -> tuple[object] | None:
    """A literal's value (in a 1-tuple, as None is a value); None when `node` is no literal.
    A signed number (`-0.1`) is a literal too, though Python parses it as an operation."""
    if isinstance(node, ast.Constant):
        return (node.value,)
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        number = node.operand.value
        return (-number if isinstance(node.op, ast.USub) else number,)
    return None


def _own_returns(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.Return]:
    """The function's returns, not its nested helpers'; iterative, so deep code cannot recurse."""
    found: list[ast.Return] = []
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            found.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))
    return sorted(found, key=lambda r: (r.lineno, r.col_offset))


def _check_top_level(tree: ast.Module, findings: _Findings) -> None:
    for node, value in lookback_assignments(tree):
        if value is None:
            findings.warn(
                node,
                f"{LOOKBACK_NAME} must be a positive whole number written out (such as "
                f"{LOOKBACK_NAME} = 1000); this one is ignored and the strategy sees the "
                f"default look-back window ({DEFAULT_LOOKBACK} bars unless the server sets "
                "another)",
            )
    for node in tree.body:
        if isinstance(
            node,
            ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
        ):
            continue
        if isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        findings.warn(node, "Top-level statements run on every load; keep logic in functions")


def extract_default_params(code: str) -> dict[str, Any]:
    """`DEFAULT_PARAMS = {...}` as a JSON-safe dict: it becomes the strategy's parameters."""
    try:
        tree = parse_module(code)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == DEFAULT_PARAMS_NAME
        ):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                return {}
            return _json_safe(value) if isinstance(value, dict) else {}
    return {}


def _json_safe(value: dict[Any, Any]) -> dict[str, Any]:
    safe: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            safe[str(key)] = _json_safe(item)
        elif isinstance(item, list | tuple):
            safe[str(key)] = [x for x in item if isinstance(x, str | int | bool) or _finite(x)]
        elif isinstance(item, str | int | bool) or item is None or _finite(item):
            safe[str(key)] = item
    return safe


def _finite(value: object) -> bool:
    """A float JSON can hold: NaN and the infinities (`1e999`) have no JSON form."""
    return isinstance(value, float) and math.isfinite(value)


def extract_description(code: str) -> str:
    """The first paragraph of the entrypoint's (or the module's) docstring."""
    try:
        tree = parse_module(code)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return ""
    function = _find_entrypoint(tree)
    docstring = (ast.get_docstring(function) if function else None) or ast.get_docstring(tree)
    if not docstring:
        return ""
    return docstring.strip().split("\n\n", 1)[0].strip()
