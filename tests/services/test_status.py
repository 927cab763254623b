"""``status`` as a service: what the store's settings and outbox say, typed, with no server."""

from __future__ import annotations

from fieldsync.core.ids import fingerprint
from fieldsync.core.settings import Delivery, Enrolment
from fieldsync.services import records
from fieldsync.services.forms import get_form
from fieldsync.services.status import Status, status
from fieldsync.store import settings
from fieldsync.store.store import Store
from tests.conftest import example


def test_a_store_not_enrolled_has_nothing_acknowledged(store: Store) -> None:
    records.create(store, get_form("incident"), example("incident"))
    assert status(store) == Status(
        enrolled=False,
        server=None,
        server_fingerprint=None,
        device_fingerprint=store.identity.fingerprint,
        pending=1,
        acknowledged_seq=0,
        last_receipt_ms=None,
        problems=[],
        read_key_epoch=None,
        alerts=[],
    )


def test_an_enrolled_store_shows_its_server_and_its_last_receipt(store: Store) -> None:
    for _ in range(3):
        records.create(store, get_form("incident"), example("incident"))
    joined = Enrolment("aa" * 32, "laptop", "bb" * 32, "https://sync.example", "cd" * 32)
    settings.save(store, joined)
    settings.save(store, Delivery(last_seq=2, head="e2", receipt="r", receipt_time_ms=1_700))
    shown = status(store)
    assert (shown.enrolled, shown.server) == (True, "https://sync.example")
    assert shown.server_fingerprint == fingerprint(bytes.fromhex("cd" * 32))
    assert (shown.pending, shown.acknowledged_seq, shown.last_receipt_ms) == (1, 2, 1_700)
