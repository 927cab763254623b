"""What a caller without a key, or one device, can make the server hold: nothing unsigned, no
more than its quotas, no body that stops arriving, and no word on another key's status."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, select

from fieldsync.core import crypto, httpsig
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.limits import Limits
from fieldsync.server.tables import Quarantined, StoredBlob, StoredEntry
from tests.live import running
from tests.server.conftest import NOW, Device, Live, Org, enrol_body, make_invite
from tests.server.test_blobs import sealed_blob, signed

HOUR_MS = 3_600_000


def unsigned(raw: bytes) -> bytes:
    """A batch whose signature is all zeros: what anyone can make in a device's name."""
    return raw[: -crypto.SIGNATURE_BYTES] + bytes(crypto.SIGNATURE_BYTES)


def revoke(live: Live, org: Org, device: Device) -> None:
    path = f"/v1/admin/devices/{device.signer.public.hex()}/revoke"
    assert signed(live, org.admin, "POST", path).status_code == 200


def enrolled(live: Live, org: Org) -> Device:
    made = Device()
    body = enrol_body(make_invite(org, live.server), made.signer, made.box)
    assert live.http.post("/v1/enrol", content=body).status_code == 200
    return made


def forged(live: Live, name: crypto.SigningPair, method: str, path: str) -> httpx.Response:
    """A request that names ``name``'s key, signed by someone else."""
    headers = httpsig.sign(crypto.SigningPair.generate(), method, path, b"", NOW // 1000)
    stranger = headers["Signature-Input"].split('keyid="')[1][:64]
    headers["Signature-Input"] = headers["Signature-Input"].replace(stranger, name.public.hex())
    return live.http.request(method, path, headers=headers)


@pytest.fixture
def limited(server: data.ServerData, database_url: str | None) -> Iterator[Live]:
    """A server with small quotas, to reach them quickly."""
    limits = Limits(
        open_upload_bytes=3_000,
        open_uploads=2,
        quarantine_bytes=1_000_000,
        quarantine_batches=2,
        body_idle_s=1.0,
    )
    app = create_app(server, database_url=database_url, now_ms=lambda: NOW, limits=limits)
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield Live(http, app.state.engine, server)
    app.state.engine.dispose()


def test_all_zero_signatures_in_a_revoked_devices_name_store_nothing(
    live: Live, org: Org, device: Device
) -> None:
    revoke(live, org, device)
    for _ in range(3):
        answer = live.send(unsigned(device.batch(device.record(20))))
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "SignatureInvalid"
    assert live.count(Quarantined) == 0
    signed_by_it = live.send(device.batch(device.record(2)))  # it proved who it is: kept
    assert (signed_by_it.status_code, signed_by_it.json()["error"]) == (403, "DeviceRevoked")
    assert "revoked" in signed_by_it.json()["message"]
    assert live.count(Quarantined) == 1


def test_unknown_enrolled_and_revoked_keys_get_one_answer_without_a_valid_signature(
    live: Live, org: Org
) -> None:
    unknown, active, revoked = Device(), enrolled(live, org), enrolled(live, org)
    revoke(live, org, revoked)
    keys = (unknown, active, revoked)
    for method, path in (
        ("GET", "/v1/feed/0"),
        ("GET", f"/v1/blobs/{'ab' * 32}"),
        ("PUT", f"/v1/blobs/{'ab' * 32}/1000"),
        ("PATCH", f"/v1/blobs/{'ab' * 32}/0"),
        ("GET", "/v1/admin/devices"),
    ):
        answers = {
            (r.status_code, r.content) for r in (forged(live, k.signer, method, path) for k in keys)
        }
        assert len(answers) == 1, (method, path, answers)
        assert next(iter(answers))[0] == 400
    batches = {
        (r.status_code, r.content)
        for r in (live.send(unsigned(k.batch(k.record(2)))) for k in keys)
    }
    assert len(batches) == 1, batches
    assert live.count(Quarantined) == 0


def test_a_signed_request_from_a_revoked_device_is_told_it_is_revoked(
    live: Live, org: Org, device: Device
) -> None:
    revoke(live, org, device)
    answer = signed(live, device.signer, "GET", "/v1/feed/0")
    assert (answer.status_code, answer.json()["error"]) == (403, "DeviceRevoked")
    assert "revoked" in answer.json()["message"]
    stranger = signed(live, crypto.SigningPair.generate(), "GET", "/v1/feed/0")
    assert stranger.status_code == 403
    assert "not enrolled" in stranger.json()["message"]


def test_a_device_cannot_open_more_upload_slots_than_its_quota(limited: Live, org: Org) -> None:
    device, other = enrolled(limited, org), enrolled(limited, org)
    for _ in range(2):
        _, blob_id = sealed_blob(100)
        assert signed(limited, device.signer, "PUT", f"/v1/blobs/{blob_id}/1000").status_code == 200
    _, third = sealed_blob(100)
    refused = signed(limited, device.signer, "PUT", f"/v1/blobs/{third}/100")
    assert refused.status_code == 507, refused.text
    assert refused.json()["error"] == "QuotaExceeded"
    assert "2 uploads on the server that no batch names yet" in refused.json()["message"]
    assert refused.json()["hint"]
    assert limited.count(StoredBlob) == 2
    # the quota is the device's own: another device still uploads
    assert signed(limited, other.signer, "PUT", f"/v1/blobs/{third}/100").status_code == 200


def test_a_device_cannot_reserve_more_unfinished_bytes_than_its_quota(
    limited: Live, org: Org
) -> None:
    device = enrolled(limited, org)
    _, first = sealed_blob(100)
    assert signed(limited, device.signer, "PUT", f"/v1/blobs/{first}/2500").status_code == 200
    _, second = sealed_blob(100)
    refused = signed(limited, device.signer, "PUT", f"/v1/blobs/{second}/1000")
    assert refused.status_code == 507, refused.text
    assert "3000 bytes" in refused.json()["message"]
    assert limited.count(StoredBlob) == 1
    # a finished upload no longer counts
    small, small_id = sealed_blob(200)
    assert (
        signed(limited, device.signer, "PUT", f"/v1/blobs/{small_id}/{len(small)}").status_code
        == 200
    )
    done = signed(limited, device.signer, "PATCH", f"/v1/blobs/{small_id}/0", small)
    assert done.json()["complete"] is True


def test_forks_past_the_quarantine_quota_are_refused_and_the_device_flagged(
    limited: Live, org: Org
) -> None:
    device = enrolled(limited, org)
    first = device.record(1)
    assert limited.send(device.batch(first)).status_code == 200
    kept = 0
    for _ in range(4):
        rival = Device(signer=device.signer)
        answer = limited.send(rival.batch(rival.record(1)))  # another entry at seq 1
        if answer.status_code == 409:
            kept += 1
            continue
        assert answer.status_code == 507, answer.text
        assert answer.json()["error"] == "QuotaExceeded"
        assert "Nothing was lost" in answer.json()["hint"]
    assert kept == 2
    assert limited.count(Quarantined) == 2
    assert limited.count(StoredEntry) == 1


def put_at(http: httpx.Client, signer: crypto.SigningPair, path: str, at_ms: int) -> int:
    headers = httpsig.sign(signer, "PUT", path, b"", at_ms // 1000)
    return http.put(path, headers=headers).status_code


def test_an_abandoned_partial_upload_expires_and_frees_its_bytes(
    server: data.ServerData, database_url: str | None, org: Org
) -> None:
    clock = [NOW]
    limits = Limits(open_uploads=1, upload_expiry_h=48)
    app = create_app(server, database_url=database_url, now_ms=lambda: clock[0], limits=limits)
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        live = Live(http, app.state.engine, server)
        device = enrolled(live, org)
        data_, blob_id = sealed_blob(5000)
        assert put_at(http, device.signer, f"/v1/blobs/{blob_id}/{len(data_)}", NOW) == 200
        clock[0] = NOW + 10 * HOUR_MS  # appended to 10 h after it started
        path = f"/v1/blobs/{blob_id}/0"
        headers = httpsig.sign(device.signer, "PATCH", path, data_[:2000], clock[0] // 1000)
        assert http.patch(path, content=data_[:2000], headers=headers).status_code == 200
        partial = server.folder / "blobs" / "partial" / blob_id
        _, next_id = sealed_blob(100)
        # 47 h after its last append it is still the device's one open upload
        clock[0] = NOW + 57 * HOUR_MS
        assert put_at(http, device.signer, f"/v1/blobs/{next_id}/100", clock[0]) == 507
        assert partial.stat().st_size == 2000
        clock[0] = NOW + 59 * HOUR_MS
        assert put_at(http, device.signer, f"/v1/blobs/{next_id}/100", clock[0]) == 200
        assert not partial.exists()
        assert live.count(StoredBlob) == 1
        # gone whole: a device that still wants it starts it again from byte 0
        path = f"/v1/blobs/{blob_id}"
        headers = httpsig.sign(device.signer, "GET", path, b"", clock[0] // 1000)
        assert http.get(path, headers=headers).status_code == 404
    app.state.engine.dispose()


def test_abandoned_partial_uploads_expire_when_the_server_starts(
    server: data.ServerData, database_url: str | None, org: Org
) -> None:
    app = create_app(server, database_url=database_url, now_ms=lambda: NOW)
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        live = Live(http, app.state.engine, server)
        device = enrolled(live, org)
        data_, blob_id = sealed_blob(5000)
        signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data_)}")
        signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/0", data_[:1000])
    app.state.engine.dispose()
    partial = server.folder / "blobs" / "partial" / blob_id
    assert partial.stat().st_size == 1000
    restarted = create_app(server, database_url=database_url, now_ms=lambda: NOW + 49 * HOUR_MS)
    assert not partial.exists()
    with running(restarted) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert Live(http, restarted.state.engine, server).count(StoredBlob) == 0
    restarted.state.engine.dispose()


@pytest.mark.parametrize("path", ["/v1/batches", "/v1/enrol"])
def test_bodies_that_stop_arriving_are_cut_after_the_idle_limit(limited: Live, path: str) -> None:
    host, port = limited.http.base_url.host, limited.http.base_url.port
    assert port is not None
    stalled = []
    for _ in range(5):
        raw = socket.create_connection((host, port))
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n"
        raw.sendall(head.encode() + b"F" * 2000)  # half a body, then silence
        stalled.append(raw)
    started = time.monotonic()
    try:
        for raw in stalled:
            raw.settimeout(8)
            answer = raw.recv(65_536)
            while not answer.endswith(b"}"):
                answer += raw.recv(65_536)
            assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
            assert b"RequestCut" in answer
    finally:
        for raw in stalled:
            raw.close()
    assert time.monotonic() - started < 4
    assert limited.http.get("/v1/health").status_code == 200


def test_expiry_leaves_the_blobs_a_batch_names_alone(
    live: Live, device: Device, database_url: str | None
) -> None:
    data_, blob_id = sealed_blob(3000)
    signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data_)}")
    assert signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/0", data_).json()["complete"]
    assert live.send(device.batch(device.record(1), ((blob_id, len(data_)),))).status_code == 200
    final = live.server.folder / "blobs" / blob_id[:2] / blob_id
    restarted = create_app(
        live.server, database_url=database_url, now_ms=lambda: NOW + 1000 * HOUR_MS
    )
    restarted.state.engine.dispose()
    assert final.read_bytes() == data_
    assert live.count(StoredBlob) == 1


