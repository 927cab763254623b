from __future__ import annotations

import struct
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from fieldsync.core import batch as batch_format
from fieldsync.core import crypto, encoding, enrolment, httpsig, invite
from fieldsync.core import entry as entry_format
from fieldsync.core.clock import HLC
from fieldsync.core.ids import fingerprint, new_record_id
from fieldsync.errors import MalformedData, StoreExists
from fieldsync.server import data
from fieldsync.server.tables import DeviceRow, StoredEntry
from tests.server.conftest import NOW, Device, Live, Org, enrol_body, make_invite


def test_info_names_the_server_and_its_organisation(
    client: httpx.Client, server: data.ServerData, org: Org
) -> None:
    info = client.get("/v1/info").json()
    assert info["server_key"] == server.receipt_key.public.hex()
    assert info["admin_key"] == org.admin.public.hex()
    assert info["org_fingerprint"] == org.keys.fingerprint
    assert client.get("/v1/health").json() == {"status": "ok"}


def test_a_device_enrols_once_and_a_retry_gets_the_same_answer(
    client: httpx.Client, server: data.ServerData, org: Org
) -> None:
    device, box = crypto.SigningPair.generate(), crypto.BoxPair.generate()
    body = enrol_body(make_invite(org, server), device, box)
    first = client.post("/v1/enrol", content=body)
    assert first.status_code == 200, first.text
    assert first.json()["device"] == device.public.hex()
    assert first.json()["fingerprint"] == fingerprint(device.public, box.public)
    assert first.json()["name"] == "laptop 3"
    again = client.post("/v1/enrol", content=body)  # the answer was lost; the device asks again
    assert again.status_code == 200
    assert again.json() == first.json()


def test_a_used_invite_cannot_enrol_another_device(
    client: httpx.Client, server: data.ServerData, org: Org
) -> None:
    text = make_invite(org, server)
    assert client.post("/v1/enrol", content=enrol_body(text)).status_code == 200
    second = client.post("/v1/enrol", content=enrol_body(text))
    assert second.status_code == 409
    assert second.json()["error"] == "InviteUsed"


def test_an_expired_invite_is_gone(client: httpx.Client, server: data.ServerData, org: Org) -> None:
    expired = make_invite(org, server, expires_ms=NOW - 1)
    device, box = crypto.SigningPair.generate(), crypto.BoxPair.generate()
    # Any token will do for the proof: the expiry is checked before it.
    server_key = server.receipt_key.public
    body = enrolment.request(device, box, expired, "00" * 32, server_key=server_key).encode()
    response = client.post("/v1/enrol", content=body)
    assert response.status_code == 410
    assert response.json()["error"] == "InviteExpired"


def test_invites_of_another_organisation_or_server_are_refused(
    client: httpx.Client, server: data.ServerData, org: Org
) -> None:
    stranger = Org(crypto.SigningPair.generate(), org.read)
    response = client.post("/v1/enrol", content=enrol_body(make_invite(stranger, server)))
    assert response.status_code == 403
    assert "organisation's admin key" in response.json()["message"]
    elsewhere = make_invite(org, server, server_key=crypto.SigningPair.generate().public)
    response = client.post("/v1/enrol", content=enrol_body(elsewhere))
    assert response.status_code == 403
    assert "another server" in response.json()["message"]


def test_a_proof_by_another_key_is_refused(
    client: httpx.Client, server: data.ServerData, org: Org
) -> None:
    text = make_invite(org, server)
    honest = enrolment.parse(enrol_body(text))
    impostor = crypto.SigningPair.generate().public.hex()
    forged = encoding.encode(honest.to_json() | {"device_key": impostor})
    response = client.post("/v1/enrol", content=forged)
    assert response.status_code == 400
    assert response.json()["error"] == "SignatureInvalid"
    assert client.post("/v1/enrol", content=honest.encode()).status_code == 200  # still unused


