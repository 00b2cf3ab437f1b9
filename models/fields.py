"""Field types tuned for the hot read path."""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

from tortoise import fields


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
