"""The exports traders have, read into Bars, with a report of what the file held.

Formats, detected from the first row: Yahoo Finance CSV, Binance klines (headerless, 12
columns, millisecond or microsecond open times), TradingView chart export
(time,open,high,low,close[,Volume]), MetaTrader (MT5's tab-separated <DATE> <TIME> ... export,
MT4's headerless `2024.01.02,00:00,o,h,l,c,v`), and any CSV whose header names open, high,
low and close. Times are stored in UTC: unix times and ISO times with an offset are exact;
naive times are read in the time zone the caller names (UTC by default).

Nothing is filled in: gaps are counted and shown, duplicate rows with identical values are
dropped and counted, duplicates that disagree are refused. Errors name the CSV line.
Resampling to a coarser timeframe is an explicit option.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from services.market_data import (
    PRICE_COLUMNS,
    Bars,
    FloatArray,
    MarketDataError,
    bars_from_arrays,
)

FORMATS: dict[str, str] = {
    "yahoo": "Yahoo Finance CSV (Date,Open,High,Low,Close,Adj Close,Volume)",
    "binance": "Binance klines (headerless, 12 columns)",
    "tradingview": "TradingView chart export (time,open,high,low,close[,Volume])",
    "metatrader": "MetaTrader export",
    "generic": "OHLCV CSV with a header",
}
MAX_EXAMPLES = 5
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_TIMEFRAME = re.compile(r"^\s*(\d{1,4})\s*([smhdw])\s*$", re.I)
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_MT_DATE = re.compile(r"^\d{4}\.\d{2}\.\d{2}$")
_CLOCK = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")
_OFFSET = re.compile(r"(Z|z|[+-]\d{2}:?\d{2})$")
_PLAIN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\Z")
_NULLS = frozenset({"", "null", "nan", "none", "n/a", "-"})
# 1970-01-05 was a Monday: weekly bars start on Mondays, 00:00 UTC.
_WEEK_ORIGIN = 4 * 86_400
_MONDAY, _FRIDAY = 0, 4

_TIME_NAMES = (
    "timestamp",
    "time",
    "date",
    "datetime",
    "date time",
    "open time",
    "opentime",
    "gmt time",
    "local time",
    "time (utc)",
)
_VOLUME_NAMES = ("volume", "vol", "tick volume", "tickvol", "real volume")


@dataclass(frozen=True)
class ImportOptions:
    """What the user says about the file: the zone of naive times, labels, resampling."""

    time_zone: str = "UTC"
    symbol: str | None = None
    timeframe: str | None = None
    resample_to: str | None = None
    max_bars: int = 1_000_000


@dataclass
class ImportReport:
    """What was read and what was done to it; `as_dict` is the API's and the CLI's view."""

    format: str
    format_description: str
    rows: int
    bars: int = 0
    time_zone: str = "UTC"
    timeframe: str | None = None
    reversed: bool = False
    empty_rows: int = 0
    empty_row_examples: list[str] = field(default_factory=list)
    duplicates_dropped: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    gaps: int = 0
    missing_bars: int = 0
    gap_examples: list[str] = field(default_factory=list)
    weekend_closures: int = 0
    resampled_from: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "formatDescription": self.format_description,
            "rows": self.rows,
            "bars": self.bars,
            "timeZone": self.time_zone,
            "timeframe": self.timeframe,
            "reversed": self.reversed,
            "emptyRows": self.empty_rows,
            "emptyRowExamples": self.empty_row_examples,
            "duplicatesDropped": self.duplicates_dropped,
            "duplicateExamples": self.duplicate_examples,
            "gaps": self.gaps,
            "missingBars": self.missing_bars,
            "gapExamples": self.gap_examples,
            "weekendClosures": self.weekend_closures,
            "resampledFrom": self.resampled_from,
            "notes": self.notes,
        }


def parse_timeframe(text: str, what: str = "timeframe") -> int:
    """'15m', '1h', '4H', '1d', '1W' -> seconds; a capital M (a month elsewhere) is refused."""
    match = _TIMEFRAME.match(text) if isinstance(text, str) else None
    if match is not None and match.group(2) == "M":  # Binance's and TradingView's month
        raise MarketDataError(
            f"{what} {text!r:.20}: months are not supported (minutes are a lowercase m, e.g. 15m)"
        )
    if match is None or int(match.group(1)) == 0:
        raise MarketDataError(
            f"{what} {text!r:.20} is not a timeframe: a count and a unit of s, m, h, d or w, "
            "such as 1m, 15m, 1h, 4h, 1d, 1w (months are not supported)"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def timeframe_label(seconds: float) -> str:
    """The shortest label for a bar length: 3600 -> '1h', 900 -> '15m'."""
    whole = round(seconds)
    for unit in ("w", "d", "h", "m"):
        if whole % _UNITS[unit] == 0:
            return f"{whole // _UNITS[unit]}{unit}"
    return f"{whole}s"


def time_zone(name: str) -> ZoneInfo:
    """An IANA zone ('UTC', 'America/New_York', 'Europe/London'); a clear error otherwise."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, AttributeError):
        raise MarketDataError(
            f"unknown time zone {name!r:.60}: use an IANA name such as UTC, America/New_York "
            "or Europe/London"
        ) from None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- reading rows -------------------------------------------------------------------------


