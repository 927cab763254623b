"""Accepting a batch in docs/protocol.md's verification order, failing closed, all or nothing.

    1. size            the body was read against MAX_BATCH_BYTES before this point
    2. signatures      the batch's, and every entry's, with the chain inside the batch,
                       against the key the manifest names (its author's)
    3. device          the author is enrolled and not revoked (a revoked device's batch is
                       quarantined: it has proved it is the device's)
    4. idempotency     the same batch again gets the same receipt, and no new rows
    5. chain           first_seq = last accepted + 1 and prev = the stored head; earlier seqs
                       must be the very same entries (a replayed overlap), a different entry at
                       a stored seq is a fork (quarantined, the device flagged, nothing
                       overwritten), a later first_seq is a gap (refused, so the device resends
                       in order)
    6. parents         every parent is stored already, or earlier in this batch, and is a
                       version of the same record
    7. blobs           every blob the manifest names is stored, complete, of the stated size
    8. commit          in one transaction: entries, record heads, the device's head, the receipt

What steps 5 and 6 decide, ``core/admission.py`` decides from what is looked up here (its
vectors are tests/vectors/decisions-v1.json); this module reads, writes and refuses.

Several server processes may share one PostgreSQL. After step 3 the device's row is locked to
the end (and step 3 is checked again under the lock), so requests for one device take turns;
the writes of step 8 take turns with every other batch's, so that feed positions commit in
order (``FEED_LOCK``). Signature checks, the costly part, run side by side.

Nothing is written before step 8 except a quarantined fork or a revoked device's batch, which
are kept precisely so that nothing sent is ever lost, up to the device's quarantine quota
(``Limits``), counted and kept under the device's quarantine lock (``locks``). Signatures come
before the device's status, so that a caller without the key learns nothing of it and can have
nothing kept: every batch that does not verify gets the same answer, whoever it names.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import CursorResult, delete, func, insert, text, true, tuple_, update
from sqlalchemy.exc import IntegrityError as RowConflict
from sqlmodel import Session, col, select

from fieldsync.core import admission, words
from fieldsync.core import batch as batch_format
from fieldsync.core.batch import Batch
from fieldsync.errors import (
    AccessDenied,
    BatchInvalid,
    ChainFork,
    ChainGap,
    DeviceRevoked,
    QuotaExceeded,
)
from fieldsync.server import logs, orglog, receipts
from fieldsync.server.data import ServerData
from fieldsync.server.limits import Limits
from fieldsync.server.locks import QUARANTINE, lock_owner
from fieldsync.server.tables import (
    AcceptedBatch,
    DeviceRow,
    FeedRow,
    Quarantined,
    ReaderWrap,
    RecordHead,
    StoredBlob,
    StoredEntry,
)

log = logging.getLogger("fieldsync.server.ingest")

FEED_LOCK = 0x66656564  # "feed": any number, the same in every server process
HEADS_PER_STATEMENT = 400  # (record, version) pairs in one DELETE, well under SQLite's limits
ACTIVE, ADMIN = "active", "admin"
ANALYST, VIEWER = "analyst", "viewer"  # roles of members (DeviceRow.role); others are devices


def analysts_log(admin_key: str, now_ms: int) -> DeviceRow:
    """The registry row that tracks an admin key's own log (the administrator's versions):
    created with its first batch, vouched for by the organisation's log rather than an invite.
    It names no box key (nothing is sealed to an admin key); each admin key a succession
    brings has a log, and a row, of its own, and box keys are unique."""
    return DeviceRow(
        key=admin_key,
        box_key=f"{ADMIN}:{admin_key}",
        name="administrator",
        enrolled_ms=now_ms,
        status=ADMIN,
        enrolment=b"",
    )


def ingest(session: Session, server: ServerData, raw: bytes, now_ms: int, limits: Limits) -> bytes:
    """Verify and store a batch; returns the signed receipt (the same one for a replay)."""
    # The signatures are checked first, against the author's key, whatever its status; then
    # strangers and revoked devices are turned away before the device's lock is taken, so the
    # lock covers only reads and writes, and the device is looked at again under it.
    batch = batch_format.parse(raw)
    author = batch.manifest.author
    _admitted(session, server, author, raw, now_ms, limits, lock=False)
    device = _admitted(session, server, author, raw, now_ms, limits, lock=True)
    if device.role == VIEWER:
        raise AccessDenied("a viewer reads and signs nothing; the batch was not stored")
    if device.status != ADMIN and device.role != ANALYST and any(batch.readers):
        raise BatchInvalid(
            "only the organisation's administrator and analysts may add readers to a version"
        )
    accepted = session.get(AcceptedBatch, batch.id)
    if accepted is not None:
        return receipts.in_force(session, server, accepted.receipt)
    links = _links(batch)
    fresh = _check_chain(session, device, batch, links, now_ms, limits)
    if not fresh:  # every entry was already stored (a rebuilt batch): answer for the head
        return receipts.sign(session, server, device, batch, now_ms)
    _check_parents(session, links, fresh)
    _check_blobs(session, batch, limits)
    return _commit(session, server, device, batch, fresh, now_ms, limits)


def _admitted(
    session: Session,
    server: ServerData,
    author: str,
    raw: bytes,
    now_ms: int,
    limits: Limits,
    *,
    lock: bool,
) -> DeviceRow:
    """The sender's registry row, if it may send; a revoked device's batch, whose signatures
    have been checked, is quarantined."""
    device = _locked_device(session, author) if lock else session.get(DeviceRow, author)
    admin_key = orglog.admin_key(session, server)
    if device is None and author == admin_key:
        device = analysts_log(author, now_ms)
    if device is None:
        raise AccessDenied("this device is not enrolled with this server")
    if device.status == ADMIN and author != admin_key:  # an admin key succeeded since
        _quarantine(session, raw, author, "sent by a retired admin key", now_ms, limits)
        logs.event(log, "retired admin key's batch quarantined", logging.WARNING, device=author)
        raise AccessDenied(
            "this batch is signed by an admin key the organisation's log retired; it is kept "
            "on the server for review",
            hint="Sign with the admin key in force: the store that made the succession holds it.",
        )
    if device.status not in (ACTIVE, ADMIN):
        _quarantine(session, raw, author, "sent after the device was revoked", now_ms, limits)
        logs.event(log, "revoked device's batch quarantined", logging.WARNING, device=author)
        raise DeviceRevoked(
            "this device has been revoked by the organisation's administrator; the batch it "
            "sent is kept on the server for review"
        )
    return device


def _locked_device(session: Session, key: str) -> DeviceRow | None:
    """The device's row, locked until the transaction ends: two requests for one device take
    turns, and the second sees what the first stored (the same batch gets the same receipt,
    the next batch continues the chain). PostgreSQL locks the row; SQLite, with one writer,
    takes its write lock now rather than at the first write, when the reads would be stale.
    The (author, seq) constraint stops whatever might get past."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))
    return session.get(DeviceRow, key, with_for_update=True, populate_existing=True)


