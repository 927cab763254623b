"""``new``, ``import``, ``edit``, ``attach``: recording."""

from __future__ import annotations

import copy
import json as jsonlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fieldsync.cli.options import Home, Json, PassphraseFile, RecordArg, unlocked
from fieldsync.cli.progress import bars
from fieldsync.cli.prompts import FormWalker, Link, ask_value, confirm
from fieldsync.cli.render import emit_json, err, literal, one_line, out, when
from fieldsync.cli.values import value_text
from fieldsync.core import paths, words
from fieldsync.core.forms import Field, Form
from fieldsync.errors import (
    AnswersInvalid,
    ImportFileError,
    ImportInterrupted,
    InputError,
    Interrupted,
)
from fieldsync.services import attachments, drafts, importer, links, reading, records
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store

FormName = Annotated[str, typer.Argument(help="Form id: incident, interview, disappearance.")]
FromFile = Annotated[
    Path | None,
    typer.Option("--from-file", help="Take the answers from this JSON file.", dir_okay=False),
]
_PROMPTS_AND_JSON = "--json prints one JSON document, so it cannot be asked questions on the way"
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
    if json and from_file is None:
        raise InputError(_PROMPTS_AND_JSON, hint="Give the answers with --from-file FILE.")
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
    try:
        draft = _pick_draft(store, form)
    except (KeyboardInterrupt, typer.Abort):
        raise Interrupted("stopped before any answer; nothing was changed") from None
    out.print(literal(f"New {form.title} — {form.title_ar}", style="bold"))
    out.print("Press Enter to skip an optional field. Ctrl-C keeps what you typed as a draft.")
    try:
        answers = FormWalker(
            form, draft.answers, draft.asked, lambda: draft.save(store), links.linker(store)
        ).run()
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
            try:
                report = importer.import_file(
                    store,
                    found,
                    importer.read_rows(file, kind, found),
                    progress=lambda n: bar.advance(task, n),
                )
            except ImportInterrupted as stopped:
                for row, problems in [] if json else stopped.refused:
                    err.print(literal(f"  row {row} refused: {'; '.join(problems)}"))
                raise
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
        typer.Option(
            "--set",
            help="FIELD=VALUE, e.g. --set victims.total=3; an entry of a list by its number, "
            "victims.individuals[2].age=13, [+] to add one (repeatable; an empty VALUE removes).",
        ),
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
    if json and from_file is None and not set_:
        raise InputError(_PROMPTS_AND_JSON, hint="Give the changes with --set or --from-file.")
    answers = importer.read_answers_file(from_file) if from_file else None
    full = store.resolve_record(record)
    if answers is None and not set_:
        version = _edit_interactive(store, full, note)
    else:
        version = records.edit(store, full, answers=answers, sets=set_, note=note)
    if json:
        emit_json({"record": full, "version": version})
    else:
        out.print(f"Saved a new version of {full} ({version[:12]})", markup=False)


def _edit_interactive(store: Store, record: str, note: str | None) -> str:
    """Change answers one at a time from a numbered menu, each checked as it is typed and kept
    in an encrypted draft at once: Ctrl-C, or answers that do not fit together, lose nothing."""
    view = reading.read(store, record)
    try:
        draft = _pick_edit_draft(store, view)
    except (KeyboardInterrupt, typer.Abort):
        raise Interrupted("stopped before any change; nothing was changed") from None
    draft.base = view.current.id  # what its changes are now applied to
    answers = copy.deepcopy(view.body.answers)
    for change in list(draft.changes):  # replayed on the version as it is now
        try:
            records.apply_set(view.form, answers, change, link=links.linker(store))
        except InputError as exc:
            out.print(literal(f"A change kept in the draft no longer applies: {one_line(change)}"))
            out.print(literal(f"  ({exc.message}); type it again if it is still wanted."))
            draft.changes.remove(change)
    resume = f"Run 'fieldsync edit {record}' to continue the changes kept in the draft."
    try:
        while True:
            _ask_changes(view.form, answers, draft, lambda: draft.save(store), store)
            if not draft.changes:
                drafts.discard(store, draft)
                raise InputError("nothing changed, so no new version was saved")
            problems = view.form.problems(answers, entering=True, before=view.body.answers)
            if not problems:
                break
            out.print("These answers do not fit the form yet (your changes are kept):")
            for problem in problems:
                out.print(literal(f"  - {problem}"))
            if not confirm("Change more fields now?"):
                raise AnswersInvalid(problems, form=view.form.id, hint=resume)
    except (KeyboardInterrupt, typer.Abort):
        raise Interrupted(
            f"stopped; {words.count(len(draft.changes), 'change')} typed so far "
            f"{words.verb(len(draft.changes), 'is', 'are')} kept, encrypted, as a draft",
            hint=resume,
        ) from None
    return records.edit(store, record, sets=draft.changes, note=note, draft_id=draft.id)


