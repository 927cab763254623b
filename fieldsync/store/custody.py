"""What an administrator's store keeps for chains of custody: the server's receipts, and the
signed entries and content keys an evidence package is made of."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import col, func, select

from fieldsync.errors import StoreCorrupted
from fieldsync.store.db import EntryRow, LocalWrapRow, ReceiptRow, db_errors
from fieldsync.store.store import Store


@dataclass(frozen=True)
class KeptReceipt:
    batch: str
    author: str
    last_seq: int
    raw: bytes
    verified_ms: int


@db_errors
def keep_receipts(store: Store, receipts: list[KeptReceipt]) -> int:
    """Keep receipts the caller has verified; returns how many were new."""
    added = 0
    with store.session() as session, session.begin():
        for found in receipts:
            if session.get(ReceiptRow, found.batch) is None:
                session.add(ReceiptRow(**found.__dict__))
                added += 1
    return added


@db_errors
def receipts_of(store: Store, author: str) -> list[KeptReceipt]:
    """An author's receipts, oldest (lowest seq) first."""
    with store.session() as session:
        rows = session.exec(
            select(ReceiptRow).where(ReceiptRow.author == author).order_by(col(ReceiptRow.last_seq))
        ).all()
    return [KeptReceipt(r.batch, r.author, r.last_seq, r.raw, r.verified_ms) for r in rows]


@db_errors
def receipted_through(store: Store) -> dict[str, int]:
    """Each author's highest seq that a kept receipt acknowledges."""
    with store.session() as session:
        rows = session.exec(
            select(ReceiptRow.author, func.max(ReceiptRow.last_seq)).group_by(ReceiptRow.author)
        ).all()
    return {author: int(seq) for author, seq in rows}


@db_errors
def seqs_missing(store: Store, through: dict[str, int]) -> dict[str, list[tuple[int, int]]]:
    """For each author, the spans of seqs (first, last) from 1 to ``through[author]`` (or to its
    highest version held, if that is higher) at which this store holds no version of it.
    Spans, not seqs: ``through`` may be a claim of the server's, however large."""
    missing: dict[str, list[tuple[int, int]]] = {}
    with store.session() as session:
        for author, wanted in through.items():
            count, highest = session.exec(
                select(func.count(), func.max(EntryRow.seq)).where(EntryRow.author == author)
            ).one()
            last = max(wanted, highest or 0)
            if count == last:
                continue
            held = session.exec(
                select(EntryRow.seq).where(EntryRow.author == author).order_by(col(EntryRow.seq))
            )
            gaps, expected = [], 1
            for seq in held:
                if seq > expected:
                    gaps.append((expected, seq - 1))
                expected = seq + 1
            if expected <= last:
                gaps.append((expected, last))
            missing[author] = gaps
    return missing


@db_errors
def signed_entries(
    store: Store, author: str, first_seq: int, last_seq: int, kept: Mapping[int, bytes] = {}
) -> list[bytes]:
    """The exact bytes of an author's entries ``first_seq..last_seq``, in seq order: the links
    of the hash chain from a version to the head a receipt names. ``kept`` holds the signed
    bytes of versions kept elsewhere (set aside by a pull), by seq."""
    with store.session() as session:
        rows = session.exec(
            select(EntryRow.seq, EntryRow.raw)
            .where(EntryRow.author == author)
            .where(col(EntryRow.seq) >= first_seq, col(EntryRow.seq) <= last_seq)
            .order_by(col(EntryRow.seq))
        ).all()
    found = {seq: raw for seq, raw in kept.items() if first_seq <= seq <= last_seq}
    found.update(dict(rows))
    if sorted(found) != list(range(first_seq, last_seq + 1)):
        raise StoreCorrupted(
            f"this store lacks entries {first_seq}..{last_seq} of author {author[:12]}",
            hint="Run 'fieldsync admin pull' to fetch everything the server holds.",
        )
    return [found[seq] for seq in sorted(found)]


@db_errors
def content_key(store: Store, entry_id: str) -> bytes:
    """The content key of one version, from this store's own copy of it."""
    with store.session() as session:
        wrapped = session.get(LocalWrapRow, entry_id)
    if wrapped is None:
        raise StoreCorrupted(f"this store holds no key for version {entry_id[:12]}")
    return store.open_own_wrap(wrapped)
