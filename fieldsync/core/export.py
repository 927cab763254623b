"""Exports for analysis: a record's answers as one flat row, or as sensitive-free JSON.

Pure: the service writes the files (docs/exports.md has the layout). The rules:

- a column per field, named by its dotted name (``location.governorate``), in form order;
- a list of choices or texts is one cell, its values joined by ``"; "``;
- a list of items (victims, sources) is one column per item field
  (``victims.individuals.age``), the items' values in item order joined by ``"; "``, so the
  n-th value of every such column belongs to the n-th item. Inside a joined cell a ``;`` or
  ``\\`` of the value itself is escaped with a backslash;
- sensitive fields (names, contacts, precise coordinates: ``x-sensitive`` in the form) are left
  out, column and all, unless asked for;
- a text cell a spreadsheet would run as a formula (starting with ``= + - @``, a tab or a
  carriage return) is prefixed with ``'``, and control characters are written visibly
  (``\\x1b``): an export opened in a spreadsheet or printed in a terminal runs nothing.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from fieldsync.core.forms import Field, Form, get_path

SEPARATOR = "; "
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# C0 controls but tab, newline and carriage return (kept inside quoted cells), DEL, C1, and the
# bidi overrides and isolates that reorder how text is displayed.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

META_COLUMNS = (
    "record",
    "form",
    "versions",  # how many signed versions the record has
    "current",  # the version shown, or the heads joined when several are merged for display
    "in_conflict",  # yes: the values shown are provisional (docs/conflicts.md)
    "conflict_fields",
    "attachments.sha256",
    "attachments.size",
    "attachments.media_type",
)
SENSITIVE_META = ("attachments.name",)  # a file's name can say who is in it


@dataclass(frozen=True)
class Column:
    name: str  # dotted: the CSV header
    path: tuple[str, ...]  # from the answers (or, for an item field, from the item)
    items: tuple[str, ...] = ()  # the path of the items list this field belongs to


def columns(form: Form, *, include_sensitive: bool) -> list[Column]:
    """The form's fields as export columns, in form order."""
    found: list[Column] = []

    def visit(fields: tuple[Field, ...], items: tuple[str, ...]) -> None:
        for described in fields:
            if described.hidden or (described.sensitive and not include_sensitive):
                continue
            inner = described.path[len(items) :]
            if described.kind == "group":
                visit(described.children, items)
            elif described.kind == "items" and not items:
                visit(described.children, described.path)
            else:  # a leaf; a list of items inside an item stays one JSON-like cell
                found.append(Column(described.dotted, inner, items))

    visit(form.fields, ())
    return found


def flatten(form_columns: list[Column], answers: dict[str, Any]) -> list[str | int]:
    """One CSV row of ``answers``: a cell per column (integers stay numbers)."""
    row: list[str | int] = []
    for column in form_columns:
        if column.items:
            listed = get_path(answers, column.items)
            items = listed if isinstance(listed, list) else []
            values = [
                get_path(item, column.path) if isinstance(item, dict) else None for item in items
            ]
            row.append(cell(SEPARATOR.join(_joinable(_plain(v)) for v in values)))
        else:
            value = get_path(answers, column.path)
            if isinstance(value, int) and not isinstance(value, bool):
                row.append(value)
            else:
                row.append(cell(_plain(value)))
    return row


def without_sensitive(form: Form, answers: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``answers`` with every sensitive field removed (inside list items too)."""
    kept = copy.deepcopy(answers)
    for described in form.walk():
        if described.sensitive:
            _drop(kept, described.path)
    return kept


def cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: never a formula, no hidden controls."""
    text = CONTROL.sub(_visible, text)
    return "'" + text if text.startswith(FORMULA_START) else text


def joined(values: list[str]) -> str:
    return cell(SEPARATOR.join(_joinable(v) for v in values))


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return SEPARATOR.join(_joinable(_plain(v)) for v in value)
    if isinstance(value, dict):  # only a nested list of items: keep every value, readably
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def _joinable(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _drop(value: Any, path: tuple[str, ...]) -> None:
    """Remove ``path`` from ``value``, stepping into every item of a list on the way."""
    if isinstance(value, list):
        for item in value:
            _drop(item, path)
        return
    if not isinstance(value, dict) or not path:
        return
    if len(path) == 1:
        value.pop(path[0], None)
    else:
        _drop(value.get(path[0]), path[1:])
