from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from fieldsync.core.body import Body
from fieldsync.core.ids import new_record_id
from fieldsync.errors import (
    DecryptionFailed,
    RecordNotFound,
    StoreCorrupted,
    StoreExists,
    StoreNotFound,
    StoreWiped,
    UnsupportedFormat,
    WrongPassphrase,
)
from fieldsync.services import attachments, reading, records
from fieldsync.services.forms import get_form
from fieldsync.store import blobs, custody, delivery, integrity, keyvalue
from fieldsync.store.db import SCHEMA_VERSION, make_engine
from fieldsync.store.store import DB_FILE, VAULT_FILE, Store, wipe
from tests.conftest import PASSPHRASE, Endless, example


def add(store: Store, text: str = "x", record: str | None = None) -> tuple[str, str]:
    record = record or new_record_id()
    parents = (
        list(store.index_entry(record).heads) if record in {r.record for r in store.index()} else []
    )
    with store.writer() as writer:
        entry = writer.append(record, parents, Body("incident@1", {"narrative": text}), text)
    return record, entry.id


def test_versions_chain_and_index(store: Store) -> None:
    record, first = add(store, "one")
    _, second = add(store, "two", record)
    other, _ = add(store, "three")
    versions = store.versions(record)
    assert [v.id for v in versions] == [first, second]
    assert versions[1].entry.header.parents == (first,)
    assert versions[1].entry.header.prev == first  # the device chain runs across records
    assert store.versions(other)[0].entry.header.seq == 3
    index = {r.record: r for r in store.index()}
    assert index[record].heads == (second,)
    assert index[record].versions == 2
    assert index[record].summary == "two"
    assert integrity.check(store).ok


def test_a_transaction_that_fails_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.writer() as writer:
        writer.append(new_record_id(), [], Body("incident@1", {}), "")
        raise RuntimeError("crash in the middle of a save")
    assert store.index() == []
    record, _ = add(store)
    assert store.versions(record)[0].entry.header.seq == 1  # the failed seq was not burned


def test_record_prefixes_resolve_uniquely(store: Store) -> None:
    record, _ = add(store)
    assert store.resolve_record(record[:8].upper()) == record
    with pytest.raises(RecordNotFound):
        store.resolve_record("ffffffff")
    with pytest.raises(RecordNotFound, match="too short"):
        store.resolve_record("01")
    with pytest.raises(RecordNotFound):
        store.resolve_record("%%%%")


def test_open_with_the_real_passphrase_and_refuse_a_wrong_one(store_home: Path) -> None:
    before = sorted((p.name, p.stat().st_size) for p in store_home.rglob("*") if p.is_file())
    with pytest.raises(WrongPassphrase):
        Store.open(store_home, "not the passphrase")
    after = sorted((p.name, p.stat().st_size) for p in store_home.rglob("*") if p.is_file())
    assert before == after
    Store.open(store_home, PASSPHRASE).close()


def test_no_store_wiped_store_and_existing_store(tmp_path: Path, store_home: Path) -> None:
    with pytest.raises(StoreNotFound):
        Store.open(tmp_path / "nothing", PASSPHRASE)
    assert not (tmp_path / "nothing").exists()  # a wrong --home creates nothing
    with pytest.raises(StoreExists):
        Store.create(store_home, PASSPHRASE)
    (store_home / VAULT_FILE).unlink()
    with pytest.raises(StoreWiped):
        Store.open(store_home, PASSPHRASE)


def test_passphrase_change_keeps_every_record(store: Store, store_home: Path) -> None:
    record, _ = add(store, "kept")
    blobs.put_blob(store, io.BytesIO(b"attachment"))

    def signed() -> list[tuple[str, bytes]]:
        with sqlite3.connect(store_home / DB_FILE) as db:
            return db.execute("select id, raw from entries order by id").fetchall()

    def blob_files() -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in (store_home / "blobs").rglob("*") if p.is_file()}

    before, blobs_before = signed(), blob_files()
    vault_before = (store_home / VAULT_FILE).read_bytes()
    store.change_passphrase("a brand new passphrase")
    store.close()
    assert (signed(), blob_files()) == (before, blobs_before)  # signed versions and blobs untouched
    assert (store_home / VAULT_FILE).read_bytes() != vault_before
    with pytest.raises(WrongPassphrase):
        Store.open(store_home, PASSPHRASE)
    with Store.open(store_home, "a brand new passphrase") as reopened:
        assert reopened.versions(record)[0].body.answers == {"narrative": "kept"}  # type: ignore[union-attr]


