"""kill -9 the server (a real ``fieldsync server run`` process) at moments during pushes,
restart it, push again: every version is on the server exactly once and admin verify is clean."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select

from fieldsync.errors import FieldsyncError
from fieldsync.server import data
from fieldsync.server.database import make_engine
from fieldsync.server.holdings import ServerHoldings
from fieldsync.server.tables import StoredEntry
from fieldsync.services import admin, attachments, enrol, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store import delivery
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import PASSPHRASE, example
from tests.live import ServerProcess

pytestmark = pytest.mark.slow

DAY = 86_400_000


def client_for(_url: str, store: Store) -> SyncClient:
    return SyncClient(_url, signer=store.identity.signer, attempts=2, timeout=10, backoff=0.01)


def push_into(store: Store, outcome: list[object]) -> None:
    try:
        outcome.append(sync.push(store, client_for=client_for))
    except FieldsyncError as exc:
        outcome.append(exc)


def test_a_server_killed_at_any_moment_loses_nothing_and_doubles_nothing(
    store: Store, tmp_path: Path
) -> None:
    admin.create_org(tmp_path / "admin", PASSPHRASE, tmp_path / "org.json")
    server = data.init(tmp_path / "server", (tmp_path / "org.json").read_bytes())
    process = ServerProcess(server.folder)
    process.start()
    try:
        with Store.open(tmp_path / "admin", PASSPHRASE) as admin_store:
            text, shown = admin.make_invite(admin_store, "laptop 9", process.url, valid_ms=DAY)
        enrol.enrol(store, text, expect_fingerprint=shown["organisation_fingerprint"])
        picker = random.Random(int(os.environ.get("FIELDSYNC_TEST_SEED", "9")))
        killed_during = []
        for round_number in range(6):
            incident = records.create(store, get_form("incident"), example("incident"))
            attachment = tmp_path / f"video-{round_number}.bin"
            attachment.write_bytes(os.urandom(3 * 1024 * 1024))
            attachments.attach(store, incident, [attachment])
            for _ in range(40):
                records.create(store, get_form("interview"), example("interview"))
            outcome: list[object] = []
            pushing = threading.Thread(target=push_into, args=(store, outcome))
            pushing.start()
            time.sleep(picker.uniform(0.0, 0.6))
            process.kill()
            pushing.join(timeout=120)
            killed_during.append(type(outcome[0]).__name__)
            process.start()
        sync.push(store, client_for=client_for)
        assert sync.pending(store) == 0
    finally:
        if process.process and process.process.poll() is None:
            process.kill()
    local = delivery.own_entries_after(store, 0)
    engine = make_engine(server.database_url())
    with Session(engine) as session:
        held = int(session.exec(select(func.count()).select_from(StoredEntry)).one())
        distinct = int(session.exec(select(func.count(col(StoredEntry.seq).distinct()))).one())
    engine.dispose()
    assert held == distinct == local  # every version once
    with Store.open(tmp_path / "admin", PASSPHRASE) as admin_store:
        holdings = ServerHoldings(server)
        report = admin.verify(admin_store, holdings)
        holdings.close()
    assert report.ok, report.to_json()
    (device,) = [a for a in report.authors if a.status == "active"]
    assert device.intact_through == local
    assert "ServerUnreachable" in killed_during or "ServerError" in killed_during, killed_during
