"""Resumable, signed blob uploads against a real server, and batches that reference them."""

from __future__ import annotations

import io
import time

import httpx

from fieldsync.core import blob, crypto, httpsig
from fieldsync.server.tables import StoredBlob
from tests.server.conftest import NOW, Device, Live

CHUNK = 256 * 1024


def sealed_blob(size: int) -> tuple[bytes, str]:
    result = blob.Sealed(key=blob.new_key())
    data = b"".join(blob.encrypt(io.BytesIO(crypto.random_bytes(size)), result))
    return data, result.blob_id


def signed(
    live: Live, signer: crypto.SigningPair, method: str, path: str, body: bytes = b""
) -> httpx.Response:
    headers = httpsig.sign(signer, method, path, body, NOW // 1000)
    return live.http.request(method, path, content=body, headers=headers)


def upload(
    live: Live, signer: crypto.SigningPair, data: bytes, blob_id: str, stop_after: int | None = None
) -> dict[str, object]:
    state = signed(live, signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}").json()
    sent = 0
    while not state["complete"]:
        if stop_after is not None and sent == stop_after:
            return state
        offset = int(state["offset"])  # type: ignore[call-overload]
        chunk = data[offset : offset + CHUNK]
        response = signed(live, signer, "PATCH", f"/v1/blobs/{blob_id}/{offset}", chunk)
        assert response.status_code == 200, response.text
        state = response.json()
        sent += 1
    return state


def test_a_blob_uploads_in_chunks_and_completes_only_when_its_hash_fits(
    live: Live, device: Device
) -> None:
    data, blob_id = sealed_blob(700_000)
    state = upload(live, device.signer, data, blob_id)
    assert state == {"id": blob_id, "size": len(data), "offset": len(data), "complete": True}
    stored = live.server.folder / "blobs" / blob_id[:2] / blob_id
    assert stored.read_bytes() == data


def test_an_interrupted_upload_resumes_from_the_servers_offset(live: Live, device: Device) -> None:
    data, blob_id = sealed_blob(900_000)
    partway = upload(live, device.signer, data, blob_id, stop_after=2)
    assert partway["offset"] == 2 * CHUNK
    # a new process (or a new day) asks where to continue
    state = signed(live, device.signer, "GET", f"/v1/blobs/{blob_id}").json()
    assert state["offset"] == 2 * CHUNK
    assert upload(live, device.signer, data, blob_id)["complete"] is True


def test_an_upload_whose_last_byte_landed_before_a_crash_is_finished_when_asked(
    live: Live, device: Device
) -> None:
    """The server was killed after writing the last chunk and before marking the blob
    complete: asked where the upload is, it finishes it rather than wait for a chunk that will
    never come (found by the kill -9 test)."""
    data, blob_id = sealed_blob(300_000)
    upload(live, device.signer, data, blob_id, stop_after=0)
    (live.server.folder / "blobs" / "partial" / blob_id).write_bytes(data)  # as the crash left it
    state = signed(live, device.signer, "GET", f"/v1/blobs/{blob_id}").json()
    assert state["complete"] is True
    assert (live.server.folder / "blobs" / blob_id[:2] / blob_id).read_bytes() == data
    wrong, wrong_id = sealed_blob(300_000)
    upload(live, device.signer, wrong, wrong_id, stop_after=0)
    (live.server.folder / "blobs" / "partial" / wrong_id).write_bytes(data)  # bytes of another
    state = signed(live, device.signer, "PUT", f"/v1/blobs/{wrong_id}/{len(wrong)}").json()
    assert state["complete"] is False and state["offset"] == 0  # discarded: start again
    assert upload(live, device.signer, wrong, wrong_id)["complete"] is True


def test_a_chunk_at_the_wrong_offset_is_refused_and_says_where_to_continue(
    live: Live, device: Device
) -> None:
    data, blob_id = sealed_blob(600_000)
    signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}")
    response = signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/{CHUNK}", data[:CHUNK])
    assert response.status_code == 409
    assert "Send from byte 0" in response.json()["hint"]


def test_bytes_that_do_not_hash_to_the_id_are_discarded(live: Live, device: Device) -> None:
    data, blob_id = sealed_blob(300_000)
    tampered = data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]
    signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}")
    offset, last = 0, None
    while offset < len(tampered):
        last = signed(
            live,
            device.signer,
            "PATCH",
            f"/v1/blobs/{blob_id}/{offset}",
            tampered[offset : offset + CHUNK],
        )
        offset += CHUNK
    assert last is not None
    assert last.status_code == 400
    assert "do not hash to the blob's id" in last.json()["message"]
    assert signed(live, device.signer, "GET", f"/v1/blobs/{blob_id}").json()["offset"] == 0
    assert upload(live, device.signer, data, blob_id)["complete"] is True  # then the real one


def test_uploads_need_an_enrolled_devices_signature(live: Live, device: Device) -> None:
    data, blob_id = sealed_blob(1000)
    unsigned = live.http.put(f"/v1/blobs/{blob_id}/{len(data)}")
    assert unsigned.status_code == 400
    stranger = crypto.SigningPair.generate()
    assert signed(live, stranger, "PUT", f"/v1/blobs/{blob_id}/{len(data)}").status_code == 403
    stale = httpsig.sign(
        device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}", b"", NOW // 1000 - 3600
    )
    assert live.http.put(f"/v1/blobs/{blob_id}/{len(data)}", headers=stale).status_code == 400
    assert live.count(StoredBlob) == 0


def test_blob_ids_cannot_name_other_files(live: Live, device: Device) -> None:
    for bad in ("ABCDEF", "ab" * 31, "zz" * 32, "...."):
        response = signed(live, device.signer, "PUT", f"/v1/blobs/{bad}/10")
        assert response.status_code in (400, 404), bad
    encoded = live.http.put("/v1/blobs/..%2F..%2Fserver-key/10")  # no signer would sign it
    assert 400 <= encoded.status_code < 500
    assert live.count(StoredBlob) == 0
    assert (live.server.folder / "server-key").exists()


def test_a_batch_that_names_a_blob_is_accepted_once_the_blob_is_complete(
    live: Live, device: Device
) -> None:
    data, blob_id = sealed_blob(400_000)
    entries = device.record(1)
    raw = device.batch(entries, blobs=((blob_id, len(data)),))
    assert live.send(raw).status_code == 400  # not uploaded yet: nothing stored
    upload(live, device.signer, data, blob_id)
    assert live.send(raw).status_code == 200


def test_the_clock_window_is_the_servers(live: Live, device: Device) -> None:
    assert abs(NOW // 1000 - int(time.time())) > httpsig.WINDOW_S  # the test server's clock
    data, blob_id = sealed_blob(1000)
    now_signed = httpsig.sign(
        device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}", b"", int(time.time())
    )
    response = live.http.put(f"/v1/blobs/{blob_id}/{len(data)}", headers=now_signed)
    assert response.status_code == 400  # signed "now" by the laptop, but the server is elsewhere