def _pick_edit_draft(store: Store, view: reading.RecordView) -> drafts.Draft:
    for found in drafts.find_edit(store, view.record):
        question = (
            f"An unfinished edit of this record from {when(found.saved_ms)} "
            f"({words.count(len(found.changes), 'change')}) was found. Continue it?"
        )
        if typer.confirm(question, default=True) and _still_fits(view, found):
            return found
        if typer.confirm("Discard that draft?", default=False):
            drafts.discard(store, found)
    return drafts.start(store, view.form.ref, record=view.record, base=view.current.id)


def _still_fits(view: reading.RecordView, draft: drafts.Draft) -> bool:
    """Whether to replay a draft's changes on the record as it is: asked when a version came
    in since they were typed, as ``victims.individuals[2]`` may now name another entry."""
    if draft.base in (None, view.current.id):
        return True
    out.print("A new version of this record came in after these changes were typed:")
    for change in draft.changes:
        out.print(literal(f"  {one_line(change)}"))
    return confirm("Apply them to the record as it is now (check which entries they name)?")


def _ask_changes(
    form: Form,
    answers: dict[str, Any],
    draft: drafts.Draft,
    save: Callable[[], None],
    store: Store,
) -> None:
    """The menu, until an empty answer: each change is applied and saved in the draft."""
    while True:
        menu = _menu(form, answers)
        for number, (steps, field) in enumerate(menu, start=1):
            out.print(literal(f"{number:>4}. {_menu_line(form, answers, steps, field)}"))
        out.print(
            "Type a number (or a field's name, e.g. victims.individuals[2].age); "
            "an empty answer finishes."
        )
        picked = typer.prompt("Change", default="", show_default=False).strip()
        if not picked:
            return
        try:
            steps, field = _picked(form, menu, picked)
        except InputError as exc:
            out.print(literal(f"  {exc.message}"))
            continue
        where = paths.shown(steps)
        if steps[-1] == paths.APPEND:
            entry = _new_entry(form, field, links.linker(store))
            change = f"{where}={jsonlib.dumps(entry, ensure_ascii=False)}"
        else:
            out.print(literal(f"  {where}", style="bold"))
            value = ask_value(form, field, paths.get(answers, steps), links.linker(store))
            change = f"{where}={'' if value is None else _value_text(field, value)}"
        try:
            records.apply_set(form, answers, change, link=links.linker(store))
        except InputError as exc:
            out.print(literal(f"  {exc.message}"))
            continue
        draft.changes.append(change)
        save()


def _menu(form: Form, answers: dict[str, Any]) -> list[tuple[tuple[paths.Step, ...], Field]]:
    """Every answer that can be changed, where it is: each entry of a list by its number, and
    a line to add an entry to each list."""
    found: list[tuple[tuple[paths.Step, ...], Field]] = []

    def visit(fields: tuple[Field, ...], prefix: tuple[paths.Step, ...]) -> None:
        for field in fields:
            if field.hidden:
                continue
            steps = (*prefix, field.name)
            if field.kind == "group":
                visit(field.children, steps)
            elif field.kind == "items":
                entries = paths.get(answers, steps)
                for n in range(len(entries) if isinstance(entries, list) else 0):
                    visit(field.children, (*steps, n))
                found.append(((*steps, paths.APPEND), field))
            else:
                found.append((steps, field))

    visit(form.fields, ())
    return found


def _menu_line(
    form: Form, answers: dict[str, Any], steps: tuple[paths.Step, ...], field: Field
) -> str:
    where = paths.shown(steps)
    if steps[-1] == paths.APPEND:
        return f"{form.label_of(steps[:-1])}: add an entry  [{where}]"
    value = paths.get(answers, steps)
    shown = "-" if value is None else one_line(value_text(field, value))
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return f"{form.label_of(steps)}: {shown}  [{where}]"


def _picked(
    form: Form, menu: list[tuple[tuple[paths.Step, ...], Field]], text: str
) -> tuple[tuple[paths.Step, ...], Field]:
    if text.isdigit():
        if not 1 <= int(text) <= len(menu):
            raise InputError(f"choose a number from 1 to {len(menu)}")
        return menu[int(text) - 1]
    address = paths.locate(form, text)
    if address.field.kind in ("group", "items") and not isinstance(address.steps[-1], int):
        raise InputError("change one field inside it, or use --from-file for a whole list")
    if isinstance(address.steps[-1], int) and address.steps[-1] != paths.APPEND:
        raise InputError(f"name one field of that entry, e.g. {address.text}.name")
    return address.steps, address.field


def _new_entry(form: Form, items: Field, link: Link) -> dict[str, Any]:
    """The answers of one new entry of a list, asked field by field."""
    out.print(literal(f"— {items.item_label}", style="bold"))
    entry: dict[str, Any] = {}
    for child in items.children:
        if child.hidden:
            continue
        value = ask_value(form, child, None, link)
        if value is not None:
            entry[child.name] = value
    return entry


def _value_text(field: Field, value: Any) -> str:
    if field.kind in ("choices", "texts", "group", "items"):
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
        version = attachments.attach(store, full, files, note=note)
    if json:
        emit_json({"record": full, "version": version, "attached": len(files)})
    else:
        out.print(f"Attached {len(files)} file(s) to {full} ({version[:12]})", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(new)
    app.command("import")(import_records)
    app.command()(edit)
    app.command()(attach)
