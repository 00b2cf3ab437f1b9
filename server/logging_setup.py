"""Process-wide logging: JSON lines (LOG_FORMAT=json, the default) or text, on stderr.

Every record carries the request id of the request it was logged for (see
server.observability), so one request's lines can be found among many. uvicorn's own loggers
go through the same handler: the server runs uvicorn with log_config=None.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from server.settings import Settings
from services.request_ids import current_request_id

# Attributes every LogRecord has; anything else came in through `extra=` and is a field.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)).keys()
    | {"message", "asctime", "request_id", "color_message", "taskName"}
)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, request_id, extras,
    exception text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


def make_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def level_of(name: str) -> int:
    """LOG_LEVEL as a number; uvicorn's `trace` is below DEBUG, anything unknown is INFO."""
    upper = name.strip().upper()
    if upper == "TRACE":
        return 5
    return logging.getLevelNamesMapping().get(upper, logging.INFO)


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> None:
    """Replace the root logger's handlers with ours; safe to call more than once."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(settings.log_format, stream))
    root.setLevel(level_of(settings.log_level))
    for name in UVICORN_LOGGERS:
        # Whatever uvicorn (or a log config) attached goes: one format for every line.
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
