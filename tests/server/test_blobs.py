"""Resumable, signed blob uploads against a real server, and batches that reference them."""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from fieldsync.core import blob, crypto, httpsig
from fieldsync.errors import NotFound
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.blobs import BlobStore
from fieldsync.server.limits import Limits
from fieldsync.server.tables import StoredBlob
from fieldsync.services import uploads
from fieldsync.transport.client import SyncClient
from tests.live import running
from tests.server.conftest import NOW, Device, Live, Org, enrol_body, make_invite

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
    assert state == {
        "id": blob_id,
        "size": len(data),
        "offset": len(data),
        "complete": True,
        "busy": False,
    }
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


def open_body(live: Live, signer: crypto.SigningPair, path: str, body: bytes) -> socket.socket:
    """Start a signed PATCH of ``body`` over a raw socket and leave it half sent, the way a
    link dies mid-upload: the caller sends more of it, or closes the socket."""
    headers = httpsig.sign(signer, "PATCH", path, body, NOW // 1000)
    url = httpx.URL(str(live.http.base_url))
    sock = socket.create_connection((url.host, url.port))
    head = [f"PATCH {path} HTTP/1.1", f"Host: {url.host}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    return sock


def offset_of(live: Live, signer: crypto.SigningPair, blob_id: str) -> int:
    return int(signed(live, signer, "GET", f"/v1/blobs/{blob_id}").json()["offset"])


def wait_for_offset(live: Live, signer: crypto.SigningPair, blob_id: str, offset: int) -> None:
    deadline = time.monotonic() + 5
    while offset_of(live, signer, blob_id) != offset:
        assert time.monotonic() < deadline, (
            f"the server never caught up: {offset_of(live, signer, blob_id)}"
        )
        time.sleep(0.02)


def test_a_whole_blob_streams_in_one_request(live: Live, device: Device) -> None:
    data, blob_id = sealed_blob(3_000_000)
    signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}")
    response = signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/0", data)
    assert response.json() == {
        "id": blob_id,
        "size": len(data),
        "offset": len(data),
        "complete": True,
        "busy": False,
    }


def test_a_body_cut_mid_way_keeps_what_arrived_and_the_rest_completes_it(
    live: Live, device: Device
) -> None:
    data, blob_id = sealed_blob(2_000_000)
    signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}")
    sock = open_body(live, device.signer, f"/v1/blobs/{blob_id}/0", data)
    sock.sendall(data[:700_000])
    wait_for_offset(live, device.signer, blob_id, 700_000)
    sock.close()  # the link dies: the server keeps the 700,000 bytes
    wait_for_offset(live, device.signer, blob_id, 700_000)
    rest = signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/700000", data[700_000:])
    assert rest.json()["complete"] is True
    assert (live.server.folder / "blobs" / blob_id[:2] / blob_id).read_bytes() == data


def test_a_second_request_while_one_is_appending_is_told_the_upload_is_busy(
    live: Live, device: Device
) -> None:
    data, blob_id = sealed_blob(1_000_000)
    signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}")
    sock = open_body(live, device.signer, f"/v1/blobs/{blob_id}/0", data)
    sock.sendall(data[:100_000])
    wait_for_offset(live, device.signer, blob_id, 100_000)
    assert signed(live, device.signer, "GET", f"/v1/blobs/{blob_id}").json()["busy"] is True
    busy = signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/100000", data[100_000:])
    assert busy.status_code == 409 and busy.json()["error"] == "UploadBusy"
    sock.close()
    wait_for_offset(live, device.signer, blob_id, 100_000)  # the busy request wrote nothing
    # the server lets go once it notices the close (on the old code too, a GET at once saw the
    # lock still held, one time in three)
    deadline = time.monotonic() + 5
    while signed(live, device.signer, "GET", f"/v1/blobs/{blob_id}").json()["busy"]:
        assert time.monotonic() < deadline, "the closed request never let go of the upload"
        time.sleep(0.02)
    assert upload(live, device.signer, data, blob_id)["complete"] is True