def test_one_damaged_entry_leaves_the_others_readable(store: Store, store_home: Path) -> None:
    damaged, damaged_id = add(store, "to be damaged")
    intact, _ = add(store, "intact")
    with sqlite3.connect(store_home / DB_FILE) as db:
        (stored,) = db.execute("select raw from entries where id=?", (damaged_id,)).fetchone()
        raw = bytearray(stored)
        raw[200] ^= 0x10
        db.execute("update entries set raw=? where id=?", (bytes(raw), damaged_id))
    version = store.versions(damaged)[0]
    assert version.body is None
    assert "damaged" in (version.problem or "")
    assert store.versions(intact)[0].body is not None
    report = integrity.check(store)
    assert not report.ok
    assert any(damaged_id[:12] in p for p in report.problems)


def test_a_truncated_database_is_named(store: Store, store_home: Path) -> None:
    for _ in range(50):
        add(store, "padding " * 200)
    store.close()
    path = store_home / DB_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(StoreCorrupted, match=str(path)):
        with Store.open(store_home, PASSPHRASE) as reopened:
            reopened.index()
            for row in reopened.index():
                reopened.versions(row.record)


def test_garbage_instead_of_a_database_is_named(store_home: Path) -> None:
    (store_home / DB_FILE).write_bytes(b"\x00" * 4096)
    with pytest.raises(StoreCorrupted, match="store.db"):
        Store.open(store_home, PASSPHRASE)


def test_a_newer_schema_is_refused(store: Store, store_home: Path) -> None:
    store.close()
    with sqlite3.connect(store_home / DB_FILE) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(UnsupportedFormat):
        Store.open(store_home, PASSPHRASE)


