"""Recording and reading back: new records, new versions, attachments, history."""

from __future__ import annotations

import contextlib
import copy
import mimetypes
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from fieldsync.core import changes, encoding, merge, paths
from fieldsync.core.body import MAX_NAME, Attachment, Body
from fieldsync.core.changes import Change, Key
from fieldsync.core.forms import Field, Form, get_path
from fieldsync.core.ids import is_record_id, new_record_id, unique_prefixes
from fieldsync.core.merge import Conflict, Granularity
from fieldsync.errors import (
    AnswersInvalid,
    AttachmentError,
    AttachmentNotFound,
    FieldsyncError,
    InputError,
    NotFound,
    OutputPathError,
    RecordNotFound,
    StoreCorrupted,
    StoreStateError,
)
from fieldsync.services.forms import get_form
from fieldsync.store import blobs
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


def create(
    store: Store,
    form: Form,
    answers: dict[str, Any],
    *,
    note: str | None = None,
    draft_id: str | None = None,
) -> str:
    """Validate and save a new record (dropping its draft in the same transaction): a
    person's entry, so the entry checks (core/rules.py) apply too."""
    answers = copy.deepcopy(answers)  # the caller's stay as given
    link_records(store, form, answers)
    form.validate(answers, entering=True)
    form.identify_items(answers, None, lambda: new_record_id(store.now_ms()))
    record = new_record_id(store.now_ms())
    with store.writer() as writer:
        writer.append(record, [], Body(form.ref, answers, (), note), form.summary(answers))
        if draft_id is not None:
            writer.delete_draft(draft_id)
    return record


def edit(
    store: Store,
    record: str,
    *,
    answers: dict[str, Any] | None = None,
    sets: list[str] | None = None,
    note: str | None = None,
    draft_id: str | None = None,
) -> str:
    """A new version: whole new answers, or ``FIELD=VALUE`` changes; returns the version id
    (dropping the edit's draft, if any, in the same transaction)."""
    view = read(store, record)
    # answers from a file have their record ids completed here, a --set as it is applied
    if answers is not None:
        new_answers = copy.deepcopy(answers)
        link_records(store, view.form, new_answers)
    else:
        new_answers = copy.deepcopy(view.body.answers)
    for assignment in sets or []:
        apply_set(view.form, new_answers, assignment, link=linker(store))
    if new_answers == view.body.answers and note is None:
        raise InputError("nothing changed, so no new version was saved")
    if not view.in_conflict:  # else save_version refuses it, saying how to settle it first
        # the entry checks, on what this edit changes: a value an older version let through
        # and this edit leaves alone does not stop it
        view.form.validate(new_answers, entering=True, before=view.body.answers)
    return save_version(store, view, new_answers, view.body.attachments, note, draft_id)


def save_version(
    store: Store,
    view: RecordView,
    answers: dict[str, Any],
    attachments: tuple[Attachment, ...],
    note: str | None,
    draft_id: str | None = None,
) -> str:
    if view.index.problem:  # its heads are unknown: a new version could not name its parents
        raise StoreCorrupted(
            f"the index of record {view.record} is damaged; nothing was saved",
            hint="Run 'fieldsync check --repair' to rebuild it from the signed versions, "
            "then try again.",
        )
    if view.in_conflict:  # building on provisional values would settle the conflict unseen
        fields = ", ".join(c.path for c in view.conflicts)
        raise StoreStateError(
            f"record {view.record} is in conflict ({fields}); nothing was saved",
            hint="See the competing values with 'fieldsync conflicts', settle them with "
            "'fieldsync resolve', then edit.",
        )
    view.form.validate(answers)
    answers = copy.deepcopy(answers)
    view.form.identify_items(answers, view.body.answers, lambda: new_record_id(store.now_ms()))
    body = Body(view.form.ref, answers, attachments, note)
    return _save(store, view, body, draft_id)


def _save(store: Store, view: RecordView, body: Body, draft_id: str | None = None) -> str:
    with store.writer() as writer:
        entry = writer.append(
            view.record,
            list(view.heads),
            body,
            view.form.summary(body.answers),
            readers=readers_for(store, view),
        )
        if draft_id is not None:
            writer.delete_draft(draft_id)
    return entry.id


def readers_for(store: Store, view: RecordView) -> list[bytes]:
    """Whose keys a new version of this record is sealed for. A device: itself and the
    organisation. An analyst: the organisation and the device that recorded the record, so the
    documenter sees the analyst's version on the next pull."""
    readers = store.readers()
    if not store.identity.is_admin:
        return readers
    roots = [v for v in view.versions if not v.entry.header.parents and v.entry.raw]
    recorder = roots[0].entry.header.author if roots else store.identity.device_id
    if recorder == store.identity.device_id:
        return readers
    known = (store.setting("registry") or {}).get("devices", {})
    if recorder not in known:
        raise StoreStateError(
            f"this store does not know the device that recorded {view.record}; nothing was saved",
            hint="Run 'fieldsync admin pull' first: it fetches and checks the device registry.",
        )
    return [*readers, bytes.fromhex(known[recorder]["box_key"])]


