"""What travels to the server and back: this device's outbox, which versions a store holds
already, new readers' wraps, and forgetting the records a server has acknowledged.

Forgetting (``forget_delivered``, ``push --wipe-after``) destroys keys, not ciphertexts: the
kept content keys move to a new epoch key in the transaction that deletes the forgotten
records' wraps and index rows (``Store.new_epoch``), and the old epoch key is overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, func, select

from fieldsync.core import crypto
from fieldsync.core import settings as setting_format
from fieldsync.core.entry import Entry
from fieldsync.core.invite import ANALYST
from fieldsync.core.settings import Forgotten
from fieldsync.errors import StoreCorrupted
from fieldsync.store import blobs, keyvalue, orgkeys
from fieldsync.store.db import EntryRow, LocalWrapRow, RecordRow, WrapRow, db_errors, in_chunks
from fieldsync.store.store import Store


@dataclass(frozen=True)
class Outgoing:
    """One of this device's entries waiting for delivery, with what must travel with it."""

    entry: Entry
    org_wrap: bytes  # its content key, sealed for the organisation
    blobs: tuple[str, ...]  # ids of the attachments its body references
    readers: tuple[tuple[str, bytes], ...] = ()  # further readers' wraps (an analyst's version)


@db_errors
def add_reader(store: Store, reader: bytes, *, own_after: int | None = None) -> int:
    """Wrap the content key of every entry this device can read for ``reader`` as well (with
    ``own_after``: only this device's own entries past that seq, those not yet delivered).

    Entries stay untouched: wraps sit beside them. Returns how many wraps were added.
    """
    theirs = reader.hex()
    added = 0
    store._epoch_keys()  # read before the transaction takes the lock
    with store.session() as session, session.begin():
        held = select(WrapRow.entry_id).where(WrapRow.reader == theirs)
        ids = None
        if own_after is None:
            have = set(session.exec(held))
        else:  # every push and pull: only what is undelivered is looked at
            ids = list(
                session.exec(
                    select(EntryRow.id).where(
                        EntryRow.author == store.identity.device_id, col(EntryRow.seq) > own_after
                    )
                )
            )
            have = set()
            for some in in_chunks(ids):
                have.update(session.exec(held.where(col(WrapRow.entry_id).in_(some))))
        for row in store.own_wraps(session, ids).values():
            if row.entry_id in have:
                continue
            key = store.open_own_wrap(row)
            session.add(
                WrapRow(entry_id=row.entry_id, reader=theirs, wrapped=crypto.wrap_key(reader, key))
            )
            added += 1
    return added


@db_errors
def own_entries_after(store: Store, seq: int) -> int:
    with store.session() as session:
        return int(
            session.exec(
                select(func.count())
                .select_from(EntryRow)
                .where(EntryRow.author == store.identity.device_id, col(EntryRow.seq) > seq)
            ).one()
        )


@db_errors
def own_blobs_after(store: Store, seq: int) -> int:
    """How many attachments first appear in this device's entries after ``seq``: a file an
    earlier (delivered) version of the same record, or another author's, carries too is
    on the server already."""
    me = store.identity.device_id
    with store.session() as session:
        rows = session.exec(
            select(EntryRow.id, EntryRow.record).where(
                EntryRow.author == me, col(EntryRow.seq) > seq
            )
        ).all()
    undelivered = {entry_id for entry_id, _ in rows}
    new: set[str] = set()
    known: set[str] = set()
    for versions in store.versions_of(sorted({record for _, record in rows})).values():
        for version in versions:
            if version.body is not None:
                attached = {a.blob for a in version.body.attachments}
                (new if version.id in undelivered else known).update(attached)
    return len(new - known)


@db_errors
def outbox(store: Store, after_seq: int, org_readers: list[bytes]) -> list[Outgoing]:
    """This device's entries after ``after_seq``, in order, ready to be batched, each with its
    wrap for the first of ``org_readers`` (the organisation's read keys, newest first) it has."""
    me = store.identity.device_id
    with store.session() as session:
        rows = session.exec(
            select(EntryRow)
            .where(EntryRow.author == me, col(EntryRow.seq) > after_seq)
            .order_by(col(EntryRow.seq))
        ).all()
        ids = [r.id for r in rows]
        wraps: dict[str, dict[str, bytes]] = {}
        for some in in_chunks(ids):
            sealed = session.exec(select(WrapRow).where(col(WrapRow.entry_id).in_(some)))
            for w in sealed.all():
                wraps.setdefault(w.entry_id, {})[w.reader] = w.wrapped
        own = store.own_wraps(session, ids)
    outgoing = []
    orgs, mine = [key.hex() for key in org_readers], store.reader.public.hex()
    # a device's batches carry no reader wraps (the server refuses them); an administrator's
    # carry those for the devices that recorded a record, never one for a read key of its own
    not_readers = {*orgs, mine, *(s.pair.public.hex() for s in orgkeys.read_keys(store))}
    adds_readers = orgkeys.role(store) in (orgkeys.ADMIN, ANALYST)
    for row in rows:
        found = wraps.get(row.id, {})
        org_wrap = next((found[org] for org in orgs if org in found), None)
        version = store.open_version(row, own.get(row.id))
        if org_wrap is None or version.body is None:
            raise StoreCorrupted(
                f"version {row.id[:12]} cannot be sent: "
                f"{version.problem or 'it has no key for the organisation'}"
            )
        attached = tuple(dict.fromkeys(a.blob for a in version.body.attachments))
        readers = (
            tuple(sorted((r, w) for r, w in found.items() if r not in not_readers))
            if adds_readers
            else ()
        )
        outgoing.append(Outgoing(version.entry, org_wrap, attached, readers))
    return outgoing


