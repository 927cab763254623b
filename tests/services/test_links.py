"""push through a fault-injecting proxy to a real server: links that drop lose nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlmodel import Session, col, func, select

from fieldsync.errors import ServerError, ServerUnreachable
from fieldsync.server.tables import AcceptedBatch, StoredEntry
from fieldsync.services import admin, attachments, enrol, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store import delivery, keyvalue
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.faults.proxy import FaultProxy
from tests.services.conftest import DAY, quick

pytestmark = pytest.mark.slow


@pytest.fixture
def loaded(store: Store, admin_store: Store, live: tuple[str, object], tmp_path: Path) -> Store:
    text, shown = admin.make_invite(
        admin_store, "field laptop", live[0], valid_ms=DAY, client_for=quick
    )
    enrol.enrol(store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick)
    record = records.create(store, get_form("incident"), example("incident"))
    video = tmp_path / "video.bin"
    video.write_bytes(bytes(range(256)) * (3 * 1024 * 1024 // 256))
    attachments.attach(store, record, [video])
    for _ in range(20):
        records.create(store, get_form("interview"), example("interview"))
    return store


def through(proxy: FaultProxy, attempts: int) -> sync.ClientFor:
    def client_for(_url: str, store: Store) -> SyncClient:
        return SyncClient(
            proxy.url, signer=store.identity.signer, attempts=attempts, timeout=10, backoff=0.01
        )

    return client_for


def stored(engine: object) -> int:
    with Session(engine) as session:  # type: ignore[call-overload]
        return int(session.exec(select(func.count()).select_from(StoredEntry)).one())


def test_a_link_that_resets_every_mebibyte_still_delivers_everything_once(
    loaded: Store, live: tuple[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    url, engine = live
    joined = keyvalue.setting(loaded, "enrolment")
    assert joined is not None
    batches = sum(
        len(item.entry.raw) + 84  # an entry, its org wrap and its length in the batch
        for item in delivery.outbox(loaded, 0, [bytes.fromhex(joined["org_read_key"])])
    )
    port = urlparse(url).port
    assert port is not None
    with FaultProxy(port, reset_every=1024 * 1024, server_sees="end") as proxy:
        report = sync.push(loaded, client_for=through(proxy, attempts=10))
    assert report.sent_entries == 22
    assert stored(engine) == 22  # each exactly once
    assert sync.pending(loaded) == 0
    assert proxy.resets >= 2
    payload = report.blob_bytes + batches  # the attachment and the versions, as sent
    ratio = proxy.upstream_bytes / payload
    with capsys.disabled():
        print(
            f"\n[links] reset every 1 MiB: {proxy.resets} resets, {proxy.upstream_bytes} bytes "
            f"sent (HTTP included) for {payload} bytes of payload: ratio {ratio:.3f}"
        )
    assert ratio < 1.1  # the server keeps what arrived of a cut request: little is resent


def test_a_link_that_carries_400_kb_per_connection_still_delivers(
    loaded: Store, live: tuple[str, object]
) -> None:
    url, engine = live
    port = urlparse(url).port
    assert port is not None
    with FaultProxy(port, drop_after=400_000, server_sees="end") as proxy:
        assert sync.push(loaded, client_for=through(proxy, attempts=5)).sent_entries == 22
    assert proxy.resets >= 7
    assert stored(engine) == 22


def test_a_link_that_never_carries_a_request_fails_clearly_and_loses_nothing(
    loaded: Store, live: tuple[str, object]
) -> None:
    url, engine = live
    port = urlparse(url).port
    assert port is not None
    with FaultProxy(port, drop_after=200) as proxy, pytest.raises(ServerUnreachable) as caught:
        sync.push(loaded, client_for=through(proxy, attempts=3))
    assert "Nothing was lost: 22 versions stay queued" in caught.value.message
    assert stored(engine) == 0
    assert sync.push(loaded).sent_entries == 22  # straight to the server: it resumes


def test_a_slow_stalling_link_is_merely_slow(loaded: Store, live: tuple[str, object]) -> None:
    url, engine = live
    port = urlparse(url).port
    assert port is not None
    with FaultProxy(port, trickle=32 * 1024, stall=0.2) as proxy:
        assert sync.push(loaded, client_for=through(proxy, attempts=3)).sent_entries == 22
    assert stored(engine) == 22


def test_an_answer_lost_after_the_server_committed_is_asked_for_again_and_nothing_doubles(
    loaded: Store, live: tuple[str, object]
) -> None:
    url, engine = live
    port = urlparse(url).port
    assert port is not None
    with FaultProxy(port, lose_responses=2) as proxy:
        report = sync.push(loaded, client_for=through(proxy, attempts=5))
    assert proxy.responses_lost == 2  # the server stored those batches; the device never heard
    assert report.receipt is not None and report.receipt.last_seq == 22
    assert stored(engine) == 22
    with Session(engine) as session:  # type: ignore[call-overload]
        batches = int(session.exec(select(func.count()).select_from(AcceptedBatch)).one())
    assert batches == report.batches  # the resent batches got the same receipts, no new rows
    assert sync.pending(loaded) == 0


def test_a_lost_answer_to_a_chunk_resumes_from_the_servers_offset(
    loaded: Store, live: tuple[str, object]
) -> None:
    url, engine = live
    port = urlparse(url).port
    assert port is not None
    with FaultProxy(port, lose_responses=1, to=b"PATCH /v1/blobs") as proxy:
        report = sync.push(loaded, client_for=through(proxy, attempts=5))
    assert proxy.responses_lost == 1  # the server appended that chunk; the device never heard
    assert report.blobs == 1
    assert stored(engine) == 22
    assert sync.pending(loaded) == 0


LINK_MODES = {
    **{f"drop after {n} bytes": {"drop_after": n} for n in (300, 2_000, 9_000, 40_000, 150_000)},
    **{
        f"drop after {n} bytes, server sees the end": {"drop_after": n, "server_sees": "end"}
        for n in (600_000, 1_500_000)
    },
    "random resets": {"reset_randomly": 0.03, "seed": 4},
    "random resets, server sees the end": {"reset_randomly": 0.03, "seed": 5, "server_sees": "end"},
    "trickle and stall": {"trickle": 256 * 1024, "stall": 0.1},
    "answers to batches lost": {"lose_responses": 3, "to": b"POST /v1/batches"},
    "answers to uploads lost": {"lose_responses": 2, "to": b"PATCH /v1/blobs"},
    "answers to upload states lost": {"lose_responses": 2, "to": b"GET /v1/blobs"},
}


@pytest.mark.parametrize("mode", sorted(LINK_MODES))
def test_every_link_fault_ends_complete_or_resumable_never_doubled_or_lost(
    loaded: Store, live: tuple[str, object], mode: str
) -> None:
    """Through the proxy in each of its modes, a push either completes or stops with a clear
    error that says nothing was lost; the next push over a good link completes, and the server
    holds every version exactly once."""
    url, engine = live
    port = urlparse(url).port
    assert port is not None
    options: dict[str, Any] = LINK_MODES[mode]
    stopped: ServerError | None = None
    with FaultProxy(port, **options) as proxy:
        try:
            report = sync.push(loaded, client_for=through(proxy, attempts=3))
        except (ServerUnreachable, ServerError) as exc:
            stopped = exc
    if stopped is None:
        assert report.sent_entries == 22 and sync.pending(loaded) == 0
    else:  # resumable, and it says so
        assert "Nothing was lost" in stopped.message and "stay queued" in stopped.message
        assert stopped.hint and "Run 'fieldsync push' again" in stopped.hint
    sync.push(loaded)  # a good link: whatever was left goes now
    assert sync.pending(loaded) == 0
    with Session(engine) as session:  # type: ignore[call-overload]
        held = int(session.exec(select(func.count()).select_from(StoredEntry)).one())
        distinct = int(session.exec(select(func.count(col(StoredEntry.id).distinct()))).one())
    assert held == distinct == 22
