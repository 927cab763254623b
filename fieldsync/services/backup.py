"""The organisation's secrets backed up under K-of-N shares, and an administrator's store made
again from them (``admin backup``, ``admin recover``; docs/deploy.md, "Backup and recovery").

A backup is sealed under a new random key (core/backup.py), split into shares (core/shares.py)
and given to the server, which keeps the newest; the key stays in this store (the sealed
``backup_key`` setting), so that ``refresh`` re-seals the backup after a read-key rotation and
the custodians' shares still open it. Write ordering: the shares are handed out only after
the server kept the backup (and the ``--out`` file was written) and the key was saved; a
failure before leaves the backup the server held before, which the earlier shares open.

Recovery checks everything before it creates anything: the shares combine, the backup opens
with their key, it is the server's organisation's. The store is then made in a hidden folder
beside ``home`` and renamed into place: a failure leaves no half-made store.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fieldsync.core import backup, crypto, orglog, shares
from fieldsync.core.bundle import ReadSecret
from fieldsync.core.ids import fingerprint
from fieldsync.core.org import OrgKeys
from fieldsync.core.settings import BackupKey
from fieldsync.core.wire import BackupStored, ServerInfo
from fieldsync.errors import (
    AccessDenied,
    InputError,
    IntegrityError,
    MalformedData,
    OutputPathError,
    StoreExists,
)
from fieldsync.services import admin, sync
from fieldsync.store import files, orgkeys, settings
from fieldsync.store.identity import Identity
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient


@dataclass(frozen=True)
class Made:
    """A backup made: its shares (each with its check code), kept by the server."""

    shares: list[str]
    codes: list[str]
    threshold: int
    server_url: str
    stored: BackupStored
    read_keys: int
    out: Path | None = None

    def __repr__(self) -> str:  # never print a share
        return f"Made({self.threshold} of {len(self.shares)}, {self.server_url})"


def make_backup(
    store: Store,
    shares_count: int,
    threshold: int,
    client: SyncClient | None = None,
    *,
    out: Path | None = None,
    server_url: str | None = None,
) -> Made:
    """A new backup key split into ``shares_count`` shares, ``threshold`` of which open the
    backup; the sealed backup given to the server (and written to ``out``). Each new backup
    replaces the last on the server: the shares of the last no longer open what it serves."""
    admin.org_keys(store)
    shares.check_counts(threshold, shares_count)
    if out is not None and out.exists():
        raise OutputPathError(
            f"{str(out)!r} already exists; no backup was made",
            hint="Choose another --out: an older backup file is what its own shares open.",
        )
    url = client.base_url if client is not None else admin.server_url(store, server_url)
    key = backup.new_key()
    words = shares.split(key, threshold, shares_count)
    sealed = seal(store, key)
    with _client(store, url, client) as opened:
        stored = _upload(store, opened, sealed, doing="no backup")
    if out is not None:
        files.write_atomic(out, sealed + b"\n")
    settings.save(store, BackupKey(key.hex(), threshold, shares_count, store.now_ms()))
    return Made(
        shares=words,
        codes=[shares.check_code(w) for w in words],
        threshold=threshold,
        server_url=url,
        stored=stored,
        read_keys=len(orgkeys.read_keys(store)),
        out=out,
    )


def refresh(store: Store, client: SyncClient | None = None) -> BackupStored | None:
    """The backup sealed again with what this store holds now (a new read key), under the key
    the custodians' shares make, and given to the server; None if no backup was ever made."""
    kept = settings.load(store, BackupKey)
    if kept is None:
        return None
    sealed = seal(store, bytes.fromhex(kept.key))
    url = client.base_url if client is not None else admin.server_url(store, None)
    with _client(store, url, client) as opened:
        return _upload(store, opened, sealed, doing="the backup was not refreshed")


def seal(store: Store, key: bytes) -> bytes:
    """What this store holds of the organisation's secrets, sealed under ``key``."""
    state = orgkeys.followed(store)
    held = backup.Secrets(
        admin_seed=_admin_seed(store),
        read_keys=tuple((k.epoch, k.pair.secret) for k in orgkeys.read_keys(store)),
        org_seq=state.seq if state else 0,
        org_head=state.head if state else None,
        pending=orgkeys.pending(store),
    )
    return backup.seal(key, _root_admin_key(store), held)


