"""The administrator's side: the organisation's keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fieldsync.core import invite
from fieldsync.core.org import OrgKeys
from fieldsync.errors import AccessDenied, NotAdminStore, OutputPathError
from fieldsync.services.setup import refuse_existing
from fieldsync.store import files
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient


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


def make_invite(
    store: Store,
    name: str,
    server_url: str,
    *,
    valid_ms: int,
    client_for: Callable[[str], SyncClient] = SyncClient,
) -> tuple[str, dict[str, Any]]:
    """A signed, one-time invite for a device; returns it and what the server said it is.

    The server is asked for its receipt key (the device will pin it) and must serve this
    organisation: an invite is never signed for someone else's server.
    """
    keys = org_keys(store)
    with client_for(server_url) as client:
        info = client.info()
    if info.get("admin_key") != keys.admin_key or info.get("org_read_key") != keys.org_read_key:
        raise AccessDenied(
            f"the server at {server_url} serves another organisation; no invite was made",
            hint="Check the URL, and that the server was set up with this store's org-public.json.",
        )
    server_key = bytes.fromhex(str(info["server_key"]))
    text = invite.issue(
        store.identity.signer,
        name=name,
        server=server_url,
        server_key=server_key,
        org_read_key=bytes.fromhex(keys.org_read_key),
        expires_ms=store.now_ms() + valid_ms,
    )
    return text, info
