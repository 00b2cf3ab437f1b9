"""Python-level guards for strategy code: restricted builtins and an import allow-list.

These give clear errors for honest mistakes and stop naive attacks early. They are NOT the
security boundary (frame walks and `__subclasses__` reach the real builtins); the OS layers
in `oslayers` are, and the tests run every hostile sample with these guards switched off.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from services.code_rules import ALLOWED_IMPORTS


class ForbiddenOperation(Exception):
    """Strategy code asked for something the sandbox does not hand out."""


class ForbiddenImport(ForbiddenOperation, ImportError):
    """An ImportError too, so `try: import x except ImportError:` fallbacks keep working."""


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


def _check_attr_name(function: str, name: object) -> None:
    if isinstance(name, str) and name.startswith("_"):
        raise ForbiddenOperation(
            f"{function}() with the private or special attribute name {name!r} is not allowed"
        )


def _safe_getattr(obj: object, name: str, *default: object) -> Any:
    _check_attr_name("getattr", name)
    return getattr(obj, name, *default)


def _safe_hasattr(obj: object, name: str) -> bool:
    _check_attr_name("hasattr", name)
    return hasattr(obj, name)


def _safe_setattr(obj: object, name: str, value: object) -> None:
    _check_attr_name("setattr", name)
    setattr(obj, name, value)


def _safe_delattr(obj: object, name: str) -> None:
    _check_attr_name("delattr", name)
    delattr(obj, name)


def _discard_print(*_args: object, **_kwargs: object) -> None:
    """print() works but goes nowhere: a job has no stdout worth reading."""


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
        if not isinstance(name, str) or name.partition(".")[0] not in allowed_set:
            raise ForbiddenImport(f"import of {name!r} is not allowed; allowed: {names}")
        if name not in sys.modules:
            raise ForbiddenImport(f"module {name!r} is not available in the sandbox")
        module_vars = vars(sys.modules[name])
        for item in fromlist or ():
            if not isinstance(item, str) or item.startswith("_"):
                raise ForbiddenImport(f"'from {name} import {item}' is not allowed")
            lazy = "__getattr__" in module_vars and item != "*"
            if lazy and item not in module_vars and f"{name}.{item}" not in sys.modules:
                # A module-level __getattr__ would load it from disk now.
                raise ForbiddenImport(f"'from {name} import {item}' is not available")
        return real_import(name, globals, locals, fromlist, level)

    return guarded_import


def restricted_builtins() -> dict[str, Any]:
    """The `__builtins__` mapping strategy code sees when the guards are on."""
    table: dict[str, Any] = {}
    for name in _SAFE_NAMES:
        table[name] = getattr(builtins, name)
    for name, value in vars(builtins).items():
        if isinstance(value, type) and issubclass(value, BaseException):
            table[name] = value
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
    "ForbiddenImport",
    "ForbiddenOperation",
    "make_import_hook",
    "module_globals",
    "open_builtins",
    "restricted_builtins",
]
