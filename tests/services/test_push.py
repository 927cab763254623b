"""push against a real server: delivery, resumed uploads, and receipts that are not trusted."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, func, select

from fieldsync.core import batch as batch_format
from fieldsync.core import encoding, httpsig, receipt
from fieldsync.core.wire import BlobState
from fieldsync.errors import RecordNotFound, ServerError, ServerUnreachable, StoreStateError
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.blobs import BlobStore
from fieldsync.server.limits import Limits
from fieldsync.server.tables import StoredEntry
from fieldsync.services import admin, attachments, enrol, reading, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store import blobs, integrity, keyvalue
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.faults.proxy import FaultProxy
from tests.live import running
from tests.services.conftest import DAY, quick


@pytest.fixture
def live(admin_store: Store, tmp_path: Path) -> Iterator[tuple[str, data.ServerData, object]]:
    server = data.init(tmp_path / "server", admin.org_keys(admin_store).encode())
    app = create_app(server)
    with running(app) as url:
        yield url, server, app.state.engine


@pytest.fixture
def enrolled(store: Store, admin_store: Store, live: tuple[str, data.ServerData, object]) -> Store:
    url = live[0]
    text, shown = admin.make_invite(admin_store, "laptop", url, valid_ms=DAY, client_for=quick)
    enrol.enrol(store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick)
    return store


def client(url: str, store: Store, **options: object) -> SyncClient:
    defaults: dict[str, object] = dict(signer=store.identity.signer, attempts=1, timeout=10)
    defaults.update(options)
    return SyncClient(url, **defaults)  # type: ignore[arg-type]


def stored_entries(engine: object) -> int:
    with Session(engine) as session:  # type: ignore[call-overload]
        return int(session.exec(select(func.count()).select_from(StoredEntry)).one())


def attach_file(store: Store, record: str, tmp_path: Path, size: int) -> None:
    path = tmp_path / "video.bin"
    path.write_bytes(bytes(range(256)) * (size // 256))
    attachments.attach(store, record, [path])


def test_push_delivers_versions_and_attachments_then_has_nothing_left(
    enrolled: Store, live: tuple[str, data.ServerData, object], tmp_path: Path
) -> None:
    engine = live[2]
    record = records.create(enrolled, get_form("incident"), example("incident"))
    attach_file(enrolled, record, tmp_path, 2_500_000)
    assert sync.pending(enrolled) == 2
    assert sync.undelivered(enrolled) == (2, 1)  # what `wipe` says it would destroy
    report = sync.push(enrolled, client_for=lambda u, s: client(u, s))
    assert (report.sent_entries, report.batches, report.blobs) == (2, 1, 1)
    assert report.receipt is not None
    assert report.receipt.last_seq == 2
    assert stored_entries(engine) == 2
    assert sync.pending(enrolled) == 0
    assert sync.undelivered(enrolled) == (0, 0)
    assert sync.push(enrolled, client_for=lambda u, s: client(u, s)).sent_entries == 0
    records.edit(enrolled, record, sets=["victims.total=8"])
    assert sync.undelivered(enrolled) == (1, 0)  # its attachment was delivered before
    assert sync.push(enrolled, client_for=lambda u, s: client(u, s)).sent_entries == 1
    assert stored_entries(engine) == 3


MIB = 1024 * 1024


class DiesAfterBytes(httpx.HTTPTransport):
    """A link that dies for good, mid-request, once it has carried ``n`` bytes of upload."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.left <= 0:
            raise httpx.ConnectError("the link dropped", request=request)
        if request.method == "PATCH":
            request.stream = _Cut(request.stream, self)  # type: ignore[arg-type]
        return super().handle_request(request)


class _Cut(httpx.SyncByteStream):
    def __init__(self, inner: object, link: DiesAfterBytes) -> None:
        self.inner, self.link = inner, link

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.inner:  # type: ignore[attr-defined]
            if self.link.left <= 0:
                raise httpx.WriteError("the link dropped mid-upload")
            piece = piece[: self.link.left]
            self.link.left -= len(piece)
            yield piece


