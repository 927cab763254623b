"""A server restored from an older backup, the way docs/deploy.md says to back up and restore,
on SQLite and on PostgreSQL.

A device records and pushes, the server is backed up, the device pushes more, and the server
is lost. The restored server holds less than the device has receipts for: the device's next push
is refused and says why, without changing anything; ``push --after-restore`` sends everything
the backup lacks, attachments too; the administrator's pull notices that the feed it had read
was rewritten and reads it again from the start; and ``admin verify`` is clean.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from fieldsync.cli.main import app as cli
from fieldsync.errors import ServerBehind, StoreStateError
from fieldsync.server import data
from fieldsync.server.holdings import ServerHoldings
from fieldsync.services import admin, attachments, enrol, pull, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store import keyvalue
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example, fast_store
from tests.live import ServerProcess
from tests.server.postgres import fresh_postgres

pytestmark = pytest.mark.slow

DAY = 86_400_000


def client_for(url: str, store: Store) -> SyncClient:
    return SyncClient(url, signer=store.identity.signer, attempts=2, timeout=10, backoff=0.01)


@contextmanager
def database(kind: str) -> Iterator[str | None]:
    """None: SQLite in the data folder; else an empty PostgreSQL database."""
    if kind == "sqlite":
        yield None
        return
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        if os.environ.get("CI"):
            raise AssertionError("CI must have PostgreSQL's pg_dump and pg_restore")
        pytest.skip("PostgreSQL's pg_dump and pg_restore are not installed")
    with fresh_postgres(migrated=False) as url:
        yield url


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def back_up(server: data.ServerData, url: str | None, into: Path) -> None:
    """docs/deploy.md, "Backups": the key and server.json, the database, the blobs."""
    into.mkdir()
    for name in (data.KEY_FILE, data.CONFIG_FILE):
        shutil.copy2(server.folder / name, into / name)
    shutil.copytree(server.blob_folder, into / "blobs", ignore=shutil.ignore_patterns("partial"))
    if url is None:  # SQLite's online backup, as `sqlite3 server.db ".backup FILE"` does
        with (
            sqlite3.connect(server.folder / data.DB_FILE) as live,
            sqlite3.connect(into / data.DB_FILE) as copy,
        ):
            live.backup(copy)
        return
    subprocess.run(["pg_dump", "-Fc", "-f", str(into / "server.dump"), libpq(url)], check=True)


def restore(backup: Path, folder: Path, url: str | None) -> data.ServerData:
    shutil.copytree(backup, folder, ignore=shutil.ignore_patterns("server.dump"))
    if url is not None:
        command = ["pg_restore", "--no-owner", "-d", libpq(url), str(backup / "server.dump")]
        subprocess.run(command, check=True)
    return data.load(folder)


def work(store: Store, folder: Path, name: str) -> str:
    """An incident with an attachment, and two interviews; returns the incident."""
    incident = records.create(store, get_form("incident"), example("incident"))
    photo = folder / f"{name}.jpg"
    photo.write_bytes(name.encode() * 50_000)
    attachments.attach(store, incident, [photo])
    for _ in range(2):
        records.create(store, get_form("interview"), example("interview"))
    return incident


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_server_restored_from_an_older_backup_gets_back_what_devices_hold(
    kind: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        analyst = stack.enter_context(fast_store(tmp_path / "admin", admin=True))
        devices = [stack.enter_context(fast_store(tmp_path / f"device-{n}")) for n in range(2)]
        url = stack.enter_context(database(kind))
        server = data.init(tmp_path / "server", admin.org_keys(analyst).encode(), url)
        process = ServerProcess(server.folder, database_url=url)
        process.start()
        stack.callback(process.stop)
        for n, device in enumerate(devices):
            text, shown = admin.make_invite(analyst, f"laptop {n}", process.url, valid_ms=DAY)
            enrol.enrol(device, text, expect_fingerprint=shown["organisation_fingerprint"])

        made = []
        for n, device in enumerate(devices):
            made.append(work(device, tmp_path, f"before-{n}"))
            sync.push(device, client_for=client_for)
        pull.pull(analyst, client_for=client_for)
        back_up(server, url, tmp_path / "backup")
        for n, device in enumerate(devices):  # delivered and pulled, then lost with the server
            made.append(work(device, tmp_path, f"after-{n}"))
            sync.push(device, client_for=client_for)
        pull.pull(analyst, client_for=client_for)
        delivered = [sync.delivered_seq(d) for d in devices]

        process.stop()  # the server is lost
        shutil.rmtree(server.folder)
        new_url = stack.enter_context(database(kind))
        restored = restore(tmp_path / "backup", tmp_path / "restored", new_url)
        options = ["--database-url", new_url] if new_url else []
        migrated = CliRunner().invoke(
            cli, ["server", "migrate", "--data", str(restored.folder), *options]
        )
        assert migrated.exit_code == 0 and "already at" in migrated.output, migrated.output
        process.folder = restored.folder  # the same address: the devices' invites name it
        process.options = options
        process.start()

        for n, device in enumerate(devices):
            made.append(records.create(device, get_form("interview"), example("interview")))
            with pytest.raises(ServerBehind) as refused:
                sync.push(device, client_for=client_for)
            assert refused.value.hint is not None and "--after-restore" in refused.value.hint
            assert sync.delivered_seq(device) == delivered[n]  # nothing changed on the device
        for device in reversed(devices):  # in another order than before: new positions
            report = sync.push(device, client_for=client_for, after_restore=True)
            assert sync.pending(device) == 0
            assert report.blobs == 1  # the attachment the backup lacked went up again

        pulled = pull.pull(analyst, client_for=client_for)
        assert pulled.restarted  # its place in the old feed means nothing in the new one
        assert set(made) <= {entry.record for entry in analyst.index()}
        holdings = ServerHoldings(restored, new_url)
        try:
            audited = admin.verify(analyst, holdings)
        finally:
            holdings.close()
        assert audited.ok, audited.to_json()
        intact = sorted(a.intact_through for a in audited.authors if a.status == "active")
        assert intact == sorted(sync.delivered_seq(d) for d in devices)


@dataclass
class OneDevice:
    analyst: Store
    device: Store
    server: data.ServerData
    process: ServerProcess


@pytest.fixture
def one_device(tmp_path: Path) -> Iterator[OneDevice]:
    """An administrator, a server process on SQLite, and one enrolled device."""
    with ExitStack() as stack:
        analyst = stack.enter_context(fast_store(tmp_path / "admin", admin=True))
        device = stack.enter_context(fast_store(tmp_path / "device"))
        server = data.init(tmp_path / "server", admin.org_keys(analyst).encode())
        process = ServerProcess(server.folder)
        process.start()
        stack.callback(process.stop)
        text, shown = admin.make_invite(analyst, "laptop", process.url, valid_ms=DAY)
        enrol.enrol(device, text, expect_fingerprint=shown["organisation_fingerprint"])
        yield OneDevice(analyst, device, server, process)


def test_after_restore_changes_nothing_when_the_server_lost_nothing(
    one_device: OneDevice, tmp_path: Path
) -> None:
    analyst, device = one_device.analyst, one_device.device
    work(device, tmp_path, "once")
    sync.push(device, client_for=client_for)
    seq = sync.delivered_seq(device)
    report = sync.push(device, client_for=client_for, after_restore=True)
    assert (report.sent_entries, sync.delivered_seq(device)) == (0, seq)
    assert keyvalue.setting(device, "delivery_before_restore") is None
    first = pull.pull(analyst, client_for=client_for)
    assert not pull.pull(analyst, client_for=client_for).restarted
    again = pull.pull(analyst, client_for=client_for, from_start=True)  # admin pull --from-start
    assert (again.received, again.held) == (0, first.received)


def test_after_restore_refuses_when_the_lost_versions_were_wiped_from_the_device(
    one_device: OneDevice, tmp_path: Path
) -> None:
    device, server, process = one_device.device, one_device.server, one_device.process
    work(device, tmp_path, "kept")
    sync.push(device, client_for=client_for)
    back_up(server, None, tmp_path / "backup")
    work(device, tmp_path, "wiped")
    sync.push(device, client_for=client_for, wipe_after=True)
    delivered = sync.delivered_seq(device)
    process.stop()
    restored = restore(tmp_path / "backup", tmp_path / "restored", None)
    process.folder = restored.folder
    process.start()
    records.create(device, get_form("interview"), example("interview"))
    with pytest.raises(StoreStateError, match="wiped from this device") as refused:
        sync.push(device, client_for=client_for, after_restore=True)
    assert refused.value.hint is not None and "backup" in refused.value.hint
    assert sync.delivered_seq(device) == delivered  # nothing moved
    assert keyvalue.setting(device, "delivery_before_restore") is None