def clocked(
    server: data.ServerData, database_url: str | None, clock: list[int], limits: Limits
) -> contextlib.AbstractContextManager[Live]:
    """A live server whose clock the test moves (signatures are made at its time)."""

    @contextlib.contextmanager
    def serving() -> Iterator[Live]:
        app = create_app(server, database_url=database_url, now_ms=lambda: clock[0], limits=limits)
        with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
            yield Live(http, app.state.engine, server)
        app.state.engine.dispose()

    return serving()


def at(
    live: Live, signer: crypto.SigningPair, method: str, path: str, at_ms: int, body: bytes = b""
) -> httpx.Response:
    headers = httpsig.sign(signer, method, path, body, at_ms // 1000)
    return live.http.request(method, path, content=body, headers=headers)


def test_a_complete_blob_no_batch_names_expires_and_frees_its_room(
    server: data.ServerData, database_url: str | None, org: Org
) -> None:
    """A device could fill its quota with complete blobs it never names, kept for good (after
    its revocation too). Now one not touched for the expiry period goes like a partial one."""
    clock = [NOW]
    with clocked(server, database_url, clock, Limits(open_uploads=1)) as live:
        device = enrolled(live, org)
        data_, blob_id = sealed_blob(3000)
        assert at(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data_)}", NOW).is_success
        clock[0] = NOW + 10 * HOUR_MS  # completed 10 h after it started
        done = at(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/0", clock[0], data_)
        assert done.json()["complete"] is True
        final = server.blob_folder / blob_id[:2] / blob_id
        _, next_id = sealed_blob(100)
        clock[0] = NOW + 57 * HOUR_MS  # 47 h after it completed: still held, still counted
        assert (
            at(live, device.signer, "PUT", f"/v1/blobs/{next_id}/100", clock[0]).status_code == 507
        )
        assert final.read_bytes() == data_
        clock[0] = NOW + 59 * HOUR_MS
        assert at(live, device.signer, "PUT", f"/v1/blobs/{next_id}/100", clock[0]).is_success
        assert not final.exists()
        assert live.count(StoredBlob) == 1
        # its batch, arriving now, is refused in words that say what to do
        refused = live.send(device.batch(device.record(1), ((blob_id, len(data_)),)))
        assert refused.status_code == 400, refused.text
        assert "the server holds none of it" in refused.json()["message"]
        assert "Upload" in refused.json()["hint"]
        assert live.count(StoredEntry) == 0


def test_revoking_a_device_deletes_the_uploads_no_batch_names(
    live: Live, org: Org, device: Device
) -> None:
    named, named_id = sealed_blob(2000)
    complete, complete_id = sealed_blob(2000)
    partial, partial_id = sealed_blob(200_000)
    for data_, blob_id in ((named, named_id), (complete, complete_id), (partial, partial_id)):
        signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data_)}")
        body = data_ if blob_id != partial_id else data_[:5000]
        assert signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/0", body).is_success
    assert live.send(device.batch(device.record(1), ((named_id, len(named)),))).status_code == 200
    other = enrolled(live, org)
    theirs, theirs_id = sealed_blob(2000)
    signed(live, other.signer, "PUT", f"/v1/blobs/{theirs_id}/{len(theirs)}")
    revoke(live, org, device)
    folder = live.server.blob_folder
    assert not (folder / complete_id[:2] / complete_id).exists()
    assert not (folder / "partial" / partial_id).exists()
    assert (folder / named_id[:2] / named_id).read_bytes() == named  # a batch names it
    with Session(live.engine) as session:
        kept = set(session.exec(select(StoredBlob.id)).all())
    assert kept == {named_id, theirs_id}


def test_blobs_no_batch_names_count_against_the_quota_even_when_complete(
    limited: Live, org: Org
) -> None:
    """Finishing an upload frees nothing until a batch names it: otherwise a device could
    upload complete blobs that nothing refers to, one after another, and fill the disk."""
    device = enrolled(limited, org)
    finished = []
    for _ in range(2):
        data_, blob_id = sealed_blob(300)
        signed(limited, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data_)}")
        done = signed(limited, device.signer, "PATCH", f"/v1/blobs/{blob_id}/0", data_)
        assert done.json()["complete"] is True
        finished.append((blob_id, len(data_)))
    _, third = sealed_blob(100)
    refused = signed(limited, device.signer, "PUT", f"/v1/blobs/{third}/100")
    assert refused.status_code == 507, refused.text
    # a batch that names them frees the room they took
    assert limited.send(device.batch(device.record(1), tuple(finished))).status_code == 200
    assert signed(limited, device.signer, "PUT", f"/v1/blobs/{third}/100").status_code == 200
