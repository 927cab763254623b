"""``fieldsync server init``, ``server migrate`` and ``server run``."""

from __future__ import annotations

import dataclasses
import json as json_module
import os
import re
from pathlib import Path
from typing import Annotated

import typer

from fieldsync.cli.options import BlobFolder, DatabaseUrl, DataDir, Json
from fieldsync.cli.render import emit_json, out, safe
from fieldsync.core.ids import fingerprint
from fieldsync.errors import InputError
from fieldsync.server import data, logs, schema
from fieldsync.server.limits import GIB, KIB, MIB, Limits

server_app = typer.Typer(help="The organisation's server.", no_args_is_help=True)

_SIZE = re.compile(r"(\d{1,15})\s*(|B|KiB|MiB|GiB|TiB)")
_UNITS = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


OpenUploadBytes = Annotated[
    str,
    typer.Option(
        "--max-open-upload-bytes",
        envvar="FIELDSYNC_MAX_OPEN_UPLOAD_BYTES",
        help="Bytes one device may hold in uploads no batch names yet (KiB, MiB, GiB).",
    ),
]
OpenUploads = Annotated[
    int,
    typer.Option(
        "--max-open-uploads",
        envvar="FIELDSYNC_MAX_OPEN_UPLOADS",
        min=1,
        help="Uploads no batch names yet that one device may have at once.",
    ),
]
QuarantineBytes = Annotated[
    str,
    typer.Option(
        "--max-quarantine-bytes",
        envvar="FIELDSYNC_MAX_QUARANTINE_BYTES",
        help="Bytes of one device's batches kept for review (forks, sent after revocation).",
    ),
]
QuarantineBatches = Annotated[
    int,
    typer.Option(
        "--max-quarantine-batches",
        envvar="FIELDSYNC_MAX_QUARANTINE_BATCHES",
        min=1,
        help="Batches of one device kept for review.",
    ),
]
UploadExpiry = Annotated[
    float,
    typer.Option(
        "--upload-expiry-hours",
        envvar="FIELDSYNC_UPLOAD_EXPIRY_HOURS",
        min=0.01,
        help="Delete an upload no batch names, partial or complete, untouched for this many hours.",
    ),
]
BodyIdle = Annotated[
    float,
    typer.Option(
        "--body-idle-timeout",
        envvar="FIELDSYNC_BODY_IDLE_TIMEOUT",
        min=0.1,
        help="Cut a request whose body sends nothing for this many seconds.",
    ),
]
BodyDeadline = Annotated[
    float,
    typer.Option(
        "--body-deadline",
        envvar="FIELDSYNC_BODY_DEADLINE",
        min=0.1,
        help="Seconds a body read before its signature is checked (an enrolment, a batch) "
        "may take in all; the default lets 16 MiB cross a 20 KiB/s link.",
    ),
]
BodyMinRate = Annotated[
    str,
    typer.Option(
        "--body-min-rate",
        envvar="FIELDSYNC_BODY_MIN_RATE",
        help="Bytes per second an attachment upload must average, once the grace has passed "
        "(what arrived of one cut is kept).",
    ),
]
BodyRateGrace = Annotated[
    float,
    typer.Option(
        "--body-rate-grace",
        envvar="FIELDSYNC_BODY_RATE_GRACE",
        min=0.1,
        help="Seconds an upload's body runs before its rate is held to --body-min-rate.",
    ),
]
UnauthenticatedBodies = Annotated[
    int,
    typer.Option(
        "--max-unauthenticated-bodies",
        envvar="FIELDSYNC_MAX_UNAUTHENTICATED_BODIES",
        min=1,
        help="Bodies each server process reads at once before their signature is checked; "
        "one more is answered 503.",
    ),
]


@server_app.command("init")
def init(
    data_dir: DataDir,
    org: Annotated[
        Path, typer.Option("--org", help="The organisation's public keys (from 'admin init').")
    ],
    database_url: DatabaseUrl = None,
    json: Json = False,
) -> None:
    """Set up a server for an organisation: its receipt key, its database, its blob folder."""
    try:
        org_bytes = org.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {str(org)!r}: {exc.strerror}") from exc
    server = data.init(data_dir, org_bytes, database_url)
    if json:
        emit_json(
            {
                "data": str(data_dir),
                "server_key": server.receipt_key.public.hex(),
                "server_fingerprint": server.fingerprint,
                "org_fingerprint": server.org.fingerprint,
            }
        )
        return
    out.print(f"Set up a server in {safe(data_dir)}", markup=False)
    out.print(
        f"Organisation fingerprint: {server.org.fingerprint} (compare it with the one "
        "'admin init' printed)",
        markup=False,
    )
    out.print(f"Server fingerprint:       {server.fingerprint}", markup=False)


@server_app.command("new-receipt-key")
def new_receipt_key(data_dir: DataDir, json: Json = False) -> None:
    """Make the server a new receipt key, offered to the administrator: it signs receipts
    once 'fieldsync admin rotate-receipt-key' names it in the organisation's log."""
    number, key = data.new_receipt_key(data_dir)
    shown = fingerprint(key.public)
    if json:
        emit_json({"number": number, "server_key": key.public.hex(), "server_fingerprint": shown})
        return
    out.print(
        f"Made receipt key {number} (fingerprint {shown}) in {safe(data_dir)}. Every running "
        "server process offers it now; the old key signs until the administrator runs "
        "'fieldsync admin rotate-receipt-key'. Copy the new server-key file to every host "
        "that serves from this data (docs/deploy.md).",
        markup=False,
    )


