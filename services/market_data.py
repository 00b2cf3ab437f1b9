"""OHLCV bars: validation at the edge, then an immutable container the engine can trust.

Every array is float64 and backed by an immutable `bytes` buffer, so no view handed to a
strategy (nor its `.base`) can ever be made writeable again. Pure Python and numpy only.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

PRICE_COLUMNS = ("open", "high", "low", "close")
COLUMNS = (*PRICE_COLUMNS, "volume")
TIME_ALIASES = ("timestamp", "time", "date", "datetime")
DEFAULT_MAX_BARS = 100_000
# Unix seconds past this are year 5138+: such values are read as milliseconds (exchange exports).
_MILLISECONDS_ABOVE = 1e11
_MAX_LABEL_CHARS = 64
_BYTES_MAGIC = b"BARS1\n"
_F8 = np.dtype("<f8")


class MarketDataError(ValueError):
    """Market data that cannot be used; the message names the column, index or line."""


def _frozen(values: object, name: str) -> FloatArray:
    """Return a float64 array over an immutable buffer (a copy unless it already is one)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise MarketDataError(f"{name} must be one-dimensional; got shape {array.shape}")
    if (
        array.dtype == _F8
        and not array.flags.writeable
        and array.flags.c_contiguous
        and _owned_by_bytes(array)
    ):
        return array
    data = np.ascontiguousarray(array, dtype=_F8).tobytes()
    return np.frombuffer(data, dtype=_F8)


def _owned_by_bytes(array: np.ndarray) -> bool:
    base = array.base
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, bytes)