def _admin_seed(store: Store) -> bytes:
    """The admin key in force; the successor a pending succession names, which recovery
    announces (the backup holds one admin key: the one the organisation goes on with)."""
    pending = orgkeys.pending(store)
    statement = orglog.parse(pending) if pending is not None else None
    if statement is not None and statement.kind == orglog.SUCCESSION:
        named = statement.fields["admin_key"]
        held = {k.public.hex(): k for k in orgkeys.admin_keys(store)}
        return held[named].seed
    return store.identity.signer.seed


def _root_admin_key(store: Store) -> str:
    return orgkeys.root_admin_key(store)


@contextlib.contextmanager
def _client(store: Store, url: str, given: SyncClient | None) -> Iterator[SyncClient]:
    if given is not None:
        yield given
        return
    with SyncClient(url, signer=store.identity.signer) as made:
        yield made


def _upload(store: Store, client: SyncClient, sealed: bytes, *, doing: str) -> BackupStored:
    """To the organisation's own server only, under the receipt key this store pinned."""
    info = client.info()
    if info.admin_key != _root_admin_key(store):
        raise AccessDenied(
            f"the server at {client.base_url} serves another organisation; nothing was sent",
            hint="Check the URL, and that the server was set up with this store's org-public.json.",
        )
    admin.pin_server_key(store, client.base_url, info, repin=None, doing=doing, invite=False)
    sync.follow_org_log(store, client)  # a stale copy of the store must not replace a backup
    orgkeys.require_every_read_key(store, doing="nothing was sent")
    return client.put_backup(sealed)


# --- recovery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """A backup opened with the shares' key and checked, before anything is created."""

    admin_key: str
    secrets: backup.Secrets
    server_url: str | None
    info: ServerInfo | None

    @property
    def org(self) -> OrgKeys:
        return OrgKeys(self.admin_key, crypto.BoxPair(self.secrets.read_keys[0][1]).public.hex())


@dataclass(frozen=True)
class Recovered:
    home: Path
    org: OrgKeys
    read_keys: int
    org_seq: int
    server_url: str | None
    server_fingerprint: str | None
    public_out: Path | None


def check_can_recover(
    home: Path, public_out: Path | None, server_url: str | None, backup_file: Path | None
) -> None:
    """Refuse, before any share or passphrase is asked for, what recovery cannot do."""
    if server_url is None and backup_file is None:
        raise InputError(
            "where is the backup? Pass --server URL (the organisation's server keeps it) or "
            "--backup-file FILE (written by 'admin backup --out')"
        )
    _check_room(home, public_out)


def _check_room(home: Path, public_out: Path | None) -> None:
    Store.refuse_existing(home)
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise StoreExists(
            f"{home} is not empty; recovery makes a new store in a folder of its own",
            hint="Nothing was created. Pass --home with a new or empty folder.",
        )
    if public_out is not None and public_out.exists():
        raise OutputPathError(
            f"{str(public_out)!r} already exists; nothing was created",
            hint="Choose another --public-out, or move that file away.",
        )


def open_backup(
    given: list[str], *, server_url: str | None = None, backup_file: Path | None = None
) -> Opened:
    """The shares combined, the backup fetched (from ``backup_file`` if given, else from the
    server) and opened, and checked against the server's organisation when one is named."""
    key = shares.combine(given)
    info = None
    if server_url is not None:
        with SyncClient(server_url) as client:
            info = client.info()
            raw = None if backup_file is not None else client.backup()
    if backup_file is not None:
        sealed = _parsed(_read(backup_file), f"the backup file {str(backup_file)!r}")
    else:
        assert raw is not None
        sealed = _parsed(raw, f"what the server at {server_url} serves as the backup")
    held = backup.open_sealed(key, sealed)
    opened = Opened(sealed.admin_key, held, server_url, info)
    if info is not None and (
        info.admin_key != opened.org.admin_key or info.org_read_key != opened.org.org_read_key
    ):
        raise AccessDenied(
            f"the server at {server_url} serves another organisation than this backup's "
            f"(fingerprint {opened.org.fingerprint}); nothing was created",
            hint="Check the URL: recover with the server this organisation's devices use.",
        )
    return opened


