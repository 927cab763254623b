"""Creating, checking and destroying a store."""

from __future__ import annotations

from pathlib import Path

from fieldsync.errors import StoreExists
from fieldsync.store.store import VAULT_FILE, CheckReport, Identity, Store
from fieldsync.store.store import wipe as wipe_store


def refuse_existing(home: Path) -> None:
    """Fail before any prompt if a store is already there."""
    if (home / VAULT_FILE).exists():
        raise StoreExists(f"a store already exists in {home}")


def create_store(home: Path, passphrase: str) -> Identity:
    with Store.create(home, passphrase) as store:
        return store.identity


def require_store_files(home: Path) -> None:
    if not Store.exists(home):
        Store.require(home)


def check(store: Store) -> CheckReport:
    store.discard_partial_blobs()
    return store.check()


def wipe(home: Path) -> list[str]:
    return wipe_store(home)
