"""Logging setup: one line per event, as text or as JSON (``--log-format``)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    import tornado.web

#: Tornado's access logger: one line per request.
access_log = logging.getLogger("tornado.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, pid, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": os.getpid(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(log_format: str, debug: bool) -> None:
    """Log to stderr. What is logged never includes passwords, tokens or cookie values:
    request bodies and headers are not logged, and access lines show only the path."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """The access line of one request: status, method, path (never the query string),
    client address and time; warnings from 400, errors from 500."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    access_log.log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        request.path,
        request.remote_ip,
        1000.0 * request.request_time(),
    )