def test_a_body_that_does_not_match_its_signed_digest_is_discarded(
    live: Live, device: Device
) -> None:
    data, blob_id = sealed_blob(600_000)
    signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}")
    upload(live, device.signer, data, blob_id, stop_after=1)
    path = f"/v1/blobs/{blob_id}/{CHUNK}"
    headers = httpsig.sign(device.signer, "PATCH", path, data[CHUNK:], NOW // 1000)
    swapped = data[CHUNK:-1] + bytes([data[-1] ^ 1])  # same length, signed for other bytes
    response = live.http.patch(path, content=swapped, headers=headers)
    assert response.status_code == 400 and "Content-Digest" in response.json()["message"]
    assert offset_of(live, device.signer, blob_id) == CHUNK  # those bytes are gone
    assert upload(live, device.signer, data, blob_id)["complete"] is True


def test_a_body_longer_than_the_rest_of_the_blob_is_refused_and_discarded(
    live: Live, device: Device
) -> None:
    data, blob_id = sealed_blob(300_000)
    signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}")
    too_long = signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/0", data + b"x")
    assert too_long.status_code == 413
    chunked = data + b"x" * 10  # no Content-Length: refused as the bytes arrive

    def pieces() -> Iterator[bytes]:
        yield chunked[:200_000]
        yield chunked[200_000:]

    path = f"/v1/blobs/{blob_id}/0"
    headers = httpsig.sign(device.signer, "PATCH", path, chunked, NOW // 1000)
    assert live.http.patch(path, content=pieces(), headers=headers).status_code == 413
    assert offset_of(live, device.signer, blob_id) == 0
    empty = signed(live, device.signer, "PATCH", path, b"")
    assert empty.status_code == 413
    assert upload(live, device.signer, data, blob_id)["complete"] is True


def test_a_device_waits_out_a_request_whose_link_went_silent_then_resumes(
    server: data.ServerData, device: Device, database_url: str | None
) -> None:
    """A link that dies without a word leaves the server reading a silent body, holding the
    upload; it lets go after its idle limit, and the device's push, told the upload is busy,
    waits and then carries on from what the silent request had delivered."""
    limits = Limits(body_idle_s=1.0)
    app = create_app(server, database_url=database_url, now_ms=lambda: NOW, limits=limits)
    data_, blob_id = sealed_blob(900_000)
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        live = Live(http, app.state.engine, server)
        signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data_)}")
        silent = open_body(live, device.signer, f"/v1/blobs/{blob_id}/0", data_)
        silent.sendall(data_[:300_000])
        wait_for_offset(live, device.signer, blob_id, 300_000)
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

        client = SyncClient(url, signer=device.signer, clock=lambda: NOW / 1000, sleep=sleep)
        with client:
            sent = uploads.upload(client, blob_id, len(data_), lambda o, n: data_[o : o + n])
        silent.close()
    assert waits, "the device was never told the upload was busy"
    assert sent == len(data_) - 300_000  # it resumed after the silent request's bytes
    assert (server.folder / "blobs" / blob_id[:2] / blob_id).read_bytes() == data_


def test_an_upload_renamed_into_place_before_a_crash_is_finished_when_asked(
    live: Live, device: Device
) -> None:
    """Killed between moving the finished file into place and marking its row complete: no
    partial file is left, and nothing to send. Asked where it is, the server checks the file's
    hash and marks it complete (found by the kill -9 test: the device had looped forever)."""
    data, blob_id = sealed_blob(300_000)
    upload(live, device.signer, data, blob_id, stop_after=0)
    final = live.server.folder / "blobs" / blob_id[:2] / blob_id
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(data)  # as the crash left it: renamed, row not updated
    (live.server.folder / "blobs" / "partial" / blob_id).unlink()
    response = signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/0", data)
    assert response.json()["complete"] is True
    wrong, wrong_id = sealed_blob(300_000)
    upload(live, device.signer, wrong, wrong_id, stop_after=0)
    other = live.server.folder / "blobs" / wrong_id[:2] / wrong_id
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(data)  # a file that does not hash to its name is not kept
    (live.server.folder / "blobs" / "partial" / wrong_id).unlink()
    state = signed(live, device.signer, "GET", f"/v1/blobs/{wrong_id}").json()
    assert state == {
        "id": wrong_id,
        "size": len(wrong),
        "offset": 0,
        "complete": False,
        "busy": False,
    }
    assert not other.exists()
    assert upload(live, device.signer, wrong, wrong_id)["complete"] is True