def _check_chain(
    session: Session,
    device: DeviceRow,
    batch: Batch,
    links: list[admission.Link],
    now_ms: int,
    limits: Limits,
) -> list[int]:
    """Positions in the batch of entries the server does not have yet (``core/admission.py``
    decides; this looks up what it decides on and acts on its verdict)."""
    manifest = batch.manifest
    chain = admission.Chain(device.last_seq, device.head)
    verdict: admission.ChainVerdict | None = admission.gap(chain, manifest.first_seq)
    if verdict is None:
        overlap = select(StoredEntry.seq, StoredEntry.id).where(
            StoredEntry.author == manifest.author,
            col(StoredEntry.seq) >= manifest.first_seq,
            col(StoredEntry.seq) <= manifest.last_seq,
        )
        stored: dict[int, str] = dict(session.exec(overlap).all())  # ids only, not the bytes
        verdict = admission.judge(chain, links, stored)
    match verdict:
        case admission.Gap(expected=expected, got=got):
            raise ChainGap(
                f"the server holds this device's entries up to seq {device.last_seq}; this "
                f"batch starts at {got}",
                hint=f"Nothing was stored. Send from seq {expected} first.",
                details={"expected_seq": expected},
            )
        case admission.Fork(seq=seq):
            device.alert = f"fork at seq {seq}"
            session.add(device)  # committed with the quarantined batch, or without it
            reason = f"fork at seq {seq}"
            _quarantine(session, batch.raw, manifest.author, reason, now_ms, limits)
            logs.event(log, "fork quarantined", logging.WARNING, device=device.key, seq=seq)
            raise ChainFork(f"this device already sent a different entry at seq {seq}")
        case admission.Broken():
            raise BatchInvalid("the batch does not continue the chain the server holds")
        case admission.Replay():
            return []
        case admission.Accept(fresh=fresh):
            return list(fresh)


