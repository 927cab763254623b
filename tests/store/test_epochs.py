"""The epoch key: the store's own copies of content keys, a wipe cut short, and stores written
before epochs."""

from __future__ import annotations

import contextlib
import resource
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from fieldsync.core import crypto
from fieldsync.errors import DiskError, DiskFull, StoreBusy, StoreCorrupted, WrongPassphrase
from fieldsync.services import reading, records
from fieldsync.services.forms import get_form
from fieldsync.store import delivery, epochs, integrity, keyvalue
from fieldsync.store.db import DB_FILE, LocalWrapRow, WrapRow, make_engine
from fieldsync.store.index import IndexCodec
from fieldsync.store.store import NEW_VAULT_FILE, Store
from tests.conftest import PASSPHRASE, example


def opened(home: Path) -> Store:
    return Store.open(home, PASSPHRASE)


def make_records(home: Path, count: int) -> list[str]:
    with opened(home) as store:
        return [
            records.create(store, get_form("incident"), example("incident")) for _ in range(count)
        ]


def own_wraps(home: Path) -> dict[str, LocalWrapRow]:
    with opened(home) as store, store.session() as session:
        return store.own_wraps(session)


def test_no_version_is_sealed_to_the_devices_own_box_key(store: Store) -> None:
    record = records.create(store, get_form("incident"), example("incident"))
    with store.session() as session:
        box = store.identity.box.public.hex()
        assert session.exec(select(WrapRow).where(WrapRow.reader == box)).all() == []
        (copy,) = store.own_wraps(session).values()
    assert copy.epoch == store.epoch.number
    assert reading.read(store, record).body.answers["narrative"]


def test_a_wipe_cut_short_before_its_commit_drops_the_new_key(store_home: Path) -> None:
    kept = make_records(store_home, 2)
    with opened(store_home) as store:
        old = store.epoch
        slots = store._epoch_file.read()
        store._epoch_file.write(slots.index(None), epochs.fresh(old.number + 1))  # then killed
    with opened(store_home) as store:
        assert [r.record for r in store.index()] == kept
        assert store.epoch == old
        assert integrity.check(store).ok
    assert [e for e in store._epoch_file.read() if e] == [old]


def test_a_wipe_cut_short_after_its_commit_destroys_the_old_key(store_home: Path) -> None:
    first, second = make_records(store_home, 2)
    with opened(store_home) as store:
        old = store.epoch
        kept = {i: store.open_own_wrap(w) for i, w in own_wraps(store_home).items()}
        store.new_epoch(kept, lambda session: None)
        new = store.epoch
        slots = store._epoch_file.read()
        store._epoch_file.write(slots.index(None), old)  # killed before the old key went
    with opened(store_home) as store:
        assert store.epoch == new
        assert [e for e in store._epoch_file.read() if e] == [new]
        assert {r.record for r in store.index()} == {first, second}
        assert integrity.check(store).ok


def test_a_store_written_before_epochs_moves_to_them_when_unlocked(store_home: Path) -> None:
    kept = make_records(store_home, 3)
    with opened(store_home) as store:  # rewrite it as the previous fieldsync left it
        box = store.identity.box.public
        keys = {i: store.open_own_wrap(w) for i, w in own_wraps(store_home).items()}
        before = IndexCodec(store._vault_key)  # the index was under the vault key
        rows = [(before.seal(r), r.record) for r in store.index()]
    epochs_path = store_home / epochs.EPOCHS_FILE
    epochs_path.unlink()
    with sqlite3.connect(store_home / DB_FILE) as db:
        for entry_id, key in keys.items():
            db.execute(
                "INSERT INTO wraps VALUES (?, ?, ?)",
                (entry_id, box.hex(), crypto.wrap_key(box, key)),
            )
        for (nonce, ct), record in rows:
            db.execute(
                "UPDATE records SET index_nonce = ?, index_ct = ? WHERE record = ?",
                (nonce, ct, record),
            )
        db.execute("DROP TABLE local_wraps")
        db.execute("DELETE FROM meta WHERE key IN ('own_wraps', 'epoch', 'vault_key_id')")
        db.execute("PRAGMA user_version=2")
    with opened(store_home) as store:
        assert [(r.record, r.problem) for r in store.index()] == [(r, None) for r in kept]
        assert all(reading.read(store, r).body for r in kept)
        assert integrity.check(store).ok
        with store.session() as session:
            left = session.exec(select(WrapRow).where(WrapRow.reader == box.hex())).all()
            assert left == []
            assert set(store.own_wraps(session)) == set(keys)
    assert epochs_path.stat().st_size == epochs.FILE_BYTES


def test_a_wipe_cut_short_keeps_the_drafts_of_a_store_with_no_record_left(
    store_home: Path,
) -> None:
    with opened(store_home) as store:
        keyvalue.save_draft(store, "d1", {"answers": {"narrative": "half typed"}})
        old = store.epoch
        slots = store._epoch_file.read()
        store._epoch_file.write(slots.index(None), epochs.fresh(old.number + 1))  # then killed
    with opened(store_home) as store:
        assert keyvalue.drafts(store) == [("d1", {"answers": {"narrative": "half typed"}})]