@dataclass
class _Table:
    format: str
    description: str
    rows: list[list[str]]
    lines: list[int]
    columns: dict[str, int]  # timestamp/open/high/low/close/volume -> position
    date_and_clock: tuple[int, int] | None = None  # separate date and time columns
    volume_fallback: int | None = None  # MT5: tick volume when real volume is all zero
    numeric_time: bool = False  # Binance: open times are always numbers
    frame: Any = None  # the fast reader's DataFrame of cells, in place of `rows`

    def __len__(self) -> int:
        return len(self.lines)

    def column(self, position: int) -> Any:
        """The cells of a column: strings, or floats where the fast reader parsed them."""
        if self.frame is not None:
            series = self.frame[position]
            return series.to_numpy() if series.dtype.kind == "f" else series.tolist()
        return [row[position] for row in self.rows]


def _delimiter(line: str) -> str:
    if "\t" in line:
        return "\t"
    if "," not in line and ";" in line:
        return ";"
    return ","


def _read_rows(text: str, max_rows: int) -> tuple[list[list[str]], list[int]]:
    first = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(first))
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or (not row[0].strip() and not any(cell.strip() for cell in row)):
                continue  # blank lines, and Excel's trailing ",,,,"
            if len(rows) > max_rows:
                raise MarketDataError(f"too many rows: more than {max_rows} (a header and bars)")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise MarketDataError(f"line {reader.line_num}: malformed CSV: {exc}") from exc
    if not rows:
        raise MarketDataError("the CSV is empty: a header row (or a headerless export) and bars")
    rows[0][0] = rows[0][0].lstrip("\ufeff")
    return rows, lines


class _NeedsExactReader(Exception):
    """The fast reader met something only the exact one handles (or words) right."""


_FAST_FROM_BYTES = 256 * 1024
_PROBE_LINES = 20


def _round_trip() -> dict[str, str]:
    """Floats as Python's float() reads them (correctly rounded): pandas 3.1 always does so
    (and deprecates the option); earlier versions must be asked."""
    from importlib.metadata import version

    major, minor = (int(part) for part in version("pandas").split(".")[:2])
    return {} if (major, minor) >= (3, 1) else {"float_precision": "round_trip"}


_ROUND_TRIP = _round_trip()


def _fast_table(text: str, max_rows: int) -> _Table | None:
    """pandas' C parser for the common large file: no quotes, no blank or ragged lines, so
    row i is line i (+1 past a header) and every cell is as the exact reader would see it.
    None when the file is small or not that simple; the exact reader then reads it."""
    if len(text) < _FAST_FROM_BYTES or '"' in text or "\n\n" in text or "\r\n\r\n" in text:
        return None
    if text[0].isspace() or text.startswith("\ufeff"):
        return None
    probe_end = -1
    for _ in range(_PROBE_LINES):
        probe_end = text.find("\n", probe_end + 1)
        if probe_end < 0:
            return None
    rows, lines = _read_rows(text[:probe_end], max_rows)
    probe = _detect(rows, lines)
    header = len(probe.rows) == len(rows) - 1
    width = len(rows[0])
    delimiter = _delimiter(text[: text.find("\n")])
    total = text.count("\n") + (not text.endswith("\n"))
    if text.count(delimiter) != (width - 1) * total:  # some line is ragged
        return None
    import pandas as pd  # imported here: only uploads need it

    numbers = {*probe.columns.values(), probe.volume_fallback} - {None}
    if not probe.numeric_time:
        numbers.discard(probe.columns.get("timestamp"))
    texts = set(probe.date_and_clock or ()) | (
        {probe.columns["timestamp"]} if "timestamp" in probe.columns else set()
    )
    texts -= numbers
    dtypes: dict[int, Any] = {i: "float64" for i in numbers if i is not None}
    dtypes.update({i: str for i in texts})
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            skiprows=1 if header else 0,
            usecols=sorted(dtypes),
            dtype=dtypes,
            na_filter=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
            **_ROUND_TRIP,
        )
    except (ValueError, pd.errors.ParserError):
        return None  # a cell that is not a number, say: the exact reader names its line
    if len(frame) > max_rows:
        return None
    first = 2 if header else 1
    probe.rows, probe.lines, probe.frame = [], list(range(first, first + len(frame))), frame
    return probe


