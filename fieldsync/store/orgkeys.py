"""The organisation's keys as a store holds them: the log it followed (every store) and the
read keys' secrets (an administrator's).

The first read key is in the vault (``Identity.org_read``); each one a rotation made after it
is in the sealed setting ``org_keys`` (core/settings.py, ``OrgKeyring``). The log is kept as
its statements' bytes and followed again from the root whenever it is read, so nothing derived
from it is ever trusted from the disk alone.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import replace
from typing import Protocol

from fieldsync.core import crypto, orglog
from fieldsync.core.bundle import ReadSecret
from fieldsync.core.invite import VIEWER
from fieldsync.core.orglog import OrgState
from fieldsync.core.settings import AdminKeys, Enrolment, OrgKeyring, OrgLog, Server
from fieldsync.errors import AccessDenied, StoreStateError
from fieldsync.store import settings
from fieldsync.store.identity import Identity
from fieldsync.store.keyvalue import KeyValueHome


class OrgHome(KeyValueHome, Protocol):
    """What these functions use of a ``Store`` (store.py imports this module)."""

    identity: Identity


def root(store: OrgHome) -> OrgState | None:
    """Where this store's log starts: its own keys in an administrator's store, its invite's in
    an enrolled one; None before enrolment."""
    org = store.identity.org_read
    if org is not None:
        server = settings.load(store, Server)
        return OrgState.root(
            root_admin_key(store), org.public.hex(), server.server_key if server else ""
        )
    enrolment = settings.load(store, Enrolment)
    if enrolment is None:
        return None
    return OrgState.root(enrolment.admin_key, enrolment.org_read_key, enrolment.server_key)


def root_admin_key(store: OrgHome) -> str:
    """An administrator's store: the organisation's first admin key, where its log starts."""
    kept = settings.load(store, AdminKeys)
    if kept is not None:
        return kept.root
    return (store.identity.vault_signer or store.identity.signer).public.hex()


def admin_keys(store: OrgHome) -> list[crypto.SigningPair]:
    """Every admin key an administrator's store holds, oldest first: the vault's, then each
    successor it made or recovered."""
    vault_signer = store.identity.vault_signer or store.identity.signer
    kept = settings.load(store, AdminKeys)
    successors = [crypto.SigningPair(bytes.fromhex(s)) for s in kept.successors] if kept else []
    return [vault_signer, *(s for s in successors if s.public != vault_signer.public)]


def add_successor(
    store: OrgHome, successor: crypto.SigningPair, *, root: str | None = None
) -> None:
    """Keep an admin key that is to succeed the one in force, before the succession is
    signed: a crash after the announcement must never leave the organisation without it.
    ``root``: the first admin key, for a store recovered with only a successor's seed."""
    kept = settings.load(store, AdminKeys) or AdminKeys(root or root_admin_key(store))
    seed = successor.seed.hex()
    if seed not in kept.successors:
        settings.save(store, replace(kept, successors=(*kept.successors, seed)))


def use_admin_key_in_force(store: OrgHome) -> None:
    """Sign with the admin key the log this store followed names in force (the newest held if
    it names none this store holds: a succession signed and not yet announced keeps the old
    one in force until it is)."""
    if store.identity.org_read is None or settings.load(store, AdminKeys) is None:
        return
    held = admin_keys(store)
    state = followed(store)
    in_force = state.admin_key if state is not None else ""
    signer = next((k for k in held if k.public.hex() == in_force), held[-1])
    vault_signer = store.identity.vault_signer or store.identity.signer
    store.identity = replace(
        store.identity,
        signer=signer,
        vault_signer=None if signer.public == vault_signer.public else vault_signer,
    )


def followed(store: OrgHome) -> OrgState | None:
    """The log as this store last followed it, followed again from the root."""
    start = root(store)
    if start is None:
        return None
    kept = settings.load(store, OrgLog) or OrgLog()
    return _follow(start, kept.statements, kept.forks, kept.followed)


@functools.lru_cache(maxsize=16)
def _follow(
    start: OrgState, statements: tuple[str, ...], forks: tuple[str, ...], floor: int
) -> OrgState:
    """Followed once per process for each log: every write asks which key to wrap for."""
    return orglog.follow(start, _raw(statements), forks=_raw(forks), floor=floor)


def keep(
    store: OrgHome,
    statements: list[bytes],
    forks: list[bytes],
    *,
    known: tuple[int, str] | None = None,
) -> OrgState:
    """Follow a log a server served and keep it, if it reaches what this store followed before
    (or ``known``: what a recovered store's backup says was followed; ``orglog.RolledBack``
    otherwise, nothing kept). Forks are kept beside any known already."""
    start = root(store)
    assert start is not None, "only a store with a root follows a log"
    before = followed(store)
    if known is None and before is not None and before.head:
        known = (before.seq, before.head)
    if known is None:  # nothing followed yet: at least what the invite said was there
        enrolment = settings.load(store, Enrolment)
        known = enrolment.org_log if enrolment is not None else None
    found = settings.load(store, OrgLog)
    kept = found or OrgLog()
    every_fork = [*_raw(kept.forks), *(f for f in forks if f not in _raw(kept.forks))]
    state = orglog.follow(start, statements, forks=every_fork, known=known)
    pending = kept.pending
    if pending is not None and base64.b64decode(pending) in statements:
        pending = None  # the server holds it now
    value = OrgLog(_b64(statements), _b64(every_fork), pending, state.seq)
    if value != kept or found is None:  # kept even when empty: every write reads it, cached
        settings.save(store, value)
    return state


