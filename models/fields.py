"""Field types tuned for the hot read path, and the JSON every stored document goes through."""

from __future__ import annotations

import contextlib
import datetime
import json
import math
from typing import Any

from tortoise import fields


def finite_json(value: Any) -> Any:
    """A copy of `value` with every NaN or infinite float replaced by None.

    JSON has no such numbers: Python's json module writes the tokens NaN/Infinity, which
    browsers' JSON.parse and PostgreSQL's jsonb both reject.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def dumps_finite_json(value: Any) -> str:
    """Compact JSON that never holds NaN or Infinity (they become null).

    The strict dump is tried first: the common, already finite document pays no extra walk.
    """
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(finite_json(value), separators=(",", ":"), allow_nan=False)


class JSONField(fields.JSONField):
    """Tortoise's JSONField writing through `dumps_finite_json`: no stored document holds a
    non-finite number, on SQLite (text) as on PostgreSQL (jsonb, which would refuse it)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("encoder", dumps_finite_json)
        super().__init__(**kwargs)


class DatetimeField(fields.DatetimeField):
    """Tortoise's DatetimeField with the C parser for the ISO strings SQLite hands back.

    Tortoise parses them with the pure-Python iso8601 package: a quarter of the time of a
    20-row list query. `datetime.fromisoformat` reads the same format about ten times faster.
    """

    def to_python_value(self, value: Any) -> datetime.datetime | None:
        if isinstance(value, str):
            # An unusual format stays a string: the base class's parser decides.
            with contextlib.suppress(ValueError):
                value = datetime.datetime.fromisoformat(value)
        return super().to_python_value(value)