def test_signature_headers_with_bytes_outside_ascii_get_a_4xx_not_a_server_error(
    live: Live, device: Device
) -> None:
    """Found by the fuzz corpus: a Content-Digest holding a byte above 0x7f reached the
    signature base's ASCII encoding and raised, a 500 from the server."""
    data, blob_id = sealed_blob(1000)
    path = f"/v1/blobs/{blob_id}/{len(data)}"
    headers: dict[str, str | bytes] = dict(
        httpsig.sign(device.signer, "PUT", path, b"", NOW // 1000)
    )
    headers["Content-Digest"] = b"sha-256=:\xda" + b"A" * 42 + b"=:"
    response = live.http.put(path, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "MalformedData"
    assert live.count(StoredBlob) == 0


def test_an_upload_another_device_started_cannot_be_appended_to(
    live: Live, device: Device, org: Org
) -> None:
    """Any enrolled device could append to another's upload, at its offset: the blob's hash
    then failed at the end and the owner's upload was discarded."""
    data, blob_id = sealed_blob(600_000)
    upload(live, device.signer, data, blob_id, stop_after=1)
    partial = live.server.folder / "blobs" / "partial" / blob_id
    other = enrolled_device(live, org)
    spoiled = signed(live, other.signer, "PATCH", f"/v1/blobs/{blob_id}/{CHUNK}", b"x" * 1000)
    assert spoiled.status_code == 403, spoiled.text
    assert spoiled.json()["error"] == "AccessDenied"
    assert "belongs to another device" in spoiled.json()["message"]
    assert partial.stat().st_size == CHUNK  # not a byte written
    started = signed(live, other.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data)}")
    assert started.status_code == 403 and "another device" in started.json()["message"]
    assert upload(live, device.signer, data, blob_id)["complete"] is True  # the owner finishes
    # a complete blob is answered, as before, and takes nothing more
    done = signed(live, other.signer, "PATCH", f"/v1/blobs/{blob_id}/{len(data)}", b"x")
    assert done.status_code == 200 and done.json()["complete"] is True
    assert (live.server.folder / "blobs" / blob_id[:2] / blob_id).read_bytes() == data


def test_the_administrator_carrying_a_devices_blob_may_go_on_with_its_upload(
    live: Live, device: Device, org: Org
) -> None:
    """A device that started an upload, then sent its versions by carry file: the
    administrator delivering them finishes the upload the device began."""
    data, blob_id = sealed_blob(600_000)
    upload(live, device.signer, data, blob_id, stop_after=1)
    assert upload(live, org.admin, data, blob_id)["complete"] is True


def enrolled_device(live: Live, org: Org) -> Device:
    made = Device()
    body = enrol_body(make_invite(org, live.server), made.signer, made.box)
    assert live.http.post("/v1/enrol", content=body).status_code == 200
    return made


def test_an_append_that_opened_the_file_before_it_expired_starts_the_upload_again(
    server: data.ServerData, database_url: str | None
) -> None:
    """The expiry locked the partial file, deleted its row and unlinked it; an append that had
    opened the file before, and took the lock after, wrote into the unlinked file and answered
    an offset the server no longer had. Driven step by step: the append opens the file and
    waits for its lock (a state request holds it), expiry runs, then the append goes on."""
    clock = [NOW]
    app = create_app(server, database_url=database_url, now_ms=lambda: NOW)
    engine = app.state.engine
    store = BlobStore(server.blob_folder, Limits(upload_expiry_h=48), lambda: clock[0])
    data_, blob_id = sealed_blob(300_000)
    owner = crypto.SigningPair.generate().public.hex()
    partial = store.partial_path(blob_id)

    async def race() -> None:
        with Session(engine) as session:
            store.create(session, blob_id, len(data_), owner)
        holder = open(partial, "rb")  # noqa: SIM115 - held across the steps
        fcntl.flock(holder, fcntl.LOCK_EX)
        piece = data_[:1000]
        with Session(engine) as appending:
            task = asyncio.create_task(
                store.append(
                    appending, blob_id, 0, digest_of(piece), len(piece), body_of(piece), owner
                )
            )
            while opened_by_this_process(partial) < 2:  # the append has its own handle
                await asyncio.sleep(0.001)
            holder.close()  # the lock is free; the append retries in 5 ms
            clock[0] = NOW + 49 * 3_600_000
            with Session(engine) as sweeping:
                assert store.expire(sweeping) == 1  # runs whole before the append goes on
            with pytest.raises(NotFound, match="expired; it starts again"):
                await task
        with Session(engine) as session:
            assert session.get(StoredBlob, blob_id) is None
            assert not partial.exists()
            assert store.create(session, blob_id, len(data_), owner).offset == 0

    asyncio.run(race())
    engine.dispose()


def digest_of(body: bytes) -> str:
    return httpsig.content_digest_of([body])


async def body_of(body: bytes) -> AsyncIterator[bytes]:
    yield body


def opened_by_this_process(path: Path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if _target(fd) == str(path))


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:
        return ""
