"""Every record a store holds, read page by page: what reports and exports are made from."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from fieldsync.errors import FieldsyncError
from fieldsync.services import reading
from fieldsync.services.reading import RecordView
from fieldsync.store.index import IndexEntry
from fieldsync.store.store import Store

PAGE = 500  # records decrypted at a time: memory stays flat over 100,000 records


@dataclass(frozen=True)
class Unreadable:
    """A record with a version that cannot be read here: listed, never silently skipped, and
    never shown from an older version as if that were current."""

    record: str
    reason: str


def every_record(
    store: Store, forms: Collection[str] | None = None
) -> Iterator[RecordView | Unreadable]:
    """Each record as ``show`` presents it (the merge of its heads, provisional values for
    fields in conflict), oldest first; ``forms`` keeps those forms' records (by form id), and
    every record whose index row is damaged (its form cannot be known)."""
    index = [row for row in store.index() if forms is None or row.problem or form_of(row) in forms]
    yield from views(store, index)


def form_of(row: IndexEntry) -> str:
    """The form id of an index row ("" for a damaged row)."""
    return row.form.split("@")[0]


def views(store: Store, index: list[IndexEntry]) -> Iterator[RecordView | Unreadable]:
    """``every_record`` for index rows the caller has read already."""
    for start in range(0, len(index), PAGE):
        page = index[start : start + PAGE]
        versions = store.versions_of([row.record for row in page])
        for row in page:
            if row.problem:
                yield Unreadable(row.record, row.problem)
                continue
            try:
                view = reading.view_with_index(row, versions.get(row.record, []))
            except FieldsyncError as exc:
                yield Unreadable(row.record, exc.message)
                continue
            # a damaged version is never counted or exported as if the record were intact
            yield Unreadable(row.record, "; ".join(view.problems)) if view.problems else view
