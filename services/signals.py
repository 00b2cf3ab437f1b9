"""Validation of what a strategy's `execute_strategy` returns.

A strategy is untrusted, often machine-written code: its return value is checked here once,
turned into plain JSON-safe data, and every problem is reported in words a user can act on.
Pure Python and numpy only, so the sandbox's child process can import it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from services.code_rules import ACTIONS

MAX_REASON_CHARS = 1000
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 16
PRICE_KEYS = ("stop_loss_price", "take_profit_price")
# Order instructions a buy or sell may carry in its metadata, besides the absolute prices;
# docs/backtesting.md says what each means. Percents are percent (2.0 means 2%), as the
# backtest's commissionPct is; the stop and target percents are measured from the fill.
PERCENT_KEYS = ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct")
SIZE_KEYS = ("size_fraction", "units")
ORDER_KEYS = PRICE_KEYS + PERCENT_KEYS + SIZE_KEYS
# A size is given one way at most. (A stop or target in percent and as a price may come
# together: the percent counts, measured from the fill; see services/backtesting.py.)
_EXCLUSIVE = (("size_fraction", "units"),)

_ACTIONS_TEXT = ", ".join(ACTIONS)
_INT_LIMIT = 2**63
# Upper bounds of a value's length in compact JSON (ensure_ascii): a scalar (a float's repr, an
# int below 2**63, true/false/null) is at most 24 characters, a code point at most 12
# ("\\ud83d\\ude00" for one emoji).
_FLOAT_MAX_CHARS = 24
_CHAR_MAX_CHARS = 12
_MISSING = object()
# Fast-path bounds, small enough that such metadata cannot exceed the size limit: at most
# 16 + 16 * 16 = 272 entries, each at most 6 * 32 (ASCII key, escaped) + 4 + 24 = 220
# characters, plus 17 pairs of braces: under 60,000 characters.
_SMALL_ITEMS = 16
_SMALL_KEY_CHARS = 32


class InvalidSignal(Exception):
    """A strategy's return value breaks the contract; the message says how."""


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _short_repr(value: object, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the real problem
        text = f"<{_type_name(value)}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_BOOLS = (bool, np.bool_)
_NUMBERS = (int, float, np.integer, np.floating)
_SEQUENCES = (list, tuple)
_ACTION_OF = {name: name for name in ACTIONS}


def _as_number(value: object) -> float:
    """float(value) for real numbers (not bools); NaN for anything else."""
    if isinstance(value, _BOOLS) or not isinstance(value, _NUMBERS):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _check_price(key: str, value: object) -> float | None:
    if value is None:
        return None
    price = value if type(value) is float else _as_number(value)
    if price - price == 0.0 and price > 0:  # finite and positive
        return price
    raise InvalidSignal(
        f"metadata {key} must be a finite positive price or None; got {_short_repr(value)}"
    )


def _check_order_value(key: str, value: object) -> float | None:
    """An order instruction's value, checked: None, or a finite number in the key's range."""
    if key in PRICE_KEYS:
        return _check_price(key, value)
    if value is None:
        return None
    number = value if type(value) is float else _as_number(value)
    if key == "size_fraction":
        if 0.0 < number <= 1.0:
            return number
        expected = "a fraction of equity above 0 and at most 1 (0.5 = half)"
    elif key == "units":
        if number - number == 0.0 and number > 0:
            return number
        expected = "a finite number of units above 0"
    elif key == "take_profit_pct":
        if number - number == 0.0 and number > 0:
            return number
        expected = "a finite percent above 0 (5.0 means 5%)"
    else:  # stop_loss_pct, trailing_stop_pct: a long's stop cannot be 100% below the fill
        if 0.0 < number < 100.0:
            return number
        expected = "a percent above 0 and below 100 (2.0 means 2%)"
    raise InvalidSignal(f"metadata {key} must be {expected} or None; got {_short_repr(value)}")


def _order_values(metadata: dict[Any, Any]) -> dict[str, float | None]:
    values = {key: _check_order_value(key, metadata[key]) for key in ORDER_KEYS if key in metadata}
    for first, second in _EXCLUSIVE:
        if values.get(first) is not None and values.get(second) is not None:
            raise InvalidSignal(f"metadata gives both {first} and {second}: give one of them")
    return values


def normalise_signal(raw: object) -> dict[str, Any]:
    """Validate one return value of `execute_strategy` and return a clean JSON-safe copy.

    The result has exactly the keys action (lower-case), confidence (float), reason (str, at
    most 1000 characters) and metadata (a dict that survives `json.dumps(allow_nan=False)`).
    Runs once per bar, hence the exact-type fast paths before the general checks.
    """
    if type(raw) is not dict and not isinstance(raw, dict):
        raise InvalidSignal(f"the strategy must return a dict; got {_type_name(raw)}")
    get = raw.get

    action = get("action", _MISSING)
    name = _ACTION_OF.get(action) if type(action) is str else None
    if name is None:
        if action is _MISSING:
            raise InvalidSignal(f"the returned dict has no 'action' (one of {_ACTIONS_TEXT})")
        name = _ACTION_OF.get(action.strip().lower()) if isinstance(action, str) else None
        if name is None:
            raise InvalidSignal(f"action must be one of {_ACTIONS_TEXT}; got {_short_repr(action)}")

    confidence = get("confidence", _MISSING)
    value = confidence if type(confidence) is float else _as_number(confidence)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        if confidence is _MISSING:
            raise InvalidSignal("the returned dict has no 'confidence' (a number between 0 and 1)")
        raise InvalidSignal(
            f"confidence must be a number between 0 and 1; got {_short_repr(confidence)}"
        )

    reason = get("reason")
    if type(reason) is not str:
        if reason is None:
            reason = ""
        elif isinstance(reason, str):
            reason = str(reason)
        else:
            raise InvalidSignal(f"reason must be a string; got {_type_name(reason)}")
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS]

    metadata = get("metadata")
    if not metadata and (metadata is None or type(metadata) is dict):
        clean: dict[str, Any] = {}
    elif not isinstance(metadata, dict):
        raise InvalidSignal(f"metadata must be a dict; got {_type_name(metadata)}")
    else:
        orders = _order_values(metadata)
        clean = clean_metadata(metadata)
        if orders:
            clean.update(orders)

    return {"action": name, "confidence": float(value), "reason": reason, "metadata": clean}