def _parsed(raw: bytes, what: str) -> backup.Sealed:
    try:
        return backup.parse(raw)
    except MalformedData as exc:
        raise MalformedData(
            f"{what} is not a sealed backup of fieldsync ({exc.message}); nothing was created",
            hint="Check the file or the server's URL.",
        ) from exc


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(backup.MAX_BACKUP + 2)
    except OSError as exc:
        raise InputError(f"cannot read the backup file {str(path)!r}: {exc.strerror}") from exc
    return data[:-1] if data.endswith(b"\n") else data


def _follow_as_backed_up(store: Store, url: str, held: backup.Secrets) -> None:
    """The organisation's log, which must reach what the lost store had followed when the
    backup was last sealed (a server restored from before it, or hiding a rotation, is
    refused: ``RolledBack``), and announce no read key the backup lacks (an older backup
    served in place of the newest)."""
    with SyncClient(url, signer=store.identity.signer) as client:
        # the announcement the lost store made first (the same one again changes nothing): a
        # succession must be in force before the new key may read the log
        page = client.org_log() if held.pending is None else client.send_statement(held.pending)
    known = (held.org_seq, held.org_head) if held.org_seq and held.org_head else None
    state = orgkeys.keep(store, list(page.statements), list(page.forks), known=known)
    orgkeys.use_admin_key_in_force(store)
    if state.admin_key != store.identity.signer.public.hex():
        raise IntegrityError(
            "the organisation's log names another admin key in force than the one this backup "
            "holds: an older backup, or one the log retired; no store was made",
            hint="Recover from the custodians' newest shares; tell your organisation if this "
            "was the newest.",
        )
    orgkeys.require_every_read_key(store, doing="no store was made")


def create_recovered(
    home: Path, passphrase: str, opened: Opened, *, public_out: Path | None = None
) -> Recovered:
    """The administrator's store made again from an opened backup: its admin key and every
    read key, a new box key; the server (if named) pinned on first use."""
    _check_room(home, public_out)  # again: a prompt came in between
    held = opened.secrets
    identity = Identity(
        signer=crypto.SigningPair(held.admin_seed),
        box=crypto.BoxPair.generate(),  # the device key of the lost store is not needed
        org_read=crypto.BoxPair(held.read_keys[0][1]),
    )
    files.make_private_dir(home.parent)
    building = home.parent / f".{home.name}.recovering-{secrets.token_hex(4)}"
    try:
        with Store.create(building, passphrase, identity=identity) as store:
            if identity.signer.public.hex() != opened.admin_key:  # a successor of the first
                orgkeys.add_successor(store, identity.signer, root=opened.admin_key)
            for epoch, secret in held.read_keys[1:]:
                orgkeys.add_read_key(store, ReadSecret(epoch, crypto.BoxPair(secret)))
            if opened.info is not None and opened.server_url is not None:
                admin.pin_server_key(
                    store,
                    opened.server_url,
                    opened.info,
                    repin=None,
                    doing="no store",
                    invite=False,
                )
                _follow_as_backed_up(store, opened.server_url, held)
        if home.exists():
            home.rmdir()  # empty, as checked: rename does not replace a folder on every system
        os.rename(building, home)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if public_out is not None:
        files.write_atomic(public_out, opened.org.encode() + b"\n")
    key = opened.info.server_key if opened.info else None
    return Recovered(
        home=home,
        org=opened.org,
        read_keys=len(held.read_keys),
        org_seq=held.org_seq,
        server_url=opened.server_url,
        server_fingerprint=fingerprint(bytes.fromhex(key)) if key else None,
        public_out=public_out,
    )


def recover(
    home: Path,
    passphrase: str,
    given: list[str],
    *,
    server_url: str | None = None,
    backup_file: Path | None = None,
    public_out: Path | None = None,
) -> Recovered:
    """``open_backup`` then ``create_recovered``: nothing is created unless every check holds."""
    check_can_recover(home, public_out, server_url, backup_file)
    opened = open_backup(given, server_url=server_url, backup_file=backup_file)
    return create_recovered(home, passphrase, opened, public_out=public_out)
