"""A record's history: every version, with what it changed against its parents (for a merge,
which parent each change was taken from)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fieldsync.core import changes
from fieldsync.core.changes import Change, Key
from fieldsync.core.forms import Form
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from fieldsync.store.version import Version


@dataclass(frozen=True)
class HistoryItem:
    version: Version
    changed: tuple[str, ...]  # dotted field paths that differ from the first parent
    attached: tuple[str, ...]  # names of attachments added in this version
    merged: tuple[str, ...] = ()  # the versions it merged (its parents, when two or more)
    changes: tuple[Change, ...] = ()  # value by value, against the first parent
    # of a merge: the parent each change was taken from (a change no parent has is the merge's
    # own, e.g. a value typed in ``resolve``)
    taken_from: dict[Key, str] = field(default_factory=dict)
    others: tuple[Against, ...] = ()  # of a merge: its changes against each later parent


@dataclass(frozen=True)
class Against:
    """What a merge changed against one of its parents."""

    parent: str
    changes: tuple[Change, ...]
    taken_from: dict[Key, str]  # the other parent each change came from, if any


def history(store: Store, record: str) -> list[HistoryItem]:
    """Every version of a record, oldest first, with what it changed against its first parent
    (for a merge, also which parent each change came from)."""
    versions = store.versions(record)
    by_id = {v.id: v for v in versions}
    return [_history_item(version, by_id) for version in versions]


def _history_item(version: Version, by_id: dict[str, Version]) -> HistoryItem:
    if version.body is None:
        return HistoryItem(version, (), ())
    parents = [by_id[p] for p in version.entry.header.parents if p in by_id]
    base = parents[0].body if parents and parents[0].body is not None else None
    form = get_form(version.body.form)
    before = base.answers if base else {}
    changed = tuple(sorted(_diff_paths(before, version.body.answers)))
    known = {a.id for a in base.attachments} if base else set()
    attached = tuple(a.name for a in version.body.attachments if a.id not in known)
    merged = version.entry.header.parents if len(version.entry.header.parents) > 1 else ()
    found = tuple(changes.diff(form, before, version.body.answers))
    if not merged:
        return HistoryItem(version, changed, attached, merged, found)
    against = _against_parents(form, version.body.answers, parents)
    first = against[0] if against and against[0].parent == parents[0].id else None
    taken = first.taken_from if first else {}
    others = tuple(a for a in against if a is not first)
    return HistoryItem(version, changed, attached, merged, found, taken, others)


def _against_parents(form: Form, answers: dict[str, Any], parents: list[Version]) -> list[Against]:
    """A merge against each (readable) parent, each change with the other parent it was taken
    from: the first one that differs from the merge nowhere at that place. Against the parent
    a resolve did not take from, this is the value that lost and the one that won."""
    diffs = {p.id: tuple(changes.diff(form, p.body.answers, answers)) for p in parents if p.body}
    keys = {parent: {c.key for c in found} for parent, found in diffs.items()}
    return [
        Against(parent, found, _sources(parent, found, keys)) for parent, found in diffs.items()
    ]


def _sources(parent: str, found: tuple[Change, ...], keys: dict[str, set[Key]]) -> dict[Key, str]:
    taken = {}
    for change in found:
        source = next((q for q in keys if q != parent and change.key not in keys[q]), None)
        if source is not None:
            taken[change.key] = source
    return taken


def _diff_paths(before: Any, after: Any, prefix: str = "") -> set[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        paths: set[str] = set()
        for key in set(before) | set(after):
            paths |= _diff_paths(before.get(key), after.get(key), f"{prefix}{key}.")
        return paths
    return {prefix.rstrip(".")} if before != after else set()