def test_oversized_and_malformed_bodies_get_a_clean_4xx_that_echoes_nothing(
    client: httpx.Client,
) -> None:
    huge = client.post("/v1/enrol", content=b"x" * 100_000)
    assert huge.status_code == 413

    def chunked() -> object:
        for _ in range(100):
            yield b"y" * 1000

    streamed = client.post("/v1/enrol", content=chunked())  # no Content-Length
    assert streamed.status_code == 413
    for body in (b"SECRET-MARKER not json", b'{"invite":"SECRET-MARKER"}', b"[" * 5000, b""):
        response = client.post("/v1/enrol", content=body)
        assert response.status_code == 400, response.text
        assert "SECRET-MARKER" not in response.text


def test_server_data_is_created_once_and_damage_is_named(
    server: data.ServerData, org: Org, tmp_path: Path
) -> None:
    with pytest.raises(StoreExists):
        data.init(server.folder, org.keys.encode())
    assert (server.folder / data.KEY_FILE).stat().st_mode & 0o077 == 0
    assert data.load(server.folder).receipt_key.public == server.receipt_key.public
    (server.folder / data.KEY_FILE).write_text("00" * 32)
    with pytest.raises(MalformedData, match="does not match"):
        data.load(server.folder)
    with pytest.raises(MalformedData):
        data.init(tmp_path / "other", b"not the org file")


def _spellings(key: str) -> dict[str, str]:
    """Other spellings ``bytes.fromhex`` reads as the very same key."""
    return {
        "final newline": key + "\n",
        "capitals": key.upper(),
        "inner space": f"{key[:32]} {key[32:]}",
    }


def _request_as(signer: crypto.SigningPair, spelling: str, box: crypto.BoxPair, text: str) -> bytes:
    """An enrolment request that names ``signer``'s key as ``spelling``, properly signed: what a
    device (or anyone holding its key) can send."""
    shown = invite.read(text, now_ms=NOW)
    token, server_key = shown.token, bytes.fromhex(shown.server_key)
    claim = {"box_key": box.public.hex(), "device_key": spelling, "token": token}
    box_proof = box.prove(server_key, crypto.LABEL_ENROL_BOX, encoding.encode(claim)).hex()
    signed = encoding.encode(claim | {"box_proof": box_proof})
    proof = signer.sign(crypto.LABEL_ENROL, signed).hex()
    honest = enrolment.request(signer, box, text, token, server_key=server_key).to_json()
    return encoding.encode(
        honest | {"device_key": spelling, "proof": proof, "box_proof": box_proof}
    )


@pytest.mark.parametrize("kind", ["final newline", "capitals", "inner space"])
def test_one_key_in_another_spelling_is_refused_and_never_a_second_device(
    live: Live, org: Org, kind: str
) -> None:
    signer, box = crypto.SigningPair.generate(), crypto.BoxPair.generate()
    key = signer.public.hex()
    first = live.http.post(
        "/v1/enrol", content=enrol_body(make_invite(org, live.server), signer, box)
    )
    assert first.status_code == 200
    again = _request_as(signer, _spellings(key)[kind], box, make_invite(org, live.server))
    response = live.http.post("/v1/enrol", content=again)
    assert (response.status_code, response.json()["error"]) == (400, "MalformedData")
    assert live.count(DeviceRow) == 1


def _spelled_batch(signer: crypto.SigningPair, spelling: str, box: crypto.BoxPair) -> bytes:
    """A batch of one entry whose header and manifest name ``signer`` as ``spelling``, laid out
    by hand (``entry.seal`` and ``batch.build`` refuse to make one)."""
    header = entry_format.Header(
        spelling, 1, None, new_record_id(), (), HLC(1, 0), crypto.random_bytes(24).hex(), "00" * 32
    )
    header_bytes = encoding.encode(header.to_json())
    prefix = entry_format.MAGIC + bytes([1]) + struct.pack(">I", len(header_bytes)) + header_bytes
    key, nonce = crypto.random_bytes(32), bytes.fromhex(header.nonce)
    sealed = crypto.aead_encrypt(key, nonce, b"{}", crypto.labelled(crypto.LABEL_ENTRY, prefix))
    signed = prefix + struct.pack(">I", len(sealed)) + sealed
    raw = signed + signer.sign(crypto.LABEL_ENTRY, signed)
    made = entry_format.Entry(raw, entry_format.entry_id(raw), header, sealed, b"")
    manifest = batch_format.Manifest(spelling, 1, 1, None, (made.id,), ())
    wrap = crypto.wrap_key(box.public, key)
    return batch_format.encode(signer, manifest, [made], [wrap])


