"""Reading records back as a person sees them: a record's view (the merge of its heads, with
provisional values for fields in conflict), one version whole, the listing, the ids and author
names commands print."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fieldsync.core import merge
from fieldsync.core.body import Attachment, Body
from fieldsync.core.forms import Form
from fieldsync.core.ids import unique_prefixes
from fieldsync.core.merge import Conflict, Granularity
from fieldsync.core.settings import Registry
from fieldsync.errors import InputError, NotFound, StoreCorrupted
from fieldsync.services.forms import get_form
from fieldsync.store import orgkeys, settings
from fieldsync.store.index import IndexEntry
from fieldsync.store.store import Store
from fieldsync.store.version import Version, heads_of


@dataclass(frozen=True)
class RecordView:
    """A record as a person sees it: its current version and what the index knows."""

    record: str
    form: Form
    current: Version
    body: Body
    index: IndexEntry
    heads: tuple[str, ...]
    problems: tuple[str, ...] = ()  # damaged versions, and whether an older one is shown
    conflicts: tuple[Conflict, ...] = ()  # fields the heads changed differently
    versions: tuple[Version, ...] = ()

    @property
    def in_conflict(self) -> bool:
        return bool(self.conflicts)

    @property
    def merged(self) -> bool:
        """Shown is a merge of several heads, not one signed version."""
        return len(self.heads) > 1


def listing(
    store: Store, *, form: str | None = None, search: str | None = None
) -> list[IndexEntry]:
    """The records' index rows, oldest first: only those of form id ``form``, and only those
    whose summary, form or record id contains ``search`` (ignoring case), if given."""
    rows = store.index()
    if form is not None:
        rows = [r for r in rows if r.form.split("@")[0] == form]
    if search:
        needle = search.casefold()
        rows = [
            r
            for r in rows
            if needle in r.summary.casefold() or needle in r.form.casefold() or needle in r.record
        ]
    return rows


def shown_ids(store: Store) -> dict[str, str]:
    """Each record's id as commands print it: its shortest unique prefix over the whole store
    (8 characters or more), so that whatever a listing shows can be typed back as it is."""
    return unique_prefixes(store.record_ids())


def shown_version_ids(versions: Iterable[str]) -> dict[str, str]:
    """A record's version ids as commands print them: each its shortest unique prefix among
    them, 12 characters or more (``show --version`` takes them back)."""
    return unique_prefixes(versions, minimum=12)


def read(store: Store, record: str) -> RecordView:
    """The record as every device shows it: its one head, or the merge of its heads, with the
    provisional value of each field in conflict (the latest head's, the same everywhere)."""
    return _view(store.index_entry(record), store.versions(record))


def view_of_versions(record: str, versions: list[Version]) -> RecordView:
    """``read`` from the versions alone, whatever the index says (to rebuild the index)."""
    return _view(IndexEntry(record, tuple(sorted(heads_of(versions)))), versions)


def view_with_index(index: IndexEntry, versions: list[Version]) -> RecordView:
    """``read`` from an index row and the record's versions, already fetched (in bulk)."""
    return _view(index, versions)


def _view(index: IndexEntry, versions: list[Version]) -> RecordView:
    record = index.record
    heads = [v for v in versions if v.id in set(index.heads)]
    readable = [v for v in heads if v.body is not None] or [
        v for v in versions if v.body is not None
    ]
    if not readable:
        reasons = "; ".join(v.problem or "" for v in versions)
        raise StoreCorrupted(f"no version of record {record} can be read: {reasons}")
    current = readable[-1]  # versions are sorted by (clock, author, id)
    assert current.body is not None
    problems = [v.problem for v in versions if v.problem]
    if current.id not in index.heads:
        problems.append(
            f"no current version of record {record} can be read; shown is the older version "
            f"{current.id[:12]}"
        )
    form = get_form(current.body.form)
    body, conflicts = current.body, tuple[Conflict, ...]()
    if len(readable) > 1 and current.id in index.heads:
        body, conflicts = _merged(form, versions, readable)
    return RecordView(
        record=record,
        form=form,
        current=current,
        body=body,
        index=index,
        heads=index.heads,
        problems=tuple(problems),
        conflicts=conflicts,
        versions=tuple(versions),
    )


def _merged(
    form: Form, versions: list[Version], heads: list[Version]
) -> tuple[Body, tuple[Conflict, ...]]:
    """The field-by-field merge of the heads against their nearest common ancestor.

    A merge that is clean field by field but that the form refuses (two valid halves need not
    make a valid whole: totals and a list of victims) is merged again more coarsely, so the
    parts that belong together compete as one.
    """
    parents = {v.id: v.entry.header.parents for v in versions}
    base_id = merge.common_ancestor(parents, [h.id for h in heads])
    base = next((v.body for v in versions if v.id == base_id), None)
    sides = [
        merge.Head(
            h.id,
            h.entry.header.author,
            h.entry.header.hlc,
            h.body.answers,
            tuple(a.to_json() for a in h.body.attachments),
        )
        for h in heads
        if h.body is not None
    ]
    base_attachments = [a.to_json() for a in base.attachments] if base else []
    for granularity in Granularity:
        result = merge.merge(base.answers if base else None, base_attachments, sides, granularity)
        if result.conflicts or not form.problems(result.answers):
            break
    attachments = tuple(Attachment.from_json(a) for a in result.attachments)
    return Body(form.ref, result.answers, attachments, None), result.conflicts


def author_labels(store: Store) -> Callable[[str], str]:
    """How to name a version's author to a person: this store, the analysts (the admin key), or
    a device by the name its invite gave it where this store knows it."""
    me = store.identity.device_id
    admin_keys = set(orgkeys.admin_keys_trusted(store))
    registry = settings.load(store, Registry) or Registry()
    names = {key: found.name for key, found in registry.devices.items()}
    state = orgkeys.followed(store)
    staff = {m.key: m.name for m in state.members} if state is not None else {}

    def label(author: str) -> str:
        if author in admin_keys:
            return "analyst (this store)" if author == me else "analyst"
        if author in staff:
            return f"analyst {staff[author]}" + (" (this store)" if author == me else "")
        if author == me:
            return "this device"
        return f"device {names[author]}" if author in names else f"device {author[:12]}"

    return label


def read_version(store: Store, record: str, prefix: str) -> RecordView:
    """One version of a record, whole, as it was signed (not merged with anything): named by
    a unique prefix of its id among the record's versions."""
    versions = store.versions(record)
    chosen = version_named(record, [v.id for v in versions], prefix)
    picked = next(v for v in versions if v.id == chosen)
    if picked.body is None:
        raise StoreCorrupted(
            f"version {chosen[:12]} of record {record} cannot be read: {picked.problem}",
            hint="Run 'fieldsync check' for the whole store; restore damaged files from a backup.",
        )
    index = store.index_entry(record)
    return RecordView(
        record=record,
        form=get_form(picked.body.form),
        current=picked,
        body=picked.body,
        index=index,
        heads=index.heads,
        versions=tuple(versions),
    )


MIN_VERSION_PREFIX = 8


def version_named(record: str, ids: list[str], prefix: str) -> str:
    """The one id of ``ids`` (a record's versions) that ``prefix`` begins, or an error that
    says to look the ids up with ``history``."""
    typed = prefix.strip().lower()
    hint = f"'fieldsync history {record}' lists its versions, each by an id you can type."
    if len(typed) < MIN_VERSION_PREFIX:
        raise InputError(
            f"{prefix!r} is too short to name a version (give {MIN_VERSION_PREFIX} or more "
            "characters of its id)",
            hint=hint,
        )
    matches = [i for i in ids if i.startswith(typed)]
    if not matches:
        raise NotFound(f"record {record} has no version {typed}", hint=hint)
    if len(matches) > 1:
        raise InputError(
            f"{typed} names {len(matches)} versions of record {record}; give more "
            "characters of the id",
            hint=hint,
        )
    return matches[0]
