"""``fieldsync demo``: the whole journey in a temporary folder, printed step by step."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated

import typer

from fieldsync.cli.render import literal, out
from fieldsync.services import demo as journey


def demo(
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Run in this (new) folder and keep it, to look inside."),
    ] = None,
) -> None:
    """The whole journey on built-in examples: record, then organisation, server, push."""
    folder = keep or Path(tempfile.mkdtemp(prefix="fieldsync-demo-"))
    started = time.monotonic()
    out.print(
        literal(
            f"fieldsync demo in {folder} (passphrase: {journey.DEMO_PASSPHRASE!r})", style="bold"
        )
    )
    try:
        for number, step in enumerate(journey.run(folder, start_server), start=1):
            out.print(literal(f"{number:>2}. {step.title}", style="bold"))
            out.print(literal(f"    {step.detail}"))
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    out.print(
        f"Done in {time.monotonic() - started:.1f} s; every step checked its result.", markup=False
    )


@contextmanager
def start_server(folder: Path, org_public: bytes) -> Iterator[journey.RunningServer]:
    """A real server for the demo: set up in ``folder``, served on a free loopback port."""
    from fieldsync.server import data
    from fieldsync.server.app import create_app
    from fieldsync.server.embedded import running
    from fieldsync.server.holdings import ServerHoldings

    server = data.init(folder, org_public)
    with running(create_app(server)) as url:
        yield journey.RunningServer(
            url,
            server.fingerprint,
            lambda: closing(ServerHoldings(server)),
            lambda: data.new_receipt_key(folder)[1].public.hex(),
        )


def register(app: typer.Typer) -> None:
    app.command()(demo)