def apply_set(
    form: Form, answers: dict[str, Any], assignment: str, *, link: Link | None = None
) -> str:
    """Apply ``FIELD=VALUE`` (the value typed as text, turned into the field's type, checked on
    its own at once) and return the address as shown. An entry of a list is named by its
    number, ``victims.individuals[2].age=13``; ``victims.individuals[+]={...}`` adds one; an
    empty value leaves the answer (or the entry) out. ``link`` completes record ids (a form's
    ``x-records`` fields) before the check."""
    if "=" not in assignment:
        raise InputError(f"--set needs FIELD=VALUE, not {assignment!r}")
    where, text = assignment.split("=", 1)
    address = paths.locate(form, where)
    changed = copy.deepcopy(answers)  # ``answers`` itself changes only once all is well
    if text == "":
        paths.remove(changed, address.steps)
    else:
        entry = isinstance(address.steps[-1], int)  # a whole entry of a list, given as JSON
        value = _entry(text, address.text) if entry else _parsed(address, text)
        if link is not None and not entry:
            value = link(address.field, value)
        paths.put(changed, address.steps, value)
        checked = address.steps[:-1] if entry else address.steps
        problems = form.check_value(address.field, paths.get(changed, checked), at=checked)
        if problems:
            raise AnswersInvalid(problems, form=form.id)
    answers.clear()
    answers.update(changed)
    return address.text


Link = Callable[[Field, Any], Any]  # a field's typed value, its record ids completed


def linker(store: Store) -> Link:
    return lambda field, value: link_value(store, field, value)


def link_records(store: Store, form: Form, answers: dict[str, Any]) -> None:
    """Complete, in place, each record id given as a unique prefix in a field marked
    ``x-records`` (an interview's linked incidents). The form layer cannot: it has no store."""
    for described in form.walk():
        container = get_path(answers, described.path[:-1]) if described.links_records else None
        if isinstance(container, dict) and described.name in container:
            container[described.name] = link_value(store, described, container[described.name])


def link_value(store: Store, described: Field, value: Any) -> Any:
    """``value`` of ``described`` with its record ids completed; a full id is kept as it is given,
    since it may name a record this device has not seen."""
    if not described.links_records:
        return value
    if isinstance(value, list):
        return [_full_id(store, described, v) for v in value]
    return _full_id(store, described, value)


def _full_id(store: Store, described: Field, value: Any) -> Any:
    if not isinstance(value, str) or is_record_id(value.strip().lower()):
        return value.strip().lower() if isinstance(value, str) else value
    if len(value.strip()) < 8:  # as `list` prints them: shorter may name another record here
        raise InputError(
            f"{described.label}: {value.strip()!r} is too short to name a record (8 characters "
            "or more, as 'fieldsync list' prints them)"
        )
    try:
        return store.resolve_record(value)
    except RecordNotFound as exc:
        raise InputError(
            f"{described.label}: {exc.message}",
            hint="Give a full record id, or a unique prefix of one in this store "
            "('fieldsync list' shows them).",
        ) from None


def _parsed(address: paths.Address, text: str) -> Any:
    try:
        return address.field.parse(text)
    except InputError as exc:
        if "[" not in address.text:
            raise
        raise InputError(f"{address.text}: {exc.message}") from None


def _entry(text: str, where: str) -> Any:
    try:
        entry = encoding.parse_input(text)
    except ValueError as exc:
        raise InputError(f"{where} takes a whole entry written as JSON here ({exc})") from None
    if isinstance(entry, dict) and "id" in entry:  # merges match entries by it: one each
        raise InputError(
            f'{where}: an entry\'s id is given by fieldsync, not typed; leave "id" out'
        )
    return entry


def attach(store: Store, record: str, paths: list[Path], *, note: str | None = None) -> str:
    """Encrypt files into the store and reference them from a new version."""
    view = read(store, record)
    checked = [_check_attachable(path) for path in paths]
    added = []
    for path in checked:
        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise AttachmentError(f"cannot read {path.name!r}: {exc.strerror}") from exc
        with handle:
            # A write that fails (a full disk) is the store's, raised as it is; only a read
            # that fails is the file's.
            sealed = blobs.put_blob(store, cast(BinaryIO, _Source(handle, path.name)))
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        added.append(
            Attachment(
                id=new_record_id(store.now_ms()),
                blob=sealed.blob_id,
                key=sealed.key.hex(),
                name=path.name[:MAX_NAME],
                media_type=media_type,
                size=sealed.size,
                sha256=sealed.sha256,
            )
        )
    return save_version(store, view, view.body.answers, view.body.attachments + tuple(added), note)


