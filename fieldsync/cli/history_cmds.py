"""``history``: every version of a record and what each changed, value by value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from fieldsync.cli.options import Home, Json, PassphraseFile, RecordArg, unlocked
from fieldsync.cli.render import emit_json, iso, literal, one_line, out, when
from fieldsync.cli.values import MASKED, masked_json, value_text
from fieldsync.core.changes import Change, Key
from fieldsync.services import reading, record_history

Taken = dict[Key, str]  # of a merge: the parent each change took its value from

ShowSensitive = Annotated[
    bool,
    typer.Option(
        "--show-sensitive",
        help="Show the values of sensitive fields (names, contacts, coordinates) too.",
    ),
]


def history(
    record: RecordArg,
    show_sensitive: ShowSensitive = False,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Every version of a record: who, when, based on what, and each change as old → new.

    Sensitive fields are masked unless --show-sensitive is given. Any version listed can be
    shown whole with 'fieldsync show RECORD --version V'."""
    with unlocked(home, passphrase_file) as store:
        full = store.resolve_record(record)
        items = record_history.history(store, full)
        label = reading.author_labels(store)
        typed = reading.shown_ids(store)[full]  # the record as it can be typed back
    ids = reading.shown_version_ids(i.version.id for i in items)
    if json:
        emit_json(
            {"record": full, "versions": [_item_json(i, label, show_sensitive) for i in items]}
        )
        return
    for item in items:  # a block per version, not a table: a value is never cut or wrapped
        _print_item(item, ids, typed, label, show_sensitive)


def _print_item(
    item: record_history.HistoryItem,
    ids: dict[str, str],
    record: str,
    label: Callable[[str], str],
    show_sensitive: bool,
) -> None:
    header = item.version.entry.header
    based = ", ".join(ids.get(p, p[:12]) for p in header.parents) or "nothing (new)"
    out.print(
        literal(
            f"version {ids[item.version.id]}  {when(header.hlc.wall_ms)}  by "
            f"{one_line(label(header.author))}  based on {based}",
            "bold",
        )
    )
    lines = [item.version.problem] if item.version.problem else []
    for line in lines or _describe(item, ids, record, show_sensitive):
        out.print(literal(f"  {one_line(line)}"))


def _item_json(
    item: record_history.HistoryItem, label: Callable[[str], str], show_sensitive: bool
) -> dict[str, Any]:
    header = item.version.entry.header
    return {
        "version": item.version.id,
        "author": header.author,
        "author_is": label(header.author),
        "seq": header.seq,
        "time": iso(header.hlc.wall_ms),
        "parents": list(header.parents),
        "merged": list(item.merged),
        "changed": list(item.changed),
        "changes": [_change_json(c, item.taken_from, item, show_sensitive) for c in item.changes],
        "against_other_parents": [
            {
                "parent": other.parent,
                "changes": [
                    _change_json(c, other.taken_from, item, show_sensitive) for c in other.changes
                ],
            }
            for other in item.others
        ],
        "attached": list(item.attached),
        "note": item.version.body.note if item.version.body else None,
        "problem": item.version.problem,
    }


def _change_json(
    change: Change, taken_from: Taken, item: record_history.HistoryItem, show_sensitive: bool
) -> dict[str, Any]:
    hide = change.sensitive and not show_sensitive
    shown: dict[str, Any] = {
        "field": change.path,
        "old": masked_json(change.old) if hide else change.old,
        "new": masked_json(change.new) if hide else change.new,
        "sensitive": change.sensitive,
    }
    if item.merged:
        shown["from"] = taken_from.get(change.key)
    return shown


def _describe(
    item: record_history.HistoryItem, ids: dict[str, str], record: str, show_sensitive: bool
) -> list[str]:
    """The lines of a version's "changes" cell: what kind of version, then one per change."""
    body = item.version.body
    lines = []
    if not item.version.entry.header.parents:
        lines.append(
            f"created with {len(item.changes)} answer(s): 'fieldsync show {record} "
            f"--version {ids[item.version.id]}' shows them"
        )
    else:
        if item.merged:
            lines.append("merged " + " + ".join(ids.get(p, p[:12]) for p in item.merged))
            lines += _against(item.merged[0], item.changes, item.taken_from, ids, show_sensitive)
            for other in item.others:
                lines += _against(
                    other.parent, other.changes, other.taken_from, ids, show_sensitive
                )
        else:
            lines += [_change_line(c, {}, ids, show_sensitive) for c in item.changes]
            if not item.changes:  # entries matched by id may have moved, values unchanged
                moved = ", ".join(item.changed)
                lines.append(
                    f"order of entries changed: {moved}" if moved else "no change to the answers"
                )
    if item.attached:
        lines.append("attached " + ", ".join(one_line(n) for n in item.attached))
    if body and body.note:
        lines.append(f"note: {one_line(body.note)}")
    return lines


def _against(
    parent: str,
    found: tuple[Change, ...],
    taken_from: Taken,
    ids: dict[str, str],
    show_sensitive: bool,
) -> list[str]:
    """A merge's changes against one parent, each with the other parent it took the value
    from: against the side a resolve did not take, the losing value → the winning one."""
    said = f"against {ids.get(parent, parent[:12])}:"
    if not found:
        return [f"{said} the same answers"]
    return [said] + [f"  {_change_line(c, taken_from, ids, show_sensitive)}" for c in found]


def _change_line(
    change: Change, taken_from: Taken, ids: dict[str, str], show_sensitive: bool
) -> str:
    if change.sensitive and not show_sensitive:
        said = one_line(f"{change.path}: {MASKED}")
    else:
        old, new = (value_text(change.field, v) for v in (change.old, change.new))
        said = one_line(f"{change.path}: {old} → {new}")
    source = taken_from.get(change.key)
    return f"{said} (from {ids.get(source, source[:12])})" if source else said
