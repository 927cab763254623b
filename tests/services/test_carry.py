"""Batches carried on a USB stick: the same checks as over the network."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from fieldsync.core import batch as batch_format
from fieldsync.core import carry
from fieldsync.errors import MalformedData
from fieldsync.server.tables import StoredBlob, StoredEntry
from fieldsync.services import admin, enrol, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.services.conftest import DAY, quick


@pytest.fixture
def carried(store: Store, admin_store: Store, live: tuple[str, object], tmp_path: Path) -> Path:
    text, _ = admin.make_invite(
        admin_store, "offline laptop", live[0], valid_ms=DAY, client_for=quick
    )
    enrol.enrol(store, text, client_for=quick)
    record = records.create(store, get_form("incident"), example("incident"))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bytes(range(256)) * 5000)
    records.attach(store, record, [photo])
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
