"""``forms list`` and ``forms show``: the forms this device knows."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Column, Table

from fieldsync.cli.options import Json
from fieldsync.cli.render import emit_json, literal, out
from fieldsync.core.forms import Field
from fieldsync.services.forms import builtin_forms, get_form

forms_app = typer.Typer(help="The forms this device knows.", no_args_is_help=True)

KIND_WORDS = {
    "text": "text",
    "integer": "number",
    "boolean": "yes/no",
    "date": "date (YYYY-MM-DD)",
    "choice": "one choice",
    "choices": "several choices",
    "group": "group",
    "items": "list of entries",
    "texts": "list of texts",
}


@forms_app.command("list")
def list_forms(json: Json = False) -> None:
    """List the forms, with their English and Arabic titles."""
    forms = sorted(builtin_forms().values(), key=lambda f: f.id)
    if json:
        emit_json(
            [
                {
                    "id": f.id,
                    "version": f.version,
                    "ref": f.ref,
                    "title": f.title,
                    "title_ar": f.title_ar,
                    "fields": sum(1 for _ in f.walk()),
                }
                for f in forms
            ]
        )
        return
    table = Table("form", "version", "title", "العنوان", "fields")
    for form in forms:
        table.add_row(
            literal(form.id),
            str(form.version),
            literal(form.title),
            literal(form.title_ar),
            str(sum(1 for _ in form.walk())),
        )
    out.print(table)


@forms_app.command("show")
def show_form(
    form: Annotated[str, typer.Argument(help="Form id, e.g. incident or incident@1.")],
    json: Json = False,
) -> None:
    """Show a form's fields: names (for --set and CSV columns), kinds, labels, choices."""
    found = get_form(form)
    if json:
        emit_json(
            {
                "id": found.id,
                "version": found.version,
                "ref": found.ref,
                "title": found.title,
                "title_ar": found.title_ar,
                "fields": [field_json(f) for f in found.fields],
                "schema": found.schema,
            }
        )
        return
    out.print(literal(f"{found.title} — {found.title_ar}  ({found.ref})", style="bold"))
    shown = [f for f in found.walk() if not f.hidden]
    print_fields(shown)
    print_choices([f for f in shown if f.choices])


def print_fields(fields: list[Field]) -> None:
    # A name is never cut: it is typed back in --set and names a CSV column. Its column has the
    # width of the longest name; the labels and notes give way on a narrow terminal.
    width = max((len(f.dotted) for f in fields), default=5)
    table = Table(
        Column("field", width=width, no_wrap=True),
        Column("kind"),
        Column("label", overflow="fold"),
        Column("التسمية", overflow="fold"),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for field in fields:
        table.add_row(
            literal(field.dotted),
            literal("; ".join([KIND_WORDS[field.kind], *_notes(field)])),
            literal(field.label),
            literal(field.label_ar),
        )
    out.print(table)


def _notes(field: Field) -> list[str]:
    notes = []
    if field.required:
        notes.append("required")
    if field.sensitive:
        notes.append("sensitive")
    if field.choices:
        notes.append(f"{len(field.choices)} choices")
    return notes


def print_choices(fields: list[Field]) -> None:
    """Each choice's value (what --set and CSV columns take) with its labels, one a line."""
    if not fields:
        return
    out.print()
    out.print("Choices (value — label — Arabic label):", markup=False)
    for field in fields:
        out.print(literal(field.dotted, style="bold"))
        for choice in field.choices:
            out.print(literal(f"  {choice.value} — {choice.label} — {choice.label_ar}"))


def field_json(field: Field) -> dict[str, Any]:
    return {
        "name": field.dotted,
        "kind": field.kind,
        "label": field.label,
        "label_ar": field.label_ar,
        "required": field.required,
        "sensitive": field.sensitive,
        "choices": [
            {"value": c.value, "label": c.label, "label_ar": c.label_ar} for c in field.choices
        ],
        "fields": [field_json(child) for child in field.children],
    }


def register(app: typer.Typer) -> None:
    app.add_typer(forms_app, name="forms")
