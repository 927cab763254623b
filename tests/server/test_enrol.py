from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fieldsync.core import crypto, encoding, enrolment
from fieldsync.core.ids import fingerprint
from fieldsync.errors import MalformedData, StoreExists
from fieldsync.server import data
from tests.server.conftest import NOW, Org, enrol_body, make_invite


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
    body = enrolment.request(device, box.public, expired, "00" * 32).encode()
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
