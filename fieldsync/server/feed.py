"""Pull: the versions stored after a cursor, for whoever signed the request (docs/protocol.md).

The administrator and the organisation's members (analysts, viewers) read everything, with the
organisation's wraps and the receipt of the batch each version came in (for chains of custody
in evidence packages). A device reads only the
versions sealed for its own box key: analysts' versions of the records it recorded. Its own
versions it has already; another device's it is never sent, not even as ciphertext.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from fieldsync.core.wire import FeedItem, FeedPage
from fieldsync.errors import AccessDenied, DeviceRevoked
from fieldsync.server import orglog
from fieldsync.server.data import ServerData
from fieldsync.server.gates import MEMBER_ROLES, certified
from fieldsync.server.ingest import ADMIN
from fieldsync.server.tables import AcceptedBatch, DeviceRow, FeedRow, ReaderWrap, StoredEntry

PAGE_ENTRIES = 500
PAGE_BYTES = 4 * 1024 * 1024  # a page holds at least one entry, and stops past this


def feed_page(session: Session, server: ServerData, signer: str, after: int) -> FeedPage:
    admin_key = orglog.admin_key(session, server)
    device = None if signer == admin_key else session.get(DeviceRow, signer)
    if device is not None and device.status == "revoked":
        raise DeviceRevoked()
    # the administrator and the members (analysts, viewers) read everything, as ciphertext
    # with its organisation's wrap: the key bundle the administrator sealed for them opens it
    admin = device is None and signer == admin_key
    if device is not None and device.role in MEMBER_ROLES:
        certified(session, server, signer)
        admin = True
    if admin:
        query = select(FeedRow.pos, StoredEntry.raw, StoredEntry.org_wrap, StoredEntry.batch).join(
            StoredEntry, col(StoredEntry.id) == col(FeedRow.entry)
        )
    else:
        if device is None or device.status == ADMIN:  # a retired admin key's: no box key
            raise AccessDenied("this device is not enrolled with this server")
        query = (
            select(FeedRow.pos, StoredEntry.raw, ReaderWrap.wrapped, StoredEntry.batch)
            .join(StoredEntry, col(StoredEntry.id) == col(FeedRow.entry))
            .join(ReaderWrap, col(ReaderWrap.entry) == col(FeedRow.entry))
            .where(ReaderWrap.reader == device.box_key)
        )
    rows = session.exec(
        query.where(col(FeedRow.pos) > max(after, 0)).order_by(col(FeedRow.pos)).limit(PAGE_ENTRIES)
    )
    entries: list[FeedItem] = []
    batches: set[str] = set()
    size, cursor, full = 0, after, False
    for pos, raw, wrapped, batch in rows:
        if entries and size + len(raw) > PAGE_BYTES:
            full = True
            break
        entries.append(FeedItem(int(pos or 0), raw, wrapped))
        batches.add(batch)
        size += len(raw)
        cursor = int(pos or 0)
    more = full or len(entries) == PAGE_ENTRIES
    if not admin:
        return FeedPage(tuple(entries), cursor, more)
    receipts = session.exec(
        select(AcceptedBatch.receipt).where(col(AcceptedBatch.id).in_(sorted(batches)))
    )
    return FeedPage(tuple(entries), cursor, more, tuple(receipts))
