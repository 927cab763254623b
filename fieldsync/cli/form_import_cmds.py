"""``fieldsync admin forms import``: an XLSForm translated into a fieldsync form, shown, and
written out as JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fieldsync.cli.admin_cmds import admin_app
from fieldsync.cli.forms_cmds import field_json, print_choices, print_fields
from fieldsync.cli.options import Json
from fieldsync.cli.render import emit_json, err, literal, out
from fieldsync.services import xlsform

admin_forms = typer.Typer(help="The organisation's own forms.", no_args_is_help=True)


def register(_app: typer.Typer) -> None:
    admin_app.add_typer(admin_forms, name="forms")
    admin_forms.command("import")(import_form)


def import_form(
    source: Annotated[
        Path, typer.Argument(help="The XLSForm: .xlsx, .xls, .csv or .md (pyxform's formats).")
    ],
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the form's JSON Schema to this file (.json)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    json: Json = False,
) -> None:
    """Translate an XLSForm into a fieldsync form and show it; refused, naming the sheet, row
    and column, where it holds something fieldsync cannot translate faithfully."""
    if out_file is not None:
        xlsform.check_target(out_file, force)
    schema, form = xlsform.read_form(source)
    if out_file is not None:
        xlsform.write_schema(out_file, schema)
    if json:
        emit_json(
            {
                "id": form.id,
                "version": form.version,
                "title": form.title,
                "title_ar": form.title_ar,
                "fields": [field_json(f) for f in form.fields],
                "out": str(out_file) if out_file else None,
                "schema": schema,
            }
        )
        return
    out.print(literal(f"{form.title} — {form.title_ar}  ({form.ref})", style="bold"))
    shown = [f for f in form.walk() if not f.hidden]
    print_fields(shown)
    print_choices([f for f in shown if f.choices])
    if out_file is not None:
        err.print(f"Wrote the form's JSON Schema to {out_file}.", markup=False)
