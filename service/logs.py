"""One log format for the service and uvicorn (its access log included): text or JSON lines.

Every line of a request carries its request id (asgi-correlation-id) and the name of the API key it used.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import IO

from asgi_correlation_id import CorrelationIdFilter
from pythonjsonlogger.json import JsonFormatter

# Set by the API-key check for the rest of its request (service.api.auth); the name, never the key.
key_name: ContextVar[str | None] = ContextVar("key_name", default=None)

TEXT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s %(key_name)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s %(key_name)s"
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger", "correlation_id": "request_id"}


class KeyNameFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.key_name = key_name.get() or "-"
        return True


class UvicornFields(logging.Filter):
    """uvicorn's access line as fields too, so that JSON logs can be queried by status or path."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            record.client, record.method, record.path, _, record.status = record.args
        return True


def handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    out = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        out.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields=JSON_NAMES))
    else:
        out.setFormatter(logging.Formatter(TEXT))
    # On the handler, not a logger: records that propagate from any logger (uvicorn's too) pass through it.
    out.addFilter(CorrelationIdFilter(default_value="-"))
    out.addFilter(KeyNameFilter())
    out.addFilter(UvicornFields())
    return out


def configure(fmt: str = "text", level: int | str = "INFO") -> None:
    """The root logger writes every line; uvicorn's loggers only propagate to it (serve passes log_config=None)."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler(fmt))
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.captureWarnings(True)  # warnings.warn (torch's among them) in the same format
