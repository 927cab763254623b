"""Merging a record's heads field by field against their common ancestor (docs/conflicts.md).

Pure functions over plain JSON values; no keys, no store. The rules:

- a field changed on one side only takes that change; the same change on several sides merges;
- different changes to the same field keep **every** value: the field is in conflict, and the
  provisional value is the one set by the latest head (by clock, then author, then version id),
  so every device shows the same;
- objects merge key by key; lists whose items all carry an ``id`` (victims, sources,
  attachments) merge as sets by id, and each item merges field by field; any other value (text,
  numbers, lists of choices) is one field: narrative text is never merged character by character.

Merging a value that one side removed and another changed is a conflict too: nothing is dropped
without a person deciding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from fieldsync.core.clock import HLC


class _Missing:
    """A field that a version does not have (distinct from ``None``, which JSON can hold)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Granularity(Enum):
    """How finely to merge. ``FIELDS`` is the rule; the coarser ones are for a field-by-field
    result that the form refuses (two valid halves need not make a valid whole)."""

    FIELDS = "fields"  # every leaf field, list items by id
    SECTIONS = "sections"  # each top-level answer (``perpetrator``, ``victims``) as one field
    STRICT = "strict"  # each top-level answer on which any two heads differ is in conflict


@dataclass(frozen=True)
class Head:
    """One head of a record's version graph, as the merge sees it."""

    version: str
    author: str
    hlc: HLC
    answers: dict[str, Any]
    attachments: tuple[dict[str, Any], ...] = ()

    @property
    def order(self) -> tuple[HLC, str, str]:
        return (self.hlc, self.author, self.version)


@dataclass(frozen=True)
class Competing:
    """One of the values a field in conflict holds, and the heads that set it."""

    value: Any  # MISSING: these heads removed the field
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Conflict:
    path: str  # dotted, list items as ``[id]``: ``perpetrator.parties``, ``sources[0193..]``
    values: tuple[Competing, ...]  # oldest setter first; the last is the provisional value
    parts: tuple[str, ...] = ()  # the path as keys and ``[id]`` items, for ``put``


@dataclass(frozen=True)
class Merged:
    answers: dict[str, Any]
    attachments: tuple[dict[str, Any], ...]
    conflicts: tuple[Conflict, ...]

    @property
    def clean(self) -> bool:
        return not self.conflicts


def merge(
    base_answers: dict[str, Any] | None,
    base_attachments: Sequence[dict[str, Any]],
    heads: Sequence[Head],
    granularity: Granularity = Granularity.FIELDS,
) -> Merged:
    """The merge of ``heads`` against their common ancestor (``None``: they share none)."""
    ordered = sorted(heads, key=lambda h: h.order)
    merger = _Merger(ordered, granularity)
    base: Any = base_answers if base_answers is not None else {}
    answers = merger.value(base, [h.answers for h in ordered], (), depth=0)
    attached = merger.value(
        list(base_attachments), [list(h.attachments) for h in ordered], ("attachments",), 1
    )
    return Merged(
        answers=answers if isinstance(answers, dict) else {},
        attachments=tuple(attached) if isinstance(attached, list) else (),
        conflicts=tuple(merger.conflicts),
    )


def common_ancestor(parents: dict[str, tuple[str, ...]], heads: Sequence[str]) -> str | None:
    """A nearest version every head descends from (or is); the same one on every device.

    ``parents`` maps each version id to its parents. Among several nearest common ancestors
    (criss-cross merges), the greatest id is taken: any fixed choice converges, because every
    party holding the same graph makes the same one.
    """
    if not heads:
        return None
    common = set.intersection(*(_ancestry(parents, h) for h in heads))
    if not common:
        return None
    below = set().union(*(_ancestry(parents, c) - {c} for c in common))
    return max(common - below)


def _ancestry(parents: dict[str, tuple[str, ...]], start: str) -> set[str]:
    """``start`` and every version it descends from."""
    seen, stack = {start}, [start]
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


