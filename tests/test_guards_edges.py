"""The Python guards called directly, in this process: each rule of services/sandbox/guards.py
with the exact refusal it gives. Fast enough for `make mutation` (docs/testing.md), which
mutates guards.py and needs a test that fails for each changed rule, not only for a stopped job.
"""

from __future__ import annotations

import builtins
import json
import math
import sys
import types

import pytest

from services.code_rules import ALLOWED_IMPORTS
from services.sandbox.guards import (
    ForbiddenCode,
    ForbiddenImport,
    ForbiddenOperation,
    check_code,
    make_import_hook,
    module_globals,
    open_builtins,
    restricted_builtins,
)


def run_guarded(source: str) -> dict[str, object]:
    """Compile, check and run `source` as the sandbox child does, guards on."""
    code = compile(source, "<strategy>", "exec")
    check_code(source, code)
    namespace = module_globals(guards=True)
    exec(code, namespace)
    return namespace


# check_code ------------------------------------------------------------------------------


def test_plain_code_passes_the_static_check() -> None:
    source = "x = [1, 2]\ny = len(x).bit_length()\n"
    check_code(source, compile(source, "<s>", "exec"))


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("x = 1\ny = (lambda: 0).__globals__\n", 2),
        ("def f():\n    g = (i for i in [])\n    return g.gi_frame\n", 3),
        ("class A:\n    def m(self):\n        return self.__dict__\n", 3),
        ("s = 'a' + '{0.x}'\nt = s.format(1)\n", 2),
    ],
)
def test_a_refused_attribute_is_named_with_its_line(source: str, line: int) -> None:
    with pytest.raises(ForbiddenCode) as caught:
        check_code(source, compile(source, "<s>", "exec"))
    assert caught.value.line == line
    assert str(caught.value).startswith(("Access to", "'.format' is only allowed"))


def test_code_naming_only_refused_attributes_is_still_parsed() -> None:
    # Every name in the code is refused: the cheap pre-check must still send it to the parser.
    source = "(lambda: 0).__globals__\n"
    with pytest.raises(ForbiddenCode) as caught:
        check_code(source, compile(source, "<s>", "exec"))
    assert str(caught.value) == "Access to dunder attribute '__globals__' is not allowed"
    assert caught.value.args == ("Access to dunder attribute '__globals__' is not allowed",)


def test_plain_dunders_of_honest_classes_pass() -> None:
    source = (
        "class Point:\n"
        "    '''doc'''\n"
        "    def __init__(self, x):\n"
        "        self.x = x\n"
        "    def __repr__(self):\n"
        "        return type(self).__name__ + str(self.x)\n"
        "p = Point(1)\n"
        "name = p.__repr__()\n"
        "q = Point.__init__\n"
    )
    check_code(source, compile(source, "<s>", "exec"))


def test_a_refused_name_only_as_a_variable_is_not_refused() -> None:
    # `format` here is a local name, never an attribute: the tree is parsed, nothing refused.
    source = "format = 1\nx = format + 1\n"
    check_code(source, compile(source, "<s>", "exec"))


def test_the_forbidden_attribute_deep_in_nested_code_is_found() -> None:
    source = (
        "def outer():\n"
        "    def inner():\n"
        "        return [t.tb_frame for t in []]\n"
        "    return inner\n"
    )
    with pytest.raises(ForbiddenCode) as caught:
        check_code(source, compile(source, "<s>", "exec"))
    assert caught.value.line == 3


# builtins -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["open", "eval", "exec", "compile", "input", "globals", "locals", "vars", "dir", "breakpoint"],
)
def test_forbidden_builtins_refuse_with_their_name(name: str) -> None:
    table = restricted_builtins()
    with pytest.raises(ForbiddenOperation, match=rf"^{name}\(\) is not available"):
        table[name]("x")
    assert table[name].__name__ == name


def test_safe_builtins_are_the_real_ones() -> None:
    table = restricted_builtins()
    for name in ("len", "sum", "min", "max", "range", "sorted", "isinstance", "type", "zip"):
        assert table[name] is getattr(builtins, name)
    assert table["True"] is True and table["None"] is None
    assert table["__name__"] == "builtins"
    assert table["ValueError"] is ValueError and table["KeyError"] is KeyError
    assert table["Exception"] is Exception
    assert "memoryview" in table and table["memoryview"] is not memoryview


def test_print_is_discarded(capsys: pytest.CaptureFixture[str]) -> None:
    run_guarded("print('hello', 1)\n")
    assert capsys.readouterr().out == ""
    assert restricted_builtins()["print"]("x", sep="") is None