@db_errors
def held(store: Store, ids: list[str]) -> dict[str, tuple[str, str, int]]:
    """For each of ``ids`` this store holds: its (record, author, seq)."""
    found: dict[str, tuple[str, str, int]] = {}
    with store.session() as session:
        for some in in_chunks(ids):
            rows = session.exec(
                select(EntryRow.id, EntryRow.record, EntryRow.author, EntryRow.seq).where(
                    col(EntryRow.id).in_(some)
                )
            ).all()
            found.update({row[0]: (row[1], row[2], row[3]) for row in rows})
    return found


@db_errors
def held_at(store: Store, positions: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these (author, seq) positions this store holds a version at."""
    found: set[tuple[str, int]] = set()
    by_author: dict[str, list[int]] = {}
    for author, seq in positions:
        by_author.setdefault(author, []).append(seq)
    with store.session() as session:
        for author, seqs in by_author.items():
            for some in in_chunks(seqs):
                rows = session.exec(
                    select(EntryRow.seq).where(
                        EntryRow.author == author, col(EntryRow.seq).in_(some)
                    )
                ).all()
                found.update((author, seq) for seq in rows)
    return found


@db_errors
def branched_records(store: Store) -> list[str]:
    """Records whose version graph has more than one head."""
    with store.session() as session:
        rows = session.exec(select(RecordRow.record).where(col(RecordRow.heads).like("%,%"))).all()
    return list(rows)


@db_errors
def forget_delivered(store: Store, up_to_seq: int) -> tuple[int, int]:
    """Destroy this device's keys to every record it has fully delivered.

    A record is forgotten when every version of it this device wrote is covered by a
    verified receipt (``up_to_seq``; versions pulled from the server are there already);
    one with an undelivered version stays. What destroys its keys is a new epoch: every
    copy kept is re-wrapped under a new epoch key in the transaction that deletes the
    forgotten records' wraps and index rows, then the old epoch key is overwritten where it
    lies, so the deleted wraps left in freed pages and old WAL frames open with nothing.
    Attachment files only the forgotten records use go too; the signed ciphertexts stay,
    because the device's hash chain runs through them, and without keys they are noise.
    Returns ``(records, attachments)`` forgotten.
    """
    with store.alone("push --wipe-after"):
        return _forget_delivered(store, up_to_seq)


def _forget_delivered(store: Store, up_to_seq: int) -> tuple[int, int]:
    me = store.identity.device_id
    with store.session() as session:
        rows = session.exec(select(EntryRow)).all()
        mine = store.own_wraps(session)
    by_record: dict[str, list[EntryRow]] = {}
    for row in rows:
        by_record.setdefault(row.record, []).append(row)
    doomed = {
        record
        for record, versions in by_record.items()
        if all(v.author != me or v.seq <= up_to_seq for v in versions)
        and any(v.id in mine for v in versions)
    }
    if not doomed:
        return 0, 0
    blobs_of = {record: _blobs(store, versions, mine) for record, versions in by_record.items()}
    kept_blobs = {b for record, found in blobs_of.items() if record not in doomed for b in found}
    gone_blobs = {b for record in doomed for b in blobs_of[record]} - kept_blobs
    doomed_ids = {v.id for record in doomed for v in by_record[record]}
    kept = {i: store.open_own_wrap(w) for i, w in mine.items() if i not in doomed_ids}
    forgotten = Forgotten(tuple(sorted(store.forgotten_records() | doomed)))
    store.new_epoch(
        kept,
        lambda session: _forget_rows(store, session, doomed, forgotten),
        set(forgotten.records),
    )
    # the setting, as the epoch's transaction wrote it
    store.settings_cache[Forgotten.NAME] = setting_format.encode(forgotten)
    for blob_id in gone_blobs:
        blobs.blob_path(store, blob_id).unlink(missing_ok=True)
    return len(doomed), len(gone_blobs)


def _forget_rows(store: Store, session: Session, doomed: set[str], forgotten: Forgotten) -> None:
    """Delete the forgotten records' remaining wraps (for other readers) and index rows."""
    for some in in_chunks(sorted(doomed)):
        ids = select(EntryRow.id).where(col(EntryRow.record).in_(some))
        for wrap in session.exec(select(WrapRow).where(col(WrapRow.entry_id).in_(ids))):
            session.delete(wrap)
    for record in doomed:
        index_row = session.get(RecordRow, record)
        if index_row is not None:
            session.delete(index_row)
    session.merge(keyvalue.sealed_setting(store, Forgotten.NAME, setting_format.encode(forgotten)))


def _blobs(store: Store, versions: list[EntryRow], wraps: dict[str, LocalWrapRow]) -> set[str]:
    found: set[str] = set()
    for row in versions:
        version = store.open_version(row, wraps.get(row.id))
        if version.body is not None:
            found.update(a.blob for a in version.body.attachments)
    return found
