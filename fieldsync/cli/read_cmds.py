"""``list``, ``show``, ``history``: reading records back."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Column, Table
from rich.text import Text

from fieldsync.cli.history_cmds import history
from fieldsync.cli.options import Home, Json, PassphraseFile, RecordArg, unlocked
from fieldsync.cli.render import emit_json, err, iso, labelled, literal, one_line, out, safe, when
from fieldsync.cli.values import value_text
from fieldsync.core import words
from fieldsync.core.forms import Field
from fieldsync.errors import InputError, OutputPathError, StoreCorrupted
from fieldsync.services import attachments, reading
from fieldsync.services.forms import get_form
from fieldsync.store.index import IndexEntry
from fieldsync.store.store import Store

STDOUT = Path("-")  # --out - : the attachment's bytes go to stdout
PLAIN_ABOVE = 2000  # rows; a rich table measures every cell first (100,000 rows: 90 s)


class Lang(StrEnum):
    en = "en"
    ar = "ar"


def list_records(
    form: Annotated[str | None, typer.Option("--form", help="Only records of this form.")] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", help="Only records whose summary, form or id contains this text."),
    ] = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """List the records in this store."""
    wanted = get_form(form).id if form else None
    with unlocked(home, passphrase_file) as store:
        rows = reading.listing(store, form=wanted, search=search)
        shown = reading.shown_ids(store) if not json else {}
    if json:
        emit_json(
            [
                {
                    "record": r.record,
                    "form": r.form,
                    "summary": r.summary,
                    "versions": r.versions,
                    "attachments": r.attachments,
                    "created": iso(r.created.wall_ms) if r.created.wall_ms else None,
                    "updated": iso(r.updated.wall_ms) if r.updated.wall_ms else None,
                    "in_conflict": r.conflict,
                    "problem": r.problem,
                }
                for r in rows
            ]
        )
    elif len(rows) > PLAIN_ABOVE:
        _print_plain(rows, shown)
    else:
        _print_table(rows, shown)
    damaged = sum(1 for r in rows if r.problem)
    if damaged:
        raise StoreCorrupted(
            f"{words.count(damaged, 'record')} of this store {words.verb(damaged, 'is', 'are')} "
            "damaged and cannot be read (marked DAMAGED); the others are intact",
            hint="Run 'fieldsync check' for the whole store; restore damaged files from a backup.",
        )


def _print_table(rows: list[IndexEntry], shown: dict[str, str]) -> None:
    width = max((len(shown[r.record]) for r in rows), default=6)
    # An id is never cut (it must be typed back as shown): its column has a fixed width. The
    # summary alone gives way on a narrow terminal, cut to one line rather than wrapped.
    table = Table(
        Column("record", width=width, no_wrap=True),
        Column("form", no_wrap=True),
        Column("summary"),
        Column("versions", no_wrap=True, justify="right"),
        Column("files", no_wrap=True, justify="right"),
        Column("updated", no_wrap=True),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for r in rows:
        summary = Text(no_wrap=True, overflow="ellipsis")  # first the mark, never cut off
        if r.conflict:
            summary.append("IN CONFLICT ", style="bold yellow")
        if r.problem:
            summary.append("DAMAGED ", style="bold red")
        summary.append(one_line(r.problem or r.summary))
        table.add_row(
            literal(shown[r.record]),
            literal(r.form.split("@")[0]),
            summary,
            str(r.versions),
            str(r.attachments),
            when(r.updated.wall_ms)[:10],  # the day; `show` gives the time
        )
    out.print(table)
    out.print(f"{len(rows)} record(s)", markup=False)


def _print_plain(rows: list[IndexEntry], shown: dict[str, str]) -> None:
    """Many rows as aligned plain lines, every text shown literally (as in the table)."""
    width = max((len(shown[r.record]) for r in rows), default=6)
    lines = [
        f"{'record':{width}}  {'form':12}  {'versions':>8}  {'files':>5}  {'updated':20}  summary"
    ]
    for r in rows:
        mark = "IN CONFLICT " if r.conflict else ""
        mark += "DAMAGED " if r.problem else ""
        summary = mark + one_line(r.problem or r.summary)
        form = one_line(r.form.split("@")[0])
        lines.append(
            f"{shown[r.record]:{width}}  {form:12}  {r.versions:>8}  {r.attachments:>5}  "
            f"{when(r.updated.wall_ms):20}  {summary}"
        )
    lines.append(f"{len(rows)} record(s)")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def show(
    record: RecordArg,
    attachment: Annotated[
        int | None, typer.Option("--attachment", help="Decrypt attachment N (from 1) to --out.")
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the decrypted attachment; - for stdout."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    lang: Annotated[
        Lang, typer.Option("--lang", help="Labels in English (en) or Arabic (ar).")
    ] = Lang.en,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            metavar="VERSION",
            help="Show this version, whole as it was saved (its id as 'history' prints it, or "
            "8+ characters of it).",
        ),
    ] = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Show a record's current version (or any earlier one with --version); with
    --attachment N --out F, decrypt one file."""
    if (attachment is None) != (out_path is None):
        raise InputError("--attachment and --out go together")
    if version is not None and attachment is not None:
        raise InputError("--attachment decrypts a file of the current version; drop --version")
    with unlocked(home, passphrase_file) as store:
        full = store.resolve_record(record)
        if version is not None:
            found = reading.read_version(store, full, version)
            _show_version(found, reading.author_labels(store), json, lang.value)
            return
        if attachment is not None and out_path == STDOUT:
            if json:
                raise InputError(
                    "--json and --out - both want stdout",
                    hint="Leave out --json to get the attachment's bytes on stdout.",
                )
            _attachment_to_stdout(store, full, attachment)
            return
        if attachment is not None and out_path is not None:
            written = attachments.save_attachment(store, full, attachment, out_path, force=force)
            if json:
                emit_json({"record": full, "attachment": attachment, "out": str(written)})
            else:
                out.print(f"Wrote attachment {attachment} to {safe(written)}", markup=False)
            return
        view = reading.read(store, full)
        label = reading.author_labels(store)
    if json:
        emit_json(_view_json(view))
    else:
        _print_view(view, label(view.current.entry.header.author), lang.value)
    if view.problems:
        for problem in view.problems:
            err.print(labelled("warning:", problem, "yellow"))
        raise StoreCorrupted(
            f"{len(view.problems)} problem(s) with record {full}; what is shown is intact",
            hint="Run 'fieldsync check' for the whole store; restore damaged files from a backup.",
        )


