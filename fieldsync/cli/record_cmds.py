"""``new``, ``import``, ``edit``, ``attach``: recording."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated, Any

import typer

from fieldsync.cli.options import Home, Json, PassphraseFile, RecordArg, unlocked
from fieldsync.cli.progress import bars
from fieldsync.cli.prompts import FormWalker, ask_value
from fieldsync.cli.render import emit_json, literal, out, when
from fieldsync.core.forms import Field, Form, get_path
from fieldsync.errors import ImportFileError, InputError, Interrupted
from fieldsync.services import drafts, importer, records
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store

FormName = Annotated[str, typer.Argument(help="Form id: incident, interview, disappearance.")]
FromFile = Annotated[
    Path | None,
    typer.Option("--from-file", help="Take the answers from this JSON file.", dir_okay=False),
]
Note = Annotated[str | None, typer.Option("--note", help="A note on this version.")]


def new(
    form: FormName,
    from_file: FromFile = None,
    note: Note = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Record one: prompts field by field, or answers from a JSON file; prints the record id."""
    found = get_form(form)
    answers = importer.read_answers_file(from_file) if from_file else None
    with unlocked(home, passphrase_file) as store:
        if answers is None:
            record = _new_interactive(store, found, note)
        else:
            record = records.create(store, found, answers, note=note)
    if json:
        emit_json({"record": record, "form": found.ref})
    else:
        out.print(f"Saved {found.id} record {record}", markup=False)


def _new_interactive(store: Store, form: Form, note: str | None) -> str:
    draft = _pick_draft(store, form)
    out.print(literal(f"New {form.title} — {form.title_ar}", style="bold"))
    out.print("Press Enter to skip an optional field. Ctrl-C keeps what you typed as a draft.")
    try:
        answers = FormWalker(form, draft.answers, draft.asked, lambda: draft.save(store)).run()
    except (KeyboardInterrupt, typer.Abort):
        raise Interrupted(
            "stopped; the answers typed so far are kept, encrypted, as a draft",
            hint=f"Run 'fieldsync new {form.id}' to continue where you left off.",
        ) from None
    return records.create(store, form, answers, note=note, draft_id=draft.id)


def _pick_draft(store: Store, form: Form) -> drafts.Draft:
    for found in drafts.find(store, form.ref):
        question = (
            f"An unfinished {form.id} draft from {when(found.saved_ms)} "
            f"({len(found.asked)} field(s) answered) was found. Continue it?"
        )
        if typer.confirm(question, default=True):
            return found
        if typer.confirm("Discard that draft?", default=False):
            drafts.discard(store, found)
    return drafts.start(store, form.ref)


def import_records(
    form: FormName,
    file: Annotated[Path, typer.Argument(help="JSON Lines, a JSON array, or CSV.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl, json or csv (default: by extension).")
    ] = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Record many at once under one unlock; reports which rows were refused and why."""
    found = get_form(form)
    kind = importer.detect_format(file, fmt)
    if not file.is_file():
        raise ImportFileError(f"there is no file {str(file)!r}")
    with unlocked(home, passphrase_file) as store:
        total = importer.count_rows(file, kind)
        with bars(json=json) as bar:
            task = bar.add_task("rows", total=total)
            report = importer.import_file(
                store,
                found,
                importer.read_rows(file, kind, found),
                progress=lambda n: bar.advance(task, n),
            )
    if json:
        emit_json(
            {
                "saved": len(report.saved),
                "records": report.saved,
                "refused": [{"row": r.row, "problems": list(r.problems)} for r in report.refused],
            }
        )
    else:
        out.print(f"Saved {len(report.saved)} {found.id} record(s).", markup=False)
        for refused in report.refused:
            out.print(literal(f"  row {refused.row} refused: {'; '.join(refused.problems)}"))
    if report.refused:
        raise InputError(
            f"{len(report.refused)} row(s) were refused; the {len(report.saved)} valid row(s) "
            "were saved",
            hint="Correct the refused rows and import just those again.",
        )


def edit(
    record: RecordArg,
    from_file: FromFile = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="FIELD=VALUE, e.g. --set victims.total=3 (repeatable)."),
    ] = None,
    note: Note = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Save a new version of a record (the earlier versions stay in its history)."""
    with unlocked(home, passphrase_file) as store:
        edit_in(store, record, from_file, set_, note, json)


def edit_in(
    store: Store,
    record: str,
    from_file: Path | None,
    set_: list[str] | None,
    note: str | None,
    json: bool,
) -> None:
    """``edit`` in an unlocked store (``admin edit`` shares it)."""
    answers = importer.read_answers_file(from_file) if from_file else None
    full = store.resolve_record(record)
    if answers is None and not set_:
        set_ = _ask_changes(store, full)
    version = records.edit(store, full, answers=answers, sets=set_, note=note)
    if json:
        emit_json({"record": full, "version": version})
    else:
        out.print(f"Saved a new version of {full} ({version[:12]})", markup=False)


def _ask_changes(store: Store, record: str) -> list[str]:
    view = records.read(store, record)
    changes: list[str] = []
    out.print("Name each field to change (see 'fieldsync forms show'); an empty name finishes.")
    while name := typer.prompt("Field", default="", show_default=False).strip():
        try:
            field = view.form.field(name)
        except InputError as exc:
            out.print(literal(exc.message))
            continue
        if field.kind in ("group", "items"):
            out.print("Change one field inside it, or use --from-file for a whole list.")
            continue
        value = ask_value(view.form, field, get_path(view.body.answers, field.path))
        text = "" if value is None else _value_text(field, value)
        changes.append(f"{field.dotted}={text}")
    return changes


def _value_text(field: Field, value: Any) -> str:
    if field.kind == "choices":
        return jsonlib.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def attach(
    record: RecordArg,
    files: Annotated[list[Path], typer.Argument(help="Files to encrypt into the store.")],
    note: Note = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Encrypt files into the store and reference them from a new version of a record."""
    with unlocked(home, passphrase_file) as store:
        full = store.resolve_record(record)
        version = records.attach(store, full, files, note=note)
    if json:
        emit_json({"record": full, "version": version, "attached": len(files)})
    else:
        out.print(f"Attached {len(files)} file(s) to {full} ({version[:12]})", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(new)
    app.command("import")(import_records)
    app.command()(edit)
    app.command()(attach)