def test_open_builtins_are_the_real_ones_but_print() -> None:
    table = open_builtins()
    assert table["open"] is open and table["eval"] is eval
    assert table["print"] is not print
    assert table["print"]("discarded") is None


def test_module_globals_follow_the_guards_switch() -> None:
    guarded = module_globals(guards=True)
    unguarded = module_globals(guards=False)
    assert guarded["__name__"] == unguarded["__name__"] == "strategy"
    assert guarded["__doc__"] is None
    assert guarded["__builtins__"]["open"] is not open  # type: ignore[index]
    assert unguarded["__builtins__"]["open"] is open  # type: ignore[index]
    assert module_globals(guards=True) is not guarded  # fresh each time


# getattr and friends --------------------------------------------------------------------


def test_computed_attribute_names_are_checked() -> None:
    table = restricted_builtins()
    box = types.SimpleNamespace(value=1)
    assert table["getattr"](box, "value") == 1
    assert table["getattr"](box, "missing", 7) == 7
    assert table["hasattr"](box, "value") is True
    assert table["hasattr"](box, "nothing") is False
    table["setattr"](box, "other", 2)
    assert box.other == 2
    table["delattr"](box, "other")
    assert not hasattr(box, "other")
    for function in ("getattr", "hasattr", "delattr"):
        with pytest.raises(ForbiddenOperation, match=rf"^{function}\(\): "):
            table[function](box, "__class__")
    with pytest.raises(ForbiddenOperation, match=r"^setattr\(\): "):
        table["setattr"](box, "__class__", object)


def test_a_str_subclass_cannot_disguise_a_refused_name() -> None:
    class Sneaky(str):
        def __eq__(self, other: object) -> bool:
            return False

        def __hash__(self) -> int:
            return 0

        def startswith(self, *args: object) -> bool:  # type: ignore[override]
            return False

    getattr_ = restricted_builtins()["getattr"]
    with pytest.raises(ForbiddenOperation):
        getattr_(object(), Sneaky("__class__"))


def test_a_non_string_name_gets_the_real_type_error() -> None:
    with pytest.raises(TypeError):
        restricted_builtins()["getattr"](object(), 3)


# imports --------------------------------------------------------------------------------


def test_allowed_imports_hand_out_guarded_modules() -> None:
    namespace = run_guarded("import math\nroot = math.sqrt(16)\nname = repr(math)\n")
    assert namespace["root"] == 4.0
    assert namespace["name"] == "<module 'math'>"
    assert namespace["math"] is not math
    again = run_guarded("import math\n")
    assert again["math"] is namespace["math"]  # one guard per module


def test_a_module_outside_the_allow_list_is_refused_naming_the_list() -> None:
    hook = make_import_hook()
    with pytest.raises(ForbiddenImport, match=r"^import of 'os' is not allowed; allowed: ") as e:
        hook("os")
    assert ", ".join(sorted(ALLOWED_IMPORTS)) in str(e.value)
    assert isinstance(e.value, ImportError)


def test_a_module_gets_one_guard_however_often_it_is_imported() -> None:
    fresh = types.ModuleType("fresh_probe")
    sys.modules["fresh_probe"] = fresh
    try:
        hook = make_import_hook(["fresh_probe"])
        first = hook("fresh_probe")
        assert hook("fresh_probe") is first
        assert make_import_hook(["fresh_probe"])("fresh_probe") is first
    finally:
        sys.modules.pop("fresh_probe")


def test_from_a_submodule_import_gets_the_submodule() -> None:
    hook = make_import_hook(["json"])
    decoder = hook("json.decoder", None, None, ("JSONDecoder",))
    assert repr(decoder) == "<module 'json.decoder'>"
    assert decoder.JSONDecoder is json.JSONDecoder
    assert repr(hook("json.decoder")) == "<module 'json'>"  # `import json.decoder` binds json


def test_a_custom_allow_list_is_honoured() -> None:
    hook = make_import_hook(["json"])
    assert repr(hook("json")) == "<module 'json'>"
    with pytest.raises(ForbiddenImport, match=r"allowed: json$"):
        hook("math")


def test_relative_and_non_string_imports_are_refused() -> None:
    hook = make_import_hook()
    with pytest.raises(ForbiddenImport, match=r"^relative imports are not allowed"):
        hook("math", None, None, (), 1)
    with pytest.raises(ForbiddenImport, match="is not allowed"):
        hook(b"math")  # type: ignore[arg-type]