def _links(batch: Batch) -> list[admission.Link]:
    """The batch's entries as far as the chain and their parents go."""
    return [
        admission.Link(e.header.seq, e.header.prev, e.id, e.header.record, e.header.parents)
        for e in batch.entries
    ]


def _check_parents(session: Session, links: list[admission.Link], fresh: list[int]) -> None:
    """Every parent is stored already, or earlier in this batch, and is a version of the same
    record: a version built on another record's would be refused by every reader."""
    wanted = admission.parents_wanted(links, fresh)
    stored: dict[str, str] = {}
    if wanted:
        known = select(StoredEntry.id, StoredEntry.record).where(col(StoredEntry.id).in_(wanted))
        stored = dict(session.exec(known).all())
    match admission.parents(links, fresh, stored):
        case admission.MissingParents(count=count):
            raise BatchInvalid(
                f"the batch names {words.count(count, 'parent version')} the server does not hold"
            )
        case admission.ForeignParent(seq=seq):
            raise BatchInvalid(
                f"the version at seq {seq} builds on another record's version",
                hint="Nothing was stored. A version's parents must be versions of its record.",
            )


def _check_blobs(session: Session, batch: Batch, limits: Limits) -> None:
    for blob_id, size in batch.manifest.blobs:
        stored = session.get(StoredBlob, blob_id)
        if stored is None:
            raise _blob_missing(blob_id, limits)
        if not stored.complete or stored.size != size:
            raise BatchInvalid(
                f"attachment blob {blob_id[:12]} is not fully uploaded",
                hint="Nothing was stored. Upload the attachments first.",
            )


def _blob_missing(blob_id: str, limits: Limits) -> BatchInvalid:
    return BatchInvalid(
        f"attachment blob {blob_id[:12]} is not fully uploaded: the server holds none of it "
        f"(never uploaded, or deleted because no batch named it for {limits.upload_expiry_h:g} h)",
        hint="Nothing was stored. Upload the attachments again, then send the batch: "
        "'fieldsync push' does both.",
    )


