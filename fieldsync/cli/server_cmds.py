"""``fieldsync server init``, ``server migrate`` and ``server run``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fieldsync.cli.options import BlobFolder, DatabaseUrl, DataDir, Json
from fieldsync.cli.render import emit_json, out, safe
from fieldsync.errors import InputError
from fieldsync.server import data, logs, schema

server_app = typer.Typer(help="The organisation's server.", no_args_is_help=True)


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
) -> None:
    """Serve the sync protocol (put it behind a TLS reverse proxy on a public network)."""
    # Imported here: starting the server is the only command that needs them.
    import uvicorn

    from fieldsync.server import app as server_app_module

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
    app = server_app_module.create_app(server, database_url=database_url, blob_folder=blobs)
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
    uvicorn.run(
        "fieldsync.server.app:from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=logs.config(level),
        access_log=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(server_app, name="server")
