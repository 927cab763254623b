"""Appending versions: one SQLite transaction per ``Store.writer()``.

The writer is handed what it uses (the session, the keys, the index codec, a function that
wraps a content key for the store itself), not the Store, so that this module and store.py do
not import each other."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from sqlmodel import Session, col, select

from fieldsync.core import clock, crypto
from fieldsync.core.body import Body
from fieldsync.core.clock import HLC
from fieldsync.core.entry import Entry
from fieldsync.core.entry import seal as seal_entry
from fieldsync.errors import AccessDenied, MalformedData, StoreCorrupted
from fieldsync.store.db import DraftRow, EntryRow, LocalWrapRow, MetaRow, RecordRow, WrapRow
from fieldsync.store.identity import Identity
from fieldsync.store.index import IndexCodec, IndexEntry


class Writer:
    """Appends versions inside one transaction of a ``Store``.

    The transaction was begun with BEGIN IMMEDIATE, so it holds the write lock: the device's
    chain head and clock, read once, stay true until it commits.
    """

    def __init__(
        self,
        session: Session,
        *,
        identity: Identity,
        reader_keys: Sequence[crypto.BoxPair],
        readers: list[bytes],
        own_wrap: Callable[[str, bytes], LocalWrapRow],
        index_codec: IndexCodec,
        now_ms: Callable[[], int],
        reads_everything: bool = False,
        refusal: AccessDenied | None = None,
    ) -> None:
        """``reader_keys``: the box keys pulled versions may be sealed for, the likeliest
        first (``Store.reader_keys``: the organisation's read keys, or the device's own);
        ``readers``: whose box keys new versions are sealed for (``Store.readers()``);
        ``own_wrap``: the store's own copy of a content key (``Store.own_wrap``);
        ``reads_everything``: an administrator's or a member's store, which keeps the
        organisation's wrap of what it receives (for evidence packages); ``refusal``: why this
        store signs nothing now (a viewer's; an administrator's whose succession is on its way,
        ``orgkeys.why_not_signing``), raised at the first version."""
        self._reads_everything = reads_everything
        self._refusal = refusal
        self._session = session
        self._identity = identity
        self._reader_keys = reader_keys
        self._readers = readers
        self._own_wrap = own_wrap
        self._codec = index_codec
        self._now_ms = now_ms
        self._head: tuple[int, str | None] | None = None
        self._hlc: HLC | None = None
        self._rows: dict[str, RecordRow] = {}  # index rows touched in this transaction

    def append(
        self,
        record: str,
        parents: list[str],
        body: Body,
        summary: str,
        *,
        readers: list[bytes] | None = None,
    ) -> Entry:
        """Seal, sign and store one version; the device's chain and clock advance with it.

        ``readers``: whose box keys the content key is sealed for (default: the store's)."""
        if self._refusal is not None:
            raise self._refusal
        session, identity = self._session, self._identity
        me = identity.device_id
        if self._head is None:
            last = session.exec(
                select(EntryRow.seq, EntryRow.id)
                .where(EntryRow.author == me)
                .order_by(col(EntryRow.seq).desc())
                .limit(1)
            ).first()
            self._head = (last[0], last[1]) if last else (0, None)
        seq, prev = self._head[0] + 1, self._head[1]
        hlc = clock.tick(self._clock(), self._now_ms())
        entry, content_key = seal_entry(
            identity.signer,
            seq=seq,
            prev=prev,
            record=record,
            parents=parents,
            hlc=hlc,
            body=body.encode(),
        )
        session.add(EntryRow(id=entry.id, author=me, seq=seq, record=record, raw=entry.raw))
        session.add(self._own_wrap(entry.id, content_key))
        own = identity.box.public  # never a sealed box to it at rest: the copy above
        for reader in dict.fromkeys(readers if readers is not None else self._readers):
            if reader == own:
                continue
            session.add(
                WrapRow(
                    entry_id=entry.id,
                    reader=reader.hex(),
                    wrapped=crypto.wrap_key(reader, content_key),
                )
            )
        self._update_index(record, parents, entry, body, summary)
        self._head, self._hlc = (seq, entry.id), hlc
        return entry

    def receive(self, entry: Entry, wrapped: bytes, body: Body, summary: str) -> bool:
        """Store a version another author signed (from a pull), checked by the caller; its key
        sealed for this store's reader key. False if it was here already.

        The key is kept as this store's own copy, under the epoch key, so that a wipe can
        destroy it; a device keeps no sealed box to its own box key. An administrator's store
        keeps the organisation's wrap as well, as it was served."""
        session = self._session
        if session.get(EntryRow, entry.id) is not None:
            return False
        reader, key = crypto.unwrap_any(self._reader_keys, wrapped, what=f"version {entry.id[:12]}")
        header = entry.header
        session.add(
            EntryRow(
                id=entry.id,
                author=header.author,
                seq=header.seq,
                record=header.record,
                raw=entry.raw,
            )
        )
        session.add(self._own_wrap(entry.id, key))
        if self._reads_everything:
            session.add(WrapRow(entry_id=entry.id, reader=reader.public.hex(), wrapped=wrapped))
        self._update_index(header.record, list(header.parents), entry, body, summary)
        # Later local versions must sort after what was seen (display order only).
        self._hlc = clock.observe(self._clock(), header.hlc, self._now_ms())
        return True

    def _clock(self) -> HLC:
        if self._hlc is None:
            row = self._session.get(MetaRow, "hlc")
            self._hlc = _stored_clock(row.value) if row else clock.ZERO
        return self._hlc

    def delete_draft(self, draft_id: str) -> None:
        row = self._session.get(DraftRow, draft_id)
        if row is not None:
            self._session.delete(row)

    def finish(self) -> None:
        """Called once, just before the commit: the device clock moves with the entries."""
        if self._hlc is not None:
            self._session.merge(MetaRow(key="hlc", value=json.dumps(self._hlc.to_json())))

    def _update_index(
        self, record: str, parents: list[str], entry: Entry, body: Body, summary: str
    ) -> None:
        codec = self._codec
        row = self._rows.get(record)
        if row is None and parents:  # a version without parents starts a record
            row = self._session.get(RecordRow, record)
        hlc = entry.header.hlc
        if row is None:
            heads, created, versions, conflict = {entry.id}, hlc, 1, False
        else:
            previous = codec.open(row.record, row.heads, row.index_nonce, row.index_ct)
            if previous.problem:  # building on a damaged cache would spread the damage
                raise StoreCorrupted(
                    f"the index of record {record} is damaged; nothing was saved",
                    hint="Run 'fieldsync check --repair' to rebuild it from the signed "
                    "versions, then try again.",
                )
            heads = (set(previous.heads) - set(parents)) | {entry.id}
            created, versions = min(previous.created, hlc), previous.versions + 1
            hlc = max(previous.updated, hlc)
            conflict = previous.conflict and len(heads) > 1  # settled again after a pull
        row = codec.seal_row(
            IndexEntry(
                record=record,
                heads=tuple(heads),
                form=body.form,
                summary=summary,
                created=created,
                updated=hlc,
                versions=versions,
                attachments=len(body.attachments),
                conflict=conflict,
            ),
            row,
        )
        self._rows[record] = row
        self._session.add(row)


def _stored_clock(value: str) -> HLC:
    try:
        return HLC.from_json(json.loads(value))
    except (ValueError, TypeError, MalformedData) as exc:
        raise StoreCorrupted(
            "the store's clock is damaged; nothing was saved",
            hint="Run 'fieldsync check' and restore the store from a backup.",
        ) from exc
