"""Enrolment end to end: an administrator's store, a real server over HTTP, a device's store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from fieldsync.core import crypto, entry, invite
from fieldsync.core.ids import fingerprint
from fieldsync.errors import (
    AccessDenied,
    DecryptionFailed,
    InputError,
    MalformedData,
    ServerUnreachable,
    StoreStateError,
)
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.tables import DeviceRow
from fieldsync.services import admin, enrol, records
from fieldsync.services.forms import get_form
from fieldsync.store import keyvalue
from fieldsync.store.db import EntryRow, WrapRow
from fieldsync.store.store import DB_FILE, Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.live import attackers_invite, running
from tests.services.conftest import DAY, quick


def test_enrolment_lets_the_organisation_read_the_past_and_the_future(
    store: Store, admin_store: Store, server_url: str
) -> None:
    before = records.create(store, get_form("interview"), example("interview"))
    records.edit(store, before, sets=["language=english"])
    text, shown = admin.make_invite(
        admin_store, "laptop 7", server_url, valid_ms=DAY, client_for=quick
    )
    done = enrol.enrol(
        store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick
    )
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
    text, shown = admin.make_invite(
        admin_store, "laptop 8", server_url, valid_ms=DAY, client_for=quick
    )
    enrol.enrol(store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick)
    with pytest.raises(StoreStateError, match="already enrolled"):
        enrol.enrol(
            store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick
        )


def test_a_server_other_than_the_invites_gets_nothing(
    store: Store, admin_store: Store, server_url: str, tmp_path: Path
) -> None:
    text, shown = admin.make_invite(
        admin_store, "laptop 9", server_url, valid_ms=DAY, client_for=quick
    )
    impostor = data.init(tmp_path / "impostor", admin.org_keys(admin_store).encode())
    with running(create_app(impostor)) as impostor_url:
        # the invite's URL now leads elsewhere (DNS, a proxy, a captive portal ...)
        with pytest.raises(AccessDenied, match="not the one the invite names"):
            enrol.enrol(
                store,
                text,
                expect_fingerprint=shown["organisation_fingerprint"],
                client_for=lambda _url: quick(impostor_url),
            )
    assert keyvalue.setting(store, "enrolment") is None


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
    text, shown = admin.make_invite(
        admin_store, "laptop 10", server_url, valid_ms=DAY, client_for=quick
    )
    slept: list[float] = []

    def nowhere(_url: str) -> SyncClient:
        return SyncClient(
            "http://127.0.0.1:9", attempts=3, timeout=1, backoff=0.2, sleep=slept.append
        )

    with pytest.raises(ServerUnreachable, match="did not answer") as caught:
        enrol.enrol(
            store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=nowhere
        )
    assert "Nothing was changed" in (caught.value.hint or "")
    assert len(slept) == 2  # three tries, with backoff between them
    assert all(0 <= pause <= 0.4 for pause in slept)
    assert keyvalue.setting(store, "enrolment") is None


def test_server_errors_arrive_as_the_same_fieldsync_errors(server_url: str) -> None:
    with quick(server_url) as client, pytest.raises(MalformedData) as caught:
        client.enrol(b"{}")
    assert str(caught.value).startswith("the server refused: ")
    assert httpx.get(f"{server_url}/v1/health").json() == {"status": "ok"}


def test_an_impostor_server_at_a_later_invite_is_refused_and_the_pinned_key_kept(
    admin_store: Store, server_url: str, tmp_path: Path
) -> None:
    _, first = admin.make_invite(admin_store, "one", server_url, valid_ms=DAY, client_for=quick)
    pinned = keyvalue.setting(admin_store, "server")
    assert pinned is not None
    pinned_fp = fingerprint(bytes.fromhex(pinned["server_key"]))
    # a second real server, serving copies of the organisation's public keys
    impostor = data.init(tmp_path / "impostor", admin.org_keys(admin_store).encode())
    impostor_fp = impostor.fingerprint
    with running(create_app(impostor)) as impostor_url:
        with pytest.raises(AccessDenied, match="another key than the one this store pinned") as no:
            admin.make_invite(admin_store, "two", impostor_url, valid_ms=DAY, client_for=quick)
        assert pinned_fp in no.value.message
        assert impostor_fp in no.value.message
        assert keyvalue.setting(admin_store, "server") == pinned
        with pytest.raises(AccessDenied, match="not the one given"):
            admin.make_invite(
                admin_store,
                "two",
                impostor_url,
                valid_ms=DAY,
                repin=pinned_fp,
                client_for=quick,
            )
        assert keyvalue.setting(admin_store, "server") == pinned
        # re-pinned only when the administrator names the new key's fingerprint
        _, again = admin.make_invite(
            admin_store, "two", impostor_url, valid_ms=DAY, repin=impostor_fp, client_for=quick
        )
    assert (first["server_key_pinned"], again["server_key_pinned"]) == (
        admin.FIRST_USE,
        admin.REPINNED,
    )
    assert keyvalue.setting(admin_store, "server") == {
        "url": impostor_url,
        "server_key": impostor.receipt_key.public.hex(),
    }


def test_a_hostile_invite_refused_at_the_confirmation_hands_over_nothing(
    store: Store, admin_store: Store, tmp_path: Path
) -> None:
    records.create(store, get_form("interview"), example("interview"))
    records.create(store, get_form("incident"), example("incident"))
    genuine = admin.org_keys(admin_store).fingerprint  # as the administrator gave it
    with attackers_invite(tmp_path) as (text, org_read, engine):
        with pytest.raises(AccessDenied, match="nothing was sent, saved or made readable"):
            enrol.enrol(store, text, expect_fingerprint=genuine, client_for=quick)
        with pytest.raises(AccessDenied):  # nor a prefix of it
            enrol.enrol(store, text, expect_fingerprint=genuine[:23], client_for=quick)
        with Session(engine) as session:
            assert session.exec(select(DeviceRow)).all() == []  # it was never contacted
    assert keyvalue.setting(store, "enrolment") is None
    attacker_key = org_read.public
    raw = b"".join(p.read_bytes() for p in store.home.glob(f"{DB_FILE}*"))
    assert attacker_key not in raw and attacker_key.hex().encode() not in raw
    with store.session() as session:
        wraps = session.exec(select(WrapRow)).all()
    assert all(w.reader != attacker_key.hex() for w in wraps)  # the own copies: local_wraps
    for wrap in wraps:
        with pytest.raises(DecryptionFailed):
            org_read.unwrap(wrap.wrapped, what="a past record")


def test_too_short_a_fingerprint_confirms_nothing(
    store: Store, admin_store: Store, server_url: str
) -> None:
    text, shown = admin.make_invite(
        admin_store, "laptop", server_url, valid_ms=DAY, client_for=quick
    )
    genuine = shown["organisation_fingerprint"]
    for typed in (genuine[:17], "", "yes", genuine.replace(" ", "-")):
        with pytest.raises(AccessDenied):
            enrol.enrol(store, text, expect_fingerprint=typed, client_for=quick)
    assert keyvalue.setting(store, "enrolment") is None
    done = enrol.enrol(store, text, expect_fingerprint=genuine[:23], client_for=quick)  # 4 groups
    assert done.admin_fingerprint == genuine


def test_an_invite_for_plain_http_on_another_machine_is_refused_unless_allowed(
    store: Store, admin_store: Store, live: tuple[str, object]
) -> None:
    url = live[0]
    with quick(url) as client:
        server_key = bytes.fromhex(str(client.info().server_key))
    keys = admin.org_keys(admin_store)
    text = invite.issue(
        admin_store.identity.signer,
        name="laptop",
        server="http://fieldsync.example.org:8443",
        server_key=server_key,
        org_read_key=bytes.fromhex(keys.org_read_key),
        expires_ms=store.now_ms() + DAY,
    )
    asked: list[str] = []

    def via_the_network(wanted: str) -> SyncClient:
        asked.append(wanted)
        return quick(url)  # the name leads to the real server (e.g. through a tunnel)

    with pytest.raises(InputError, match="without encryption"):
        enrol.enrol(store, text, expect_fingerprint=keys.fingerprint, client_for=via_the_network)
    assert asked == [] and keyvalue.setting(store, "enrolment") is None
    done = enrol.enrol(
        store,
        text,
        expect_fingerprint=keys.fingerprint,
        allow_http=True,
        client_for=via_the_network,
    )
    assert asked == ["http://fieldsync.example.org:8443"] and done.wrapped == 0
