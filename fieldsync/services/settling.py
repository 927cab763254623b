"""Settling records with several heads: signing clean merges and marking conflicts (after a
pull), the records in conflict, and a person's resolution of one."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from fieldsync.core import merge
from fieldsync.core.body import Attachment, Body
from fieldsync.core.invite import VIEWER
from fieldsync.core.merge import Competing
from fieldsync.errors import InputError
from fieldsync.services.reading import RecordView, read, view_with_index
from fieldsync.services.records import readers_for, save_body
from fieldsync.store import orgkeys
from fieldsync.store.store import Store
from fieldsync.store.version import Version

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
    signs = orgkeys.role(store) != VIEWER  # a viewer shows the merge it would make, unsigned
    for start in range(0, len(branched), SETTLE_PER_TRANSACTION):
        planned: list[tuple[RecordView, list[bytes]]] = []
        indexes = store.index_entries(branched[start : start + SETTLE_PER_TRANSACTION])
        fresh = {r for r, index in indexes.items() if touched is None or r in touched}
        done.conflicts += [r for r, index in indexes.items() if index.conflict and r not in fresh]
        unsettled = [r for r, index in indexes.items() if r in fresh or not index.conflict]
        for record, versions in store.versions_of(unsettled).items():
            view = view_with_index(indexes[record], versions)
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
            if signs:
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
    return [view_with_index(row, versions[row.record]) for row in flagged if row.record in versions]


def version_that_set(view: RecordView, competing: Competing) -> Version:
    """The latest of the versions that set a competing value: whose the value is, and when."""
    return next(v for v in view.versions if v.id == competing.versions[-1])


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
    return save_body(store, view, body)