class _Merger:
    def __init__(self, heads: list[Head], granularity: Granularity) -> None:
        self.heads = heads
        self.granularity = granularity
        self.conflicts: list[Conflict] = []

    def value(self, base: Any, values: list[Any], path: tuple[str, ...], depth: int) -> Any:
        if all(v == values[0] for v in values):
            return values[0]
        if self.granularity is Granularity.STRICT and depth >= 1:
            return self._conflict(path, list(range(len(values))), values)
        changed = [i for i, v in enumerate(values) if v != base]
        if all(values[i] == values[changed[0]] for i in changed):
            return values[changed[0]]  # one side changed it, or several made the same change
        # Removing a whole object or item while another side changes it is a conflict of the
        # whole: recursing would keep the changed leaves of something that is gone.
        coarse = self.granularity is Granularity.SECTIONS and depth >= 1
        if not coarse and MISSING not in values:
            if all(_is_object(v) for v in [base, *values]):
                return self._object(base, values, path, depth)
            if all(_is_item_list(v) for v in [base, *values]):
                return self._items(base, values, path, depth)
        return self._conflict(path, changed, values)

    def _object(self, base: Any, values: list[Any], path: tuple[str, ...], depth: int) -> Any:
        bases = base if isinstance(base, dict) else {}
        dicts = [v if isinstance(v, dict) else {} for v in values]
        keys = sorted(set(bases).union(*dicts))
        result = {}
        for key in keys:
            merged = self.value(
                bases.get(key, MISSING),
                [d.get(key, MISSING) for d in dicts],
                (*path, key),
                depth + 1,
            )
            if merged is not MISSING:
                result[key] = merged
        return result

    def _items(self, base: Any, values: list[Any], path: tuple[str, ...], depth: int) -> Any:
        bases = {item["id"]: item for item in (base if isinstance(base, list) else [])}
        lists = [v if isinstance(v, list) else [] for v in values]
        by_id = [{item["id"]: item for item in items} for items in lists]
        # base order first, then what each head added, in head order: the same on every device
        order = list(bases)
        for items in lists:
            order += [item["id"] for item in items if item["id"] not in order]
        result = []
        for item_id in dict.fromkeys(order):
            merged = self.value(
                bases.get(item_id, MISSING),
                [found.get(item_id, MISSING) for found in by_id],
                (*path, f"[{item_id}]"),
                depth + 1,
            )
            if merged is not MISSING:
                result.append(merged)
        return result

    def _conflict(self, path: tuple[str, ...], setters: list[int], values: list[Any]) -> Any:
        grouped: dict[str, Competing] = {}
        for i in setters:  # heads are in order, so the last group holds the latest setter
            key = repr(_sort_key(values[i]))
            found = grouped.pop(key, None)
            versions = (found.versions if found else ()) + (self.heads[i].version,)
            grouped[key] = Competing(values[i], versions)
        self.conflicts.append(Conflict(dotted(path), tuple(grouped.values()), path))
        return values[setters[-1]]


def put(root: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    """Set the value at a conflict's path (``MISSING`` removes it), creating objects on the way;
    ``[id]`` parts address list items by id."""
    holder: Any = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.startswith("["):
            item_id = part[1:-1]
            if not isinstance(holder, list):
                raise ValueError(f"{dotted(parts[:i])} is not a list of items")
            at = next((n for n, item in enumerate(holder) if item.get("id") == item_id), None)
            if last:
                if value is MISSING:
                    if at is not None:
                        del holder[at]
                elif at is None:
                    holder.append(value)
                else:
                    holder[at] = value
                return
            if at is None:
                holder.append({"id": item_id})
                at = len(holder) - 1
            holder = holder[at]
        else:
            if not isinstance(holder, dict):
                raise ValueError(f"{dotted(parts[:i])} is not an object")
            if last:
                if value is MISSING:
                    holder.pop(part, None)
                else:
                    holder[part] = value
                return
            following = parts[i + 1]
            holder = holder.setdefault(part, [] if following.startswith("[") else {})


def dotted(path: tuple[str, ...]) -> str:
    text = ""
    for part in path:
        text += part if part.startswith("[") or not text else f".{part}"
    return text


def _is_object(value: Any) -> bool:
    return value is MISSING or isinstance(value, dict)


def _is_item_list(value: Any) -> bool:
    return value is MISSING or (
        isinstance(value, list)
        and all(isinstance(item, dict) and isinstance(item.get("id"), str) for item in value)
        and len({item["id"] for item in value}) == len(value)
    )


def _sort_key(value: Any) -> Any:
    """A stable identity for a JSON value (dict order does not matter)."""
    if value is MISSING:
        return ("missing",)
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, _sort_key(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("list", tuple(_sort_key(v) for v in value))
    return (type(value).__name__, value)