@server_app.command("migrate")
def migrate(data_dir: DataDir, database_url: DatabaseUrl = None, json: Json = False) -> None:
    """Bring the server's database to this fieldsync's schema (back it up first)."""
    server = data.load(data_dir)
    before, after = schema.migrate_url(database_url or server.database_url())
    if json:
        emit_json({"before": before, "after": after, "changed": before != after})
    elif before == after:
        out.print(f"The database is already at schema revision {after}.", markup=False)
    else:
        out.print(
            f"Migrated the database from revision {before or 'empty'} to {after}.", markup=False
        )


@server_app.command("run")
def run(
    data_dir: DataDir,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8443,
    database_url: DatabaseUrl = None,
    blobs: BlobFolder = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Server processes sharing the port (more than 1 needs PostgreSQL).",
        ),
    ] = 1,
    max_open_upload_bytes: OpenUploadBytes = f"{Limits.open_upload_bytes // GIB}GiB",
    max_open_uploads: OpenUploads = Limits.open_uploads,
    max_quarantine_bytes: QuarantineBytes = f"{Limits.quarantine_bytes // MIB}MiB",
    max_quarantine_batches: QuarantineBatches = Limits.quarantine_batches,
    upload_expiry_hours: UploadExpiry = Limits.upload_expiry_h,
    body_idle_timeout: BodyIdle = Limits.body_idle_s,
    body_deadline: BodyDeadline = Limits.body_deadline_s,
    body_min_rate: BodyMinRate = f"{int(Limits.body_min_rate // KIB)}KiB",
    body_rate_grace: BodyRateGrace = Limits.body_rate_grace_s,
    max_unauthenticated_bodies: UnauthenticatedBodies = Limits.unauthenticated_bodies,
) -> None:
    """Serve the sync protocol (put it behind a TLS reverse proxy on a public network).

    Each device's share of the server is limited (uploads no batch names yet, batches kept
    for review), and a request body that goes silent, or arrives too slowly, is cut:
    docs/deploy.md, "Quotas and timeouts"."""
    # Imported here: starting the server is the only command that needs them.
    import uvicorn

    from fieldsync.server import app as server_app_module

    limits = Limits(
        open_upload_bytes=_size(max_open_upload_bytes, "--max-open-upload-bytes"),
        open_uploads=max_open_uploads,
        quarantine_bytes=_size(max_quarantine_bytes, "--max-quarantine-bytes"),
        quarantine_batches=max_quarantine_batches,
        upload_expiry_h=upload_expiry_hours,
        body_idle_s=body_idle_timeout,
        body_deadline_s=body_deadline,
        body_min_rate=_size(body_min_rate, "--body-min-rate"),
        body_rate_grace_s=body_rate_grace,
        unauthenticated_bodies=max_unauthenticated_bodies,
    )
    server = data.load(data_dir)
    url = database_url or server.database_url()
    if workers > 1 and url.startswith("sqlite"):
        raise InputError(
            "several workers need PostgreSQL: SQLite takes one writer at a time",
            hint="Give --database-url postgresql+psycopg://..., or run one worker.",
        )
    if blobs is not None and not blobs.is_dir():
        raise InputError(
            f"the blob folder {str(blobs)!r} does not exist",
            hint="Create it (or mount the shared storage there) and start the server again.",
        )
    # built here even for several workers: it checks the schema and says what to run
    app = server_app_module.create_app(
        server, database_url=database_url, blob_folder=blobs, limits=limits
    )
    out.print(
        f"Serving {safe(data_dir)} on http://{host}:{port} with {workers} worker(s) (server "
        f"fingerprint {server.fingerprint})",
        markup=False,
    )
    level = os.environ.get("FIELDSYNC_LOG", "info")
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_config=logs.config(level), access_log=False)
        return
    app.state.engine.dispose()
    # Each worker process builds its own app from these (uvicorn imports it by name).
    os.environ[server_app_module.DATA_ENV] = str(data_dir.resolve())
    os.environ[server_app_module.DATABASE_ENV] = url
    if blobs is not None:
        os.environ[server_app_module.BLOBS_ENV] = str(blobs.resolve())
    os.environ[server_app_module.LIMITS_ENV] = json_module.dumps(dataclasses.asdict(limits))
    uvicorn.run(
        "fieldsync.server.app:from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=logs.config(level),
        access_log=False,
    )


def _size(value: str, option: str) -> int:
    """A number of bytes, as written for a person: ``16GiB``, ``512 MiB``, ``1048576``."""
    matched = _SIZE.fullmatch(value.strip())
    if matched is None or int(matched.group(1)) == 0:
        raise InputError(
            f"{option} {value!r} is not a size",
            hint="Give a whole number of bytes, or one with KiB, MiB, GiB or TiB: 16GiB.",
        )
    return int(matched.group(1)) * _UNITS[matched.group(2)]


def register(app: typer.Typer) -> None:
    app.add_typer(server_app, name="server")