def statements(store: OrgHome) -> list[bytes]:
    """The organisation's log as this store last kept it, every statement's signed bytes."""
    kept = settings.load(store, OrgLog)
    return _raw(kept.statements) if kept is not None else []


def admin_keys_trusted(store: OrgHome) -> tuple[str, ...]:
    """The organisation's admin keys, public, as the log this store followed names them: the
    first, each one that succeeded it, the one in force last (none before enrolment)."""
    state = followed(store)
    return state.admin_keys if state is not None else ()


def alerts(store: OrgHome) -> list[str]:
    """What a person must know of the organisation's log: each fork found, in words."""
    state = followed(store)
    return [fork.message for fork in state.forks] if state is not None else []


def set_pending(store: OrgHome, raw: bytes) -> None:
    """Keep an administrator's statement, signed, before it is sent (sent again as it is)."""
    kept = settings.load(store, OrgLog) or OrgLog()
    settings.save(store, replace(kept, pending=base64.b64encode(raw).decode("ascii")))


def pending(store: OrgHome) -> bytes | None:
    kept = settings.load(store, OrgLog)
    return None if kept is None or kept.pending is None else base64.b64decode(kept.pending)


ADMIN, DEVICE = "admin", "device"


def why_not_signing(store: OrgHome) -> AccessDenied | None:
    """Why this store may sign no version now, if it may not: a viewer's signs nothing; an
    administrator's whose admin key succession is signed and not yet announced signs nothing
    with the old key, which the server refuses once the succession arrives (and nothing with
    the new one before it is in force)."""
    if role(store) == VIEWER:
        return AccessDenied(
            "this is a viewer's store: it reads and reports, and signs nothing; nothing was saved",
            hint="Ask your administrator for an analyst's invite to edit records.",
        )
    raw = pending(store) if store.identity.org_read is not None else None
    if raw is not None and orglog.parse(raw).kind == orglog.SUCCESSION:
        return AccessDenied(
            "an admin key succession was signed but not announced: this store signs no version "
            "until it is; nothing was saved",
            hint="Run 'fieldsync admin rotate-admin-key' to finish it, then try again.",
        )
    return None


def role(store: OrgHome) -> str:
    """What this store is to the organisation: ``admin``, ``analyst``, ``viewer`` (members
    of staff, enrolled with an invite naming the role) or ``device`` (a documenter's)."""
    if store.identity.org_read is not None:
        return ADMIN
    enrolment = settings.load(store, Enrolment)
    return enrolment.role if enrolment is not None and enrolment.role else DEVICE


def reads_everything(store: OrgHome) -> bool:
    """The administrator's store and a member's read what the organisation receives."""
    return role(store) != DEVICE


def read_keys(store: OrgHome) -> list[ReadSecret]:
    """The organisation's read keys this store holds, oldest first: an administrator's (the
    vault's first, then its rotations'), or a member's from its key bundle (all in the ring)."""
    org = store.identity.org_read
    ring = settings.load(store, OrgKeyring) or OrgKeyring()
    kept = [ReadSecret(e, crypto.BoxPair(bytes.fromhex(s))) for e, s in ring.read_keys]
    return [ReadSecret(1, org), *kept] if org is not None else kept


def missing_read_keys(store: OrgHome) -> list[int]:
    """The epochs of read keys the log this store followed announces and it does not hold."""
    state = followed(store)
    held = {secret.pair.public.hex() for secret in read_keys(store)}
    return [k.epoch for k in state.read_keys if k.key not in held] if state is not None else []


def require_every_read_key(store: OrgHome, *, doing: str) -> None:
    """``StoreStateError`` unless this store holds every read key its log announces: a copy of
    the administrator's store taken before a rotation made elsewhere must neither announce a
    key on top of one it cannot read nor back up what lacks it."""
    missing = missing_read_keys(store)
    if missing:
        raise StoreStateError(
            f"this store does not hold read key {missing[0]}, which the organisation's log "
            f"announces: another copy of the administrator's store made it; {doing}",
            hint="Use the store that made it, or recover one from the custodians' shares "
            "('fieldsync admin recover'), which holds every read key.",
        )


def keep_bundle(store: OrgHome, secrets: list[ReadSecret]) -> int:
    """A member's read keys, from a key bundle it verified; how many were new."""
    ring = settings.load(store, OrgKeyring) or OrgKeyring()
    held = {epoch for epoch, _ in ring.read_keys}
    new = [(s.epoch, s.pair.secret.hex()) for s in secrets if s.epoch not in held]
    if new:
        settings.save(store, OrgKeyring(tuple(sorted((*ring.read_keys, *new)))))
    return len(new)


def add_read_key(store: OrgHome, secret: ReadSecret) -> None:
    ring = settings.load(store, OrgKeyring) or OrgKeyring()
    if any(epoch == secret.epoch for epoch, _ in ring.read_keys):
        return
    entry = (secret.epoch, secret.pair.secret.hex())
    settings.save(store, OrgKeyring((*ring.read_keys, entry)))


def _raw(kept: tuple[str, ...]) -> list[bytes]:
    return [base64.b64decode(raw) for raw in kept]


def _b64(raws: list[bytes]) -> tuple[str, ...]:
    return tuple(base64.b64encode(raw).decode("ascii") for raw in raws)