def test_a_revoked_key_does_not_come_back_in_another_spelling(live: Live, org: Org) -> None:
    signer, box = crypto.SigningPair.generate(), crypto.BoxPair.generate()
    key = signer.public.hex()
    assert (
        live.http.post(
            "/v1/enrol", content=enrol_body(make_invite(org, live.server), signer, box)
        ).status_code
        == 200
    )
    # the same key enrolled a second time as KEY + newline, ahead of its revocation
    live.http.post(
        "/v1/enrol", content=_request_as(signer, key + "\n", box, make_invite(org, live.server))
    )
    path = f"/v1/admin/devices/{key}/revoke"
    headers = httpsig.sign(org.admin, "POST", path, b"", NOW // 1000)
    assert live.http.post(path, headers=headers).status_code == 200
    for spelling in (key, *_spellings(key).values()):
        response = live.send(_spelled_batch(signer, spelling, box))
        assert response.status_code in (400, 403), (spelling, response.text)
    assert live.count(StoredEntry) == 0
    feed = httpsig.sign(signer, "GET", "/v1/feed/0", b"", NOW // 1000)
    assert live.http.get("/v1/feed/0", headers=feed).status_code == 403


def test_a_device_cannot_register_a_box_key_it_does_not_hold(live: Live, org: Org) -> None:
    """The feed serves a device what is sealed to its box key: a device that registered
    another's box key was served the analysts' versions of that device's records (sealed,
    but their records, authors, sizes and times). Old code registered any box key named, as
    the request without a box proof below shows."""
    victim, intruder = Device(), Device()
    server_key = live.server.receipt_key.public
    victims_text = make_invite(org, live.server)
    victims = enrolment.request(
        victim.signer,
        victim.box,
        victims_text,
        invite.read(victims_text, now_ms=NOW).token,
        server_key=server_key,
    )
    assert live.http.post("/v1/enrol", content=victims.encode()).status_code == 200
    record = victim.record(1)[0]
    assert live.send(victim.batch([record])).status_code == 200
    analyst = Device(signer=org.admin)
    edit = analyst.record(1, record=record.header.record, parents=(record.id,))
    sealed = crypto.wrap_key(victim.box.public, crypto.random_bytes(32))
    raw = batch_format.build(
        org.admin,
        edit,
        [crypto.wrap_key(org.read.public, crypto.random_bytes(32))],
        readers=[((victim.box.public.hex(), sealed),)],
    ).raw
    assert live.send(raw).status_code == 200
    text = make_invite(org, live.server)
    token = invite.read(text, now_ms=NOW).token
    own = enrolment.request(intruder.signer, intruder.box, text, token, server_key=server_key)
    # the victim's, and a key no device registered yet (so only the box proof can refuse it)
    for target in (victim.box.public.hex(), crypto.BoxPair.generate().public.hex()):
        claim = {"box_key": target, "device_key": own.device_key, "token": token}
        made_with_its_own_secret = intruder.box.prove(
            server_key, crypto.LABEL_ENROL_BOX, encoding.encode(claim)
        ).hex()
        # the victim's genuine proof, as the registry or an evidence package shows it
        for box_proof in (made_with_its_own_secret, victims.box_proof, None):
            stolen = enrolment.Enrolment(own.invite, own.device_key, target, "", box_proof)
            signed = encoding.encode(
                claim if box_proof is None else claim | {"box_proof": box_proof}
            )
            forged = encoding.encode(
                stolen.to_json() | {"proof": intruder.signer.sign(crypto.LABEL_ENROL, signed).hex()}
            )
            response = live.http.post("/v1/enrol", content=forged)
            assert response.status_code == 400, response.text
            assert response.json()["error"] in ("SignatureInvalid", "MalformedData")
    with Session(live.engine) as session:
        assert intruder.signer.public.hex() not in session.exec(select(DeviceRow.key)).all()
    feed = httpsig.sign(intruder.signer, "GET", "/v1/feed/0", b"", NOW // 1000)
    assert live.http.get("/v1/feed/0", headers=feed).status_code == 403
    assert live.http.post("/v1/enrol", content=own.encode()).status_code == 200  # still unused


def test_a_box_key_is_registered_to_one_device_only(live: Live, org: Org) -> None:
    """Even its holder cannot register one box key for a second device key."""
    first, second = Device(), Device()
    second.box = first.box
    for device, status in ((first, 200), (second, 403)):
        body = enrol_body(make_invite(org, live.server), device.signer, device.box)
        response = live.http.post("/v1/enrol", content=body)
        assert response.status_code == status, response.text
    assert "already registered to another device" in response.json()["message"]
    assert live.count(DeviceRow) == 1


def _top_bit_set(key: bytes) -> bytes:
    return key[:31] + bytes([key[31] | 0x80])


def test_a_box_key_in_its_top_bit_spelling_is_refused(live: Live, org: Org) -> None:
    """X25519 ignores bit 255: the same box key with it set is a second spelling, which the box
    proof opens for as well. Old code compared the hex and registered both, for two devices."""
    first, second = Device(), Device()
    body = enrol_body(make_invite(org, live.server), first.signer, first.box)
    assert live.http.post("/v1/enrol", content=body).status_code == 200
    text = make_invite(org, live.server)
    token = invite.read(text, now_ms=NOW).token
    spelled = _top_bit_set(first.box.public).hex()
    device_key = second.signer.public.hex()
    claim = encoding.encode({"box_key": spelled, "device_key": device_key, "token": token})
    box_proof = first.box.prove(live.server.receipt_key.public, crypto.LABEL_ENROL_BOX, claim)
    signed = {"box_key": spelled, "box_proof": box_proof.hex(), "device_key": device_key}
    proof = second.signer.sign(crypto.LABEL_ENROL, encoding.encode(signed | {"token": token}))
    request = enrolment.Enrolment(text, device_key, spelled, proof.hex(), box_proof.hex())
    enrolment.verify_proof(request, token)  # a request any reader of it would accept
    enrolment.verify_box_proof(request, token, live.server.receipt_key)  # and the box proof too
    response = live.http.post("/v1/enrol", content=request.encode())
    assert response.status_code == 400, response.text
    assert "canonical spelling" in response.json()["message"]
    assert live.count(DeviceRow) == 1


def test_libsodium_never_makes_a_box_key_with_the_top_bit_set() -> None:
    for _ in range(2000):
        assert crypto.is_canonical_box_key(crypto.BoxPair.generate().public)
    p = 2**255 - 19
    assert not crypto.is_canonical_box_key(p.to_bytes(32, "little"))
    assert crypto.is_canonical_box_key((p - 1).to_bytes(32, "little"))


def test_the_enrolment_that_loses_a_race_for_a_box_key_is_refused_cleanly(
    live: Live, org: Org
) -> None:
    """Two enrolments of one box key at once both pass the check before either is stored: the
    UNIQUE index refuses the second, which is answered like any taken box key. Here the other
    request's row is written, from another connection, just as this one's goes in."""
    first, second = Device(), Device()
    second.box = first.box
    winner = enrol_body(make_invite(org, live.server), first.signer, first.box)
    loser = enrol_body(make_invite(org, live.server), second.signer, second.box)
    raced = False

    def the_other_request_first(conn, cursor, statement, *_: object) -> None:  # type: ignore[no-untyped-def]
        nonlocal raced
        if raced or not statement.lstrip().upper().startswith("INSERT INTO DEVICES"):
            return
        raced = True
        with live.engine.connect() as other:
            other.execute(
                DeviceRow.__table__.insert().values(  # type: ignore[attr-defined]
                    key=first.signer.public.hex(),
                    box_key=first.box.public.hex(),
                    name="laptop",
                    enrolled_ms=NOW,
                    enrolment=winner,
                )
            )
            other.commit()

    event.listen(live.engine, "before_cursor_execute", the_other_request_first)
    try:
        response = live.http.post("/v1/enrol", content=loser)
    finally:
        event.remove(live.engine, "before_cursor_execute", the_other_request_first)
    assert raced
    assert response.status_code == 403, response.text
    assert "already registered to another device" in response.json()["message"]
    with Session(live.engine) as session:
        assert session.exec(select(DeviceRow.key)).all() == [first.signer.public.hex()]
