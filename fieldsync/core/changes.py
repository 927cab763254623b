"""What one version changed in a record's answers, value by value.

A change is named as a person writes the address (``victims.individuals[2].age``, positions
from 1, core/paths.py). Lists of entries that the form gives hidden ids (victims, sources) are
compared entry by entry by id, as merges match them, so removing the first victim reads as one
removal and not as every later victim changing; other lists of entries by position. An entry
or group added or removed is given leaf by leaf, so a sensitive answer inside it (a victim's
name) can be masked on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fieldsync.core.forms import Field, Form
from fieldsync.core.paths import Step, shown

Key = tuple[str, ...]  # an address that survives reordering: entries by id, or "#n" by position


@dataclass(frozen=True)
class Change:
    steps: tuple[Step, ...]  # where, positions 0-based (in the newer list; the older if removed)
    key: Key  # the same place in any version of the record, to compare diffs of a merge
    field: Field | None  # the form's field, None for an answer the form does not describe
    old: Any  # None: there was no answer
    new: Any  # None: the answer was left out

    @property
    def path(self) -> str:
        return shown(self.steps)

    @property
    def sensitive(self) -> bool:
        return self.field is not None and self.field.sensitive


def diff(form: Form, before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """Every answer that differs between ``before`` and ``after``, in form order, then any
    answer the form does not describe (an older form version's, or one added by hand)."""
    return list(_fields(form.fields, before or {}, after or {}, (), ()))


def _fields(
    fields: tuple[Field, ...], before: Any, after: Any, steps: tuple[Step, ...], key: Key
) -> Iterator[Change]:
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    known = set()
    for described in fields:
        known.add(described.name)
        if described.hidden:  # the tool's own ids: never shown, never a change a person made
            continue
        yield from _field(
            described,
            old.get(described.name),
            new.get(described.name),
            (*steps, described.name),
            (*key, described.name),
        )
    for name in sorted((set(old) | set(new)) - known):
        if old.get(name) != new.get(name):
            yield Change((*steps, name), (*key, name), None, old.get(name), new.get(name))


def _field(
    described: Field, old: Any, new: Any, steps: tuple[Step, ...], key: Key
) -> Iterator[Change]:
    if old == new:
        return
    if described.kind == "group" and _dicts(old, new):
        yield from _fields(described.children, old, new, steps, key)
    elif described.kind == "items" and _lists(old, new):
        yield from _entries(described, old or [], new or [], steps, key)
    else:
        yield Change(steps, key, described, old, new)


def _entries(
    described: Field, old: list[Any], new: list[Any], steps: tuple[Step, ...], key: Key
) -> Iterator[Change]:
    for position, tag, before, after in _pairs(described, old, new):
        where, at = (*steps, position), (*key, tag)
        if _dicts(before, after):
            yield from _fields(described.children, before, after, where, at)
        elif before != after:  # an entry that is not a set of answers (hand-made): one value
            yield Change(where, at, None, before, after)


def _pairs(described: Field, old: list[Any], new: list[Any]) -> Iterator[tuple[int, str, Any, Any]]:
    """(position, tag, older entry, newer entry) for each entry of either list: matched by id
    where the form gives entries ids and both have one, else by position."""
    identified = any(c.hidden and c.name == "id" for c in described.children)
    if not identified:
        for n in range(max(len(old), len(new))):
            yield n, f"#{n}", _at(old, n), _at(new, n)
        return
    earlier = {_id(item): (n, item) for n, item in enumerate(old) if _id(item)}
    matched = set()
    for n, item in enumerate(new):
        found = earlier.get(_id(item)) if _id(item) else None
        if found is None and not _id(item):  # no id to match by: its position's entry
            found = (n, _at(old, n)) if n < len(old) and not _id(old[n]) else None
        if found is not None:
            matched.add(found[0])
        yield n, _id(item) or f"#{n}", found[1] if found else None, item
    for n, item in enumerate(old):
        if n not in matched:
            yield n, _id(item) or f"#{n}", item, None


def _id(item: Any) -> str | None:
    found = item.get("id") if isinstance(item, dict) else None
    return found if isinstance(found, str) else None


def _at(items: list[Any], n: int) -> Any:
    return items[n] if n < len(items) else None


def _dicts(*values: Any) -> bool:
    return all(v is None or isinstance(v, dict) for v in values)


def _lists(*values: Any) -> bool:
    return all(v is None or isinstance(v, list) for v in values)
