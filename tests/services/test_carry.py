"""Batches carried on a USB stick: the same checks as over the network."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, func, select

from fieldsync.core import batch as batch_format
from fieldsync.core import carry, receipt
from fieldsync.errors import AccessDenied, MalformedData, ServerError
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.tables import StoredBlob, StoredEntry
from fieldsync.services import admin, attachments, enrol, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store import keyvalue
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.live import running
from tests.services.conftest import DAY, quick


@pytest.fixture
def carried(store: Store, admin_store: Store, live: tuple[str, object], tmp_path: Path) -> Path:
    text, shown = admin.make_invite(
        admin_store, "offline laptop", live[0], valid_ms=DAY, client_for=quick
    )
    enrol.enrol(store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick)
    record = records.create(store, get_form("incident"), example("incident"))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bytes(range(256)) * 5000)
    attachments.attach(store, record, [photo])
    path = tmp_path / "usb" / "carry.fsc"
    path.parent.mkdir()
    assert sync.write_carry(store, path) == (2, 1)
    assert sync.pending(store) == 2  # carried, not yet acknowledged
    return path


def count(engine: object, table: type) -> int:
    with Session(engine) as session:  # type: ignore[call-overload]
        return int(session.exec(select(func.count()).select_from(table)).one())


def deliver(admin_store: Store, path: Path, url: str) -> admin.CarryReport:
    return admin.import_carry(
        admin_store, path, url, client_for=lambda u, **kw: SyncClient(u, attempts=1, **kw)
    )


def test_a_carried_file_delivers_like_a_push_and_twice_adds_nothing(
    carried: Path, admin_store: Store, live: tuple[str, object]
) -> None:
    url, engine = live
    report = deliver(admin_store, carried, url)
    assert (report.blobs, report.accepted, report.versions, report.refused) == (1, 1, 2, [])
    assert count(engine, StoredEntry) == 2
    assert count(engine, StoredBlob) == 1
    again = deliver(admin_store, carried, url)  # the same stick, plugged in twice
    assert again.refused == []
    assert count(engine, StoredEntry) == 2


def test_a_truncated_or_altered_carry_file_is_refused(
    carried: Path, admin_store: Store, live: tuple[str, object], tmp_path: Path
) -> None:
    url, engine = live
    data_ = carried.read_bytes()
    cut = tmp_path / "cut.fsc"
    cut.write_bytes(data_[: len(data_) // 2])
    with pytest.raises(MalformedData, match="truncated"):
        deliver(admin_store, cut, url)
    flipped = tmp_path / "flipped.fsc"
    flipped.write_bytes(data_[:-200] + bytes([data_[-200] ^ 1]) + data_[-199:])  # in the batch
    report = deliver(admin_store, flipped, url)
    assert report.accepted == 0
    assert len(report.refused) == 1
    assert count(engine, StoredEntry) == 0


def test_the_container_knows_its_end(tmp_path: Path) -> None:
    path = tmp_path / "x.fsc"
    path.write_bytes(
        carry.write_start() + carry.header(carry.BATCH, 3) + b"abc" + carry.write_end()
    )
    with open(path, "rb") as handle:
        (item,) = carry.index(handle)
        assert b"".join(carry.read_chunks(handle, item)) == b"abc"
    for broken in (
        b"",
        b"NOTCARRY",
        carry.write_start() + carry.header(carry.BATCH, 10) + b"abc",
        carry.write_start() + carry.write_end() + b"extra",
        carry.write_start() + carry.header(b"Z", 0) + carry.write_end(),
    ):
        path.write_bytes(broken)
        with open(path, "rb") as handle, pytest.raises(MalformedData):
            carry.index(handle)


def test_an_impostor_server_gets_no_carried_batch_and_its_receipts_are_refused(
    carried: Path, admin_store: Store, live: tuple[str, object], tmp_path: Path
) -> None:
    pinned = keyvalue.setting(admin_store, "server")
    assert pinned is not None
    impostor = data.init(tmp_path / "impostor", admin.org_keys(admin_store).encode())
    app = create_app(impostor)
    with running(app) as impostor_url:
        with pytest.raises(AccessDenied, match="another key than the one this store pinned"):
            deliver(admin_store, carried, impostor_url)
        assert count(app.state.engine, StoredBlob) == 0  # nothing was sent to it

        def genuine_key_declared(request: httpx.Request) -> httpx.Response:
            """The impostor serves the real server's receipt key, takes every batch and
            answers with a receipt for it signed by its own key."""
            if request.url.path == "/v1/batches":
                built = batch_format.parse(request.read())
                last = built.entries[-1]
                signed = receipt.sign(
                    impostor.receipt_key,
                    device=built.manifest.author,
                    last_seq=last.header.seq,
                    head=last.id,
                    batch=built.id,
                    time_ms=admin_store.now_ms(),
                )
                return httpx.Response(200, content=signed)
            with httpx.HTTPTransport() as real:
                answer = real.handle_request(request)
                body = answer.read()
            if request.url.path != "/v1/info":
                return httpx.Response(answer.status_code, headers=answer.headers, content=body)
            return httpx.Response(200, json=json.loads(body) | {"server_key": pinned["server_key"]})

        with pytest.raises(ServerError, match="not a valid receipt"):
            admin.import_carry(
                admin_store,
                carried,
                impostor_url,
                client_for=lambda u, **kw: SyncClient(
                    u, attempts=1, transport=httpx.MockTransport(genuine_key_declared), **kw
                ),
            )
    assert keyvalue.setting(admin_store, "server") == pinned
    assert deliver(admin_store, carried, live[0]).accepted == 1  # the real server still is


def test_an_oversized_batch_in_a_carry_file_is_refused_unread_and_the_rest_delivered(
    carried: Path, admin_store: Store, live: tuple[str, object], tmp_path: Path
) -> None:
    """A carried batch may declare up to 16 GiB; no batch can be over 16 MiB. import-file read
    the whole item into memory before the batch's own size check refused it."""
    url, engine = live
    hostile = tmp_path / "hostile.fsc"
    good = carried.read_bytes()[len(carry.write_start()) : -len(carry.write_end())]
    declared = 4 * batch_format.MAX_BATCH_BYTES
    with open(hostile, "wb") as handle:
        handle.write(carry.write_start() + carry.header(carry.BATCH, declared))
        handle.write(b"FSBA" + bytes(declared - 4))
        handle.write(good + carry.write_end())
    tracemalloc.start()
    try:
        report = deliver(admin_store, hostile, url)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < batch_format.MAX_BATCH_BYTES, f"{peak} bytes held at once"
    assert report.refused == [
        f"a carried batch of {declared} bytes is larger than any batch can be "
        f"({batch_format.MAX_BATCH_BYTES}); it was not read"
    ]
    assert (report.blobs, report.accepted, report.versions) == (1, 1, 2)
    assert count(engine, StoredEntry) == 2
