"""Twenty devices and an analyst pushing and pulling at once: every version acknowledged, no
server error, and the server's holdings audit clean. ``scripts/bench`` reports the latencies of
a longer run; this is the short one every CI run makes."""

from __future__ import annotations

import os
from pathlib import Path

from fieldsync.core.audit import AuditReport
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.holdings import ServerHoldings
from fieldsync.services import admin, pull
from fieldsync.store.store import Store
from tests.conftest import fast_store
from tests.live import running
from tests.load.simulate import simulate

ROUNDS = int(os.environ.get("FIELDSYNC_LOAD_ROUNDS", "3"))  # scripts/soak: 30


def test_twenty_devices_at_once_lose_nothing_and_see_no_server_error(tmp_path: Path) -> None:
    with fast_store(tmp_path / "analyst", admin=True) as admin_store:
        server = data.init(tmp_path / "server", admin.org_keys(admin_store).encode())
        with running(create_app(server)) as url:
            result = simulate(url, admin_store, tmp_path, devices=20, rounds=ROUNDS, per_round=2)
            pull.pull(admin_store)
        audited = _audit(admin_store, server)
    assert result.errors == []
    assert result.server_errors == []
    assert result.pending == 0  # every version the devices hold was acknowledged
    batches = [e for e in result.exchanges if e.path == "/v1/batches"]
    assert len(batches) >= 20 * 3
    assert result.batch_latency(0.99) >= result.batch_latency(0.5) > 0
    assert audited.ok, audited.problem_count
    devices = [a for a in audited.authors if a.status == "active"]
    assert sum(a.versions for a in devices) == result.pushed


def _audit(analyst: Store, server: data.ServerData) -> AuditReport:
    holdings = ServerHoldings(server)
    try:
        return admin.verify(analyst, holdings)
    finally:
        holdings.close()