def _name(cell: str) -> str:
    return " ".join(cell.strip().strip("<>").strip().lower().replace("_", " ").split())


def _same_width(rows: list[list[str]], lines: list[int], width: int) -> None:
    for row, line in zip(rows, lines, strict=True):
        if len(row) != width:
            raise MarketDataError(f"line {line}: expected {width} fields, got {len(row)}")


def _detect(rows: list[list[str]], lines: list[int]) -> _Table:
    first = [cell.strip() for cell in rows[0]]
    if _NUMBER.match(first[0]) or _MT_DATE.match(first[0]):
        _same_width(rows, lines, len(first))  # headerless: every row as wide as the first
    if _NUMBER.match(first[0]):
        if len(first) == 12:
            return _Table(
                "binance", FORMATS["binance"], rows, lines,
                {"timestamp": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5},
                numeric_time=True,
            )  # fmt: skip
        raise MarketDataError(
            f"line {lines[0]}: no header, and not a Binance kline row (12 columns; this has "
            f"{len(first)}): add a header row such as time,open,high,low,close,volume"
        )
    if _MT_DATE.match(first[0]):
        if len(first) >= 6 and _CLOCK.match(first[1]):
            columns = {"open": 2, "high": 3, "low": 4, "close": 5}
            if len(first) >= 7:
                columns["volume"] = 6
            return _Table(
                "metatrader", FORMATS["metatrader"] + " (MT4, headerless)", rows, lines,
                columns, date_and_clock=(0, 1),
            )  # fmt: skip
        raise MarketDataError(
            f"line {lines[0]}: no header, and not a MetaTrader 4 row "
            "(2024.01.02,00:00,open,high,low,close,volume): add a header row"
        )
    return _from_header(rows[0], rows[1:], lines[1:], lines[0])


def _from_header(header: list[str], rows: list[list[str]], lines: list[int], at: int) -> _Table:
    names = [_name(cell) for cell in header]
    raw = [cell.strip() for cell in header]
    positions: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in positions and name in (*PRICE_COLUMNS, *_TIME_NAMES, *_VOLUME_NAMES):
            raise MarketDataError(f"line {at}: column {raw[position]!r} appears twice")
        positions.setdefault(name, position)
    missing = [name for name in PRICE_COLUMNS if name not in positions]
    if missing:
        raise MarketDataError(
            f"line {at}: the header lacks {', '.join(missing)} (found {', '.join(raw)}); "
            "expected a Yahoo, Binance, TradingView or MetaTrader export, or a header with "
            "open, high, low, close and optionally time (or date) and volume"
        )
    columns = {name: positions[name] for name in PRICE_COLUMNS}
    table = _Table("generic", FORMATS["generic"], rows, lines, columns)
    if any(cell.startswith("<") for cell in raw):
        table.format, table.description = "metatrader", FORMATS["metatrader"] + " (MT5)"
        if "vol" in positions and "tickvol" in positions:
            columns["volume"] = positions["vol"]
            table.volume_fallback = positions["tickvol"]
    elif "adj close" in positions:
        table.format, table.description = "yahoo", FORMATS["yahoo"]
    elif raw[0] == "time" and all(name in raw for name in PRICE_COLUMNS):
        table.format, table.description = "tradingview", FORMATS["tradingview"]
    if "volume" not in columns:
        volume = next((positions[n] for n in _VOLUME_NAMES if n in positions), None)
        if volume is not None:
            columns["volume"] = volume
    if "date" in positions and "time" in positions:
        table.date_and_clock = (positions["date"], positions["time"])
    else:
        time_column = next((positions[n] for n in _TIME_NAMES if n in positions), None)
        if time_column is not None:
            columns["timestamp"] = time_column
    _same_width(rows, lines, len(header))
    return table