def test_a_dropped_link_loses_nothing_and_the_next_push_resumes_the_upload(
    enrolled: Store, live: tuple[str, data.ServerData, object], tmp_path: Path
) -> None:
    engine = live[2]
    record = records.create(enrolled, get_form("incident"), example("incident"))
    attach_file(enrolled, record, tmp_path, 3_000_000)
    (attachment,) = reading.read(enrolled, record).body.attachments
    stored_size = blobs.blob_path(enrolled, attachment.blob).stat().st_size
    # 1 MiB of the upload gets through, then the link is gone for good
    with pytest.raises(ServerUnreachable, match="Nothing was lost: 2 version"):
        sync.push(enrolled, client_for=lambda u, s: client(u, s, transport=DiesAfterBytes(MIB)))
    assert sync.pending(enrolled) == 2
    assert stored_entries(engine) == 0
    report = sync.push(enrolled, client_for=lambda u, s: client(u, s))
    assert report.sent_entries == 2
    # the server kept the MiB that arrived of the cut request; the push sent only the rest
    assert report.blob_bytes == stored_size - MIB


def test_a_link_that_drops_every_mib_still_delivers_and_resends_little(
    enrolled: Store, live: tuple[str, data.ServerData, object], tmp_path: Path
) -> None:
    """Each cut request keeps what arrived, so the upload moves forward on every try and ends
    complete, with few bytes sent twice (the naive way, resending the file, never ends)."""
    record = records.create(enrolled, get_form("incident"), example("incident"))
    attach_file(enrolled, record, tmp_path, 6 * MIB)
    (attachment,) = reading.read(enrolled, record).body.attachments
    stored_size = blobs.blob_path(enrolled, attachment.blob).stat().st_size
    port = int(live[0].rsplit(":", 1)[1])
    with FaultProxy(port, reset_every=MIB, server_sees="end") as proxy:
        report = sync.push(enrolled, client_for=lambda u, s: client(proxy.url, s))
    assert report.sent_entries == 2 and sync.pending(enrolled) == 0
    assert report.blob_bytes == stored_size
    assert proxy.resets >= 5
    # Far from the naive resend of the whole file each time (the figure: scripts/bench)
    assert proxy.upstream_bytes < 1.10 * stored_size


