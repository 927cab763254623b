"""Many records at once from JSON Lines, a JSON array or CSV, under one unlock.

Every row is checked on its own: valid rows are saved (in transactions of ``BATCH`` rows),
refused rows are reported with their row number and the reasons, and nothing else changes.
CSV columns are dotted field paths (``location.governorate``); lists of choices are separated by
commas; lists of groups (victims, sources) are JSON in their cell. See docs/import.md.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fieldsync.core import encoding, words
from fieldsync.core.body import Body
from fieldsync.core.forms import Form, set_path
from fieldsync.core.ids import new_record_id
from fieldsync.errors import FieldsyncError, ImportFileError, ImportInterrupted, InputError
from fieldsync.services import links
from fieldsync.services.interrupts import interrupts_held
from fieldsync.store.store import Store

Format = Literal["jsonl", "json", "csv"]
BATCH = 500
MAX_JSON_ARRAY_BYTES = 256 * 1024 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_ANSWERS_FILE = 16 * 1024 * 1024
csv.field_size_limit(MAX_LINE_BYTES)


@dataclass(frozen=True)
class Refused:
    row: int  # 1-based: line in JSONL, element in a JSON array, data row in CSV
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Unparsed:
    """A CSV row some of whose cells did not parse: the row's other problems are still found,
    so the person fixes it in one go rather than one cell per try."""

    answers: dict[str, Any]  # the cells that did parse
    failed: tuple[tuple[str, str], ...]  # (field label, why) of each cell that did not

    def problems(self, form: Form) -> list[str]:
        labels = tuple(label for label, _ in self.failed)
        # the failed cells are missing from ``answers``; "X is required" would say it twice
        others = [p for p in form.problems(self.answers) if not p.startswith(labels)]
        return [why for _, why in self.failed] + others


@dataclass
class ImportReport:
    saved: list[str] = field(default_factory=list)  # record ids
    refused: list[Refused] = field(default_factory=list)
    last_saved_row: int = 0  # the row number of the last record saved


def detect_format(path: Path, given: str | None) -> Format:
    name = (given or path.suffix.lstrip(".")).lower()
    aliases: dict[str, Format] = {"jsonl": "jsonl", "ndjson": "jsonl", "json": "json", "csv": "csv"}
    if name not in aliases:
        raise ImportFileError(
            f"cannot tell the format of {path.name!r}",
            hint="Name it .jsonl, .json or .csv, or pass --format jsonl|json|csv.",
        )
    return aliases[name]


def count_rows(path: Path, fmt: Format) -> int | None:
    """Rows to expect, for a progress bar; None when counting would cost a full parse."""
    if fmt == "json":
        return None
    with open(path, "rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(lines - 1, 0) if fmt == "csv" else lines


def read_rows(path: Path, fmt: Format, form: Form) -> Iterator[tuple[int, Any]]:
    """Yield ``(row number, answers or InputError)`` from an import file."""
    if not path.is_file():
        raise ImportFileError(f"there is no file {str(path)!r}")
    if fmt == "jsonl":
        yield from _jsonl_rows(path)
    elif fmt == "json":
        yield from _json_rows(path)
    else:
        yield from _csv_rows(path, form)


def import_file(
    store: Store,
    form: Form,
    rows: Iterator[tuple[int, Any]],
    *,
    progress: Callable[[int], None] = lambda _: None,
) -> ImportReport:
    report = ImportReport()
    pending: list[tuple[int, str, Body, str]] = []
    try:
        for number, answers in rows:
            if isinstance(answers, InputError):
                problems = [answers.message]
            elif isinstance(answers, Unparsed):
                problems = answers.problems(form)
            else:
                answers, problems = _linked(store, form, answers)
            if problems:
                report.refused.append(Refused(number, tuple(problems)))
            else:
                form.identify_items(answers, None, lambda: new_record_id(store.now_ms()))
                body = Body(form.ref, answers)
                pending.append((number, new_record_id(store.now_ms()), body, form.summary(answers)))
            if len(pending) >= BATCH:
                _save(store, pending, report)
            progress(1)
        _save(store, pending, report)
    except KeyboardInterrupt:
        # The rows checked so far are kept, so the person knows exactly where to resume.
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: held until saved
            _save(store, pending, report)
        raise _stopped(report) from None
    except FieldsyncError as exc:
        if report.saved:  # say what is saved already, or importing again would duplicate it
            exc.hint = f"{_saved_so_far(report)} {exc.hint or ''}".strip()
        raise
    return report


def _linked(store: Store, form: Form, answers: Any) -> tuple[Any, list[str]]:
    """A row's answers with its record ids completed from prefixes (in place: a row is its
    own, so no copy on this path of every row), and its problems."""
    try:
        links.link_records(store, form, answers)
    except InputError as exc:
        return answers, [exc.message]
    return answers, form.problems(answers, entering=True)


def _stopped(report: ImportReport) -> ImportInterrupted:
    """Where an interrupted import stopped, by the last row it dealt with (saved or refused):
    rows are read in order, and a row is either in a saved batch, refused, or not read."""
    last = max(report.last_saved_row, report.refused[-1].row if report.refused else 0)
    refused = f" ({words.count(len(report.refused), 'row')} refused)" if report.refused else ""
    return ImportInterrupted(
        f"import stopped: rows 1 to {last} were read, {words.count(len(report.saved), 'record')} "
        f"saved{refused}; nothing from row {last + 1} on was saved",
        hint=f"Import again from row {last + 1}: remove rows 1 to {last} from the file "
        "(a CSV keeps its header line), after taking out the refused rows listed to correct."
        if last
        else "Nothing was saved; import the file again.",
        refused=[(r.row, r.problems) for r in report.refused],
    )


def _saved_so_far(report: ImportReport) -> str:
    return (
        f"{words.count(len(report.saved), 'record')} from rows 1 to {report.last_saved_row} "
        f"{words.verb(len(report.saved), 'was', 'were')} saved before this: import again from "
        f"row {report.last_saved_row + 1}."
    )


def _save(store: Store, pending: list[tuple[int, str, Body, str]], report: ImportReport) -> None:
    """Save ``pending`` in one transaction and count it, with Ctrl-C held until both are done:
    a batch is then saved and counted together, or neither, so the row an interrupted import
    names as the first not saved is exact."""
    if not pending:
        return
    with interrupts_held():
        with store.writer() as writer:
            for _, record, body, summary in pending:
                writer.append(record, [], body, summary)
        report.saved += [record for _, record, _, _ in pending]
        report.last_saved_row = pending[-1][0]
        pending.clear()


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB".replace(".0 MiB", " MiB")


def _text(path: Path) -> Iterator[str]:
    """Lines of a UTF-8 (or BOM-marked UTF-16) file; a clear error for any other encoding."""
    with open(path, "rb") as raw:
        head = raw.read(4)
    encoding = "utf-16" if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    line_number = 0
    try:
        with open(path, encoding=encoding, newline="") as handle:
            for line_number, line in enumerate(handle, start=1):
                if len(line) > MAX_LINE_BYTES:
                    raise ImportFileError(
                        f"line {line_number} of {path.name!r} is too long (more than "
                        f"{_mib(MAX_LINE_BYTES)}, the limit for one line)"
                    )
                yield line
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{path.name!r} is not UTF-8 text (near line {line_number + 1}: {exc.reason})",
            hint='Nothing was saved from this file. Save it as UTF-8 ("CSV UTF-8" in '
            "spreadsheet programs) and import it again.",
        ) from exc


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(_text(path), start=1):
        if not line.strip():
            continue
        yield number, _parse_json(line, f"line {number}")


def _json_rows(path: Path) -> Iterator[tuple[int, Any]]:
    if path.stat().st_size > MAX_JSON_ARRAY_BYTES:
        raise ImportFileError(
            f"{path.name!r} is too large for a JSON array (the limit is "
            f"{_mib(MAX_JSON_ARRAY_BYTES)})",
            hint="Use JSON Lines (one record per line) for large imports.",
        )
    value = _parse_json("".join(_text(path)), path.name)
    if isinstance(value, InputError):
        raise ImportFileError(value.message)
    if not isinstance(value, list):
        raise ImportFileError(f"{path.name!r} must hold a JSON array of records")
    yield from enumerate(value, start=1)


def _parse_json(text: str, where: str) -> Any:
    try:
        return encoding.parse_input(text)
    except ValueError as exc:
        return InputError(f"{where} is not valid JSON ({str(exc)[:100]})")


def read_answers_file(path: Path) -> dict[str, Any]:
    """One record's answers from a JSON file (``new --from-file``, ``edit --from-file``)."""
    try:
        size = path.stat().st_size
        if size > MAX_ANSWERS_FILE:
            raise InputError(
                f"{str(path)!r} is too large for one record's answers ({_mib(size)}; the "
                f"limit is {_mib(MAX_ANSWERS_FILE)}, and a text field holds at most what its "
                "form says: 'fieldsync forms show FORM')",
                hint="Nothing was saved. Attach long documents as files ('fieldsync attach') "
                "instead of typing them into a field.",
            )
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"there is no file {str(path)!r}") from None
    except UnicodeDecodeError:
        raise InputError(f"{str(path)!r} is not UTF-8 text", hint="Save it as UTF-8.") from None
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    value = _parse_json(text, repr(str(path)))
    if isinstance(value, InputError):
        raise value
    if not isinstance(value, dict):
        raise InputError(f"{str(path)!r} must hold one JSON object of answers")
    return value


