"""The server's logs: one JSON object per line on stderr, for a log collector to read.

What goes in is chosen, never dumped: the event, a route's template (not its query), status,
timing, error classes, and identifiers (device keys, batch and blob ids, all hashes or public
keys). Never a request's body or headers, and never an error's message, which can quote what
a client sent. The server holds no key to testimony, so there is no plaintext it could log;
this keeps out the next best thing too. ``RequestLog`` writes each request's line.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FIELDS = "fields"  # logging's ``extra`` key for an event's facts
REQUESTS = logging.getLogger("fieldsync.server")  # the logger of each request's line


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which of several workers
            "event": record.getMessage(),
        }
        line |= getattr(record, FIELDS, {})
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__  # the class: a traceback can quote data
        return json.dumps(line, ensure_ascii=True, default=str)


def config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's loggers and fieldsync's (``level``: debug,
    info, warning, error)."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLines}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            name: {"handlers": ["stderr"], "level": level, "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "fieldsync")
        },
    }


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **facts: object) -> None:
    """Log ``name`` with ``facts`` as the line's own fields."""
    logger.log(level, name, extra={FIELDS: facts})


class RequestLog:
    """One log line per request: method, route template, status, time, and the refusal's
    class if there was one (this module's docstring says what is never logged)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            event(
                REQUESTS,
                "request",
                method=scope["method"],
                route=getattr(route, "path", "unmatched"),
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
                refusal=scope.get("state", {}).get("refusal"),
            )
