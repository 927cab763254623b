"""The device registry and revocation, over requests signed by the admin key only."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import Session, select

from fieldsync.errors import AccessDenied, DeviceRevoked, InputError
from fieldsync.server.tables import Quarantined
from fieldsync.services import admin, enrol, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.services.conftest import DAY, quick


@pytest.fixture
def enrolled(store: Store, admin_store: Store, live: tuple[str, object]) -> Store:
    text, shown = admin.make_invite(
        admin_store, "laptop 12", live[0], valid_ms=DAY, client_for=quick
    )
    enrol.enrol(store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick)
    return store


def client(url: str, store: Store) -> SyncClient:
    return SyncClient(url, signer=store.identity.signer, attempts=1)


def test_the_registry_lists_devices_and_revocation_stops_them(
    enrolled: Store, admin_store: Store, live: tuple[str, object]
) -> None:
    url, engine = live
    records.create(enrolled, get_form("interview"), example("interview"))
    sync.push(enrolled, client_for=lambda u, s: client(u, s))
    (row,) = admin.devices(admin_store, admin.server_url(admin_store, None))
    assert (row.name, row.status, row.entries, row.last_seq) == (
        "laptop 12",
        "active",
        1,
        1,
    )
    assert row.fingerprint == enrolled.identity.fingerprint
    prefix = row.fingerprint.replace(" ", "")[:10]
    assert admin.revoke(admin_store, url, prefix).status == "revoked"
    records.create(enrolled, get_form("interview"), example("interview"))
    with pytest.raises(DeviceRevoked, match="revoked"):
        sync.push(enrolled, client_for=lambda u, s: client(u, s))
    with Session(engine) as session:  # type: ignore[call-overload]
        assert session.exec(select(Quarantined)).one().reason == "sent after the device was revoked"
    with pytest.raises(InputError, match="names no enrolled device"):
        admin.revoke(admin_store, url, "ffffffffff")


def test_only_the_admin_key_may_read_the_registry(
    enrolled: Store, live: tuple[str, object]
) -> None:
    url = live[0]
    with client(url, enrolled) as as_device, pytest.raises(AccessDenied):
        as_device.devices()
    assert httpx.get(f"{url}/v1/admin/devices").status_code == 400  # unsigned
