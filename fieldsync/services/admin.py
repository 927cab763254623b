"""The administrator's side: the organisation's keys."""

from __future__ import annotations

from pathlib import Path

from fieldsync.core.org import OrgKeys
from fieldsync.errors import NotAdminStore, OutputPathError
from fieldsync.services.setup import refuse_existing
from fieldsync.store import files
from fieldsync.store.store import Store


def org_keys(store: Store) -> OrgKeys:
    org = store.identity.org_read
    if org is None:
        raise NotAdminStore(f"the store in {store.home} is a documenter's, not an administrator's")
    return OrgKeys(admin_key=store.identity.signer.public.hex(), org_read_key=org.public.hex())


def check_can_create(home: Path, public_out: Path) -> None:
    """Fail before any prompt if either the store or the public-keys file already exists."""
    refuse_existing(home)
    if public_out.exists():
        raise OutputPathError(
            f"{str(public_out)!r} already exists; nothing was created",
            hint="Choose another --public-out, or move that file away.",
        )


def create_org(home: Path, passphrase: str, public_out: Path) -> OrgKeys:
    """An administrator's store holding the organisation's new keys; writes the public ones."""
    check_can_create(home, public_out)
    with Store.create(home, passphrase, admin=True) as store:
        keys = org_keys(store)
    files.write_atomic(public_out, keys.encode() + b"\n")
    return keys
