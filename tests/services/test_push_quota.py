"""push against a server with quotas: within them nothing changes; past them the documenter is
told what happened, and nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldsync.errors import QuotaExceeded
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.limits import Limits
from fieldsync.services import admin, enrol, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from tests.conftest import example
from tests.live import running
from tests.services.conftest import DAY, quick
from tests.services.test_push import attach_file, client, stored_entries

MIB = 1024 * 1024


def test_a_push_past_the_upload_quota_says_so_and_keeps_everything_queued(
    store: Store, admin_store: Store, tmp_path: Path
) -> None:
    server = data.init(tmp_path / "server", admin.org_keys(admin_store).encode())
    small = Limits(open_upload_bytes=2 * MIB)
    app = create_app(server, limits=small)
    with running(app) as url:
        text, shown = admin.make_invite(admin_store, "laptop", url, valid_ms=DAY, client_for=quick)
        fingerprint = shown["organisation_fingerprint"]
        enrol.enrol(store, text, expect_fingerprint=fingerprint, client_for=quick)
        within = records.create(store, get_form("incident"), example("incident"))
        attach_file(store, within, tmp_path, 1 * MIB)
        report = sync.push(store, client_for=lambda u, s: client(u, s))
        assert (report.sent_entries, report.blobs) == (2, 1)  # within the quota: as ever
        past = records.create(store, get_form("incident"), example("incident"))
        attach_file(store, past, tmp_path, 3 * MIB)
        with pytest.raises(QuotaExceeded) as refused:
            sync.push(store, client_for=lambda u, s: client(u, s))
        assert "past the server's limit of 2097152 bytes" in refused.value.message
        assert refused.value.hint is not None and "Nothing was lost" in refused.value.hint
        assert sync.pending(store) == 2  # the record and its attachment stay queued
        assert stored_entries(app.state.engine) == 2
    app.state.engine.dispose()
    # the administrator raises the limit: the next push delivers what waited
    app = create_app(server, limits=Limits(open_upload_bytes=8 * MIB))
    with running(app) as url:  # the same server on another port
        assert sync.push(store, client_for=lambda _u, s: client(url, s)).sent_entries == 2
        assert sync.pending(store) == 0
        assert stored_entries(app.state.engine) == 4
    app.state.engine.dispose()
