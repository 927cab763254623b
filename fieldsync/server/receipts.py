"""The server's receipts: signed by the receipt key the organisation's log names in force, and
signed again by it when a batch is answered again under a key retired since."""

from __future__ import annotations

from sqlmodel import Session

from fieldsync.core import receipt
from fieldsync.core.batch import Batch
from fieldsync.server import orglog
from fieldsync.server.data import ServerData
from fieldsync.server.tables import DeviceRow


def sign(
    session: Session, server: ServerData, device: DeviceRow, batch: Batch, now_ms: int
) -> bytes:
    assert device.head is not None
    return receipt.sign(
        orglog.receipt_key(session, server),
        device=device.key,
        last_seq=device.last_seq,
        head=device.head,
        batch=batch.id,
        time_ms=now_ms,
    )


def in_force(session: Session, server: ServerData, kept: bytes) -> bytes:
    """A stored receipt as it was signed, or, signed by a receipt key the log has retired
    since, the same receipt signed again by the key in force: a device checks receipts
    against the key in force only (a retired key, perhaps leaked, convinces nobody)."""
    shown = receipt.parse_unverified(kept)
    key = orglog.receipt_key(session, server)
    if shown.server == key.public.hex():
        return kept
    return receipt.sign(
        key,
        device=shown.device,
        last_seq=shown.last_seq,
        head=shown.head,
        batch=shown.batch,
        time_ms=shown.time_ms,
    )