def clean_metadata(metadata: dict[Any, Any]) -> dict[str, Any]:
    """Return a JSON-safe copy of `metadata`, or raise InvalidSignal saying what does not fit.

    numpy scalars and arrays become Python numbers and lists, NaN and infinities become None,
    non-string keys become strings; nesting and serialised size are bounded. The size is
    bracketed cheaply while walking (a lower bound stops huge inputs early); only when the
    upper bound passes the limit is the exact JSON length measured.
    """
    out = _small(metadata, 1)
    if out is not None:
        return out
    sizes = [0, 0]  # lower and upper bound of the compact JSON length
    walked = _clean(metadata, 0, [], sizes)
    assert isinstance(walked, dict)
    if sizes[1] > MAX_METADATA_BYTES:
        exact = len(json.dumps(walked, separators=(",", ":"), allow_nan=False))
        if exact > MAX_METADATA_BYTES:
            raise _too_large()
    return walked


def _small(metadata: dict[Any, Any], nested: int) -> dict[str, Any] | None:
    """The per-bar common case, a few string keys over scalars (and `nested` levels of dicts
    of them), done in one tight loop. None means "not that simple": take the general walk."""
    if len(metadata) > _SMALL_ITEMS:
        return None
    out: dict[str, Any] = {}
    for key, item in metadata.items():
        if type(key) is not str or len(key) > _SMALL_KEY_CHARS or not key.isascii():
            return None
        kind = type(item)
        if kind is float or kind is np.float64:
            number = float(item)
            out[key] = number if number - number == 0.0 else None
        elif (kind is int and -_INT_LIMIT < item < _INT_LIMIT) or item is None or kind is bool:
            out[key] = item
        elif kind is dict and nested:
            inner = _small(item, nested - 1)
            if inner is None:
                return None
            out[key] = inner
        else:
            return None
    return out


def _too_large() -> InvalidSignal:
    return InvalidSignal(
        f"metadata too large: more than {MAX_METADATA_BYTES} bytes once serialised as JSON"
    )


def _where(path: list[object]) -> str:
    return "metadata" + "".join(f"[{part!r}]" for part in path)


def _enter(path: list[object], depth: int, sizes: list[int], lower: int, upper: int) -> None:
    """Account for a container before walking it, so oversized input stops early."""
    if depth >= MAX_METADATA_DEPTH:
        raise InvalidSignal(
            f"{_where(path)} is nested too deeply (at most {MAX_METADATA_DEPTH} levels)"
        )
    sizes[0] += lower
    sizes[1] += upper
    if sizes[0] > MAX_METADATA_BYTES:
        raise _too_large()


