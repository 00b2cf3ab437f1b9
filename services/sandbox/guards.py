"""Python-level guards for strategy code: a static pass over the code, restricted builtins,
attribute rules for computed names and an import allow-list.

The first layer, and it holds on its own against the attribute routes out (dunders, frame and
traceback introspection, `str.format` fields, `operator.attrgetter`): tests/test_guard_probes.py
runs each probe with the OS layers off. It is still NOT the security boundary (a library
function that reads attributes for the caller can be missed); the OS layers in `oslayers` are,
and the tests run every hostile sample with these guards switched off too.
"""

from __future__ import annotations

import ast
import builtins
import functools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import CodeType, ModuleType
from typing import Any

from services.code_rules import (
    ALLOWED_IMPORTS,
    FORMAT_METHOD,
    attribute_node_refusal,
    attribute_refusal,
    computed_attribute_refusal,
)


class ForbiddenOperation(Exception):
    """Strategy code asked for something the sandbox does not hand out."""


class ForbiddenImport(ForbiddenOperation, ImportError):
    """An ImportError too, so `try: import x except ImportError:` fallbacks keep working."""


class ForbiddenCode(ForbiddenOperation):
    """The code names an attribute the guards refuse; found before any of it runs."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


# Dunder names the job's static pass lets through, unlike the validator: those the compiler
# itself puts among a code object's names (class bodies, docstrings, annotations) and the
# special methods honest classes define. As attributes they hold plain data or bound methods,
# and nothing reached from them goes further without a dunder that is refused (`__globals__`,
# `__code__`, `__self__`, `__dict__`, ...). Without them, any strategy defining a class would
# be parsed a second time in every job.
_PLAIN_DUNDERS = frozenset(
    {
        *("__name__", "__qualname__", "__module__", "__doc__", "__annotations__"),
        *("__classcell__", "__slots__", "__init__", "__post_init__", "__repr__", "__str__"),
        *("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__bool__"),
        *("__len__", "__iter__", "__next__", "__contains__", "__getitem__", "__call__"),
        *("__enter__", "__exit__", "__add__", "__sub__", "__mul__", "__truediv__", "__neg__"),
    }
)


def check_code(source: str, code: CodeType) -> None:
    """Refuse code that names a refused attribute (`gen.gi_frame`, `x.__class__`,
    `s.format(...)` on a computed string): the validator's attribute rule, applied again in
    the job itself, as plain attribute access cannot be intercepted once the code runs.

    Every attribute the code can read is among its code objects' names, so the syntax tree
    is parsed (a few ms) only when one of those names could be refused.
    """
    if not any(_suspect(name) for name in _names(code)):
        return
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr not in _PLAIN_DUNDERS
            and (refusal := attribute_node_refusal(node))
        ):
            raise ForbiddenCode(refusal, getattr(node, "lineno", None))


def _names(code: CodeType) -> set[str]:
    """The names of `code` and of every function, class and comprehension in it."""
    names: set[str] = set()
    pending = [code]
    while pending:
        current = pending.pop()
        names.update(current.co_names)
        pending.extend(c for c in current.co_consts if isinstance(c, CodeType))
    return names


def _suspect(name: str) -> bool:
    if name in _PLAIN_DUNDERS:
        return False
    return name == FORMAT_METHOD or attribute_refusal(name) is not None


_SAFE_NAMES = (
    "abs", "aiter", "all", "anext", "any", "ascii", "bin", "bool", "bytearray", "bytes",
    "callable", "chr", "classmethod", "complex", "dict", "divmod", "enumerate", "filter",
    "float", "format", "frozenset", "hash", "hex", "id", "int", "isinstance", "issubclass",
    "iter", "len", "list", "map", "max", "min", "next", "object", "oct", "ord", "pow",
    "property", "range", "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod",
    "str", "sum", "super", "tuple", "type", "zip", "__build_class__",
    "True", "False", "None", "Ellipsis", "NotImplemented",
)  # fmt: skip

_FORBIDDEN_NAMES = (
    "open", "eval", "exec", "compile", "__import__", "input", "breakpoint", "globals",
    "locals", "vars", "dir", "help", "exit", "quit", "copyright", "credits", "license",
    "memoryview", "__loader__", "__spec__",
)  # fmt: skip


def _forbidden(name: str) -> Callable[..., Any]:
    def refuse(*_args: object, **_kwargs: object) -> Any:
        raise ForbiddenOperation(f"{name}() is not available to strategy code")

    refuse.__name__ = name
    return refuse


def _checked_attr_name(function: str, name: object) -> Any:
    """`name` as a plain str, if the computed-name rule allows it. A str subclass could
    override the methods the check calls, so the check and the lookup see an exact copy."""
    if not isinstance(name, str):
        return name  # the real function raises its own TypeError
    plain = str.__str__(name)
    refusal = computed_attribute_refusal(plain)
    if refusal:
        raise ForbiddenOperation(f"{function}(): {refusal}")
    return plain


def _safe_getattr(obj: object, name: str, *default: object) -> Any:
    return getattr(obj, _checked_attr_name("getattr", name), *default)


def _safe_hasattr(obj: object, name: str) -> bool:
    return hasattr(obj, _checked_attr_name("hasattr", name))


def _safe_setattr(obj: object, name: str, value: object) -> None:
    setattr(obj, _checked_attr_name("setattr", name), value)


def _safe_delattr(obj: object, name: str) -> None:
    delattr(obj, _checked_attr_name("delattr", name))


def _discard_print(*_args: object, **_kwargs: object) -> None:
    """print() works but goes nowhere: a job has no stdout worth reading."""


class GuardedModule:
    """What strategy code holds instead of a module: its attributes, but none that is private
    or refused by the attribute rule, however the name is reached (literal, getattr, `from`
    import), and modules among them guarded in turn. Libraries keep the real modules.

    Closes the way through a library's internals by literal private names
    (`typing._eval_type`, `random._os`) that the static pass lets through for honest classes.
    The real module lives outside the instance, so nothing on it leads back there.
    """

    def __getattr__(self, name: str) -> Any:
        """Called for a name not yet looked up; an allowed one is kept in the instance, so
        later lookups (`np.mean` on every bar) cost what a module's do."""
        module = _real_modules[id(self)]
        if name == "__name__":  # `from m import missing` asks for it to look further
            return module.__name__
        refusal = _module_attribute_refusal(name)
        if refusal:
            raise ForbiddenOperation(f"{module.__name__}.{name}: {refusal}")
        value = _guarded(getattr(module, name))
        object.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value: object) -> None:
        raise ForbiddenOperation("strategy code cannot change a module")

    def __delattr__(self, name: str) -> None:
        raise ForbiddenOperation("strategy code cannot change a module")

    def __repr__(self) -> str:
        return f"<module {_real_modules[id(self)].__name__!r}>"