class _Source:
    """The file being attached, read for encryption."""

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self._handle, self._name = handle, name

    def read(self, size: int = -1) -> bytes:
        try:
            return self._handle.read(size)
        except OSError as exc:
            raise AttachmentError(f"cannot read {self._name!r}: {exc.strerror}") from exc


def _check_attachable(path: Path) -> Path:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AttachmentError(f"there is no file {str(path)!r}") from None
    except OSError as exc:
        raise AttachmentError(f"cannot open {str(path)!r}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise AttachmentError(f"{str(path)!r} is a folder; attach the files inside it instead")
    if not stat.S_ISREG(info.st_mode):
        raise AttachmentError(f"{str(path)!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise AttachmentError(f"{str(path)!r} cannot be read (permission denied)")
    if not path.name or len(path.name.encode("utf-8", "surrogateescape")) > 4 * MAX_NAME:
        raise AttachmentError("the file name is empty or too long")
    return path


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


SETTLE_PER_TRANSACTION = 500


@dataclass
class Settled:
    merged: list[str]  # records merged into a new signed version
    conflicts: list[str]  # records left in conflict for a person


def settle(store: Store, branched: list[str], touched: set[str] | None = None) -> Settled:
    """After a pull: sign the merge of each record's heads when it is clean, and mark the
    record in conflict when it is not.

    ``touched``: the records the pull brought versions of (None: treat all as touched). A record
    already marked in conflict that nothing touched is left as marked, unread: only a new
    version can change it. Heads that already agree need no merge (the other side may have
    signed the same one): that is what keeps two parties who merge the same heads from merging
    each other's merges.
    """
    done = Settled([], [])
    for start in range(0, len(branched), SETTLE_PER_TRANSACTION):
        planned: list[tuple[RecordView, list[bytes]]] = []
        indexes = store.index_entries(branched[start : start + SETTLE_PER_TRANSACTION])
        fresh = {r for r, index in indexes.items() if touched is None or r in touched}
        done.conflicts += [r for r, index in indexes.items() if index.conflict and r not in fresh]
        unsettled = [r for r, index in indexes.items() if r in fresh or not index.conflict]
        for record, versions in store.versions_of(unsettled).items():
            view = _view(indexes[record], versions)
            head_ids = set(view.heads)
            heads = [v.body for v in view.versions if v.id in head_ids and v.body]
            if len(heads) < 2:
                continue
            if view.in_conflict or all(_same(body, view.body) for body in heads):
                if record in fresh or indexes[record].conflict != view.in_conflict:
                    summary = view.form.summary(view.body.answers)
                    store.replace_index(
                        record, versions, view.body, summary, conflict=view.in_conflict
                    )
                if view.in_conflict:
                    done.conflicts.append(record)
                continue
            planned.append((view, readers_for(store, view)))
        with store.writer() as writer:  # one transaction for many merges, not one each
            for view, readers in planned:
                summary = view.form.summary(view.body.answers)
                writer.append(view.record, list(view.heads), view.body, summary, readers=readers)
                done.merged.append(view.record)
    return done


def conflicted(store: Store) -> list[RecordView]:
    """Every record in conflict, as ``read`` shows it."""
    flagged = [row for row in store.index() if row.conflict]
    versions = store.versions_of([row.record for row in flagged])
    return [_view(row, versions[row.record]) for row in flagged if row.record in versions]


def setter(view: RecordView, version: str) -> Version:
    return next(v for v in view.versions if v.id == version)


def author_labels(store: Store) -> Callable[[str], str]:
    """How to name a version's author to a person: this store, the analysts (the admin key), or
    a device by the name its invite gave it where this store knows it."""
    me = store.identity.device_id
    joined = store.setting("enrolment") or {}
    admin_key = me if store.identity.is_admin else joined.get("admin_key")
    names = {
        key: str(found.get("name", ""))
        for key, found in ((store.setting("registry") or {}).get("devices", {})).items()
    }

    def label(author: str) -> str:
        if author == admin_key:
            return "analyst (this store)" if author == me else "analyst"
        if author == me:
            return "this device"
        return f"device {names[author]}" if author in names else f"device {author[:12]}"

    return label


def _same(one: Body, other: Body) -> bool:
    def key(body: Body) -> Any:
        return (body.form, body.answers, sorted(a.id for a in body.attachments))

    return bool(key(one) == key(other))


def resolve(store: Store, record: str, choices: list[tuple[str, int | None, str | None]]) -> str:
    """Settle a record's conflict: for each field in conflict, take competing value N (from
    1, as ``conflicts`` numbers them) or give a value. Every field in conflict must be settled
    in one resolution, because the version it makes has every head as a parent."""
    view = read(store, record)
    if not view.in_conflict:
        raise InputError(f"record {record} is not in conflict; nothing to resolve")
    by_path = {c.path: c for c in view.conflicts}
    chosen = {}
    typed: set[str] = set()
    for path, take, value in choices:
        found = by_path.get(path)
        if found is None:
            raise InputError(
                f"{path!r} is not in conflict in record {record}; the fields in conflict "
                f"are: {', '.join(by_path)}"
            )
        if take is not None:
            if not 1 <= take <= len(found.values):
                raise InputError(
                    f"{path} has {len(found.values)} competing values; there is no number {take}"
                )
            chosen[path] = found.values[take - 1].value
        else:
            assert value is not None
            if "[" in path:
                raise InputError(f"give {path} a value with --take: it is a whole list item")
            chosen[path] = view.form.field(path).parse(value) if value != "" else merge.MISSING
            typed.add(path)
    left = [path for path in by_path if path not in chosen]
    if left:
        raise InputError(
            f"record {record} is also in conflict on {', '.join(left)}; settle every field "
            "in one resolve (repeat --field with --take or --value)",
        )
    answers = copy.deepcopy(view.body.answers)
    taken = copy.deepcopy(view.body.answers)  # with the values taken, not those typed
    attachments = [a.to_json() for a in view.body.attachments]
    for path, picked in chosen.items():
        parts = by_path[path].parts
        if parts[0] == "attachments":
            holder: dict[str, Any] = {"attachments": attachments}
            merge.put(holder, parts, picked)
            attachments = holder["attachments"]
        else:
            merge.put(answers, parts, picked)
            if path not in typed:
                merge.put(taken, parts, picked)
    # a value typed here is a person's entry: held to the entry checks, as an edit is; the
    # competing values taken were entered on their devices, and are held to the form only
    view.form.validate(answers, entering=bool(typed), before=taken)
    body = Body(view.form.ref, answers, tuple(Attachment.from_json(a) for a in attachments))
    return _save(store, view, body)


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


def _diff_paths(before: Any, after: Any, prefix: str = "") -> set[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        paths: set[str] = set()
        for key in set(before) | set(after):
            paths |= _diff_paths(before.get(key), after.get(key), f"{prefix}{key}.")
        return paths
    return {prefix.rstrip(".")} if before != after else set()


def attachment_chunks(store: Store, record: str, number: int) -> tuple[Attachment, Iterator[bytes]]:
    """Attachment ``number`` (from 1, as ``show`` numbers them) and its plaintext, chunk by chunk.

    Each chunk is authenticated before it is yielded; a blob cut short raises at its end."""
    attachments = read(store, record).body.attachments
    if not 1 <= number <= len(attachments):
        raise AttachmentNotFound(
            f"record {record} has {len(attachments)} attachment(s); there is no number {number}"
        )
    attachment = attachments[number - 1]
    return attachment, blobs.read_blob(store, attachment.blob, bytes.fromhex(attachment.key))


def save_attachment(store: Store, record: str, number: int, out: Path, *, force: bool) -> Path:
    """Decrypt attachment ``number`` (from 1, as ``show`` numbers them) to ``out``.

    The plaintext goes to a temporary file beside ``out`` and is renamed into place only after
    the whole blob has been authenticated, so a damaged blob never leaves a partial file.
    """
    attachment, chunks = attachment_chunks(store, record, number)
    if out.is_dir():
        out = out / safe_file_name(attachment.name)
    if out.exists() and not force:
        raise OutputPathError(f"{str(out)!r} already exists", hint="Use --force to replace it.")
    if not out.parent.is_dir():
        raise OutputPathError(f"the folder {str(out.parent)!r} does not exist")
    partial = out.with_name(f".{out.name}.fieldsync-partial")
    try:
        with open(partial, "wb") as handle:
            os.chmod(partial, 0o600)
            for chunk in chunks:
                handle.write(chunk)
        os.replace(partial, out)
    except FieldsyncError:
        _discard(partial)
        raise
    except OSError as exc:
        _discard(partial)
        raise OutputPathError(f"cannot write {str(out)!r}: {exc.strerror}") from exc
    return out


def _discard(partial: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()


def safe_file_name(name: str) -> str:
    """A file name that stays inside the folder it is written to, whatever the record says."""
    base = name.replace("\\", "/").split("/")[-1]
    cleaned = "".join(c if c.isprintable() and c not in '<>:"|?*' else "_" for c in base)
    cleaned = cleaned.strip().lstrip(".")
    return cleaned[:MAX_NAME] or "attachment"
