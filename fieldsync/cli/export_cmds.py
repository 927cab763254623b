"""``fieldsync admin export``: decrypted records for analysts' spreadsheets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fieldsync.cli.admin_cmds import admin_app, staff_store
from fieldsync.cli.options import Home, Json, PassphraseFile
from fieldsync.cli.render import emit_json, err, literal, out, safe
from fieldsync.errors import StoreCorrupted
from fieldsync.services import export


def register(_app: typer.Typer) -> None:
    admin_app.command("export")(export_command)


def export_command(
    fmt: Annotated[str, typer.Option("--format", help="csv (UTF-8 with BOM) or jsonl.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The folder to write one file per form.")],
    form: Annotated[str | None, typer.Option("--form", help="Only this form.")] = None,
    include_sensitive: Annotated[
        bool,
        typer.Option(
            "--include-sensitive",
            help="Also names, contacts, precise coordinates and file names.",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace files already there.")] = False,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Write the records as CSV or JSON Lines: one file per form, one row per record."""
    export.targets(out_dir, fmt.strip().lower(), form, force)  # before the passphrase
    with staff_store(home, passphrase_file) as store:
        done = export.export_records(
            store,
            out_dir,
            fmt.strip().lower(),
            form=form,
            include_sensitive=include_sensitive,
            force=force,
        )
    if json:
        emit_json(
            {
                "files": [
                    {
                        "path": str(w.path),
                        "form": w.form,
                        "rows": w.rows,
                        "in_conflict": w.in_conflict,
                    }
                    for w in done.files
                ],
                "include_sensitive": include_sensitive,
                "unreadable": [{"record": r, "reason": why} for r, why in done.unreadable],
            }
        )
    else:
        for written in done.files:
            conflicts = f", {written.in_conflict} in conflict" if written.in_conflict else ""
            out.print(literal(f"{written.path}: {written.rows} record(s){conflicts}"))
        left_out = "" if include_sensitive else "; sensitive fields were left out"
        err.print(
            f"These files are not encrypted: keep them on an encrypted disk{left_out}.",
            markup=False,
        )
    if done.unreadable:
        for record, why in done.unreadable:
            err.print(f"not exported: {safe(record)}: {safe(why)}", markup=False)
        raise StoreCorrupted(
            f"{len(done.unreadable)} record(s) could not be read and are not in the export",
            hint="Run 'fieldsync check' to see what is damaged.",
        )
