"""Logging for every command: one format, and nothing personal in it.

No log line carries a phone number, an email address, a code, a token or a searched name:
- our own log calls name records by id, never by their content;
- the access log (web.middleware.AccessLogMiddleware) writes the route template
  (`/connexion/lien/{token}`), never the path with its token nor the query string;
- uvicorn's own access log is off and its proxy-header handling too (app.SERVER_OPTIONS);
- httpx and httpcore log every URL at INFO/DEBUG, and the SMS provider's lookups carry the
  phone number in their query string: they only log warnings;
- tracebacks keep where an error happened (files, lines, functions), not its message (an SQL
  error quotes the row's values, a library's error may quote an address) nor the source
  lines: PrivateFormatter.

With PARIS_AVENIR_LOG_FORMAT=json every line is one JSON object (for a log collector): the
same message, the request's id, and for the access log its fields (method, route template,
status, duration) — never more than the text line says.

The test suite proves it: tests/log_privacy.py writes every record of the whole run through
this formatter and fails the run if a line holds any of those.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Also append every line to this file (besides standard error), e.g. when no journal
# collects the process's output.
LOG_FILE_ENV = "PARIS_AVENIR_LOG_FILE"
# "text" (the default: one readable line) or "json" (one object per line). Read here, not in
# Settings: logging is set up before the settings load, so that their own errors are logged.
LOG_FORMAT_ENV = "PARIS_AVENIR_LOG_FORMAT"
LOG_FORMATS = ("text", "json")

# The id of the request being answered (web.middleware.AccessLogMiddleware sets it; it is
# also the response's X-Request-ID), carried by every JSON line written while answering.
request_id: ContextVar[str | None] = ContextVar("paris_avenir_request_id", default=None)
# What a JSON line may carry besides its message, when a log call passes it in `extra`: the
# access log's fields. Nothing else of a record is copied, so no call can slip a value in.
JSON_FIELDS = ("method", "route", "status", "duration_ms", "client_network")

QUIET_LOGGERS = {
    # One line every 15 seconds for each job run says nothing an operator needs.
    "apscheduler": logging.WARNING,
    # Each request's URL, at INFO (httpx) and DEBUG (httpcore): the SMS provider's lookup
    # URLs carry the phone number.
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    # The multipart parser narrates every part of an upload at DEBUG.
    "python_multipart": logging.INFO,
}

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _withheld(exc: BaseException, seen: set[int]) -> list[str]:
    seen.add(id(exc))
    lines: list[str] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        lines += _withheld(cause, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        lines += _withheld(context, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    lines.append("Traceback (most recent call last):\n")
    # Where, without the source lines (a test's literal, an expression quoting a value).
    lines += [
        f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
        for frame in traceback.extract_tb(exc.__traceback__)
    ]
    kind = type(exc)
    lines.append(f"{kind.__module__}.{kind.__qualname__} (message withheld from the log)\n")
    return lines


class PrivateFormatter(logging.Formatter):
    """The standard format, with tracebacks whose exception messages are withheld."""

    def formatException(self, ei: ExcInfo | tuple[None, None, None]) -> str:
        exc = ei[1]
        if exc is None:
            return ""
        return "".join(_withheld(exc, set())).rstrip("\n")

    def format(self, record: logging.LogRecord) -> str:
        # Another handler may have cached its own rendering of the traceback (with the
        # message) on the record: render ours, and leave the record as it was.
        cached = record.exc_text
        record.exc_text = None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached


class JsonFormatter(PrivateFormatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, the
    access log's fields, and the traceback as PrivateFormatter writes it (messages
    withheld)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current_request = getattr(record, "request_id", None) or request_id.get()
        if current_request:
            line["request_id"] = current_request
        for name in JSON_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_format() -> str:
    chosen = os.environ.get(LOG_FORMAT_ENV, "text").strip().lower() or "text"
    if chosen not in LOG_FORMATS:
        raise SystemExit(f"{LOG_FORMAT_ENV}={chosen!r}: choose 'text' or 'json'.")
    return chosen


def build_formatter(chosen: str = "text") -> logging.Formatter:
    return JsonFormatter() if chosen == "json" else PrivateFormatter(FORMAT)


def quiet_noisy_loggers() -> None:
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def configure_logging(level: int = logging.INFO) -> None:
    """Standard error (and PARIS_AVENIR_LOG_FILE when set), in the private format: text
    lines, or JSON objects with PARIS_AVENIR_LOG_FORMAT=json."""
    formatter = build_formatter(log_format())
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    log_file = os.environ.get(LOG_FILE_ENV)
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=handlers)
    quiet_noisy_loggers()