def test_a_refused_submodule_name_is_refused() -> None:
    hook = make_import_hook(["json", *ALLOWED_IMPORTS])
    with pytest.raises(ForbiddenImport, match=r"^import of 'json\.__init__' is not allowed$"):
        hook("json.__init__")


def test_a_module_not_preloaded_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "json.tool", raising=False)
    hook = make_import_hook(["json"])
    with pytest.raises(ForbiddenImport, match=r"^module 'json\.tool' is not available"):
        hook("json.tool")


def test_from_imports_are_checked_item_by_item() -> None:
    hook = make_import_hook(["json", "math"])
    module = hook("math", None, None, ("sqrt",))
    assert module.sqrt(9) == 3.0
    for item in ("*", "__dict__", 3):
        with pytest.raises(ForbiddenImport, match=r"^'from math import .*' is not allowed$"):
            hook("math", None, None, (item,))
    hook("json", None, None, None)  # no fromlist at all


def test_a_lazy_module_attribute_not_loaded_is_unavailable() -> None:
    lazy = types.ModuleType("lazy_probe")
    lazy.present = 1  # type: ignore[attr-defined]

    def load(name: str) -> object:
        raise AttributeError(name)  # a real lazy module would import `name` from disk here

    lazy.__getattr__ = load  # type: ignore[method-assign]
    sys.modules["lazy_probe"] = lazy
    try:
        hook = make_import_hook(["lazy_probe"])
        assert hook("lazy_probe", None, None, ("present",)).present == 1
        with pytest.raises(ForbiddenImport, match=r"^'from lazy_probe import absent' is not avail"):
            hook("lazy_probe", None, None, ("absent",))
        sys.modules["lazy_probe.sub"] = types.ModuleType("lazy_probe.sub")
        hook("lazy_probe", None, None, ("sub",))
    finally:
        sys.modules.pop("lazy_probe", None)
        sys.modules.pop("lazy_probe.sub", None)


def test_the_import_statement_inside_strategy_code_uses_the_hook() -> None:
    with pytest.raises(ForbiddenImport, match="import of 'os' is not allowed"):
        run_guarded("import os\n")
    with pytest.raises(ImportError):  # the documented `except ImportError` fallback works
        run_guarded("import subprocess\n")
    namespace = run_guarded("try:\n    import os\nexcept ImportError:\n    os = None\n")
    assert namespace["os"] is None


# guarded modules ------------------------------------------------------------------------


def test_guarded_modules_refuse_private_names_and_changes() -> None:
    guarded = make_import_hook()("math")
    assert guarded.pi == math.pi
    assert guarded.__name__ == "math"
    with pytest.raises(ForbiddenOperation, match=r"^math\._private: the private or special"):
        guarded._private  # noqa: B018
    with pytest.raises(ForbiddenOperation, match=r"^strategy code cannot change a module$"):
        guarded.pi = 3
    with pytest.raises(ForbiddenOperation, match=r"^strategy code cannot change a module$"):
        del guarded.pi
    assert math.pi != 3


def test_guarded_modules_refuse_attributes_the_rule_refuses() -> None:
    guarded = make_import_hook(["json"])("json")
    with pytest.raises(ForbiddenOperation, match=r"^json\.__loader__: "):
        guarded.__loader__  # noqa: B018
    with pytest.raises(ForbiddenOperation, match=r"^json\.loads: .*file, OS or internals"):
        guarded.loads  # noqa: B018
    assert guarded.JSONDecoder is json.JSONDecoder
    assert "JSONDecoder" in vars(guarded)  # kept after the first lookup
    assert guarded.JSONDecoder is json.JSONDecoder  # and what is kept is the value


def test_an_attribute_kept_after_its_first_lookup_is_the_real_value() -> None:
    # A module no other test imported: its guard's cache starts empty even in a forked run.
    fresh = types.ModuleType("cache_probe")
    fresh.value = object()  # type: ignore[attr-defined]
    sys.modules["cache_probe"] = fresh
    try:
        guarded = make_import_hook(["cache_probe"])("cache_probe")
        assert "value" not in vars(guarded)
        assert guarded.value is fresh.value  # looked up
        assert guarded.value is fresh.value  # kept
    finally:
        sys.modules.pop("cache_probe")


def test_submodules_reached_as_attributes_are_guarded_too() -> None:
    guarded = make_import_hook(["json"])("json")
    decoder = guarded.decoder
    assert isinstance(decoder, types.ModuleType) is False
    assert repr(decoder) == "<module 'json.decoder'>"
    with pytest.raises(ForbiddenOperation):
        decoder._private  # noqa: B018