def _attachment_to_stdout(store: Store, record: str, number: int) -> None:
    """The decrypted bytes alone on stdout, for a pipe: each chunk is written once it is
    authenticated, so a damaged blob stops the stream with an error and a non-zero exit."""
    if sys.stdout.isatty():  # another device's file could hold the terminal's control codes
        raise OutputPathError(
            "--out - writes the file's bytes to stdout, which is a terminal here",
            hint="Pipe it to a program (… --out - | less), or give --out FILE.",
        )
    _, chunks = attachments.attachment_chunks(store, record, number)
    target = sys.stdout.buffer
    for chunk in chunks:
        target.write(chunk)
    target.flush()


def _show_version(
    view: reading.RecordView, label: Callable[[str], str], json: bool, lang: str
) -> None:
    """One signed version as it was saved: never merged with the other heads, so a value that
    lost a conflict can still be read."""
    if json:
        # one signed version: nothing of it is merged, whatever the record's heads are now
        emit_json(_view_json(view) | {"merged_heads": False, "current": _is_current(view)})
        return
    _print_view(view, label(view.current.entry.header.author), lang, whole_version=True)


def _is_current(view: reading.RecordView) -> bool:
    """Whether the version shown is what ``show`` shows without --version (the one head)."""
    return view.heads == (view.current.id,)


def _view_json(view: reading.RecordView) -> dict[str, Any]:
    header = view.current.entry.header
    return {
        "record": view.record,
        "form": view.form.ref,
        "version": view.current.id,
        "author": header.author,
        "time": iso(header.hlc.wall_ms),
        "versions": view.index.versions,
        "in_conflict": view.in_conflict,
        "conflicts": [c.path for c in view.conflicts],
        "merged_heads": view.merged,
        "heads": list(view.heads),
        "note": view.body.note,
        "answers": view.body.answers,
        "problems": list(view.problems),
        "attachments": [
            {
                "number": n,
                "id": a.id,
                "name": a.name,
                "media_type": a.media_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for n, a in enumerate(view.body.attachments, start=1)
        ],
    }


def _print_view(
    view: reading.RecordView, author: str, lang: str = "en", *, whole_version: bool = False
) -> None:
    header = view.current.entry.header
    ids = reading.shown_version_ids(v.id for v in view.versions)
    out.print(literal(f"{view.form.title} — {view.form.title_ar}", style="bold"))
    out.print(literal(f"record   {view.record}"))
    out.print(
        literal(
            f"version  {ids.get(view.current.id, view.current.id[:12])} of "
            f"{view.index.versions}, {when(header.hlc.wall_ms)}, by {one_line(author)}"
        )
    )
    if whole_version:
        current = "the current version" if _is_current(view) else "not the current version"
        out.print(literal(f"shown is this version as it was saved ({current})"))
    elif view.in_conflict:
        fields = ", ".join(one_line(c.path) for c in view.conflicts)
        out.print(
            literal(
                f"IN CONFLICT on {fields}: shown is the latest value of each; see "
                "'fieldsync conflicts' and settle with 'fieldsync resolve'",
                "bold yellow",
            )
        )
    elif view.merged:
        out.print(literal(f"shown is the merge of {len(view.heads)} versions that agree"))
    if view.body.note:
        out.print(literal(f"note     {one_line(view.body.note)}"))  # --json: as written
    table = Table("field", "value", show_header=False, box=None, padding=(0, 2))
    for field in view.form.fields:
        _add_rows(table, field, view.body.answers.get(field.name), 0, lang)
    out.print(table)
    if view.body.attachments:
        out.print("Attachments:", markup=False)
        # A name is text from a device: a newline in it must not print as a line of its own.
        for n, a in enumerate(view.body.attachments, start=1):
            out.print(
                literal(
                    f"  {n}. {one_line(a.name)}  ({one_line(a.media_type)}, {a.size} bytes, "
                    f"sha256 {a.sha256[:16]}…)"
                )
            )


def _add_rows(table: Table, field: Field, value: Any, depth: int, lang: str) -> None:
    if value is None or field.hidden:
        return
    label = literal("  " * depth + field.label_in(lang))
    if field.kind == "group" and isinstance(value, dict):
        table.add_row(label, "")
        for child in field.children:
            _add_rows(table, child, value.get(child.name), depth + 1, lang)
    elif field.kind == "items" and isinstance(value, list):
        for n, item in enumerate(value, start=1):
            table.add_row(literal("  " * depth + f"{field.item_label_in(lang)} #{n}"), "")
            for child in field.children:
                _add_rows(
                    table,
                    child,
                    item.get(child.name) if isinstance(item, dict) else None,
                    depth + 1,
                    lang,
                )
    else:
        table.add_row(label, literal(value_text(field, value, lang)))


def register(app: typer.Typer) -> None:
    app.command("list")(list_records)
    app.command()(show)
    app.command()(history)
