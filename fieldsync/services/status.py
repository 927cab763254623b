"""``status``: what a store has waiting to be delivered, what the server has acknowledged,
and to whom it delivers; the CLI renders it."""

from __future__ import annotations

from dataclasses import dataclass

from fieldsync.core.ids import fingerprint
from fieldsync.core.settings import Delivery, Enrolment
from fieldsync.services import problems, sync
from fieldsync.store import orgkeys, settings
from fieldsync.store.store import Store


@dataclass(frozen=True)
class Status:
    enrolled: bool
    server: str | None  # the URL enrolled with (None: not enrolled)
    server_fingerprint: str | None  # of the key that signs its receipts
    device_fingerprint: str
    pending: int  # versions no verified receipt acknowledges yet
    acknowledged_seq: int  # the highest seq of this device's that one does (0: none)
    last_receipt_ms: int | None  # the time the last receipt states
    problems: list[problems.Problem]  # what pulls set aside or found withheld
    read_key_epoch: int | None  # the organisation's read key new versions are wrapped for
    alerts: list[str]  # forks of the organisation's log, in words


def status(store: Store) -> Status:
    joined = settings.load(store, Enrolment)
    delivery = settings.load(store, Delivery) or Delivery()
    state = orgkeys.followed(store)
    return Status(
        enrolled=joined is not None,
        server=joined.server if joined else None,
        server_fingerprint=fingerprint(bytes.fromhex(joined.server_key)) if joined else None,
        device_fingerprint=store.identity.fingerprint,
        pending=sync.pending(store),
        acknowledged_seq=delivery.seq,
        last_receipt_ms=delivery.receipt_time_ms,
        problems=problems.named(store),
        read_key_epoch=state.read_key.epoch if state is not None else None,
        alerts=orgkeys.alerts(store),
    )