def _clean(value: object, depth: int, path: list[object], sizes: list[int]) -> object:
    kind = type(value)
    if kind is float or kind is np.float64:
        number = float(value)  # type: ignore[arg-type]
        return number if number - number == 0.0 else None
    if kind is str:
        sizes[0] += len(value)  # type: ignore[arg-type]
        sizes[1] += _CHAR_MAX_CHARS * len(value) + 2  # type: ignore[arg-type]
        return value
    if value is None or kind is bool:
        return value
    if kind is int:
        if -_INT_LIMIT < value < _INT_LIMIT:  # type: ignore[operator]
            return value
        try:
            big = float(value)  # type: ignore[arg-type]
        except OverflowError:
            return None
        return big if math.isfinite(big) else None
    if isinstance(value, dict):
        # Each item is at least `"":0,` (4 characters once the comma is shared).
        _enter(path, depth, sizes, 4 * len(value), 2 + (_FLOAT_MAX_CHARS + 4) * len(value))
        out: dict[str, Any] = {}
        lower = upper = 0
        for key, item in value.items():
            if type(key) is not str:
                key = _key(key, path)
            upper += _CHAR_MAX_CHARS * len(key)
            lower += len(key)
            item_kind = type(item)
            if item_kind is float or item_kind is np.float64:
                number = float(item)
                out[key] = number if number - number == 0.0 else None
            elif (
                (item_kind is int and -_INT_LIMIT < item < _INT_LIMIT)
                or item is None
                or item_kind is bool
            ):
                out[key] = item
            else:
                path.append(key)
                out[key] = _clean(item, depth + 1, path, sizes)
                path.pop()
        sizes[0] += lower
        sizes[1] += upper
        if sizes[0] > MAX_METADATA_BYTES:
            raise _too_large()
        return out
    if isinstance(value, _SEQUENCES):
        _enter(path, depth, sizes, len(value), 2 + (_FLOAT_MAX_CHARS + 1) * len(value))
        items: list[object] = []
        append = items.append
        for index, item in enumerate(value):
            item_kind = type(item)
            if item_kind is float or item_kind is np.float64:
                number = float(item)
                append(number if number - number == 0.0 else None)
            elif (
                (item_kind is int and -_INT_LIMIT < item < _INT_LIMIT)
                or item is None
                or item_kind is bool
            ):
                append(item)
            else:
                path.append(index)
                append(_clean(item, depth + 1, path, sizes))
                path.pop()
        if sizes[0] > MAX_METADATA_BYTES:
            raise _too_large()
        return items
    if isinstance(value, np.ndarray):
        if value.size > MAX_METADATA_BYTES:
            raise _too_large()
        if value.dtype.kind not in "biufU":
            raise InvalidSignal(
                f"{_where(path)} is a numpy array of dtype {value.dtype}; "
                "only numeric, boolean and string arrays are accepted"
            )
        return _clean(value.tolist(), depth, path, sizes)
    if isinstance(value, np.generic):
        return _clean(value.item(), depth, path, sizes)
    if isinstance(value, str):  # subclasses of the plain types
        return _clean(str(value), depth, path, sizes)
    if isinstance(value, float):
        return _clean(float(value), depth, path, sizes)
    if isinstance(value, int):
        return _clean(int(value), depth, path, sizes)
    raise InvalidSignal(
        f"{_where(path)} has unsupported type {_type_name(value)}; use numbers, strings, "
        "booleans, None, lists, dicts or numpy arrays"
    )


def _key(key: object, path: list[object]) -> str:
    """JSON object keys are strings: convert the ones whose text is unambiguous."""
    if isinstance(key, str):
        return str(key)
    if isinstance(key, np.generic):
        key = key.item()
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int) and -_INT_LIMIT < key < _INT_LIMIT:
        return str(key)
    if isinstance(key, float):
        return repr(key)
    if isinstance(key, str):
        return key
    if isinstance(key, tuple) and all(
        k is None
        or isinstance(k, str | bool | float)
        or (isinstance(k, int) and abs(k) < _INT_LIMIT)
        for k in key
    ):
        return str(key)
    raise InvalidSignal(
        f"{_where(path)} has a key of unsupported type {_type_name(key)}: {_short_repr(key)}"
    )