# --- columns ------------------------------------------------------------------------------


def _numbers(cells: list[str], name: str, lines: list[int]) -> FloatArray:
    try:  # numpy parses a whole column of decimal strings at C speed
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        try:
            out[i] = float(cell.strip())
        except ValueError:
            raise MarketDataError(
                f"line {lines[i]}: {name} is not a number: {cell!r:.40}"
            ) from None
    return out


def _numeric_times(values: FloatArray) -> FloatArray:
    """Unix times to seconds, by magnitude: exchanges write milliseconds (Binance spot's
    klines since 2025: microseconds); seconds past 1e11 would be the year 5138."""
    finite = np.abs(values[np.isfinite(values)])
    if not len(finite):
        return values
    if finite.min() > 1e14:
        return values / 1e6
    if finite.min() > 1e11:
        return values / 1e3
    return values


_TIME_HELP = (
    "expected ISO-8601 (2024-01-02, 2024-01-02 09:30:00, 2024-01-02T09:30:00Z), "
    "MetaTrader's 2024.01.02 09:30, Dukascopy's 02.01.2024 09:30:00, 20240102, "
    "or unix seconds or milliseconds"
)


def _times(cells: list[str], lines: list[int], zone: ZoneInfo, report: ImportReport) -> FloatArray:
    """Time cells -> UTC unix seconds; naive ones read in `zone`."""
    try:
        numeric = np.array(cells, dtype=np.float64)
    except ValueError:
        numeric = None
    if numeric is not None and _compact_dates(numeric):
        cells = [f"{int(v):08d}" for v in numeric.tolist()]  # 20240102: read as a date
        numeric = None
    if numeric is not None:
        if zone.key != "UTC":
            report.notes.append(f"unix times are UTC: the time zone {zone.key} was not applied")
        return _numeric_times(numeric)
    texts = [_normal_time(cell) for cell in cells]
    aware = [bool(_OFFSET.search(text)) for text in texts]
    if any(aware):
        if not all(aware):
            i = aware.index(False) if aware[0] else aware.index(True)
            raise MarketDataError(
                f"line {lines[i]}: time {cells[i].strip()!r:.40} mixes times with and without "
                "a UTC offset"
            )
        out = np.empty(len(texts), dtype=np.float64)
        for i, text in enumerate(texts):
            out[i] = _parse_one(text, cells[i], lines[i]).timestamp()
        if zone.key != "UTC":
            report.notes.append(
                f"the times carry their own UTC offset: the time zone {zone.key} was not applied"
            )
        return out
    try:
        # numpy reads odd strings ("2024-01-02 1704067200") as times with a zone, warning
        # only: the C parser gets the plain forms alone, datetime the rest, strictly.
        if not all(map(_PLAIN_TIME.match, texts)):
            raise ValueError
        local = np.array(texts, dtype="datetime64[s]").astype(np.int64).astype(np.float64)
    except ValueError:
        local = np.empty(len(texts), dtype=np.float64)
        for i, text in enumerate(texts):
            moment = _parse_one(text, cells[i], lines[i])
            local[i] = moment.replace(tzinfo=UTC).timestamp()
    return _local_to_utc(local, zone, lines)


def _compact_dates(values: FloatArray) -> bool:
    """Whole numbers 19000101..21001231 are YYYYMMDD dates (as some exports write them),
    not seconds of 1970's August."""
    return bool(
        len(values)
        and np.all(values == np.floor(values))
        and values.min() >= 19_000_101
        and values.max() <= 21_001_231
    )


def _normal_time(cell: str) -> str:
    """Dotted dates as ISO: MetaTrader's 2024.01.02 and Dukascopy's day-first 02.01.2024;
    YYYYMMDD as YYYY-MM-DD; other text unchanged but trimmed."""
    text = cell.strip()
    if len(text) >= 10 and text[4] == "." and text[7] == ".":
        text = text[:4] + "-" + text[5:7] + "-" + text[8:]
    elif len(text) >= 10 and text[2] == "." and text[5] == ".":
        text = text[6:10] + "-" + text[3:5] + "-" + text[:2] + text[10:]
    elif len(text) == 8 and text.isdigit():
        text = text[:4] + "-" + text[4:6] + "-" + text[6:]
    return text


