"""``fieldsync admin export``: decrypted records for analysis, one file per form (docs/exports.md).

These files are plaintext by design: the one place fieldsync writes readable records to disk,
on an administrator's explicit request, private to the user (0600), and never with sensitive
fields unless asked for.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fieldsync.core import export
from fieldsync.core.forms import Form
from fieldsync.errors import InputError, OutputPathError
from fieldsync.services.every_record import Unreadable, form_of, views
from fieldsync.services.forms import builtin_forms, get_form
from fieldsync.services.reading import RecordView
from fieldsync.store import files
from fieldsync.store.index import IndexEntry
from fieldsync.store.store import Store

FORMATS = ("csv", "jsonl")
UNSAFE_IN_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
BOM = "\ufeff"  # so that spreadsheets read the file as UTF-8 and Arabic survives


@dataclass
class Written:
    path: Path
    form: str
    rows: int = 0
    in_conflict: int = 0


@dataclass
class ExportReport:
    files: list[Written] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (record, why)


def export_records(
    store: Store,
    out: Path,
    fmt: str,
    *,
    form: str | None = None,
    include_sensitive: bool = False,
    force: bool = False,
) -> ExportReport:
    forms = targets(out, fmt, form, force)
    _make_folder(out)
    report = ExportReport()
    by_form: dict[str, list[IndexEntry]] = {}
    for row in store.index():  # read once, not once per form
        if row.problem:  # its form cannot be known: listed once, never silently left out
            report.unreadable.append((row.record, row.problem))
        else:
            by_form.setdefault(form_of(row), []).append(row)
    for chosen, path in forms:
        written = Written(path, chosen.ref)
        rows = by_form.get(chosen.id, [])
        lines = _lines(store, rows, chosen, fmt, include_sensitive, written, report)
        files.write_chunks_atomic(written.path, (line.encode("utf-8") for line in lines))
        report.files.append(written)
    return report


def targets(out: Path, fmt: str, form: str | None, force: bool) -> list[tuple[Form, Path]]:
    """The forms to export and their files; refuses a bad request before any work is done."""
    if fmt not in FORMATS:
        raise InputError(f"there is no export format {fmt!r}", hint="Use csv or jsonl.")
    forms = [get_form(form)] if form else list(builtin_forms().values())
    paths = [(f, out / f"{f.id}.v{f.version}.{fmt}") for f in forms]
    if out.exists() and not out.is_dir():
        raise OutputPathError(
            f"{str(out)!r} is a file, not a folder",
            hint="Give --out a folder (it is made if missing).",
        )
    existing = [path.name for _, path in paths if path.exists()]
    if existing and not force:
        raise OutputPathError(
            f"{', '.join(existing)} already exist(s) in {str(out)!r}",
            hint="Use --force to replace them, or another --out folder.",
        )
    return paths


def _make_folder(out: Path) -> None:
    """The export folder, made if missing, private (0700) as every folder fieldsync makes: the
    files in it are plaintext."""
    if out.is_dir():
        return
    try:
        files.make_private_dir(out)
    except OSError as exc:
        raise OutputPathError(
            f"cannot make the folder {str(out)!r}: {exc.strerror}",
            hint="Choose an --out folder you can write to.",
        ) from exc


def _lines(
    store: Store,
    index: list[IndexEntry],
    form: Form,
    fmt: str,
    include_sensitive: bool,
    written: Written,
    report: ExportReport,
) -> Iterator[str]:
    form_columns = export.columns(form, include_sensitive=include_sensitive)
    meta = export.META_COLUMNS + (export.SENSITIVE_META if include_sensitive else ())
    if fmt == "csv":
        yield BOM + _csv_line([*meta, "created", "updated", *(c.name for c in form_columns)])
    for view in views(store, index):
        if isinstance(view, Unreadable):
            report.unreadable.append((view.record, view.reason))
            continue
        if view.form.ref != form.ref:
            continue  # another version of the form: its own file
        written.rows += 1
        written.in_conflict += view.in_conflict
        if fmt == "csv":
            cells = _meta_cells(view, include_sensitive)
            yield _csv_line([*cells, *export.flatten(form_columns, view.body.answers)])
        else:
            yield _json_line(view, form, include_sensitive)


def _meta_cells(view: RecordView, include_sensitive: bool) -> list[str | int]:
    attachments = view.body.attachments
    cells: list[str | int] = [
        view.record,
        view.form.ref,
        len(view.versions),
        export.joined(list(view.heads) if view.merged else [view.current.id]),
        "yes" if view.in_conflict else "no",
        export.joined([c.path for c in view.conflicts]),
        export.joined([a.sha256 for a in attachments]),
        export.joined([str(a.size) for a in attachments]),
        export.joined([a.media_type for a in attachments]),
    ]
    if include_sensitive:
        cells.append(export.joined([a.name for a in attachments]))
    return [*cells, _iso(view.index.created.wall_ms), _iso(view.index.updated.wall_ms)]


def _json_line(view: RecordView, form: Form, include_sensitive: bool) -> str:
    answers = view.body.answers
    attachments: list[dict[str, Any]] = [
        {"sha256": a.sha256, "size": a.size, "media_type": a.media_type}
        | ({"name": a.name} if include_sensitive else {})
        for a in view.body.attachments
    ]
    value = {
        "record": view.record,
        "form": view.form.ref,
        "versions": len(view.versions),
        "current": list(view.heads) if view.merged else [view.current.id],
        "in_conflict": view.in_conflict,
        "conflict_fields": [c.path for c in view.conflicts],
        "created": _iso(view.index.created.wall_ms),
        "updated": _iso(view.index.updated.wall_ms),
        "answers": answers if include_sensitive else export.without_sensitive(form, answers),
        "attachments": attachments,
    }
    # ensure_ascii=False keeps Arabic readable; JSON escapes C0 controls itself, and C1 and
    # bidi controls are escaped here so that printing the file in a terminal runs nothing
    text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    return UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def _csv_line(cells: list[str | int]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


def _iso(wall_ms: int) -> str:
    if wall_ms <= 0:
        return ""
    return datetime.fromtimestamp(wall_ms / 1000, tz=UTC).isoformat(timespec="seconds")
