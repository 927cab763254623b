"""Enrolment end to end: an administrator's store, a real server over HTTP, a device's store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from fieldsync.core import crypto, entry
from fieldsync.errors import AccessDenied, MalformedData, ServerUnreachable, StoreStateError
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.services import admin, enrol, records
from fieldsync.services.forms import get_form
from fieldsync.store.db import EntryRow, WrapRow
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.live import running
from tests.services.conftest import DAY, quick


def test_enrolment_lets_the_organisation_read_the_past_and_the_future(
    store: Store, admin_store: Store, server_url: str
) -> None:
    before = records.create(store, get_form("interview"), example("interview"))
    records.edit(store, before, sets=["language=english"])
    text, _ = admin.make_invite(admin_store, "laptop 7", server_url, valid_ms=DAY, client_for=quick)
    done = enrol.enrol(store, text, client_for=quick)
    assert done.wrapped == 2
    assert done.name == "laptop 7"
    after = records.create(store, get_form("incident"), example("incident"))
    org_key = admin_store.identity.org_read
    assert org_key is not None
    with store.session() as session:
        wraps = session.exec(select(WrapRow).where(WrapRow.reader == org_key.public.hex())).all()
        raw = {row.id: row.raw for row in session.exec(select(EntryRow)).all()}
    assert len(wraps) == 3
    for wrap in wraps:  # the organisation's key opens every version, old and new
        content_key = org_key.unwrap(wrap.wrapped, what="test")
        assert entry.parse(raw[wrap.entry_id]).open(content_key)
    assert {v.entry.header.record for v in store.versions(after)} == {after}


def test_a_device_enrols_only_once(store: Store, admin_store: Store, server_url: str) -> None:
    text, _ = admin.make_invite(admin_store, "laptop 8", server_url, valid_ms=DAY, client_for=quick)
    enrol.enrol(store, text, client_for=quick)
    with pytest.raises(StoreStateError, match="already enrolled"):
        enrol.enrol(store, text, client_for=quick)


def test_a_server_other_than_the_invites_gets_nothing(
    store: Store, admin_store: Store, server_url: str, tmp_path: Path
) -> None:
    text, _ = admin.make_invite(admin_store, "laptop 9", server_url, valid_ms=DAY, client_for=quick)
    impostor = data.init(tmp_path / "impostor", admin.org_keys(admin_store).encode())
    with running(create_app(impostor)) as impostor_url:
        # the invite's URL now leads elsewhere (DNS, a proxy, a captive portal ...)
        with pytest.raises(AccessDenied, match="not the one the invite names"):
            enrol.enrol(store, text, client_for=lambda _url: quick(impostor_url))
    assert store.setting("enrolment") is None


def test_no_invite_is_signed_for_another_organisations_server(
    admin_store: Store, tmp_path: Path
) -> None:
    other = data.init(
        tmp_path / "other",
        admin.org_keys(admin_store)
        .encode()
        .replace(
            admin_store.identity.signer.public.hex().encode(),
            crypto.SigningPair.generate().public.hex().encode(),
        ),
    )
    with (
        running(create_app(other)) as url,
        pytest.raises(AccessDenied, match="another organisation"),
    ):
        admin.make_invite(admin_store, "x", url, valid_ms=DAY, client_for=quick)


def test_an_unreachable_server_changes_nothing(
    store: Store, admin_store: Store, server_url: str
) -> None:
    text, _ = admin.make_invite(
        admin_store, "laptop 10", server_url, valid_ms=DAY, client_for=quick
    )
    slept: list[float] = []

    def nowhere(_url: str) -> SyncClient:
        return SyncClient(
            "http://127.0.0.1:9", attempts=3, timeout=1, backoff=0.2, sleep=slept.append
        )

    with pytest.raises(ServerUnreachable, match="did not answer") as caught:
        enrol.enrol(store, text, client_for=nowhere)
    assert "Nothing was changed" in (caught.value.hint or "")
    assert len(slept) == 2  # three tries, with backoff between them
    assert all(0 <= pause <= 0.4 for pause in slept)
    assert store.setting("enrolment") is None


def test_server_errors_arrive_as_the_same_fieldsync_errors(server_url: str) -> None:
    with quick(server_url) as client, pytest.raises(MalformedData) as caught:
        client.enrol(b"{}")
    assert str(caught.value).startswith("the server refused: ")
    assert httpx.get(f"{server_url}/v1/health").json() == {"status": "ok"}