def _parse_one(text: str, cell: str, line: int) -> datetime:
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        raise MarketDataError(
            f"line {line}: time {cell.strip()!r:.40} is not a date: {_TIME_HELP}"
        ) from None


def _local_to_utc(local: FloatArray, zone: ZoneInfo, lines: list[int]) -> FloatArray:
    """Wall-clock seconds in `zone` -> UTC. Offsets are looked up once per distinct hour; a
    time the clocks skipped is refused, and in the repeated hour of autumn the second pass
    (a time that is not after the bar before it) is read as the later of the two."""
    if zone.key == "UTC":
        return local
    hours = np.floor(local / 3_600)
    distinct, inverse = np.unique(hours, return_inverse=True)

    def offsets(fold: int) -> FloatArray:
        return np.array(
            [
                _offset(datetime.fromtimestamp(h * 3_600, UTC).replace(tzinfo=zone, fold=fold))
                for h in distinct.tolist()
            ],
            dtype=np.float64,
        )

    first, second = offsets(0), offsets(1)
    earlier, later = first[inverse], second[inverse]
    skipped = np.flatnonzero(earlier < later)
    if len(skipped):
        i = int(skipped[0])
        raise MarketDataError(
            f"line {lines[i]}: {_wall(local[i])} does not exist in {zone.key} (the clocks "
            "jumped forward then): is the time zone right?"
        )
    utc = local - earlier
    repeated = np.flatnonzero(earlier > later)
    second_pass = False
    for position, i in enumerate(repeated.tolist()):
        if position == 0 or repeated[position - 1] != i - 1:
            second_pass = False  # a new repeated hour
        elif local[i] <= local[i - 1]:
            second_pass = True
        if second_pass:
            utc[i] = local[i] - later[i]
    return utc


def _offset(moment: datetime) -> float:
    delta = moment.utcoffset()
    return delta.total_seconds() if delta is not None else 0.0