def test_a_wipe_does_not_start_while_another_command_has_the_store_open(
    template_store: tuple[Path, Any, Any], store_home: Path
) -> None:
    """An unfinished 'fieldsync new' in one terminal, 'push --wipe-after' in another: the wipe
    would destroy the key the other goes on writing under, and its record would be lost."""
    _, vault_key, identity = template_store

    def opened() -> Store:
        return Store(store_home, make_engine(store_home / DB_FILE), vault_key, identity)

    with opened() as typing_a_record, opened() as pushing:
        records.create(typing_a_record, get_form("incident"), example("incident"))
        with pytest.raises(StoreBusy, match="another fieldsync command has this store open"):
            delivery.forget_delivered(pushing, 10**9)
        later = records.create(typing_a_record, get_form("incident"), example("incident"))
        assert reading.read(typing_a_record, later).body is not None
    with opened() as alone:
        assert delivery.forget_delivered(alone, 10**9)[0] == 2  # once the other has closed


def test_the_store_does_not_open_while_its_keys_change(
    template_store: tuple[Path, Any, Any], store_home: Path
) -> None:
    _, vault_key, identity = template_store
    with Store(store_home, make_engine(store_home / DB_FILE), vault_key, identity) as store:
        steps = store.passphrase_change("another correct horse battery staple")
        next(steps)  # under way, holding the store alone
        with pytest.raises(StoreBusy, match="changing this store's keys"):
            Store(store_home, make_engine(store_home / DB_FILE), vault_key, identity)
        for _ in steps:
            pass


def test_an_epochs_file_put_back_from_before_a_wipe_is_refused(store_home: Path) -> None:
    """Someone who can write to the disk keeps a copy of HOME/epochs, and after the wipe puts
    it back: its old key opens the wiped records' wraps still in freed pages and WAL frames.
    The store must not go on under it."""
    wiped = make_records(store_home, 2)
    path = store_home / epochs.EPOCHS_FILE
    copied = path.read_bytes()  # before the wipe
    with opened(store_home) as store:
        assert delivery.forget_delivered(store, 10**9)[0] == 2
        kept = records.create(store, get_form("incident"), example("incident"))
    current = path.read_bytes()
    path.write_bytes(copied)
    with pytest.raises(StoreCorrupted) as refused:
        opened(store_home)
    message = refused.value.message
    assert str(path) in message and "older" in message and "epoch 1" in message
    assert "belongs to this store" in (refused.value.hint or "")
    assert path.read_bytes() == copied  # nothing was written over what was found
    path.write_bytes(current)  # the file that belongs to the store: all is as it was
    with opened(store_home) as store:
        assert [r.record for r in store.index()] == [kept]
        assert reading.read(store, kept).body is not None
        assert store.forgotten_records() == set(wiped)
        assert integrity.check(store).ok


@contextlib.contextmanager
def no_room_for_the_wal(store: Store) -> Iterator[None]:
    """A real write failure at the commit: the WAL emptied, then no file may grow past the
    epochs file's size (RLIMIT_FSIZE), so the epoch key's slot is written in place but the
    transaction's second WAL frame is not (EFBIG, as on a full disk)."""
    store.checkpoint()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    before = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (epochs.FILE_BYTES, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, before)


def test_a_wipe_whose_transaction_fails_leaves_the_store_as_it_is_on_disk(
    store_home: Path,
) -> None:
    doomed, kept = make_records(store_home, 2)  # seqs 1 and 2: a wipe up to 1 forgets one
    with opened(store_home) as store:
        old = store.epoch
        with no_room_for_the_wal(store), pytest.raises((DiskError, DiskFull)):
            delivery.forget_delivered(store, 1)
        assert store.epoch == old  # the new key never took: the database is under the old
        assert [e for e in store._epoch_file.read() if e] == [old]
        assert [(r.record, r.problem) for r in store.index()] == [(doomed, None), (kept, None)]
        assert reading.read(store, kept).body is not None
        later = records.create(store, get_form("incident"), example("incident"))
        assert reading.read(store, later).body is not None
        assert delivery.forget_delivered(store, 1) == (1, 0)  # the wipe again, with room
        assert store.epoch.number == old.number + 1
    with opened(store_home) as store:
        assert {r.record for r in store.index()} == {kept, later}
        assert reading.read(store, kept).body is not None
        assert reading.read(store, later).body is not None
        assert integrity.check(store).ok


def test_a_passphrase_change_whose_transaction_fails_leaves_the_store_as_on_disk(
    store_home: Path,
) -> None:
    (record,) = make_records(store_home, 1)
    new = "a passphrase that never took"
    with opened(store_home) as store:
        old = store.epoch
        with no_room_for_the_wal(store), pytest.raises((DiskError, DiskFull)):
            store.change_passphrase(new)
        assert not (store_home / NEW_VAULT_FILE).exists()  # undone: the database is under the old
        assert store.epoch == old and [e for e in store._epoch_file.read() if e] == [old]
        assert reading.read(store, record).body is not None
        later = records.create(store, get_form("incident"), example("incident"))
        assert delivery.forget_delivered(store, 1) == (1, 0)
    with pytest.raises(WrongPassphrase):
        Store.open(store_home, new)
    with opened(store_home) as store:
        assert [r.record for r in store.index()] == [later]
        assert reading.read(store, later).body is not None
        assert integrity.check(store).ok