def test_a_schema_1_store_gains_the_receipts_table_on_opening(
    store: Store, store_home: Path
) -> None:
    record = records.create(store, get_form("incident"), example("incident"))
    store.close()
    with sqlite3.connect(store_home / DB_FILE) as db:  # as fieldsync 0.1 of issue 4 left it
        db.execute("DROP TABLE receipts")
        db.execute("PRAGMA user_version=1")
    with Store.open(store_home, PASSPHRASE) as reopened:
        shown = reading.read(reopened, record).body.answers
        assert shown["narrative"] == example("incident")["narrative"]
        assert custody.receipts_of(reopened, "0" * 64) == []
    with sqlite3.connect(store_home / DB_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_schema_1_admin_store_pulls_again_from_the_start_for_receipts(
    tmp_path: Path,
) -> None:
    home = tmp_path / "admin"
    with Store.create(home, PASSPHRASE, admin=True) as created:
        keyvalue.save_setting(created, "pull", {"after": 1234})
    with sqlite3.connect(home / DB_FILE) as db:
        db.execute("DROP TABLE receipts")
        db.execute("PRAGMA user_version=1")
    with Store.open(home, PASSPHRASE) as reopened:
        assert keyvalue.setting(reopened, "pull") == {"after": 0}
    with Store.open(home, PASSPHRASE) as again:  # once only
        keyvalue.save_setting(again, "pull", {"after": 7})
    with Store.open(home, PASSPHRASE) as last:
        assert keyvalue.setting(last, "pull") == {"after": 7}


def test_a_damaged_vault_is_named(store_home: Path) -> None:
    vault = store_home / VAULT_FILE
    vault.write_bytes(vault.read_bytes()[:-10])
    with pytest.raises(StoreCorrupted, match="vault"):
        Store.open(store_home, PASSPHRASE)


def test_a_vault_from_a_newer_version_is_refused(store_home: Path) -> None:
    vault = store_home / VAULT_FILE
    doc = json.loads(vault.read_bytes())
    doc["version"] = 7
    vault.write_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(UnsupportedFormat):
        Store.open(store_home, PASSPHRASE)


def test_blobs_are_named_by_their_hash_and_tamper_is_detected(store: Store) -> None:
    data = b"evidence " * 50_000
    sealed = blobs.put_blob(store, io.BytesIO(data))
    path = blobs.blob_path(store, sealed.blob_id)
    assert path.name == sealed.blob_id
    assert b"".join(blobs.read_blob(store, sealed.blob_id, sealed.key)) == data
    stored = bytearray(path.read_bytes())
    stored[5000] ^= 1
    path.write_bytes(bytes(stored))
    with pytest.raises(DecryptionFailed):
        b"".join(blobs.read_blob(store, sealed.blob_id, sealed.key))
    path.unlink()
    with pytest.raises(StoreCorrupted, match="missing"):
        b"".join(blobs.read_blob(store, sealed.blob_id, sealed.key))


def test_drafts_are_encrypted_and_removable(store: Store, store_home: Path) -> None:
    keyvalue.save_draft(
        store, "d1", {"answers": {"narrative": "half-typed secret"}, "form": "incident@1"}
    )
    assert keyvalue.drafts(store) == [
        ("d1", {"answers": {"narrative": "half-typed secret"}, "form": "incident@1"})
    ]
    store.close()
    everything = b"".join(p.read_bytes() for p in store_home.rglob("*") if p.is_file())
    assert b"half-typed secret" not in everything
    with Store.open(store_home, PASSPHRASE) as reopened:
        keyvalue.delete_draft(reopened, "d1")
        assert keyvalue.drafts(reopened) == []


def test_wipe_destroys_the_keys(store: Store, store_home: Path) -> None:
    add(store)
    store.close()
    removed = wipe(store_home)
    assert str(store_home / VAULT_FILE) in removed
    assert not (store_home / VAULT_FILE).exists()
    assert not (store_home / DB_FILE).exists()
    with pytest.raises(StoreNotFound):
        Store.open(store_home, PASSPHRASE)


def test_an_entry_filed_under_another_record_is_refused(store: Store, store_home: Path) -> None:
    _first, first_id = add(store, "first")
    second, _ = add(store, "second")
    with sqlite3.connect(store_home / DB_FILE) as db:
        db.execute("update entries set record=? where id=?", (second, first_id))
    versions = store.versions(second)
    assert [v.problem for v in versions if v.problem] == [
        f"version {first_id[:12]} is damaged: version {first_id[:12]} is filed under the "
        "wrong record"
    ]


def test_attaching_a_large_file_uses_constant_memory(store: Store) -> None:
    import tracemalloc

    tracemalloc.start()
    sealed = blobs.put_blob(store, Endless(64 * 1024 * 1024))  # type: ignore[arg-type]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sealed.size == 64 * 1024 * 1024
    assert peak < 4 * 1024 * 1024
    assert sum(len(c) for c in blobs.read_blob(store, sealed.blob_id, sealed.key)) == sealed.size


def test_a_store_held_by_another_process_is_busy_not_corrupt(
    store_home: Path, template_store: tuple[Path, object, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fieldsync.errors import StoreBusy
    from fieldsync.store import db as store_db

    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_S", 0.2)
    _, vault_key, identity = template_store
    store = Store(store_home, store_db.make_engine(store_home / DB_FILE), vault_key, identity)  # type: ignore[arg-type]
    holder = sqlite3.connect(store_home / DB_FILE, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(StoreBusy):
            add(store)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    add(store)  # and once it lets go, saving works
    store.close()


def test_check_names_a_version_missing_from_the_devices_own_chain(
    store: Store, store_home: Path
) -> None:
    for _ in range(3):
        records.create(store, get_form("incident"), example("incident"))
    with sqlite3.connect(store_home / DB_FILE) as db:
        (gone,) = db.execute("select id from entries where seq = 2").fetchone()
        (third,) = db.execute("select id from entries where seq = 3").fetchone()
        db.execute("delete from wraps where entry_id = ?", (gone,))
        db.execute("delete from local_wraps where entry_id = ?", (gone,))
        db.execute("delete from entries where id = ?", (gone,))
    chain = [p for p in integrity.check(store).problems if p.startswith("chain:")]
    assert chain == [
        f"chain: seq 2 of this device is missing (version {third[:12]} at seq 3 follows seq 1)"
    ]


def test_check_names_every_seq_of_a_longer_gap_in_the_devices_own_chain(
    store: Store, store_home: Path
) -> None:
    for _ in range(5):
        records.create(store, get_form("incident"), example("incident"))
    with sqlite3.connect(store_home / DB_FILE) as db:
        gone = [row[0] for row in db.execute("select id from entries where seq in (2, 3)")]
        (fourth,) = db.execute("select id from entries where seq = 4").fetchone()
        for table, column in (
            ("wraps", "entry_id"),
            ("local_wraps", "entry_id"),
            ("entries", "id"),
        ):
            db.executemany(f"delete from {table} where {column} = ?", [(g,) for g in gone])
    chain = [p for p in integrity.check(store).problems if p.startswith("chain:")]
    assert chain == [
        f"chain: seq 2..3 of this device is missing (version {fourth[:12]} at seq 4 follows seq 1)"
    ]


def test_check_names_a_version_of_the_right_seq_from_another_history_of_the_device(
    store: Store, store_home: Path, template_store: tuple[Path, object, object], tmp_path: Path
) -> None:
    """Every seq in place, only the links broken: seq 2 swapped for the seq 2 the same device
    signed in a copy of its store (a backup restored and used, then the two put together)."""
    _, vault_key, identity = template_store
    other_home = tmp_path / "other"
    shutil.copytree(template_store[0], other_home)
    other = Store(other_home, make_engine(other_home / DB_FILE), vault_key, identity)  # type: ignore[arg-type]
    for _ in range(2):
        records.create(other, get_form("interview"), example("interview"))
    other.close()
    for _ in range(3):
        records.create(store, get_form("incident"), example("incident"))
    with sqlite3.connect(store_home / DB_FILE) as db:
        db.execute("attach database ? as other", (str(other_home / DB_FILE),))
        (mine,) = db.execute("select id from entries where seq = 2").fetchone()
        (theirs,) = db.execute("select id from other.entries where seq = 2").fetchone()
        (third,) = db.execute("select id from entries where seq = 3").fetchone()
        for table, column in (
            ("wraps", "entry_id"),
            ("local_wraps", "entry_id"),
            ("entries", "id"),
        ):
            db.execute(f"delete from {table} where {column} = ?", (mine,))
            db.execute(
                f"insert into {table} select * from other.{table} where {column} = ?", (theirs,)
            )
    chain = [p for p in integrity.check(store).problems if p.startswith("chain:")]
    assert chain == [
        f"chain: version {theirs[:12]} (seq 2) does not follow seq 1 of its author",
        f"chain: version {third[:12]} (seq 3) does not follow seq 2 of its author",
    ]


def test_every_file_and_folder_a_store_creates_is_the_owners_alone(tmp_path: Path) -> None:
    existing = tmp_path / "existing"  # a folder the person made, with its own mode
    existing.mkdir(mode=0o755)
    old = os.umask(0)
    try:
        with Store.create(existing, PASSPHRASE) as store:
            record = records.create(store, get_form("incident"), example("incident"))
            attachments.attach(store, record, [write_file(tmp_path / "photo.jpg", b"x" * 5000)])
            modes = {
                str(p.relative_to(existing)): (p.is_dir(), stat.S_IMODE(p.stat().st_mode))
                for p in existing.rglob("*")
            }
    finally:
        os.umask(old)
    assert {"store.db", "store.db-wal", "store.db-shm", "vault", "epochs", "blobs"} <= set(modes)
    assert {n: m for n, (is_dir, m) in modes.items() if m != (0o700 if is_dir else 0o600)} == {}


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_check_passes_a_store_whose_delivered_records_were_wiped_and_counts_what_it_holds(
    store_home: Path, tmp_path: Path
) -> None:
    """A wipe leaves the device's own versions in its chain with no key to open them: that is
    on purpose, and `check` says nothing of it, while it still counts what it looked at."""
    with Store.open(store_home, PASSPHRASE) as store:
        for _ in range(3):
            records.create(store, get_form("incident"), example("incident"))
        kept = records.create(store, get_form("incident"), example("incident"))
        attachments.attach(store, kept, [write_file(tmp_path / "photo.jpg", b"x" * 5000)])
        assert delivery.forget_delivered(store, 3) == (3, 0)
    with Store.open(store_home, PASSPHRASE) as store:
        report = integrity.check(store)
    assert report.problems == []
    assert (report.entries, report.records, report.blobs) == (5, 1, 1)


def test_check_names_a_version_of_a_record_not_wiped_whose_key_is_gone(
    store: Store, store_home: Path
) -> None:
    records.create(store, get_form("incident"), example("incident"))
    with sqlite3.connect(store_home / DB_FILE) as db:
        (lost,) = db.execute("select id from entries where seq = 1").fetchone()
        db.execute("delete from local_wraps where entry_id = ?", (lost,))
    problems = integrity.check(store).problems
    assert len(problems) == 1 and lost[:12] in problems[0]


def test_check_names_every_attachment_missing_or_altered(store: Store, tmp_path: Path) -> None:
    record = records.create(store, get_form("incident"), example("incident"))
    files = [write_file(tmp_path / f"{n}.jpg", bytes([n]) * 5000) for n in range(3)]
    attachments.attach(store, record, files)
    attached = sorted(a.blob for a in reading.read(store, record).body.attachments)
    blobs.blob_path(store, attached[0]).unlink()
    blobs.blob_path(store, attached[1]).unlink()
    altered = blobs.blob_path(store, attached[2])
    altered.write_bytes(altered.read_bytes()[:-1] + b"\x00")
    assert integrity.check(store).problems == [
        f"blob {attached[0][:12]} is missing",
        f"blob {attached[1][:12]} is missing",
        f"blob {attached[2][:12]} does not match its hash",
    ]
