"""Refusals as HTTP answers: every failure in fieldsync's own words (its class, message, hint
and details), never the request's contents; a full or failing disk named as such, anything
else a plain 500.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fieldsync.core.wire import ErrorAnswer
from fieldsync.errors import (
    FieldsyncError,
    MalformedData,
    NotFound,
    ServerBusy,
    ServerStorageFailed,
)
from fieldsync.server.bodies import BUSY_RETRY_AFTER_S

log = logging.getLogger("fieldsync.server")

STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})
STORAGE_FAILURES = ("disk is full", "disk i/o error", "no space left", "could not extend file")


def install(app: FastAPI) -> None:
    """The app's one error handler per kind of failure."""

    @app.exception_handler(FieldsyncError)
    async def fieldsync_error(request: Request, exc: FieldsyncError) -> JSONResponse:
        request.state.refusal = type(exc).__name__  # for the request's log line
        return _answer(exc, exc.http_status, _headers_for(exc))

    @app.exception_handler(RequestValidationError)
    async def malformed_request(request: Request, _exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer would echo the offending input back; say what is wrong instead.
        refused = MalformedData("the request's path, query or headers are not in fieldsync's form")
        return await fieldsync_error(request, refused)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = NotFound if exc.status_code == 404 else FieldsyncError
        refused = kind(f"{exc.status_code}: {exc.detail}", hint=None)
        return _answer(refused, exc.status_code, exc.headers)

    @app.exception_handler(OSError)
    async def storage_failed(request: Request, exc: OSError) -> JSONResponse:
        if exc.errno not in STORAGE_ERRNOS:
            raise exc  # not the disk: a server fault, a plain 500
        log.error("storage failed: %s", errno.errorcode.get(exc.errno or 0, "unknown"))
        return await fieldsync_error(request, _storage_failure())

    @app.exception_handler(OperationalError)
    async def database_failed(request: Request, exc: OperationalError) -> JSONResponse:
        if not any(sign in str(exc.orig).lower() for sign in STORAGE_FAILURES):
            raise exc  # anything else is a server fault: a plain 500
        log.error("database storage failed: %s", type(exc.orig).__name__)
        return await fieldsync_error(request, _storage_failure())


def _answer(
    exc: FieldsyncError, status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A refusal in fieldsync's own words (never the request's contents)."""
    return JSONResponse(ErrorAnswer.of(exc).to_json(), status_code=status, headers=headers)


def _headers_for(exc: FieldsyncError) -> dict[str, str] | None:
    if isinstance(exc, ServerBusy):
        return {"Retry-After": str(BUSY_RETRY_AFTER_S)}
    return None


def _storage_failure() -> ServerStorageFailed:
    # The request's transaction was rolled back, and a blob's partial file keeps only whole
    # bytes the device can resume after: nothing of the request was half kept.
    return ServerStorageFailed(
        "the server could not store this: its disk is full or failing; nothing of this "
        "request was kept"
    )