def _commit(
    session: Session,
    server: ServerData,
    device: DeviceRow,
    batch: Batch,
    fresh: list[int],
    now_ms: int,
    limits: Limits,
) -> bytes:
    # Plain bulk inserts, not ORM objects: building 500 of them was most of an ingest's time.
    rows: list[dict[str, object]] = []
    readers: list[dict[str, object]] = []
    heads: dict[tuple[str, str], None] = {}  # in order, without repeats
    superseded: set[tuple[str, str]] = set()
    for position in fresh:
        entry, wrap = batch.entries[position], batch.wraps[position]
        header = entry.header
        rows.append(
            {
                "id": entry.id,
                "author": header.author,
                "seq": header.seq,
                "record": header.record,
                "raw": entry.raw,
                "org_wrap": wrap,
                "batch": batch.id,
                "received_ms": now_ms,
            }
        )
        if batch.readers:
            readers += [
                {"entry": entry.id, "reader": reader, "wrapped": sealed}
                for reader, sealed in batch.readers[position]
            ]
        superseded.update((header.record, parent) for parent in header.parents)
        heads[(header.record, entry.id)] = None
    last = batch.entries[-1]
    device.last_seq, device.head = last.header.seq, last.id
    device.entries += len(fresh)
    device.last_seen_ms = now_ms
    signed = receipts.sign(session, server, device, batch, now_ms)
    named = sorted({blob_id for blob_id, _ in batch.manifest.blobs})
    try:
        if session.get_bind().dialect.name == "postgresql":
            # Feed positions must commit in the order they are handed out (tables.FeedRow):
            # the writers of the feed take turns, from here to their commit.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK})
        session.execute(insert(StoredEntry), rows)
        session.execute(insert(FeedRow), [{"entry": row["id"]} for row in rows])
        if readers:
            session.execute(insert(ReaderWrap), readers)
        for start in range(0, len(superseded), HEADS_PER_STATEMENT):
            some = sorted(superseded)[start : start + HEADS_PER_STATEMENT]
            session.execute(
                delete(RecordHead).where(
                    tuple_(col(RecordHead.record), col(RecordHead.version)).in_(some)
                )
            )
        added = [{"record": r, "version": v} for r, v in heads if (r, v) not in superseded]
        session.execute(insert(RecordHead), added)
        if named and _named(session, named) < len(named):  # one expired since step 7
            session.rollback()
            raise _blob_missing(_first_missing(session, named), limits)
        session.add(device)
        session.add(
            AcceptedBatch(
                id=batch.id,
                author=device.key,
                last_seq=device.last_seq,
                receipt=signed,
                received_ms=now_ms,
            )
        )
        session.commit()
    except RowConflict as exc:  # the same seq arrived by another request at the same moment
        session.rollback()
        raise ChainGap(
            "another request stored these entries at the same moment",
            hint="Nothing was lost. Send the batch again.",
        ) from exc
    logs.event(
        log,
        "batch accepted",
        device=device.key,
        batch=batch.id,
        entries=len(fresh),
        last_seq=device.last_seq,
    )
    return signed


def _named(session: Session, blob_ids: list[str]) -> int:
    """Mark the blobs a batch names: no longer their uploader's to answer for, and never to
    be deleted. Returns how many rows were marked; fewer than named means one was deleted
    after step 7 (expiry deletes a row only while it is unnamed, and this update waits for
    it, or it waits for this one and then finds the row named)."""
    complete = col(StoredBlob.complete) == true()
    marked: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(StoredBlob).where(col(StoredBlob.id).in_(blob_ids), complete).values(named=True)
    )
    return int(marked.rowcount)


def _first_missing(session: Session, blob_ids: list[str]) -> str:
    held = set(session.exec(select(StoredBlob.id).where(col(StoredBlob.id).in_(blob_ids))))
    return next((blob_id for blob_id in blob_ids if blob_id not in held), blob_ids[0])


def _quarantine(
    session: Session, raw: bytes, author: str, reason: str, now_ms: int, limits: Limits
) -> None:
    """Keep a batch for review, within the author's quarantine quota (a device that has
    filled it is refused: it keeps the batch queued, and a person looks at what is kept).
    The author's quarantine lock is held from the count to the commit."""
    lock_owner(session, QUARANTINE, author)
    key = batch_format.batch_id(raw)
    if session.get(Quarantined, key) is not None:
        session.commit()
        return
    held = select(func.count(), func.coalesce(func.sum(func.length(Quarantined.raw)), 0))
    count, size = session.exec(held.where(Quarantined.author == author)).one()
    if count >= limits.quarantine_batches or size + len(raw) > limits.quarantine_bytes:
        session.commit()
        logs.event(log, "quarantine quota reached", logging.WARNING, device=author)
        raise QuotaExceeded(
            f"this batch ({reason}) was not kept for review: the server holds {count} of this "
            f"device's batches for review ({size} bytes), its limit is "
            f"{limits.quarantine_batches} batches or {limits.quarantine_bytes} bytes",
            hint="Nothing was lost: the batch stays queued on this device. Tell your "
            "administrator, who reviews what the server keeps and can raise its limits.",
        )
    session.add(Quarantined(id=key, author=author, reason=reason, raw=raw, received_ms=now_ms))
    try:
        session.commit()
    except RowConflict:  # the same batch, kept by another request a moment ago
        session.rollback()
