"""Pull: the versions stored after a cursor, for whoever signed the request (docs/protocol.md).

The administrator reads everything, with the organisation's wraps. A device reads only the
versions sealed for its own box key: analysts' versions of the records it recorded. Its own
versions it has already; another device's it is never sent, not even as ciphertext.
"""

from __future__ import annotations

import base64

from sqlmodel import Session, col, select

from fieldsync.errors import AccessDenied
from fieldsync.server.data import ServerData
from fieldsync.server.tables import DeviceRow, FeedRow, ReaderWrap, StoredEntry

PAGE_ENTRIES = 500
PAGE_BYTES = 4 * 1024 * 1024  # a page holds at least one entry, and stops past this


def feed_page(session: Session, server: ServerData, signer: str, after: int) -> dict[str, object]:
    if signer == server.org.admin_key:
        query = select(FeedRow.pos, StoredEntry.raw, StoredEntry.org_wrap).join(
            StoredEntry, col(StoredEntry.id) == col(FeedRow.entry)
        )
    else:
        device = session.get(DeviceRow, signer)
        if device is None or not device.box_key:
            raise AccessDenied("this device is not enrolled with this server, or revoked")
        query = (
            select(FeedRow.pos, StoredEntry.raw, ReaderWrap.wrapped)
            .join(StoredEntry, col(StoredEntry.id) == col(FeedRow.entry))
            .join(ReaderWrap, col(ReaderWrap.entry) == col(FeedRow.entry))
            .where(ReaderWrap.reader == device.box_key)
        )
    rows = session.exec(
        query.where(col(FeedRow.pos) > max(after, 0)).order_by(col(FeedRow.pos)).limit(PAGE_ENTRIES)
    )
    entries: list[dict[str, object]] = []
    size, cursor, full = 0, after, False
    for pos, raw, wrapped in rows:
        if entries and size + len(raw) > PAGE_BYTES:
            full = True
            break
        entries.append({"pos": pos, "entry": _b64(raw), "wrap": _b64(wrapped)})
        size += len(raw)
        cursor = int(pos or 0)
    more = full or len(entries) == PAGE_ENTRIES
    return {"entries": entries, "next": cursor, "more": more}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
