"""admin verify: an insider's changes to the server's database or blobs are found and named."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from fieldsync.core import crypto, receipt
from fieldsync.core.audit import AuditReport, AuthorReport
from fieldsync.errors import AccessDenied
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.data import DB_FILE
from fieldsync.server.holdings import ServerHoldings
from fieldsync.services import admin, attachments, enrol, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import PASSPHRASE, example
from tests.live import running
from tests.services.conftest import DAY, quick


@dataclass
class Pushed:
    server: data.ServerData
    store: Store
    incident: str  # seq 1: created; seq 3: a photo attached; seq 4: edited
    interview: str  # seq 2

    def sql(self, statement: str, *args: object) -> None:
        with sqlite3.connect(self.server.folder / DB_FILE) as db:
            assert db.execute(statement, args).rowcount >= 1

    def raw(self, seq: int) -> bytes:
        with sqlite3.connect(self.server.folder / DB_FILE) as db:
            return bytes(
                db.execute("SELECT raw FROM stored_entries WHERE seq = ?", (seq,)).fetchone()[0]
            )

    def audit(self, admin_store: Store) -> AuditReport:
        holdings = ServerHoldings(self.server)
        try:
            return admin.verify(admin_store, holdings)
        finally:
            holdings.close()


def device_of(report: AuditReport) -> AuthorReport:
    (device,) = [a for a in report.authors if a.status != "admin"]
    return device


@pytest.fixture
def pushed(store: Store, admin_store: Store, tmp_path: Path) -> Pushed:
    server = data.init(tmp_path / "server", admin.org_keys(admin_store).encode())
    with running(create_app(server)) as url:
        text, shown = admin.make_invite(
            admin_store, "laptop 4", url, valid_ms=DAY, client_for=quick
        )
        enrol.enrol(
            store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick
        )

        def push() -> None:
            sync.push(
                store, client_for=lambda u, s: SyncClient(u, signer=s.identity.signer, attempts=1)
            )

        incident = records.create(store, get_form("incident"), example("incident"))
        interview = records.create(store, get_form("interview"), example("interview"))
        push()
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(crypto.random_bytes(100_000))
        attachments.attach(store, incident, [photo])
        records.edit(store, incident, sets=["victims.total=7"])
        push()
    return Pushed(server, store, incident, interview)


def test_what_was_pushed_verifies_completely(pushed: Pushed, admin_store: Store) -> None:
    report = pushed.audit(admin_store)
    assert report.ok, report.to_json()
    device = device_of(report)
    assert (device.name, device.status, device.enrolment_ok) == ("laptop 4", "active", True)
    assert device.fingerprint == pushed.store.identity.fingerprint
    assert (device.versions, device.last_seq, device.intact_through) == (4, 4, 4)
    assert device.receipts == 2
    assert (report.blobs, report.attachments) == (1, 2)  # the photo, named by seq 3 and seq 4
    assert report.server_key_pinned and report.bodies_opened


def _problems(report: AuditReport) -> list[tuple[int | None, str | None, str]]:
    return [(p.seq, p.record, p.what) for p in device_of(report).problems]


@pytest.mark.parametrize("where", ["header", "ciphertext", "signature"])
def test_a_byte_changed_in_a_stored_version_names_the_record_and_where_the_chain_breaks(
    pushed: Pushed, admin_store: Store, where: str
) -> None:
    raw = bytearray(pushed.raw(2))
    offset = {"header": 40, "ciphertext": len(raw) - 100, "signature": len(raw) - 3}[where]
    raw[offset] ^= 0x01
    pushed.sql("UPDATE stored_entries SET raw = ? WHERE seq = 2", bytes(raw))
    report = pushed.audit(admin_store)
    assert not report.ok
    device = device_of(report)
    assert device.intact_through == 1  # seq 1 still verifies; the chain breaks at seq 2
    first = device.problems[0]
    if where == "header":  # the header names the record: a damaged one may not parse
        assert first.seq == 2
    else:
        assert (first.seq, first.record) == (2, pushed.interview)
    assert "does not verify" in first.what
    # the first push's receipt acknowledged seq 2: the server no longer holds it intact
    assert any("receipt acknowledged seq 2" in p.what for p in device.problems)


def test_the_cli_names_the_record_and_exits_6(
    pushed: Pushed, admin_store: Store, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from fieldsync.cli.main import app

    raw = bytearray(pushed.raw(3))
    raw[-70] ^= 0x80
    pushed.sql("UPDATE stored_entries SET raw = ? WHERE seq = 3", bytes(raw))
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE)
    args = ["admin", "verify", "--data", str(pushed.server.folder), "--home"]
    args += [str(admin_store.home), "--passphrase-file", str(passphrase)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 6, result.output
    assert f"seq 3, record {pushed.incident}" in result.stdout
    assert "the server's data is not intact" in result.stderr


def test_a_changed_org_wrap_means_the_organisation_cannot_read_that_version(
    pushed: Pushed, admin_store: Store
) -> None:
    pushed.sql("UPDATE stored_entries SET org_wrap = ? WHERE seq = 4", bytes(80))
    report = pushed.audit(admin_store)
    assert _problems(report)[0][:2] == (4, pushed.incident)
    assert "cannot read it" in _problems(report)[0][2]
    assert device_of(report).intact_through == 3


def test_a_deleted_last_version_is_found_by_its_receipt_and_the_registry(
    pushed: Pushed, admin_store: Store
) -> None:
    pushed.sql("DELETE FROM stored_entries WHERE seq = 4")
    report = pushed.audit(admin_store)
    whats = " | ".join(p[2] for p in _problems(report))
    assert "receipt acknowledged seq 4" in whats
    assert "registry says it holds this device's versions up to seq 4" in whats
    assert device_of(report).intact_through == 3


def test_a_deleted_middle_version_breaks_the_chain_there(
    pushed: Pushed, admin_store: Store
) -> None:
    pushed.sql("DELETE FROM stored_entries WHERE seq = 2")
    report = pushed.audit(admin_store)
    assert (2, None, "seq 2 is missing: the chain breaks here") in _problems(report)
    assert device_of(report).intact_through == 1


def test_rewritten_bookkeeping_columns_are_named(pushed: Pushed, admin_store: Store) -> None:
    pushed.sql("UPDATE stored_entries SET record = ? WHERE seq = 1", pushed.interview)
    report = pushed.audit(admin_store)
    ((seq, record, what),) = _problems(report)
    assert (seq, record) == (1, pushed.incident)  # from the signed header, not the row
    assert "row does not describe the version it holds" in what


def test_a_key_slipped_into_the_registry_has_no_enrolment(
    pushed: Pushed, admin_store: Store
) -> None:
    intruder = crypto.SigningPair.generate().public.hex()
    with sqlite3.connect(pushed.server.folder / DB_FILE) as db:
        (enrolment,) = db.execute("SELECT enrolment FROM devices").fetchone()
        box_key = crypto.BoxPair.generate().public.hex()  # one device per box key (UNIQUE)
        db.execute(
            "INSERT INTO devices (key, box_key, name, enrolled_ms, status, last_seq, entries, "
            "enrolment) VALUES (?, ?, 'laptop 4', 0, 'active', 0, 0, ?)",
            (intruder, box_key, enrolment),
        )
    report = pushed.audit(admin_store)
    (slipped,) = [a for a in report.authors if a.key == intruder]
    assert not slipped.enrolment_ok
    assert "registered keys are not the ones the device enrolled" in slipped.problems[0].what


def test_an_altered_blob_is_named_with_the_versions_that_need_it(
    pushed: Pushed, admin_store: Store
) -> None:
    (path,) = [
        p for p in (pushed.server.folder / "blobs").rglob("*") if p.is_file() and len(p.name) == 64
    ]
    damaged = bytearray(path.read_bytes())
    damaged[5000] ^= 0x04
    path.write_bytes(bytes(damaged))
    report = pushed.audit(admin_store)
    assert [p.what for p in report.problems] == [
        f"blob {path.name[:12]} was altered: its bytes no longer hash to its id"
    ]
    assert {(p.seq, p.record) for p in device_of(report).problems} == {
        (3, pushed.incident),
        (4, pushed.incident),
    }
    path.unlink()
    assert "missing from the blob folder" in pushed.audit(admin_store).problems[0].what


def test_a_receipt_not_signed_by_the_pinned_server_key_is_named(
    pushed: Pushed, admin_store: Store
) -> None:
    with sqlite3.connect(pushed.server.folder / DB_FILE) as db:
        batch, author = db.execute("SELECT id, author FROM accepted_batches").fetchone()
    forged = receipt.sign(
        crypto.SigningPair.generate(),
        device=author,
        last_seq=2,
        head="0" * 64,
        batch=batch,
        time_ms=0,
    )
    pushed.sql("UPDATE accepted_batches SET receipt = ? WHERE id = ?", forged, batch)
    report = pushed.audit(admin_store)
    (problem,) = device_of(report).problems
    assert "does not verify" in problem.what
    assert device_of(report).receipts == 1


def test_another_organisations_administrator_checks_nothing(pushed: Pushed, tmp_path: Path) -> None:
    admin.create_org(tmp_path / "other", PASSPHRASE, tmp_path / "other.json")
    with Store.open(tmp_path / "other", PASSPHRASE) as other, pytest.raises(AccessDenied):
        pushed.audit(other)