def _wall(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- the whole import ---------------------------------------------------------------------


def import_csv(text: str, options: ImportOptions | None = None) -> tuple[Bars, ImportReport]:
    """Detect the format, read the bars, report what was found. Raises MarketDataError."""
    options = options or ImportOptions()
    if not isinstance(text, str):
        raise MarketDataError(f"CSV must be text; got {type(text).__name__}")
    zone = time_zone(options.time_zone)
    declared = parse_timeframe(options.timeframe) if options.timeframe else None
    target = parse_timeframe(options.resample_to, "resampleTo") if options.resample_to else None
    cap = _row_cap(options.max_bars, target)
    fast = _fast_table(text, cap)
    if fast is not None:
        try:
            return _imported(fast, options, zone, declared, target)
        except (MarketDataError, _NeedsExactReader):
            pass  # read again exactly: its error names the line, or it handles the case
    rows, lines = _read_rows(text, cap)
    return _imported(_detect(rows, lines), options, zone, declared, target)


def _imported(
    table: _Table,
    options: ImportOptions,
    zone: ZoneInfo,
    declared: int | None,
    target: int | None,
) -> tuple[Bars, ImportReport]:
    report = ImportReport(table.format, table.description, rows=len(table), time_zone=zone.key)
    if not len(table):
        raise MarketDataError(f"no bars: the {report.format_description} has no data rows")
    arrays, lines = _columns(table, zone, report)
    arrays, lines = _in_time_order(arrays, lines, report)
    n = len(lines)

    def where(i: int) -> str:
        return f"line {lines[i]}"

    bars = bars_from_arrays(arrays, where=where, max_bars=max(n, 1))
    inferred = _inferred_step(bars)
    step = float(declared) if declared else inferred
    if declared and inferred and abs(inferred - declared) > 1:
        report.notes.append(
            f"most bars are {timeframe_label(inferred)} apart, not {timeframe_label(declared)} "
            "as the timeframe given says: gaps are measured in the timeframe given"
        )
    if bars.timestamp is not None and step:
        _report_gaps(bars.timestamp, step, zone, report)
    if target is not None:
        source = {"bars": len(bars), "timeframe": timeframe_label(step) if step else None}
        bars = _resampled(bars, step, target)
        report.resampled_from = source
        step = float(target)
    if len(bars) > options.max_bars:
        raise MarketDataError(f"too many bars: {len(bars)} (at most {options.max_bars})")
    if target is not None:
        report.timeframe = timeframe_label(target)
    elif declared:
        report.timeframe = timeframe_label(declared)
    elif step:
        report.timeframe = timeframe_label(step)
    report.bars = len(bars)
    labelled = Bars(
        timestamp=bars.timestamp,
        open=bars.open,
        high=bars.high,
        low=bars.low,
        close=bars.close,
        volume=bars.volume,
        symbol=_label(options.symbol, "symbol"),
        timeframe=report.timeframe,
    )
    return labelled, report


def _row_cap(max_bars: int, target: int | None) -> int:
    # Resampling may shrink many rows into few bars: the CSV's byte cap bounds the work then.
    return max_bars if target is None else 100 * max_bars


def _label(value: str | None, name: str) -> str | None:
    if value is not None and len(value) > 64:
        raise MarketDataError(f"{name} is longer than 64 characters")
    return value


def _columns(
    table: _Table, zone: ZoneInfo, report: ImportReport
) -> tuple[dict[str, FloatArray], list[int]]:
    table = _without_empty_rows(table, report)
    lines = table.lines
    arrays: dict[str, FloatArray] = {}
    for name, position in table.columns.items():
        if name == "timestamp":
            continue
        arrays[name] = _numbers(table.column(position), name, lines)
    if table.volume_fallback is not None and not np.any(arrays["volume"]):
        arrays["volume"] = _numbers(table.column(table.volume_fallback), "volume", lines)
        report.notes.append("real volume is all zero: tick volume is used instead")
    if table.date_and_clock is not None:
        day, clock = table.date_and_clock
        cells = [
            f"{d.strip()} {c.strip()}"
            for d, c in zip(table.column(day), table.column(clock), strict=True)
        ]
        arrays["timestamp"] = _times(cells, lines, zone, report)
    elif "timestamp" in table.columns:
        cells = table.column(table.columns["timestamp"])
        if table.numeric_time:
            arrays["timestamp"] = _numeric_times(_numbers(cells, "open time", lines))
        else:
            arrays["timestamp"] = _times(cells, lines, zone, report)
    else:
        report.notes.append("no time column: bars are numbered, not dated")
    return arrays, lines


def _without_empty_rows(table: _Table, report: ImportReport) -> _Table:
    """Yahoo writes `null` prices on days without trading: such rows are dropped, counted."""
    prices = [table.columns[name] for name in PRICE_COLUMNS]
    try:  # the usual case, at C speed: every close is a number, so no row lacks prices
        np.array(table.column(prices[-1]), dtype=np.float64)
        return table
    except ValueError:
        if table.frame is not None:
            raise _NeedsExactReader from None
    kept_rows, kept_lines = [], []
    for row, line in zip(table.rows, table.lines, strict=True):
        if all(row[p].strip().lower() in _NULLS for p in prices):
            report.empty_rows += 1
            if len(report.empty_row_examples) < MAX_EXAMPLES:
                report.empty_row_examples.append(f"line {line}")
            continue
        kept_rows.append(row)
        kept_lines.append(line)
    if not kept_rows:
        raise MarketDataError("no bars: every data row lacks prices")
    return replace(table, rows=kept_rows, lines=kept_lines)


def _in_time_order(
    arrays: dict[str, FloatArray], lines: list[int], report: ImportReport
) -> tuple[dict[str, FloatArray], list[int]]:
    """Oldest first (a file wholly newest-first is turned round, and says so); identical
    duplicates dropped and counted; conflicting duplicates and disorder refused."""
    ts = arrays.get("timestamp")
    if ts is None or len(ts) < 2:
        return arrays, lines
    steps = np.diff(ts)
    if np.all(steps <= 0) and np.any(steps < 0):
        arrays = {name: array[::-1].copy() for name, array in arrays.items()}
        lines = lines[::-1]
        ts = arrays["timestamp"]
        steps = np.diff(ts)
        report.reversed = True
        report.notes.append("the file lists the newest bar first: the bars were put oldest first")
    backwards = np.flatnonzero(steps < 0)
    if len(backwards):
        i = int(backwards[0]) + 1
        raise MarketDataError(
            f"line {lines[i]}: time {_iso(ts[i])} is before line {lines[i - 1]}'s "
            f"({_iso(ts[i - 1])}): rows must be in time order"
        )
    repeats = np.flatnonzero(steps == 0) + 1
    if not len(repeats):
        return arrays, lines
    names = [name for name in arrays if name != "timestamp"]
    same = np.ones(len(repeats), dtype=bool)
    for name in names:
        same &= arrays[name][repeats] == arrays[name][repeats - 1]
    conflicting = repeats[~same]
    if len(conflicting):
        examples = "; ".join(
            f"lines {lines[i - 1]} and {lines[i]} at {_iso(ts[i])}"
            for i in conflicting[:MAX_EXAMPLES].tolist()
        )
        raise MarketDataError(
            f"{len(conflicting)} duplicate time(s) with different values, which to keep is "
            f"unclear: {examples}"
        )
    report.duplicates_dropped = len(repeats)
    report.duplicate_examples = [
        f"line {lines[i]} repeats line {lines[i - 1]} ({_iso(ts[i])})"
        for i in repeats[:MAX_EXAMPLES].tolist()
    ]
    keep = np.ones(len(ts), dtype=bool)
    keep[repeats] = False
    arrays = {name: array[keep] for name, array in arrays.items()}
    lines = [line for line, kept in zip(lines, keep.tolist(), strict=True) if kept]
    return arrays, lines


def _inferred_step(bars: Bars) -> float:
    """The bar length: the most common step between bars (the shortest of equally common
    ones; gaps and closures only lengthen steps), 0 without times."""
    if bars.timestamp is None or len(bars) < 2:
        return 0.0
    steps, counts = np.unique(np.diff(bars.timestamp), return_counts=True)
    return float(steps[np.argmax(counts)])


def _report_gaps(ts: FloatArray, step: float, zone: ZoneInfo, report: ImportReport) -> None:
    """Steps of two bars or more: missing bars, except a market's weekend closure
    (Friday to Saturday, Sunday or Monday, in the data's time zone)."""
    steps = np.diff(ts)
    spans = np.rint(steps / step)
    for i in np.flatnonzero(spans >= 2).tolist():
        before = datetime.fromtimestamp(ts[i], zone)
        after = datetime.fromtimestamp(ts[i + 1], zone)
        weekend = (
            before.weekday() == _FRIDAY
            and after.weekday() in (5, 6, _MONDAY)
            and after - before <= timedelta(days=3, seconds=step)
        )
        if weekend:
            report.weekend_closures += 1
            continue
        missing = int(spans[i]) - 1
        report.gaps += 1
        report.missing_bars += missing
        if len(report.gap_examples) < MAX_EXAMPLES:
            report.gap_examples.append(
                f"{_iso(ts[i])} -> {_iso(ts[i + 1])} ({missing} bar{'s' * (missing != 1)} missing)"
            )


def resample(bars: Bars, to: str) -> Bars:
    """`bars` (a stored dataset, say) aggregated to the coarser timeframe `to`, e.g. '4h'."""
    target = parse_timeframe(to, "resampleTo")
    try:
        step = float(parse_timeframe(bars.timeframe)) if bars.timeframe else 0.0
    except MarketDataError:
        step = 0.0
    resampled = _resampled(bars, step or _inferred_step(bars), target)
    return replace(resampled, symbol=bars.symbol, timeframe=timeframe_label(target))


def _resampled(bars: Bars, step: float, target: int) -> Bars:
    """OHLCV aggregated into buckets of `target` seconds aligned on UTC (days at midnight,
    weeks on Monday): first open, highest high, lowest low, last close, summed volume."""
    if bars.timestamp is None:
        raise MarketDataError("resampleTo needs a time column")
    if step and target <= step * 1.0001:
        raise MarketDataError(
            f"resampleTo {timeframe_label(target)} is not coarser than the data's "
            f"{timeframe_label(step)}"
        )
    if step and (target % round(step) != 0):
        raise MarketDataError(
            f"resampleTo {timeframe_label(target)} is not a whole multiple of the data's "
            f"{timeframe_label(step)}"
        )
    origin = _WEEK_ORIGIN if target % _UNITS["w"] == 0 else 0
    keys = np.floor((bars.timestamp - origin) / target)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:] - 1, len(bars) - 1]
    columns: dict[str, FloatArray] = {
        "timestamp": keys[starts] * target + origin,
        "open": bars.open[starts],
        "high": np.maximum.reduceat(bars.high, starts),
        "low": np.minimum.reduceat(bars.low, starts),
        "close": bars.close[ends],
        "volume": np.add.reduceat(bars.volume, starts),
    }
    where: Callable[[int], str] = lambda i: f"bucket {i}"  # noqa: E731
    return bars_from_arrays(columns, where=where, max_bars=max(len(starts), 1))
