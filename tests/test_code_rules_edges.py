"""services/code_rules.py called directly: the attribute rules the validator, the sandbox's
static pass and its getattr share, with their exact refusals. Written for `make mutation`
(docs/testing.md), which needs each rule pinned where it is defined.
"""

from __future__ import annotations

import ast

import pytest

from services.code_rules import (
    attribute_node_refusal,
    attribute_refusal,
    computed_attribute_refusal,
    format_refusal,
    is_dunder,
)


def attribute_node(expression: str) -> ast.Attribute:
    node = ast.parse(expression, mode="eval").body
    assert isinstance(node, ast.Attribute)
    return node


def test_dunders_are_names_with_something_between_the_underscores() -> None:
    assert is_dunder("__x__") and is_dunder("__class__")
    assert not is_dunder("____") and not is_dunder("__x") and not is_dunder("x__")


def test_each_attribute_rule_gives_its_reason() -> None:
    assert attribute_refusal("mean") is None
    assert attribute_refusal("__class__") == "Access to dunder attribute '__class__' is not allowed"
    assert attribute_refusal("gi_frame") == (
        "Access to 'gi_frame' is not allowed (frame, code and traceback introspection)"
    )
    assert (
        attribute_refusal("ctypes") == "Access to 'ctypes' is not allowed (file, OS or internals)"
    )
    assert attribute_refusal("read_csv") == "'read_csv' is not allowed: strategies do no file I/O"
    assert attribute_refusal("to_csv") == "'to_csv' is not allowed: strategies do no file I/O"
    assert attribute_refusal("to_numpy") is None  # a safe conversion
    assert attribute_refusal("top") is None and attribute_refusal("reader") is None


def test_computed_names_follow_a_stricter_rule() -> None:
    assert computed_attribute_refusal("mean") is None
    assert computed_attribute_refusal("_cache") == (
        "the private or special attribute name '_cache' is not allowed"
    )
    assert computed_attribute_refusal("format") == (
        "'format' by a computed name is not allowed: call it on a string literal"
    )
    assert computed_attribute_refusal("to_csv") == attribute_refusal("to_csv")


@pytest.mark.parametrize(
    ("template", "refusal"),
    [
        ("{0} and {1:>10} {name}", None),
        ("{0.real} {0[1]}", None),
        ("{0.gi_frame}", "Format field '{0.gi_frame}': " + str(attribute_refusal("gi_frame"))),
        (
            "{} {0.__class__}",
            "Format field '{0.__class__}': "
            "the private or special attribute name '__class__' is not allowed",
        ),
        (
            "{0:{1._x}}",
            "Format field '{1._x}': the private or special attribute name '_x' is not allowed",
        ),
        ("{0:>{1}}", None),
        ("{0[__class__]}", None),  # an index, not an attribute
        ("{0", "The format string is malformed (expected '}' before end of string)"),
        ("{0.}", "The format string is malformed (Empty attribute in format string)"),
    ],
)
def test_format_fields_are_checked_like_computed_names(template: str, refusal: str | None) -> None:
    assert format_refusal(template) == refusal


def test_format_is_allowed_on_a_string_literal_only() -> None:
    assert attribute_node_refusal(attribute_node("'{0:.2f}'.format")) is None
    assert attribute_node_refusal(attribute_node("'{0.gi_code}'.format")) == format_refusal(
        "{0.gi_code}"
    )
    for receiver in ("name", "str", "b'{0}'", "('a' + 'b')"):
        assert attribute_node_refusal(attribute_node(f"{receiver}.format")) == (
            "'.format' is only allowed on a string literal (use an f-string)"
        )
    assert attribute_node_refusal(attribute_node("x.f_back")) == attribute_refusal("f_back")
    assert attribute_node_refusal(attribute_node("x.mean")) is None
