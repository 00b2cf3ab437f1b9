"""normalise_signal: what a strategy may return, and the exact words for what it may not."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from services.signals import (
    MAX_METADATA_BYTES,
    MAX_REASON_CHARS,
    InvalidSignal,
    clean_metadata,
    normalise_signal,
)


def signal(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"action": "buy", "confidence": 0.8, "reason": "cross", "metadata": {}}
    base.update(overrides)
    return base


def rejects(raw: object) -> str:
    with pytest.raises(InvalidSignal) as info:
        normalise_signal(raw)
    return str(info.value)


def test_a_valid_signal_comes_back_clean() -> None:
    out = normalise_signal(signal(metadata={"stop_loss_price": 95, "indicators": {"rsi": 31.5}}))
    assert out == {
        "action": "buy",
        "confidence": 0.8,
        "reason": "cross",
        "metadata": {"stop_loss_price": 95.0, "indicators": {"rsi": 31.5}},
    }
    assert type(out["metadata"]["stop_loss_price"]) is float
    assert set(out) == {"action", "confidence", "reason", "metadata"}


def test_action_is_case_insensitive_and_trimmed() -> None:
    assert normalise_signal(signal(action=" SELL "))["action"] == "sell"
    assert normalise_signal(signal(action=np.str_("Hold")))["action"] == "hold"


def test_reason_and_metadata_may_be_missing() -> None:
    out = normalise_signal({"action": "hold", "confidence": 0})
    assert out == {"action": "hold", "confidence": 0.0, "reason": "", "metadata": {}}
    assert type(out["confidence"]) is float
    assert normalise_signal(signal(reason=None, metadata=None))["metadata"] == {}


def test_a_dict_subclass_is_a_dict() -> None:
    assert normalise_signal(OrderedDict(signal()))["action"] == "buy"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "the strategy must return a dict; got list"),
        (None, "the strategy must return a dict; got None"),
        ("buy", "the strategy must return a dict; got str"),
        (signal(action="long"), "action must be one of buy, sell, hold; got 'long'"),
        (signal(action=1), "action must be one of buy, sell, hold; got 1"),
        ({"confidence": 1.0}, "the returned dict has no 'action' (one of buy, sell, hold)"),
        (signal(confidence=1.7), "confidence must be a number between 0 and 1; got 1.7"),
        (signal(confidence=-0.1), "confidence must be a number between 0 and 1; got -0.1"),
        (signal(confidence=True), "confidence must be a number between 0 and 1; got True"),
        (signal(confidence=np.bool_(True)), "confidence must be a number between 0 and 1"),
        (signal(confidence=math.nan), "confidence must be a number between 0 and 1; got nan"),
        (signal(confidence="0.5"), "confidence must be a number between 0 and 1; got '0.5'"),
        (signal(confidence=None), "confidence must be a number between 0 and 1; got None"),
        (signal(confidence=10**400), "confidence must be a number between 0 and 1"),
        ({"action": "buy"}, "the returned dict has no 'confidence' (a number between 0 and 1)"),
        (signal(reason=3), "reason must be a string; got int"),
        (signal(metadata=[1]), "metadata must be a dict; got list"),
        (signal(metadata="x"), "metadata must be a dict; got str"),
    ],
)
def test_invalid_return_values_say_what_is_wrong(raw: object, message: str) -> None:
    assert rejects(raw).startswith(message)


def test_numeric_confidence_types_are_accepted() -> None:
    for value in (1, 0, np.float32(0.25), np.int64(1), np.float64(0.5)):
        out = normalise_signal(signal(confidence=value))
        assert out["confidence"] == float(value)
        assert type(out["confidence"]) is float


def test_reason_is_truncated() -> None:
    out = normalise_signal(signal(reason="x" * (MAX_REASON_CHARS + 50)))
    assert out["reason"] == "x" * MAX_REASON_CHARS


@pytest.mark.parametrize("key", ["stop_loss_price", "take_profit_price"])
@pytest.mark.parametrize("bad", [0, -3.0, math.nan, math.inf, True, "95", [95.0]])
def test_price_levels_must_be_finite_positive_numbers(key: str, bad: object) -> None:
    message = rejects(signal(metadata={key: bad}))
    assert message.startswith(f"metadata {key} must be a finite positive price or None; got ")


def test_price_levels_may_be_none_or_numpy() -> None:
    out = normalise_signal(
        signal(metadata={"stop_loss_price": None, "take_profit_price": np.float32(110.5)})
    )
    assert out["metadata"] == {"stop_loss_price": None, "take_profit_price": 110.5}


def test_metadata_becomes_json_safe() -> None:
    meta = {
        "indicators": {
            "sma": np.float64(101.5),
            "rsi": np.float32(30.0),
            "bars": np.int64(7),
            "up": np.bool_(True),
            "gap": math.nan,
            "hi": -math.inf,
            "series": np.array([1.0, np.nan, 3.0]),
            "ints": np.arange(3),
            "labels": np.array(["a", "b"]),
        },
        1: "int key",
        2.5: "float key",
        None: "none key",
        False: "bool key",  # (True would collide with the key 1: True == 1 in Python)
        ("a", 1): "tuple key",
        "tuple": (1, 2.0, None),
        "huge": 10**30,
        "enormous": 10**400,
        "nested": [[{"x": np.float64(math.inf)}]],
    }
    out = clean_metadata(meta)
    assert out["indicators"] == {
        "sma": 101.5,
        "rsi": 30.0,
        "bars": 7,
        "up": True,
        "gap": None,
        "hi": None,
        "series": [1.0, None, 3.0],
        "ints": [0, 1, 2],
        "labels": ["a", "b"],
    }
    assert type(out["indicators"]["sma"]) is float
    assert type(out["indicators"]["bars"]) is int
    assert type(out["indicators"]["up"]) is bool
    assert out["1"] == "int key"
    assert out["2.5"] == "float key"
    assert out["null"] == "none key"
    assert out["false"] == "bool key"
    assert out["('a', 1)"] == "tuple key"
    assert out["tuple"] == [1, 2.0, None]
    assert out["huge"] == 1e30
    assert out["enormous"] is None
    assert out["nested"] == [[{"x": None}]]
    json.dumps(out, allow_nan=False)  # raises on NaN/inf or a non-JSON type


def test_metadata_is_a_copy() -> None:
    inner = {"a": 1.0}
    out = normalise_signal(signal(metadata={"inner": inner}))
    out["metadata"]["inner"]["a"] = 2.0
    assert inner == {"a": 1.0}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({1, 2}, "metadata['bad'] has unsupported type set"),
        (object(), "metadata['bad'] has unsupported type object"),
        (np.array([object()]), "numpy array of dtype object"),
    ],
)
def test_unsupported_metadata_types_are_named_with_their_path(value: object, fragment: str) -> None:
    assert fragment in rejects(signal(metadata={"bad": value}))


def test_unsupported_key_type_is_rejected() -> None:
    assert "key of unsupported type frozenset" in rejects(signal(metadata={frozenset(): 1}))


def test_metadata_depth_is_bounded() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    assert "is nested too deeply (at most 16 levels)" in rejects(signal(metadata=deep))


def test_a_self_referencing_metadata_is_rejected_not_looped() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    assert "nested too deeply" in rejects(signal(metadata=loop))


@pytest.mark.parametrize(
    "meta",
    [
        {"series": list(range(MAX_METADATA_BYTES))},
        {"series": np.zeros(MAX_METADATA_BYTES + 1)},
        {"text": "x" * MAX_METADATA_BYTES},
        {f"k{i}": 1.5 for i in range(MAX_METADATA_BYTES // 4)},
        {"rows": [[1.0] * 100 for _ in range(1000)]},
    ],
)
def test_metadata_too_large(meta: dict[str, Any]) -> None:
    assert rejects(signal(metadata=meta)).startswith("metadata too large")


def test_metadata_just_under_the_limit_is_measured_exactly() -> None:
    # Upper bound (24 characters per float) is far above the limit; the exact size is not.
    meta = {"series": [0.5] * 15_000}
    out = normalise_signal(signal(metadata=meta))
    assert len(json.dumps(out["metadata"], separators=(",", ":"))) <= MAX_METADATA_BYTES
    assert out["metadata"]["series"] == meta["series"]


def test_size_limit_counts_escaped_characters() -> None:
    # 12,000 emoji are 24,000 UTF-16 units: 144,000 characters once JSON escapes them.
    assert rejects(signal(metadata={"text": "\U0001f600" * 12_000})).startswith(
        "metadata too large"
    )
