"""The server: a FastAPI app over the data folder (docs/protocol.md, "Endpoints").

The server verifies signatures and stores ciphertext; it never holds a key that decrypts
testimony. Request bodies are read against a limit before anything is parsed, and error
responses carry fieldsync's own message for the failure, never the request's contents.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session, select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fieldsync.core import batch as batch_format
from fieldsync.core import enrolment, httpsig
from fieldsync.core.wire import (
    BlobState,
    DeviceInfo,
    DeviceListing,
    EnrolAnswer,
    ErrorAnswer,
    RevokeAnswer,
    ServerInfo,
)
from fieldsync.errors import (
    AccessDenied,
    BodyTooSlow,
    DeviceRevoked,
    FieldsyncError,
    MalformedData,
    NotFound,
    RequestCut,
    ServerBusy,
    ServerStorageFailed,
    TooLarge,
)
from fieldsync.server import data, logs, schema
from fieldsync.server.blobs import BlobStorage, BlobStore
from fieldsync.server.data import ServerData
from fieldsync.server.enrol import device_fingerprint, enrol
from fieldsync.server.feed import feed_page
from fieldsync.server.ingest import ACTIVE, ingest
from fieldsync.server.limits import Limits
from fieldsync.server.tables import DeviceRow, StoredBlob

log = logging.getLogger("fieldsync.server")
DEFAULT_LIMITS = Limits()

PROTOCOL = 1
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})
STORAGE_FAILURES = ("disk is full", "disk i/o error", "no space left", "could not extend file")
BUSY_RETRY_AFTER_S = 5  # a body being read unchecked takes seconds, or is cut at its deadline


DATA_ENV = "FIELDSYNC_SERVER_DATA"  # how 'server run --workers N' tells each worker its setup
DATABASE_ENV = "FIELDSYNC_DATABASE_URL"
BLOBS_ENV = "FIELDSYNC_BLOBS"
LIMITS_ENV = "FIELDSYNC_SERVER_LIMITS"  # the Limits, as JSON


def from_environment() -> FastAPI:
    """The app of one of several worker processes (uvicorn's factory), set up from the
    environment 'server run' left for it."""
    server = data.load(Path(os.environ[DATA_ENV]))
    blobs = os.environ.get(BLOBS_ENV)
    return create_app(
        server,
        database_url=os.environ.get(DATABASE_ENV),
        blob_folder=Path(blobs) if blobs else None,
        limits=Limits(**json.loads(os.environ.get(LIMITS_ENV, "{}"))),
    )


def create_app(
    server: ServerData,
    *,
    database_url: str | None = None,
    now_ms: Callable[[], int] | None = None,
    blob_folder: Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> FastAPI:
    """The server's app; ``blob_folder`` (default DATA/blobs) may be shared storage that every
    server process mounts (docs/deploy.md). Abandoned partial uploads expire as it starts."""
    engine = schema.current_engine(
        database_url or server.database_url(), server.migrate_command(database_url)
    )
    clock = now_ms or (lambda: int(time.time() * 1000))
    # Read before the signature is checked: whole within a deadline, and only so many at once.
    unchecked_pace = Pace(idle_s=limits.body_idle_s, deadline_s=limits.body_deadline_s)
    unauthenticated = UnauthenticatedBodies(limits.unauthenticated_bodies)
    # A blob append's body, under a signature already checked, keeps what arrives: a rate.
    upload_pace = Pace(
        idle_s=limits.body_idle_s, min_rate=limits.body_min_rate, grace_s=limits.body_rate_grace_s
    )
    app = FastAPI(title="fieldsync server", version=str(PROTOCOL), docs_url=None, redoc_url=None)

    def session() -> Iterator[Session]:
        with Session(engine) as opened:
            yield opened

    blobs: BlobStorage = BlobStore(
        blob_folder or server.blob_folder, limits, clock, carrier=server.org.admin_key
    )
    with Session(engine) as sweeping:
        blobs.expire(sweeping)
    app.add_middleware(RequestLog)
    app.add_middleware(UnreadBodyCloses)

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

    @app.get("/v1/health")
    def health() -> JSONResponse:
        """For a load balancer or monitor: 200 when the database answers and the blob folder
        takes files, 503 otherwise (and which of the two failed; never more)."""
        failing = []
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            failing.append("database")
        if not blobs.writable():
            failing.append("blob storage")
        if failing:
            logs.event(log, "unhealthy", logging.ERROR, failing=failing)
            return JSONResponse({"status": "failing", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/v1/info")
    def info() -> dict[str, Any]:
        """Who this server is: its receipt key and the organisation it serves."""
        return ServerInfo(
            protocol=PROTOCOL,
            server_key=server.receipt_key.public.hex(),
            server_fingerprint=server.fingerprint,
            admin_key=server.org.admin_key,
            org_read_key=server.org.org_read_key,
            org_fingerprint=server.org.fingerprint,
        ).to_json()

    @app.post("/v1/enrol", openapi_extra=_body("application/json"))
    async def enrol_device(
        request: Request,
        db: Session = Depends(session),  # noqa: B008 - FastAPI's idiom
    ) -> dict[str, Any]:
        """Register a device that shows a valid, unused invite and proves it holds its key."""
        body = await unchecked_body(request, enrolment.MAX_REQUEST)
        device = await run_in_threadpool(enrol, db, server, body, clock())
        return EnrolAnswer(
            device=device.key,
            name=device.name,
            fingerprint=device_fingerprint(device),
            enrolled_ms=device.enrolled_ms,
        ).to_json()

    @app.post("/v1/batches", openapi_extra=_body("application/octet-stream"))
    async def receive_batch(
        request: Request,
        db: Session = Depends(session),  # noqa: B008 - FastAPI's idiom
    ) -> Response:
        """Verify and store a batch; the answer is the server-signed receipt."""
        body = await unchecked_body(request, batch_format.MAX_BATCH_BYTES)
        signed = await run_in_threadpool(ingest, db, server, body, clock(), limits)
        return Response(signed, media_type="application/json")

    async def unchecked_body(request: Request, limit: int) -> bytes:
        """A body read before anything vouches for its sender (docs/deploy.md, "Quotas and
        timeouts")."""
        return await read_limited(request, limit, unchecked_pace, unauthenticated)

    def known_device(keyid: str) -> None:
        """Let in an enrolled, active device (or the administrator), once it has proved it
        holds the key: only then is it told whether that key is enrolled or revoked. Looked up
        in a session of its own, given back at once: a blob append's body streams for as long
        as the link takes, and must not hold a database connection all that time."""
        if keyid == server.org.admin_key:  # an administrator delivering carried batches
            return
        with Session(engine) as lookup:
            device = lookup.get(DeviceRow, keyid)
        if device is None:
            raise AccessDenied("this key is not enrolled with this server")
        if device.status != ACTIVE:
            raise DeviceRevoked()

    def admin_only(keyid: str) -> None:
        if keyid != server.org.admin_key:
            raise AccessDenied("only the organisation's administrator may do this")

    async def signed_body(request: Request, limit: int, admit: Callable[[str], None]) -> bytes:
        """The body of a signed request (RFC 9421 style), checked before anything uses it."""
        return (await signed(request, limit, admit))[0]

    async def signed(
        request: Request, limit: int, admit: Callable[[str], None]
    ) -> tuple[bytes, str]:
        """The body of a signed request and the key that signed it."""
        body = await unchecked_body(request, limit)
        signer = await run_in_threadpool(  # admit reads the database: not on the event loop
            httpsig.verify,
            request.method,
            request.url.path,
            request.headers,
            body,
            now=clock() // 1000,
            admit=admit,
        )
        return body, signer

    @app.get("/v1/admin/devices", openapi_extra=SIGNED)
    async def list_devices(
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> list[dict[str, object]]:
        """The device registry (administrator only)."""
        await signed_body(request, 0, admin_only)
        rows = await run_in_threadpool(lambda: db.exec(select(DeviceRow)).all())
        return DeviceListing(tuple(_listed(d) for d in rows)).to_json()

    @app.post("/v1/admin/devices/{device_key}/revoke", openapi_extra=SIGNED)
    async def revoke_device(
        device_key: str,
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """Revoke a device: from now on its batches are refused and kept for review, and its
        uploads that no batch names are deleted (nothing it sends can name them now)."""
        await signed_body(request, 0, admin_only)

        def revoke() -> dict[str, object]:
            device = db.get(DeviceRow, device_key)
            if device is None or device.key == server.org.admin_key:
                raise NotFound("no such device is enrolled")
            if device.status != "revoked":
                device.status, device.revoked_ms = "revoked", clock()
                db.add(device)
                db.commit()
                db.refresh(device)
            answer = RevokeAnswer(device.key, device.status, device.revoked_ms).to_json()
            # after the commit: a batch accepted before it has marked the blobs it names
            blobs.forget_owner(db, device.key)
            return answer

        return await run_in_threadpool(revoke)

    @app.get("/v1/blobs/{blob_id}", openapi_extra=SIGNED)
    async def blob_state(
        blob_id: str,
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """How much of a blob the server holds (to resume an upload from there)."""
        await signed_body(request, 0, known_device)
        return (await run_in_threadpool(blobs.state, db, blob_id)).to_json()

    @app.put("/v1/blobs/{blob_id}/{size}", openapi_extra=SIGNED)
    async def blob_create(
        blob_id: str,
        size: int,
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """Start uploading a blob of ``size`` stored bytes (idempotent), within the signer's
        quota of unfinished uploads (abandoned ones expire first)."""
        _, signer = await signed(request, 0, known_device)

        def start() -> BlobState:
            blobs.expire(db)
            return blobs.create(db, blob_id, size, signer)

        return (await run_in_threadpool(start)).to_json()

    @app.patch(
        "/v1/blobs/{blob_id}/{offset}",
        openapi_extra=SIGNED | _body("application/octet-stream"),
    )
    async def blob_append(
        blob_id: str,
        offset: int,
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """Append the body at ``offset``, written as it arrives (a dropped link keeps what came);
        the last byte completes the blob if its hash fits."""
        signer, digest = await run_in_threadpool(
            httpsig.verify_headers,
            request.method,
            request.url.path,
            request.headers,
            now=clock() // 1000,
            admit=known_device,
        )
        body = body_as_it_arrives(request, upload_pace)
        declared = declared_length(request)
        state = await blobs.append(db, blob_id, offset, digest, declared, body, signer)
        return state.to_json()

    @app.get("/v1/feed/{after}", openapi_extra=SIGNED)
    async def feed(
        after: int,
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """The versions stored after position ``after`` that the signer may read: every one
        for the administrator; for a device, those sealed for its box key (analysts' versions
        of the records it recorded)."""
        _, signer = await signed(request, 0, known_device)
        return (await run_in_threadpool(feed_page, db, server, signer, after)).to_json()

    @app.get("/v1/blobs/{blob_id}/content", openapi_extra=SIGNED)
    async def blob_content(
        blob_id: str,
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> FileResponse:
        """A complete blob's encrypted bytes (for a pull). Only a version's body holds its key,
        and its id is the hash of its ciphertext: to ask for one is to have read a version."""
        await signed_body(request, 0, known_device)
        row = await run_in_threadpool(db.get, StoredBlob, blob_id)
        if row is None or not row.complete:
            raise NotFound("the server holds no complete blob with this id")
        return FileResponse(blobs.final_path(blob_id), media_type="application/octet-stream")

    app.state.engine = engine
    app.state.unauthenticated_bodies = unauthenticated  # what is being read now, for tests
    return app


class RequestLog:
    """One log line per request: method, route template, status, time, and the refusal's
    class if there was one (``fieldsync.server.logs`` says what is never logged)."""

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
            logs.event(
                log,
                "request",
                method=scope["method"],
                route=getattr(route, "path", "unmatched"),
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
                refusal=scope.get("state", {}).get("refusal"),
            )


class UnreadBodyCloses:
    """An answer sent before its request's body arrived whole says ``Connection: close``.

    Whatever the answer (a body cut, too large or too slow, a busy server, headers whose
    signature does not verify, a path or method FastAPI refuses), uvicorn would otherwise keep
    the connection and go on reading and discarding that body for as long as the caller sends
    it, each byte putting off its keep-alive timeout, with no deadline. A 500 is sent outside
    every middleware and keeps that gap (docs/threat-model.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        arrived_whole = False

        async def receiving() -> Message:
            nonlocal arrived_whole
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                arrived_whole = True
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and not arrived_whole:
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*kept, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receiving, sending)


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


def declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.isdigit() or len(declared) > 18:
        raise MalformedData("the request's Content-Length is not a number of bytes")
    return int(declared)


@dataclass(frozen=True)
class Pace:
    """How a request body must arrive: never silent for ``idle_s``; whole within
    ``deadline_s``; and, once ``grace_s`` has passed, at ``min_rate`` bytes/s on average."""

    idle_s: float
    deadline_s: float = math.inf
    min_rate: float = 0.0
    grace_s: float = 0.0

    def due(self, elapsed: float, received: int) -> tuple[float, str]:
        """When, in seconds from the body's start, its next piece is due; and which rule says
        so. At that moment, with nothing more arrived, the body breaks that rule."""
        rules = [(elapsed + self.idle_s, "idle"), (self.deadline_s, "deadline")]
        if self.min_rate > 0:
            rules.append((max(self.grace_s, received / self.min_rate), "rate"))
        return min(rules)

    def broken(self, rule: str, received: int, elapsed: float) -> FieldsyncError:
        if rule == "deadline":
            return BodyTooSlow(
                f"the request's body did not arrive whole within {self.deadline_s:g} s, the "
                "longest the server reads a body before checking its signature; nothing of it "
                "was kept"
            )
        if rule == "rate":
            rate = received / max(elapsed, 0.001)
            return BodyTooSlow(
                f"the request's body arrived at {rate:.0f} bytes/s, under the "
                f"{self.min_rate:g} bytes/s the server asks; the {received} bytes that arrived "
                "are kept",
                hint="Nothing was lost: the upload resumes from there. Push again over a "
                "faster or steadier connection.",
            )
        return RequestCut(f"the request's body stopped arriving for {self.idle_s:g} s")


async def body_as_it_arrives(request: Request, pace: Pace) -> AsyncIterator[bytes]:
    """The request body piece by piece, cut (``RequestCut``, or ``BodyTooSlow`` for one that
    keeps arriving but too slowly) when it breaks ``pace``, or when the client leaves."""
    loop = asyncio.get_running_loop()
    started, received = loop.time(), 0
    pieces = request.stream()
    while True:
        due, rule = pace.due(loop.time() - started, received)
        try:
            async with asyncio.timeout_at(started + due):  # no task per piece, as wait_for makes
                piece = await anext(pieces)
        except StopAsyncIteration:
            return
        except ClientDisconnect as exc:
            raise RequestCut("the connection ended before the request's body did") from exc
        except TimeoutError as exc:
            raise pace.broken(rule, received, loop.time() - started) from exc
        received += len(piece)
        if piece:
            yield piece


class UnauthenticatedBodies:
    """The bodies this process is reading before their signature is checked, at most ``cap``:
    one more is refused at once (``ServerBusy``), never queued, so that callers holding
    bodies open cannot tie up more than ``cap`` connections and their bodies' memory."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.reading = 0
        self._free = asyncio.Semaphore(cap)  # bound to no loop until waited on, and never is

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._free.locked():  # tried, never waited for
            raise ServerBusy(
                f"the server is already reading {self.cap} request bodies whose signature it "
                "has not yet checked, the most it takes at once; this one was not read",
                details={"retry_after_s": BUSY_RETRY_AFTER_S},
            )
        await self._free.acquire()  # free: taken at once, with no other request run between
        self.reading += 1
        try:
            yield
        finally:
            self.reading -= 1
            self._free.release()


# What the OpenAPI document says of requests the endpoints read themselves (so that a schema
# fuzzer sends them): a body, and the three headers of a signed request (core/httpsig.py).
SIGNED: dict[str, Any] = {
    "parameters": [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
        for name in ("Content-Digest", "Signature-Input", "Signature")
    ]
}


def _body(media_type: str) -> dict[str, Any]:
    kind = {"type": "object"} if media_type == "application/json" else {"type": "string"}
    return {"requestBody": {"required": True, "content": {media_type: {"schema": kind}}}}


def _answer(
    exc: FieldsyncError, status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A refusal in fieldsync's own words (never the request's contents)."""
    return JSONResponse(ErrorAnswer.of(exc).to_json(), status_code=status, headers=headers)


def _listed(device: DeviceRow) -> DeviceInfo:
    return DeviceInfo(
        device=device.key,
        box_key=device.box_key,
        name=device.name,
        fingerprint=device_fingerprint(device) if device.box_key else "",
        status=device.status,
        enrolled_ms=device.enrolled_ms,
        revoked_ms=device.revoked_ms,
        last_seen_ms=device.last_seen_ms,
        last_seq=device.last_seq,
        entries=device.entries,
        alert=device.alert,
        # verbatim, so the administrator can check the invite it shows (admin pull)
        enrolment=base64.b64encode(device.enrolment).decode("ascii"),
    )


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


async def read_limited(
    request: Request, limit: int, pace: Pace, unauthenticated: UnauthenticatedBodies
) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit``, read
    within ``pace`` and in one of the ``unauthenticated`` slots (a caller holding bodies open
    holds the server)."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes")
    chunks, size = [], 0
    async with unauthenticated.slot():
        async for chunk in body_as_it_arrives(request, pace):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the request body is larger than {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)
