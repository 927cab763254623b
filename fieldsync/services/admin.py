"""The administrator's side: the organisation's keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fieldsync.core import audit, blob, carry, crypto, invite, orglog
from fieldsync.core import batch as batch_format
from fieldsync.core.ids import fingerprint, is_hex32
from fieldsync.core.org import OrgKeys
from fieldsync.core.settings import MemberInvites, Server
from fieldsync.core.wire import DeviceInfo, RevokeAnswer, ServerInfo
from fieldsync.errors import (
    AccessDenied,
    FieldsyncError,
    InputError,
    NotAdminStore,
    OutputPathError,
    ServerError,
    ServerUnreachable,
)
from fieldsync.services import members, sync, uploads
from fieldsync.services.setup import refuse_existing
from fieldsync.store import files, orgkeys, settings
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient


def org_keys(store: Store) -> OrgKeys:
    org = store.identity.org_read
    if org is None:
        raise NotAdminStore(f"the store in {store.home} is a documenter's, not an administrator's")
    return OrgKeys(admin_key=orgkeys.root_admin_key(store), org_read_key=org.public.hex())


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
    repin: str | None = None,
    client_for: Callable[[str], SyncClient] = SyncClient,
    role: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """A signed, one-time invite for a device; returns it and what it names: the server's and
    the organisation's fingerprints, and what became of the server key this store pins
    (``pin_server_key``).

    The server must serve this organisation and sign with the pinned key: an invite is never
    signed for someone else's server, nor for one that changed its key unseen.
    """
    keys = org_keys(store)
    with client_for(server_url) as client:
        info = client.info()
    if info.admin_key != keys.admin_key or info.org_read_key != keys.org_read_key:
        raise AccessDenied(
            f"the server at {server_url} serves another organisation; no invite was made",
            hint="Check the URL, and that the server was set up with this store's org-public.json.",
        )
    server_key, pinning = pin_server_key(
        store, server_url, info, repin=repin, doing="no invite", invite=True
    )
    token = crypto.random_bytes(32)
    if role is not None:  # remembered before the invite exists: only these are certified
        issued = settings.load(store, MemberInvites) or MemberInvites()
        settings.save(store, MemberInvites((*issued.tokens, token.hex())))
    text = invite.issue(
        store.identity.signer,
        token=token,
        successions=_successions(store),
        name=name,
        server=server_url,
        server_key=server_key,
        org_read_key=bytes.fromhex(keys.org_read_key),
        expires_ms=store.now_ms() + valid_ms,
        role=role,
        org_log=_followed_position(store),
    )
    return text, {
        "server_fingerprint": fingerprint(server_key),
        "organisation_fingerprint": keys.fingerprint,
        "server_key_pinned": pinning,
    }


def _successions(store: Store) -> list[bytes]:
    """The succession statements of the log this store followed, oldest first: an invite
    signed by a successor carries them, to show the first admin key named it."""
    state = orgkeys.followed(store)
    held = orgkeys.statements(store)[: state.seq if state else 0]
    return [raw for raw in held if orglog.parse(raw).kind == orglog.SUCCESSION]


def _followed_position(store: Store) -> tuple[int, str] | None:
    """How far this store followed the organisation's log: an invite carries it, so a device
    refuses an older log from its first push on."""
    state = orgkeys.followed(store)
    return (state.seq, state.head) if state is not None and state.head else None


FIRST_USE, KEPT, REPINNED = "first use", "kept", "re-pinned"


def pin_server_key(
    store: Store, url: str, info: ServerInfo, *, repin: str | None, doing: str, invite: bool
) -> tuple[bytes, str]:
    """The receipt key this store trusts for its server, checked against the one the server
    at ``url`` declares; how it stands (``FIRST_USE``, ``KEPT`` or ``REPINNED``).

    The key is pinned the first time and never replaced unseen: a server declaring another
    key is refused, both fingerprints named, unless ``repin`` is that key's fingerprint (the
    administrator checked it with the server's operator). The URL remembered for 'admin
    devices', 'admin pull' and the like is the first one, then that of the last ``invite``.
    """
    declared = info.server_key
    if not is_hex32(declared):
        raise ServerError(f"the server at {url} did not say which key signs its receipts")
    key = bytes.fromhex(str(declared))
    remembered = settings.load(store, Server)
    pinned = None if remembered is None else bytes.fromhex(remembered.server_key)
    if repin is not None and _digits(repin) != _digits(fingerprint(key)):
        raise AccessDenied(
            f"the server at {url} signs with the key of fingerprint {fingerprint(key)}, not "
            f"the one given to --repin-server-key; {doing} was made, nothing was changed",
            hint="Give the fingerprint the server's operator read from 'fieldsync server init'.",
        )
    if pinned is not None and pinned != key and repin is None:
        raise AccessDenied(
            f"the server at {url} signs with another key than the one this store pinned "
            f"(pinned: {fingerprint(pinned)}; declared now: {fingerprint(key)}); {doing} was "
            "made, nothing was changed",
            hint="It may be an impostor: check the URL. If the server really was set up again "
            "with a new key, confirm its fingerprint with its operator, then run again with "
            "--repin-server-key 'FINGERPRINT'. Devices enrolled before keep the old key.",
        )
    if pinned == key and remembered is not None and (remembered.url == url or not invite):
        return key, KEPT
    # the URL for 'admin devices' and 'admin revoke'; the key for pulls, imports and 'verify'
    settings.save(store, Server(url=url, server_key=key.hex()))
    return key, FIRST_USE if pinned is None else (KEPT if pinned == key else REPINNED)


def _digits(text: str) -> str:
    return "".join(text.split())


@dataclass
class CarryReport:
    blobs: int = 0
    accepted: int = 0  # batches the server stored (or already had)
    versions: int = 0
    refused: list[str] = field(default_factory=list)  # why each other batch was refused
    pinning: str = KEPT  # what became of the pinned server key (pin_server_key)
    server_fingerprint: str = ""


def import_carry(
    store: Store,
    path: Path,
    server_url: str,
    *,
    repin: str | None = None,
    client_for: Callable[..., SyncClient] = SyncClient,
) -> CarryReport:
    """Deliver a carry file's blobs and batches to the organisation's server.

    They go through the very endpoints a device uses, so they get exactly the same checks;
    the administrator only signs the blob uploads. A refused batch (a gap, a fork, damage) is
    reported and the rest still go. Receipts are checked against the server key this store
    pinned (``pin_server_key``), never against whatever key the server declares.
    """
    keys = org_keys(store)
    report = CarryReport()
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after a long-lived client
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
    with handle, client_for(server_url, signer=store.identity.signer) as client:
        info = client.info()
        if info.admin_key != keys.admin_key:
            raise AccessDenied(f"the server at {server_url} serves another organisation")
        pinned, report.pinning = pin_server_key(
            store, server_url, info, repin=repin, doing="no delivery", invite=False
        )
        report.server_fingerprint = fingerprint(pinned)
        in_force = bytes.fromhex(sync.follow_org_log(store, client).server_key)
        items = carry.index(handle)
        for item in (i for i in items if i.kind == carry.BLOB):
            blob_id = blob.blob_id_of_pieces(carry.read_chunks(handle, item))

            def read_at(offset: int, count: int, found: carry.Item = item) -> bytes:
                handle.seek(found.offset + offset)  # never past this item into the next
                return handle.read(min(count, found.length - offset))

            uploads.upload(client, blob_id, item.length, read_at)
            report.blobs += 1
        for item in (i for i in items if i.kind == carry.BATCH):
            try:
                raw = carry.read_batch(handle, item)
                built = batch_format.parse(raw)
                sync.verified(client.send_batch(raw), in_force, built)
            except (ServerUnreachable, ServerError):
                raise
            except FieldsyncError as exc:
                report.refused.append(exc.message)
                continue
            report.accepted += 1
            report.versions += len(built.entries)
    return report


def verify(store: Store, holdings: audit.Holdings) -> audit.AuditReport:
    """Re-check everything a server holds against this store's keys (``fieldsync.core.audit``).

    The server key is the one pinned when this store made an invite; a store that never did
    checks receipts against the key the server's own data names, and the report says so.
    """
    keys = org_keys(store)
    if holdings.admin_key != keys.admin_key:
        raise AccessDenied(
            "that server was set up for another organisation; nothing was checked",
            hint="Check the data folder, and that this is the organisation's administrator store.",
        )
    remembered = settings.load(store, Server)
    state = orgkeys.followed(store)
    assert state is not None
    anchors = audit.Anchors(
        admin_key=bytes.fromhex(state.root_admin_key),
        server_key=bytes.fromhex(remembered.server_key) if remembered else None,
        org_reads=tuple(secret.pair for secret in orgkeys.read_keys(store)),
        successors=tuple(bytes.fromhex(key) for key in state.admin_keys[1:]),
        later_receipt_keys=tuple(
            bytes.fromhex(key) for key in (*state.server_keys, state.server_key)[1:]
        ),
    )
    return audit.audit(anchors, holdings)


def server_url(store: Store, given: str | None) -> str:
    if given:
        return given
    remembered = settings.load(store, Server)
    if remembered is None:
        raise InputError("which server? Pass --server URL (it is remembered after an invite)")
    return remembered.url


def devices(
    store: Store, url: str, *, client_for: Callable[..., SyncClient] = SyncClient
) -> tuple[DeviceInfo, ...]:
    org_keys(store)
    with client_for(url, signer=store.identity.signer) as client:
        return client.devices()


def find_device(
    store: Store, url: str, device: str, *, client_for: Callable[..., SyncClient] = SyncClient
) -> DeviceInfo:
    """The one enrolled device whose name is ``device``, or whose key or fingerprint starts
    with it; two that match are refused, by their ids, so the wrong one is never revoked."""
    org_keys(store)
    with client_for(url, signer=store.identity.signer) as client:
        return _one_device(client.devices(), device)


def _one_device(rows: tuple[DeviceInfo, ...], device: str) -> DeviceInfo:
    wanted = device.replace(" ", "").lower()
    matches = [
        d
        for d in rows
        if d.name == device.strip()
        or (
            wanted
            and (d.device.startswith(wanted) or d.fingerprint.replace(" ", "").startswith(wanted))
        )
    ]
    if not matches:
        raise InputError(
            f"{device!r} names no enrolled device; nothing was revoked",
            hint="Give its name, key or fingerprint as 'fieldsync admin devices' lists them.",
        )
    if len(matches) > 1:
        ids = ", ".join(f"{d.device} ({d.name!r})" for d in matches)
        raise InputError(
            f"{device!r} names {len(matches)} enrolled devices: {ids}; nothing was revoked",
            hint="Give more of the key or fingerprint of the one to revoke.",
        )
    return matches[0]


def revoke(
    store: Store, url: str, device: str, *, client_for: Callable[..., SyncClient] = SyncClient
) -> RevokeAnswer:
    """Revoke the one device named ``device`` (``find_device``); a member of staff is also
    named revoked in the organisation's log, so no device or analyst trusts it from now on."""
    org_keys(store)
    with client_for(url, signer=store.identity.signer) as client:
        sync.follow_org_log(store, client)
        members.flush_pending(store, client)  # before the server revokes: the log must follow
        target = _one_device(client.devices(), device).device
        answer = client.revoke(target)
        if answer.device != target:  # the server's word names whom to revoke: never
            raise ServerError(
                f"the server's answer names another key than {target[:12]}, the one revoked; "
                "nothing was named revoked in the organisation's log",
                hint="The server may be dishonest: run 'fieldsync admin verify' on its data.",
            )
        members.revoke(store, client, target)
        return answer
