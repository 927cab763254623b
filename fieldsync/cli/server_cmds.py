"""``fieldsync server init`` and ``fieldsync server run``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fieldsync.cli.options import DatabaseUrl, DataDir, Json
from fieldsync.cli.render import emit_json, out, safe
from fieldsync.errors import InputError
from fieldsync.server import data

server_app = typer.Typer(help="The organisation's server.", no_args_is_help=True)


@server_app.command("init")
def init(
    data_dir: DataDir,
    org: Annotated[
        Path, typer.Option("--org", help="The organisation's public keys (from 'admin init').")
    ],
    json: Json = False,
) -> None:
    """Set up a server for an organisation: its receipt key, its database, its blob folder."""
    try:
        org_bytes = org.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {str(org)!r}: {exc.strerror}") from exc
    server = data.init(data_dir, org_bytes)
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


@server_app.command("run")
def run(
    data_dir: DataDir,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8443,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the sync protocol (put it behind a TLS reverse proxy on a public network)."""
    # Imported here: starting the server is the only command that needs them.
    import uvicorn

    from fieldsync.server.app import create_app

    server = data.load(data_dir)
    app = create_app(server, database_url=database_url)
    out.print(
        f"Serving {safe(data_dir)} on http://{host}:{port} (server fingerprint "
        f"{server.fingerprint})",
        markup=False,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=os.environ.get("FIELDSYNC_LOG", "warning"),
        access_log=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(server_app, name="server")