_real_modules: dict[int, ModuleType] = {}
_guards_of: dict[int, GuardedModule] = {}


def _module_attribute_refusal(name: str) -> str | None:
    if name.startswith("_"):
        return f"the private or special attribute {name!r} is not allowed"
    return attribute_refusal(name)


def _guarded(value: Any) -> Any:
    if not isinstance(value, ModuleType):
        return value
    guard = _guards_of.get(id(value))
    if guard is None:
        guard = GuardedModule()
        _real_modules[id(guard)] = value
        _guards_of[id(value)] = guard
    return guard


def make_import_hook(allowed: Iterable[str] = ALLOWED_IMPORTS) -> Callable[..., Any]:
    """`__import__` that hands out only allowed, already preloaded modules.

    A module that is not in sys.modules would have to be read from disk, which the seccomp
    filter forbids; saying so here gives a clear error instead of a killed process.
    """
    allowed_set = frozenset(allowed)
    real_import = builtins.__import__
    names = ", ".join(sorted(allowed_set))

    def guarded_import(
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> Any:
        if level != 0:
            raise ForbiddenImport("relative imports are not allowed in strategy code")
        if type(name) is not str or name.partition(".")[0] not in allowed_set:
            raise ForbiddenImport(f"import of {name!r} is not allowed; allowed: {names}")
        if any(attribute_refusal(part) for part in name.split(".")[1:]):
            raise ForbiddenImport(f"import of {name!r} is not allowed")
        if name not in sys.modules:
            raise ForbiddenImport(f"module {name!r} is not available in the sandbox")
        module_vars = vars(sys.modules[name])
        for item in fromlist or ():
            # `*` would bind the modules a module imported (pandas.core.common's sys, ...)
            if type(item) is not str or item == "*" or computed_attribute_refusal(item):
                raise ForbiddenImport(f"'from {name} import {item}' is not allowed")
            lazy = "__getattr__" in module_vars
            if lazy and item not in module_vars and f"{name}.{item}" not in sys.modules:
                # A module-level __getattr__ would load it from disk now.
                raise ForbiddenImport(f"'from {name} import {item}' is not available")
        return _guarded(real_import(name, globals, locals, fromlist, level))

    return guarded_import


@functools.cache
def _safe_builtins() -> dict[str, Any]:
    """The real builtins strategy code may use, looked up once (they never change)."""
    table: dict[str, Any] = {}
    for name in _SAFE_NAMES:
        table[name] = getattr(builtins, name)
    for name, value in vars(builtins).items():
        if isinstance(value, type) and issubclass(value, BaseException):
            table[name] = value
    return table


def restricted_builtins() -> dict[str, Any]:
    """The `__builtins__` mapping strategy code sees when the guards are on: a new dict each
    time (the look-ahead check makes one per call, so no run leaves anything in it for the
    next), holding the same builtin objects a lookup would give."""
    table = dict(_safe_builtins())
    for name in _FORBIDDEN_NAMES:
        table[name] = _forbidden(name)
    table["__import__"] = make_import_hook()
    table["getattr"] = _safe_getattr
    table["hasattr"] = _safe_hasattr
    table["setattr"] = _safe_setattr
    table["delattr"] = _safe_delattr
    table["print"] = _discard_print
    table["__name__"] = "builtins"
    return table


def open_builtins() -> dict[str, Any]:
    """The real builtins (print still discarded): for the OS-layers-only test mode."""
    table = dict(vars(builtins))
    table["print"] = _discard_print
    return table


def module_globals(guards: bool) -> dict[str, Any]:
    """A fresh global namespace for the strategy module."""
    return {
        "__builtins__": restricted_builtins() if guards else open_builtins(),
        "__name__": "strategy",
        "__doc__": None,
    }


__all__ = [
    "ForbiddenCode",
    "ForbiddenImport",
    "ForbiddenOperation",
    "check_code",
    "make_import_hook",
    "module_globals",
    "open_builtins",
    "restricted_builtins",
]