def test_a_cut_request_the_server_has_not_begun_on_is_not_sent_again(
    enrolled: Store,
    live: tuple[str, data.ServerData, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A busy server may begin on a cut request's bytes only after the device, on a new
    connection, has asked where the upload is: the answer must not send the next request from
    an offset about to move (the server refuses it, and its MiB crossed the link for nothing).
    Each append here waits 0.3 s before the server looks at it, as on a loaded machine."""
    real = httpsig.verify_headers

    def slow_to_begin_appends(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "PATCH":
            time.sleep(0.3)
        return real(method, *args, **kwargs)

    monkeypatch.setattr(httpsig, "verify_headers", slow_to_begin_appends)
    record = records.create(enrolled, get_form("incident"), example("incident"))
    attach_file(enrolled, record, tmp_path, 4 * MIB)
    (attachment,) = reading.read(enrolled, record).body.attachments
    stored_size = blobs.blob_path(enrolled, attachment.blob).stat().st_size
    port = int(live[0].rsplit(":", 1)[1])
    with FaultProxy(port, reset_every=MIB, server_sees="end") as proxy:
        report = sync.push(enrolled, client_for=lambda u, s: client(proxy.url, s))
    assert report.blob_bytes == stored_size and sync.pending(enrolled) == 0
    assert proxy.upstream_bytes < 1.10 * stored_size


def test_a_link_reset_at_both_ends_every_mib_still_delivers(
    enrolled: Store, live: tuple[str, data.ServerData, object], tmp_path: Path
) -> None:
    """A reset that reaches the server too makes its kernel drop what it had not yet read, so
    more is resent; the upload still moves forward on every try and completes."""
    record = records.create(enrolled, get_form("incident"), example("incident"))
    attach_file(enrolled, record, tmp_path, 4 * MIB)
    port = int(live[0].rsplit(":", 1)[1])
    with FaultProxy(port, reset_every=MIB) as proxy:
        report = sync.push(enrolled, client_for=lambda u, s: client(proxy.url, s))
    assert report.sent_entries == 2 and sync.pending(enrolled) == 0
    assert proxy.resets >= 4


def test_a_receipt_that_does_not_verify_marks_nothing_delivered(
    enrolled: Store, live: tuple[str, data.ServerData, object]
) -> None:
    record = records.create(enrolled, get_form("interview"), example("interview"))
    real = httpx.HTTPTransport()

    def broken_signature(request: httpx.Request) -> httpx.Response:
        answer = real.handle_request(request)
        if request.url.path != "/v1/batches":
            return answer
        doc = json.loads(answer.read())  # the server's genuine receipt, under the pinned key
        signature = doc["signature"]
        doc["signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
        return httpx.Response(200, content=encoding.encode(doc))

    with real, pytest.raises(ServerError, match="nothing was marked as delivered"):
        sync.push(
            enrolled,
            wipe_after=True,
            client_for=lambda u, s: client(u, s, transport=httpx.MockTransport(broken_signature)),
        )
    assert sync.pending(enrolled) == 1
    assert reading.read(enrolled, record).body.answers == example("interview")
    assert sync.push(enrolled, client_for=lambda u, s: client(u, s)).sent_entries == 1


OTHER = "cd" * 32
# What a receipt signed by the real server key claims, against the batch just sent: each
# differs from an exact answer in one field.
CLAIMS: dict[str, Callable[[batch_format.Batch, str], dict[str, Any]]] = {
    "another batch, this batch's seq and head": lambda b, earlier: {"batch": earlier},
    "another batch, a later seq": lambda b, earlier: {"batch": earlier, "last_seq": 9},
    "this batch, another device": lambda b, earlier: {"device": OTHER},
    "this batch, an earlier seq": lambda b, earlier: {"last_seq": 1},
    "this batch, another head": lambda b, earlier: {"head": OTHER},
}


@pytest.mark.parametrize("claim", list(CLAIMS))
def test_a_genuine_receipt_for_another_batch_marks_nothing_delivered_and_wipes_nothing(
    enrolled: Store, live: tuple[str, data.ServerData, object], claim: str
) -> None:
    """A server (or whoever holds its receipt key) that keeps a batch to itself cannot answer
    with a receipt signed for another batch of the same device, or for something else."""
    server, engine = live[1], live[2]
    records.create(enrolled, get_form("interview"), example("interview"))
    sync.push(enrolled, client_for=lambda u, s: client(u, s))
    delivery = keyvalue.setting(enrolled, "delivery")
    assert delivery is not None
    earlier = receipt.verify(
        delivery["receipt"].encode(), pinned_server_key=server.receipt_key.public
    )
    record = records.create(enrolled, get_form("interview"), example("interview"))
    real = httpx.HTTPTransport()

    def withholding(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/batches":
            return real.handle_request(request)
        built = batch_format.parse(request.read())
        last = built.entries[-1]
        exact = dict(device=built.manifest.author, last_seq=last.header.seq, head=last.id)
        fields = exact | {"batch": built.id} | CLAIMS[claim](built, earlier.batch)
        other = receipt.sign(server.receipt_key, time_ms=enrolled.now_ms(), **fields)
        return httpx.Response(200, content=other)

    with real, pytest.raises(ServerError, match="does not cover this batch"):
        sync.push(
            enrolled,
            wipe_after=True,
            client_for=lambda u, s: client(u, s, transport=httpx.MockTransport(withholding)),
        )
    assert stored_entries(engine) == 1  # the server never stored it
    assert sync.pending(enrolled) == 1
    assert reading.read(enrolled, record).body.answers == example("interview")
    assert sync.push(enrolled, client_for=lambda u, s: client(u, s)).sent_entries == 1


def test_a_bare_200_is_not_a_receipt(
    enrolled: Store, live: tuple[str, data.ServerData, object]
) -> None:
    records.create(enrolled, get_form("interview"), example("interview"))
    real = httpx.HTTPTransport()

    def lying(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/batches":
            return httpx.Response(200, content=b"OK")
        return real.handle_request(request)

    with real, pytest.raises(ServerError, match="nothing was marked as delivered"):
        sync.push(
            enrolled, client_for=lambda u, s: client(u, s, transport=httpx.MockTransport(lying))
        )
    assert sync.pending(enrolled) == 1


def test_push_needs_an_enrolled_device(store: Store) -> None:
    with pytest.raises(StoreStateError, match="not enrolled"):
        sync.push(store)


def test_wipe_after_forgets_exactly_what_the_receipts_cover(
    enrolled: Store, live: tuple[str, data.ServerData, object], tmp_path: Path
) -> None:
    delivered = records.create(enrolled, get_form("incident"), example("incident"))
    attach_file(enrolled, delivered, tmp_path, 300_000)
    (attachment,) = reading.read(enrolled, delivered).body.attachments
    report = sync.push(enrolled, client_for=lambda u, s: client(u, s), wipe_after=True)
    assert (report.wiped_records, report.wiped_attachments) == (1, 1)
    assert [r.record for r in enrolled.index()] == []
    assert not blobs.blob_path(enrolled, attachment.blob).exists()
    with pytest.raises(RecordNotFound, match="delivered and then wiped"):
        reading.read(enrolled, delivered)
    assert all(v.body is None for v in enrolled.versions(delivered))  # no key left to open it
    assert integrity.check(enrolled).ok  # the chain is intact; the missing keys are deliberate
    later = records.create(enrolled, get_form("interview"), example("interview"))
    assert reading.read(enrolled, later).body.answers == example("interview")
    assert sync.push(enrolled, client_for=lambda u, s: client(u, s)).sent_entries == 1


def test_nothing_is_wiped_when_the_push_fails_or_the_receipt_is_not_the_servers(
    enrolled: Store, live: tuple[str, data.ServerData, object]
) -> None:
    record = records.create(enrolled, get_form("interview"), example("interview"))
    with pytest.raises(ServerUnreachable) as caught:
        sync.push(
            enrolled, wipe_after=True, client_for=lambda u, s: client("http://127.0.0.1:9", s)
        )
    assert "Nothing was wiped" in (caught.value.hint or "")
    joined = keyvalue.setting(enrolled, "enrolment")
    assert joined is not None
    keyvalue.save_setting(enrolled, "enrolment", joined | {"server_key": "ab" * 32})
    with pytest.raises(ServerError):
        sync.push(enrolled, wipe_after=True, client_for=lambda u, s: client(u, s))
    assert reading.read(enrolled, record).body.answers == example("interview")


@pytest.mark.parametrize(
    "name",
    ["..\\..\\etc\\passwd", "\x1b[2J\x1b[31mred", "-rf ~", "ا" * 120, "x" * 250, " .. "],
)
def test_hostile_attachment_names_never_reach_the_server(
    enrolled: Store, live: tuple[str, data.ServerData, object], tmp_path: Path, name: str
) -> None:
    server = live[1]
    record = records.create(enrolled, get_form("incident"), example("incident"))
    hostile = tmp_path / name
    hostile.write_bytes(b"evidence " * 1000)
    attachments.attach(enrolled, record, [hostile])
    sync.push(enrolled, client_for=lambda u, s: client(u, s))
    written = [p for p in server.folder.rglob("*") if p.is_file()]
    encoded = name.encode()
    for path in written:
        assert path.resolve().is_relative_to(server.folder.resolve())
        assert encoded not in path.read_bytes()  # the name travels only inside the ciphertext
    blob_files = [p.name for p in written if p.parent.parent.name == "blobs"]
    assert len(blob_files) == 1
    assert all(c in "0123456789abcdef" for c in blob_files[0])
    (attachment,) = reading.read(enrolled, record).body.attachments
    assert attachment.name == name  # kept exactly, for the person, inside the encrypted body


class DropsBeforeBatches(httpx.HTTPTransport):
    """A link that carries the uploads, then dies before any batch crosses."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/batches":
            raise httpx.ConnectError("the link dropped", request=request)
        return super().handle_request(request)


def test_an_attachment_deleted_before_its_batch_arrived_is_uploaded_again_by_the_next_push(
    enrolled: Store, live: tuple[str, data.ServerData, object], tmp_path: Path
) -> None:
    """An upload no batch names is deleted once untouched for the expiry period (48 h): a
    push whose link died after its uploads, run again days later, finds the attachment gone
    and uploads it again before the batch."""
    server = live[1]
    record = records.create(enrolled, get_form("incident"), example("incident"))
    attach_file(enrolled, record, tmp_path, 300_000)
    (attachment,) = reading.read(enrolled, record).body.attachments
    with pytest.raises(ServerUnreachable, match="Nothing was lost: 2 version"):
        sync.push(enrolled, client_for=lambda u, s: client(u, s, transport=DropsBeforeBatches()))
    uploaded = server.blob_folder / attachment.blob[:2] / attachment.blob
    assert uploaded.exists()  # complete, and named by no batch yet
    later_s = time.time() + 49 * 3600
    restarted = create_app(server, now_ms=lambda: int(time.time() * 1000) + 49 * 3_600_000)
    assert not uploaded.exists()  # expired as the server started
    with running(restarted) as url:
        report = sync.push(enrolled, client_for=lambda u, s: client(url, s, clock=lambda: later_s))
    assert (report.sent_entries, report.blobs) == (2, 1)
    assert report.blob_bytes == blobs.blob_path(enrolled, attachment.blob).stat().st_size
    assert uploaded.read_bytes() == blobs.blob_path(enrolled, attachment.blob).read_bytes()
    assert sync.pending(enrolled) == 0
    restarted.state.engine.dispose()


def test_an_upload_that_expires_under_its_next_append_starts_again_within_the_push(
    enrolled: Store, live: tuple[str, data.ServerData, Any], tmp_path: Path
) -> None:
    """The server may delete an upload between the device asking where it is and appending to
    it (expiry; an append that opened the file first is told the same): the append answers
    404, and the push starts the upload again instead of stopping."""
    _, server, engine = live
    record = records.create(enrolled, get_form("incident"), example("incident"))
    attach_file(enrolled, record, tmp_path, 300_000)
    later_ms = lambda: int(time.time() * 1000) + 49 * 3_600_000  # noqa: E731
    expired: list[int] = []

    def expiring_first(url: str, store: Store) -> SyncClient:
        made = client(url, store)
        append = made.blob_append

        def blob_append(*args: Any, **kwargs: Any) -> BlobState:
            if not expired:  # the server's own expiry, run as if 49 h had passed
                with Session(engine) as session:
                    expired.append(
                        BlobStore(server.blob_folder, Limits(), later_ms).expire(session)
                    )
            return append(*args, **kwargs)

        made.blob_append = blob_append  # type: ignore[method-assign]
        return made

    report = sync.push(enrolled, client_for=expiring_first)
    assert expired == [1]
    assert (report.sent_entries, report.blobs) == (2, 1) and sync.pending(enrolled) == 0