def _csv_rows(path: Path, form: Form) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(_text(path))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{path.name!r} is empty") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path.name!r} is not valid CSV ({exc})") from exc
    columns = [name.strip() for name in header]
    known = {f.dotted: f for f in form.walk() if f.kind != "group"}
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ImportFileError(
            f"{path.name!r} has columns the {form.id} form does not know: {', '.join(unknown)}",
            hint=f"Column names are field paths; 'fieldsync forms show {form.id}' lists them.",
        )
    if len(set(columns)) != len(columns):
        raise ImportFileError(f"{path.name!r} names a column twice")
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(
                f"{path.name!r} is not valid CSV near row {number + 1} ({exc})"
            ) from exc
        number += 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(columns):
            yield (
                number,
                InputError(
                    f"row has {len(cells)} cells but the header names {len(columns)} columns"
                ),
            )
            continue
        answers: dict[str, Any] = {}
        unparsed: list[tuple[str, str]] = []  # (the field's label, why its cell did not parse)
        for column, cell in zip(columns, cells, strict=True):
            if cell.strip():
                described = known[column]
                try:
                    set_path(answers, described.path, described.parse(cell))
                except InputError as exc:
                    unparsed.append((form.label_of(described.path), exc.message))
        yield number, Unparsed(answers, tuple(unparsed)) if unparsed else answers
