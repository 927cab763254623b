"""The server: a FastAPI app over the data folder (docs/protocol.md, "Endpoints").

The server verifies signatures and stores ciphertext; it never holds a key that decrypts
testimony. Request bodies are read against a limit before anything is parsed
(``server/bodies.py``), and error responses carry fieldsync's own message for the failure,
never the request's contents (``server/refusals.py``). This module routes and wires: each
endpoint checks the request's signature and calls one function of the modules beside it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from fieldsync.core import backup as backup_format
from fieldsync.core import batch as batch_format
from fieldsync.core import bundle, crypto, enrolment, httpsig, orglog
from fieldsync.core.wire import (
    BlobState,
    DeviceListing,
    EnrolAnswer,
    ServerInfo,
)
from fieldsync.errors import NotFound, ReceiptKeyMissing
from fieldsync.server import backup, bundles, data, logs, refusals, schema
from fieldsync.server import orglog as org_log
from fieldsync.server.blobs import BlobStorage, BlobStore
from fieldsync.server.bodies import (
    Pace,
    UnauthenticatedBodies,
    UnreadBodyCloses,
    body_as_it_arrives,
    declared_length,
    read_limited,
)
from fieldsync.server.data import ServerData
from fieldsync.server.enrol import device_fingerprint, enrol, listed, revoke
from fieldsync.server.feed import feed_page
from fieldsync.server.gates import Gates
from fieldsync.server.ingest import ingest
from fieldsync.server.limits import Limits
from fieldsync.server.tables import DeviceRow, StoredBlob

log = logging.getLogger("fieldsync.server")
DEFAULT_LIMITS = Limits()

PROTOCOL = 1


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

    gates = Gates(server, engine)
    blobs: BlobStorage = BlobStore(
        blob_folder or server.blob_folder, limits, clock, carrier=gates.admin_key
    )
    with Session(engine) as sweeping:
        blobs.expire(sweeping)
    app.add_middleware(logs.RequestLog)
    app.add_middleware(UnreadBodyCloses)
    refusals.install(app)

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
    def info(db: Session = Depends(session)) -> dict[str, Any]:  # noqa: B008
        """Who this server is: its receipt keys and the organisation it serves."""
        try:
            in_force: crypto.SigningPair | None = org_log.receipt_key(db, server)
        except ReceiptKeyMissing:  # lost from DATA: no receipt is signed, a new key is offered
            in_force = None
        offered = org_log.next_receipt_key(db, server)
        proof = (
            in_force.sign(crypto.LABEL_NEXT_RECEIPT_KEY, offered.public).hex()
            if offered and in_force
            else None
        )
        return ServerInfo(
            protocol=PROTOCOL,
            server_key=server.receipt_key.public.hex(),
            server_fingerprint=server.fingerprint,
            admin_key=server.org.admin_key,
            org_read_key=server.org.org_read_key,
            org_fingerprint=server.org.fingerprint,
            receipt_key=in_force.public.hex() if in_force else None,
            next_receipt_key=offered.public.hex() if offered else None,
            next_receipt_key_proof=proof,
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

    @app.post("/v1/org/statements", openapi_extra=_body("application/json"))
    async def receive_statement(
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """Keep the next statement of the organisation's log (signed by the admin key in
        force, which the statement itself shows); answers the log as it now stands."""
        body = await unchecked_body(request, orglog.MAX_STATEMENT)
        return (await run_in_threadpool(org_log.append, db, server, body, clock())).to_json()

    @app.get("/v1/org/log", openapi_extra=SIGNED)
    async def organisation_log(
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """The organisation's log and its forks, for an enrolled device or the administrator
        to verify and follow."""
        await signed_body(request, 0, gates.log_reader)
        return (await run_in_threadpool(org_log.page, db)).to_json()

    async def unchecked_body(request: Request, limit: int) -> bytes:
        """A body read before anything vouches for its sender (docs/deploy.md, "Quotas and
        timeouts")."""
        return await read_limited(request, limit, unchecked_pace, unauthenticated)

    known_device, admin_only = gates.known_device, gates.admin_only

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

    @app.put("/v1/admin/bundles/{member}", openapi_extra=SIGNED | _body("application/json"))
    async def put_bundle(
        member: str,
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """Keep a member's key bundle (the administrator's, sealed to the member)."""
        body = await signed_body(request, bundle.MAX_BUNDLE, admin_only)
        await run_in_threadpool(bundles.keep, db, server, member, body, clock())
        return {"member": member}

    @app.get("/v1/org/bundle", openapi_extra=SIGNED)
    async def get_bundle(
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> Response:
        """The signer's own key bundle, exactly as the administrator made it."""
        _, signer = await signed(request, 0, known_device)
        raw = await run_in_threadpool(bundles.fetch, db, signer)
        return Response(raw, media_type="application/json")

    @app.get("/v1/admin/devices", openapi_extra=SIGNED)
    async def list_devices(
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> list[dict[str, object]]:
        """The device registry (the administrator and the organisation's members)."""
        await signed_body(request, 0, gates.admin_or_member)
        rows = await run_in_threadpool(lambda: db.exec(select(DeviceRow)).all())
        return DeviceListing(tuple(listed(d) for d in rows)).to_json()

    @app.post("/v1/admin/devices/{device_key}/revoke", openapi_extra=SIGNED)
    async def revoke_device(
        device_key: str,
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """Revoke a device: from now on its batches are refused and kept for review, and its
        uploads that no batch names are deleted (nothing it sends can name them now)."""
        await signed_body(request, 0, admin_only)
        return await run_in_threadpool(revoke, db, server, blobs, device_key, clock)

    @app.put("/v1/admin/backup", openapi_extra=SIGNED | _body("application/json"))
    async def put_backup(
        request: Request,
        db: Session = Depends(session),  # noqa: B008
    ) -> dict[str, object]:
        """Keep the organisation's sealed backup (administrator only), in place of the last."""
        body = await signed_body(request, backup_format.MAX_BACKUP, admin_only)
        return (await run_in_threadpool(backup.store, db, server, body, clock())).to_json()

    @app.get("/v1/org/backup")
    async def get_backup(db: Session = Depends(session)) -> Response:  # noqa: B008
        """The organisation's sealed backup, to anyone: the one recovering holds no key yet,
        and only K of the custodians' shares open it."""
        raw = await run_in_threadpool(backup.fetch, db)
        return Response(raw, media_type="application/json")

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
