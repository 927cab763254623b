"""Creating, checking and destroying a store."""

from __future__ import annotations

from pathlib import Path

from fieldsync.services import reading, sync
from fieldsync.store import blobs, integrity
from fieldsync.store.identity import Identity
from fieldsync.store.integrity import CheckReport
from fieldsync.store.store import Store
from fieldsync.store.store import wipe as wipe_store


def refuse_existing(home: Path) -> None:
    """Fail before any prompt if a store is already there."""
    Store.refuse_existing(home)


def create_store(home: Path, passphrase: str) -> Identity:
    with Store.create(home, passphrase) as store:
        return store.identity


def require_store_files(home: Path) -> None:
    if not Store.exists(home):
        Store.require(home)


def check(store: Store, *, repair: bool = False) -> CheckReport:
    """Verify everything; with ``repair``, first rebuild the record index from the entries."""
    blobs.discard_partial_blobs(store)
    if repair:
        rebuild_index(store)
    return integrity.check(store)


def rebuild_index(store: Store) -> int:
    """Rewrite every record's index row from its signed entries; returns how many."""
    rebuilt = 0
    for record in store.entry_records():
        versions = store.versions(record)
        if all(v.body is None for v in versions):
            continue  # nothing to summarise; check keeps reporting the damage
        view = reading.view_of_versions(record, versions)  # as every device shows it
        summary = view.form.summary(view.body.answers)
        store.replace_index(record, versions, view.body, summary, conflict=view.in_conflict)
        rebuilt += 1
    return rebuilt


def undelivered(home: Path, passphrase: str) -> tuple[int, int]:
    """(versions, attachments) of this device that no server has acknowledged: what a wipe
    now would destroy for good."""
    store = Store.open(home, passphrase)
    try:
        return sync.undelivered(store)
    finally:
        store.close()


def wipe(home: Path) -> list[str]:
    return wipe_store(home)