@dataclass(frozen=True, eq=False)
class Bars:
    """Validated OHLCV bars. Build them with `bars_from_columns`, `bars_from_csv` or a payload.

    The constructor only normalises storage (float64, read-only, equal lengths); the market
    rules (finite, positive, consistent OHLC, increasing time) are checked by the builders.
    """

    timestamp: FloatArray | None
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    symbol: str | None = None
    timeframe: str | None = None
    _length: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = -1
        first = ""
        for name in ("timestamp", *COLUMNS):
            value = getattr(self, name)
            if value is None and name == "timestamp":
                continue
            array = _frozen(value, name)
            if n < 0:
                n, first = len(array), name
            elif len(array) != n:
                raise MarketDataError(
                    f"ragged input: {first} has {n} values, {name} has {len(array)}"
                )
            object.__setattr__(self, name, array)
        object.__setattr__(self, "_length", n)

    def __len__(self) -> int:
        return self._length

    def as_columns(self) -> dict[str, list[float]]:
        """Plain lists, for JSON answers and tests; timestamp only when present."""
        out: dict[str, list[float]] = {}
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp.tolist()
        for name in COLUMNS:
            out[name] = getattr(self, name).tolist()
        return out

    def to_payload(self) -> dict[str, Any]:
        """A JSON-safe, exact and compact form: each column as base64 of little-endian float64."""
        columns: dict[str, str] = {}
        if self.timestamp is not None:
            columns["timestamp"] = base64.b64encode(self.timestamp.tobytes()).decode("ascii")
        for name in COLUMNS:
            columns[name] = base64.b64encode(getattr(self, name).tobytes()).decode("ascii")
        return {
            "encoding": "float64-le-base64",
            "bars": len(self),
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "columns": columns,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Bars:
        """Inverse of `to_payload`; columns may also be plain lists of numbers. Re-validates."""
        if not isinstance(payload, Mapping):
            raise MarketDataError(f"a bars payload must be a dict; got {type(payload).__name__}")
        columns = payload.get("columns")
        if not isinstance(columns, Mapping):
            raise MarketDataError("a bars payload needs a 'columns' dict")
        decoded: dict[str, object] = {}
        for name, value in columns.items():
            if isinstance(value, str):
                try:
                    raw = base64.b64decode(value.encode("ascii"), validate=True)
                except (ValueError, UnicodeEncodeError) as exc:
                    raise MarketDataError(f"column {name} is not valid base64") from exc
                if len(raw) % 8:
                    raise MarketDataError(f"column {name} is not a whole number of float64s")
                decoded[name] = np.frombuffer(raw, dtype=_F8)
            else:
                decoded[name] = value
        declared = payload.get("bars")
        bars = bars_from_columns(
            decoded,
            max_bars=max(_length_of(decoded), 1),
            symbol=payload.get("symbol"),
            timeframe=payload.get("timeframe"),
        )
        if declared is not None and declared != len(bars):
            raise MarketDataError(f"payload says {declared} bars but holds {len(bars)}")
        return bars

    def to_bytes(self) -> bytes:
        """One buffer for a pipe: magic, header length, JSON header, then the raw columns."""
        header = json.dumps(
            {
                "bars": len(self),
                "symbol": self.symbol,
                "timeframe": self.timeframe,
                "timestamp": self.timestamp is not None,
            },
            separators=(",", ":"),
        ).encode()
        parts = [_BYTES_MAGIC, struct.pack("<I", len(header)), header]
        if self.timestamp is not None:
            parts.append(self.timestamp.tobytes())
        parts.extend(getattr(self, name).tobytes() for name in COLUMNS)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Bars:
        """Inverse of `to_bytes`. Re-validates, so a corrupt buffer cannot yield bad bars."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MarketDataError(f"bars bytes must be bytes; got {type(data).__name__}")
        data = bytes(data)
        start = len(_BYTES_MAGIC) + 4
        if len(data) < start or not data.startswith(_BYTES_MAGIC):
            raise MarketDataError("not a bars buffer (bad magic)")
        (header_len,) = struct.unpack("<I", data[len(_BYTES_MAGIC) : start])
        try:
            header = json.loads(data[start : start + header_len])
            n = int(header["bars"])
            has_time = bool(header["timestamp"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MarketDataError("bars buffer has a corrupt header") from exc
        names = (("timestamp",) if has_time else ()) + COLUMNS
        offset = start + header_len
        if n < 0 or len(data) != offset + 8 * n * len(names):
            raise MarketDataError(f"bars buffer length does not match {n} bars")
        columns: dict[str, object] = {}
        for name in names:
            columns[name] = np.frombuffer(data, dtype=_F8, count=n, offset=offset)
            offset += 8 * n
        return bars_from_columns(
            columns,
            max_bars=max(n, 1),
            symbol=header.get("symbol"),
            timeframe=header.get("timeframe"),
        )


def _length_of(columns: Mapping[str, object]) -> int:
    lengths = [len(v) for v in columns.values() if hasattr(v, "__len__")]
    return max(lengths, default=0)


def _label(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MarketDataError(f"{name} must be a string; got {type(value).__name__}")
    if len(value) > _MAX_LABEL_CHARS:
        raise MarketDataError(f"{name} is longer than {_MAX_LABEL_CHARS} characters")
    return value


def _index(i: int) -> str:
    return f"index {i}"


def bars_from_columns(
    columns: Mapping[str, object],
    *,
    max_bars: int = DEFAULT_MAX_BARS,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Bars:
    """Validate OHLCV columns (lists or arrays of numbers) into Bars.

    Keys are case-insensitive; `volume` is optional (zeros), the time column is optional and
    may be called timestamp, time, date or datetime (unix seconds, or ISO-8601 strings).
    """
    if not isinstance(columns, Mapping):
        raise MarketDataError(f"columns must be a dict; got {type(columns).__name__}")
    by_name: dict[str, object] = {}
    for key, value in columns.items():
        name = str(key).strip().lower()
        if name in TIME_ALIASES:
            name = "timestamp"
        if name in by_name:
            raise MarketDataError(f"column {name} is given twice")
        by_name[name] = value
    for name in PRICE_COLUMNS:
        if name not in by_name:
            raise MarketDataError(
                f"missing column {name} (need open, high, low, close; volume and timestamp "
                "are optional)"
            )
    arrays: dict[str, FloatArray] = {}
    for name in PRICE_COLUMNS:
        arrays[name] = _numbers(name, by_name[name], _index)
    n = len(arrays["open"])
    for name in ("volume", "timestamp"):
        if name in by_name and by_name[name] is not None:
            if name == "timestamp":
                arrays[name] = _times(by_name[name], _index)
            else:
                arrays[name] = _numbers(name, by_name[name], _index)
    for name, array in arrays.items():
        if len(array) != n:
            raise MarketDataError(f"ragged input: open has {n} values, {name} has {len(array)}")
    return _validated(arrays, max_bars=max_bars, symbol=symbol, timeframe=timeframe, where=_index)


def _numbers(name: str, values: object, where: Callable[[int], str]) -> FloatArray:
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise MarketDataError(f"column {name} must be a list of numbers")
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise MarketDataError(f"column {name} must be a flat list of numbers") from exc
    if array.ndim != 1:
        raise MarketDataError(f"column {name} must be a flat list of numbers")
    # numpy quietly turns True into 1.0 and "1" into a string array: look at the element types
    # (a set of types is cheap) and scan for the culprit only when something is off.
    items = cast("Iterable[object]", values)
    suspicious = array.dtype.kind not in "iuf" or (
        not isinstance(values, np.ndarray) and not set(map(type, items)) <= {int, float}
    )
    if suspicious:
        for i, item in enumerate(items):
            if isinstance(item, bool | np.bool_) or not isinstance(
                item, int | float | np.integer | np.floating
            ):
                raise MarketDataError(f"{name} at {where(i)} is not a number: {item!r:.40}")
    try:
        return np.asarray(array, dtype=_F8)
    except (OverflowError, TypeError, ValueError) as exc:
        raise MarketDataError(f"column {name} holds a number too large for float64") from exc


def _times(values: object, where: Callable[[int], str]) -> FloatArray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return _as_seconds(np.asarray(values, dtype=_F8))
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise MarketDataError("column timestamp must be a list of numbers or ISO-8601 strings")
    out = np.empty(len(values), dtype=_F8)
    for i, item in enumerate(values):
        if isinstance(item, str):
            out[i] = parse_time(item, f"timestamp at {where(i)}")
        elif isinstance(item, int | float | np.integer | np.floating) and not isinstance(
            item, bool | np.bool_
        ):
            out[i] = float(item)
        else:
            raise MarketDataError(f"timestamp at {where(i)} is not a time: {item!r:.40}")
    # ISO dates are always far below the milliseconds threshold, so mixing them is harmless.
    return _as_seconds(out)


def _as_seconds(values: FloatArray) -> FloatArray:
    finite = values[np.isfinite(values)]
    if len(finite) and bool(np.all(np.abs(finite) > _MILLISECONDS_ABOVE)):
        return values / 1000.0
    return values


def parse_time(text: str, what: str = "time") -> float:
    """Unix seconds (a number) or ISO-8601 (naive means UTC) -> unix seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise MarketDataError(
            f"{what} is neither unix seconds nor an ISO-8601 date: {text!r:.40}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _validated(
    arrays: dict[str, FloatArray],
    *,
    max_bars: int,
    symbol: object,
    timeframe: object,
    where: Callable[[int], str],
) -> Bars:
    if isinstance(max_bars, bool) or not isinstance(max_bars, int) or max_bars < 1:
        raise MarketDataError(f"max_bars must be a positive integer; got {max_bars!r}")
    n = len(arrays["open"])
    if n == 0:
        raise MarketDataError("no bars: at least 1 is needed")
    if n > max_bars:
        raise MarketDataError(f"too many bars: {n} (at most {max_bars})")
    if "volume" not in arrays:
        arrays["volume"] = np.zeros(n, dtype=_F8)
    for name in ("timestamp", *COLUMNS):
        array = arrays.get(name)
        if array is None:
            continue
        bad = ~np.isfinite(array)
        if bad.any():
            i = int(np.argmax(bad))
            kind = "NaN" if math.isnan(array[i]) else "infinite"
            raise MarketDataError(f"{name} is {kind} at {where(i)}")
    o, h, lo, c, v = (arrays[name] for name in COLUMNS)
    nonpositive = (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)
    if nonpositive.any():
        i = int(np.argmax(nonpositive))
        name = next(k for k in PRICE_COLUMNS if arrays[k][i] <= 0)
        value = float(arrays[name][i])
        raise MarketDataError(f"{name} must be positive; got {value!r} at {where(i)}")
    inconsistent = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (lo > h)
    if inconsistent.any():
        i = int(np.argmax(inconsistent))
        oi, hi, li, ci = float(o[i]), float(h[i]), float(lo[i]), float(c[i])
        if hi < max(oi, ci):
            problem = f"high {hi!r} is below max(open, close) {max(oi, ci)!r}"
        elif li > min(oi, ci):
            problem = f"low {li!r} is above min(open, close) {min(oi, ci)!r}"
        else:
            problem = f"low {li!r} is above high {hi!r}"
        raise MarketDataError(f"inconsistent bar at {where(i)}: {problem}")
    if (v < 0).any():
        i = int(np.argmax(v < 0))
        raise MarketDataError(f"volume must not be negative; got {float(v[i])!r} at {where(i)}")
    ts = arrays.get("timestamp")
    if ts is not None and n > 1:
        steps = np.diff(ts) <= 0
        if steps.any():
            i = int(np.argmax(steps)) + 1
            raise MarketDataError(
                f"timestamps must be strictly increasing: {float(ts[i])!r} at {where(i)} "
                f"is not after {float(ts[i - 1])!r}"
            )
    return Bars(
        timestamp=ts,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        symbol=_label(symbol, "symbol"),
        timeframe=_label(timeframe, "timeframe"),
    )


def bars_from_arrays(
    arrays: dict[str, FloatArray],
    *,
    where: Callable[[int], str],
    max_bars: int = DEFAULT_MAX_BARS,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Bars:
    """The market rules (finite, positive, consistent OHLC, increasing time) over parsed
    float64 columns; `where(i)` names row i in errors (e.g. its CSV line)."""
    return _validated(
        dict(arrays), max_bars=max_bars, symbol=symbol, timeframe=timeframe, where=where
    )


def bars_from_csv(
    text: str,
    *,
    max_bars: int = DEFAULT_MAX_BARS,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Bars:
    """Parse CSV text with a header row into Bars; errors name the line.

    Header names are case-insensitive: timestamp|time|date|datetime (optional), open, high,
    low, close, volume (optional, zeros); other columns are ignored. Comma, semicolon or tab
    separated.
    """
    if not isinstance(text, str):
        raise MarketDataError(f"CSV must be text; got {type(text).__name__}")
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ","
    if "," not in first_line:
        delimiter = ";" if ";" in first_line else "\t" if "\t" in first_line else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    positions: dict[str, int] = {}
    lines: list[int] = []
    rows: list[list[str]] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = row
                positions = _header_positions(row, reader.line_num)
                continue
            if len(row) != len(header):
                raise MarketDataError(
                    f"line {reader.line_num}: expected {len(header)} fields, got {len(row)}"
                )
            if len(rows) >= max_bars:
                raise MarketDataError(f"too many bars: more than {max_bars}")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise MarketDataError(f"line {reader.line_num}: malformed CSV: {exc}") from exc
    if header is None:
        raise MarketDataError("CSV is empty: a header row and at least 1 bar are needed")
    if not rows:
        raise MarketDataError("no bars: the CSV has a header but no data rows")

    def where(i: int) -> str:
        return f"line {lines[i]}"

    arrays: dict[str, FloatArray] = {}
    for name, position in positions.items():
        cells = [row[position] for row in rows]
        try:  # numpy parses a whole column of decimal strings at C speed
            arrays[name] = np.array(cells, dtype=_F8)
            continue
        except ValueError:
            pass
        out = np.empty(len(rows), dtype=_F8)
        for i, cell in enumerate(cells):
            text = cell.strip()
            if name == "timestamp":
                out[i] = parse_time(text, f"line {lines[i]}: {header[position].strip()}")
                continue
            try:
                out[i] = float(text)
            except ValueError:
                raise MarketDataError(
                    f"line {lines[i]}: {name} is not a number: {text!r:.40}"
                ) from None
        arrays[name] = out
    if "timestamp" in arrays:
        arrays["timestamp"] = _as_seconds(arrays["timestamp"])
    return _validated(arrays, max_bars=max_bars, symbol=symbol, timeframe=timeframe, where=where)


def _header_positions(row: list[str], line: int) -> dict[str, int]:
    positions: dict[str, int] = {}
    for position, cell in enumerate(row):
        name = cell.lstrip("\ufeff").strip().lower()
        if name in TIME_ALIASES:
            name = "timestamp"
        if name not in (*COLUMNS, "timestamp"):
            continue
        if name in positions:
            raise MarketDataError(f"line {line}: column {name} appears twice in the header")
        positions[name] = position
    missing = [name for name in PRICE_COLUMNS if name not in positions]
    if missing:
        raise MarketDataError(
            f"line {line}: the header lacks {', '.join(missing)} "
            f"(found {', '.join(c.strip() for c in row)}; need open, high, low, close and "
            "optionally timestamp|time|date and volume)"
        )
    return positions
