"""A disk that fills up, on the device and on the server: a clear error, nothing half-written,
and the work goes through once there is space again.

A real full disk needs a small filesystem, which needs privileges a test machine may not give;
instead each process here runs under RLIMIT_FSIZE (``tests.live.limited``), so the kernel
refuses any write that would grow a file past the limit, with EFBIG, exactly where a full disk
would refuse it with ENOSPC. Both reach the same code paths.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select

from fieldsync.core import words
from fieldsync.server import data
from fieldsync.server.database import make_engine
from fieldsync.server.tables import StoredBlob, StoredEntry
from fieldsync.services import admin
from fieldsync.store.store import Store
from tests.conftest import example, fast_store
from tests.live import CliDevice, ServerProcess, audit_clean

pytestmark = pytest.mark.slow

MB = 1024 * 1024
DAY = 86_400_000


class Device(CliDevice):
    """A documenter's store as real processes, with what these tests ask of it."""

    def new(self, folder: Path, *, limit: int | None = None) -> subprocess.CompletedProcess[str]:
        answers = folder / "incident.json"
        answers.write_text(json.dumps(example("incident")), encoding="utf-8")
        return self.run("new", "incident", "--from-file", str(answers), "--json", limit=limit)

    def pending(self) -> int:
        return int(json.loads(self.ok("status", "--json"))["pending"])

    def largest_file(self) -> int:
        return max(p.stat().st_size for p in self.home.rglob("*") if p.is_file())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Device, Store, data.ServerData, ServerProcess]]:
    with fast_store(tmp_path / "analyst", admin=True) as analyst:
        server = data.init(tmp_path / "server", admin.org_keys(analyst).encode())
        process = ServerProcess(server.folder)
        process.start()
        try:
            text, shown = admin.make_invite(analyst, "laptop", process.url, valid_ms=DAY)
            device = Device(tmp_path / "device")
            device.ok("init")
            device.ok("enroll", text, "--expect-fingerprint", shown["organisation_fingerprint"])
            yield device, analyst, server, process
        finally:
            process.stop()


def stored(server: data.ServerData) -> tuple[int, int, int]:
    """Entries held, distinct entries held, complete blobs."""
    engine = make_engine(server.database_url())
    with Session(engine) as session:
        held = int(session.exec(select(func.count()).select_from(StoredEntry)).one())
        distinct = int(session.exec(select(func.count(col(StoredEntry.id).distinct()))).one())
        blobs = int(
            session.exec(
                select(func.count()).select_from(StoredBlob).where(col(StoredBlob.complete))
            ).one()
        )
    engine.dispose()
    return held, distinct, blobs


def test_disk_full_during_attach_keeps_nothing_half_written_and_attach_works_after(
    world: tuple[Device, Store, data.ServerData, ServerProcess], tmp_path: Path
) -> None:
    device, analyst, server, _ = world
    record = json.loads(device.new(tmp_path).stdout)["record"]
    video = tmp_path / "video.bin"
    video.write_bytes(os.urandom(4 * MB))
    full = device.run("attach", record, str(video), limit=2 * MB)
    assert full.returncode == 7, full.stdout + full.stderr  # DiskFull
    assert "file size limit" in full.stderr and "Nothing from this command was saved" in full.stderr
    assert "Traceback" not in full.stderr
    assert list((device.home / "blobs" / "tmp").iterdir()) == []  # no half-written blob
    device.ok("check")
    assert json.loads(device.ok("show", record, "--json"))["attachments"] == []
    device.ok("attach", record, str(video))  # space again
    device.ok("push")
    assert device.pending() == 0
    audit_clean(analyst, server)


def test_disk_full_while_saving_a_record_saves_nothing_and_the_store_stays_whole(
    world: tuple[Device, Store, data.ServerData, ServerProcess], tmp_path: Path
) -> None:
    device, analyst, server, _ = world
    for _ in range(3):
        assert device.new(tmp_path).returncode == 0
    before = device.pending()
    limit = device.largest_file()  # no file of the store may grow past its largest now
    saved, refused = 0, None
    for _ in range(60):  # the write-ahead log has some room left below the limit; fill it
        done = device.new(tmp_path, limit=limit)
        if done.returncode != 0:
            refused = done
            break
        saved += 1
    assert refused is not None, "the store never ran out of room"
    assert refused.returncode == 7, refused.stdout + refused.stderr  # DiskFull / DiskError
    assert "the disk failed" in refused.stderr or "no space" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    device.ok("check")
    assert device.pending() == before + saved  # the refused record was not half-saved
    assert device.new(tmp_path).returncode == 0  # space again
    device.ok("push")
    assert device.pending() == 0
    audit_clean(analyst, server)


def test_server_disk_full_during_an_upload_is_a_clear_error_and_the_next_push_completes(
    world: tuple[Device, Store, data.ServerData, ServerProcess], tmp_path: Path
) -> None:
    device, analyst, server, process = world
    record = json.loads(device.new(tmp_path).stdout)["record"]
    video = tmp_path / "video.bin"
    video.write_bytes(os.urandom(3 * MB))
    device.ok("attach", record, str(video))
    queued = device.pending()
    process.stop()
    process.start(file_size_limit=1 * MB)  # the server's disk is nearly full
    refused = device.run("push")
    assert refused.returncode == 8, refused.stdout + refused.stderr
    assert "disk is full or failing" in refused.stderr
    assert f"Nothing was lost: {words.count(queued, 'version')} " in refused.stderr
    assert device.pending() == queued
    assert stored(server)[2] == 0  # no blob was kept half-written
    process.stop()
    process.start()  # space again
    device.ok("push")
    assert device.pending() == 0
    held, distinct, blobs = stored(server)
    assert held == distinct == queued and blobs == 1
    audit_clean(analyst, server)


def test_server_database_that_cannot_grow_refuses_batches_whole_and_takes_them_later(
    world: tuple[Device, Store, data.ServerData, ServerProcess], tmp_path: Path
) -> None:
    device, analyst, server, process = world
    answers = tmp_path / "many.jsonl"
    answers.write_text(
        "\n".join(json.dumps(example("interview")) for _ in range(1200)), encoding="utf-8"
    )
    device.ok("import", "interview", str(answers))
    queued = device.pending()
    process.stop()
    largest = max(p.stat().st_size for p in server.folder.rglob("*") if p.is_file())
    process.start(file_size_limit=largest + 256 * 1024)  # room for a batch or so, no more
    refused = device.run("push")
    assert refused.returncode == 8, refused.stdout + refused.stderr
    assert "disk is full or failing" in refused.stderr
    assert "Traceback" not in refused.stderr
    held, distinct, _ = stored(server)
    assert held == distinct < queued  # whole batches or nothing, each entry once
    assert device.pending() == queued - held  # what the server took is what it signed for
    process.stop()
    process.start()
    device.ok("push")
    assert device.pending() == 0
    held, distinct, _ = stored(server)
    assert held == distinct == queued
    audit_clean(analyst, server)
