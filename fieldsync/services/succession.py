"""Admin key succession: a new admin key, named in a statement of the organisation's log that
the one in force signs (core/orglog.py). From then on every reader (devices, members, the
server, ``evidence-verify``) trusts only the new key for what is signed next, and refuses the
retired one: an administrator whose key may have leaked, or who hands over to another, moves
the organisation to a new key without a new invite for anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fieldsync.core import crypto, orglog, words
from fieldsync.core.ids import fingerprint
from fieldsync.core.settings import Bundles, Delivery
from fieldsync.errors import StoreStateError
from fieldsync.services import backup, members, sync
from fieldsync.services.sync import ClientFor, signed_client
from fieldsync.store import orgkeys, settings
from fieldsync.store.store import Store


@dataclass(frozen=True)
class Succeeded:
    fingerprint: str  # of the new admin key
    retired: str  # the fingerprint of the key it succeeded
    seq: int  # the succession's place in the organisation's log
    resent: bool  # a succession signed before (its sending failed) was sent again
    backed_up: bool  # the sealed backup on the server was refreshed (False: none was made)
    bundles: int  # members given a key bundle signed by the new key


def rotate_admin_key(store: Store, *, client_for: ClientFor = signed_client) -> Succeeded:
    """Make the next admin key and announce it, signed by the one in force.

    The new key is kept in this store before the succession is signed, the succession before
    it is sent, and the custodians' backup holds the new key before it is sent: a crash or a
    dropped link leaves a key that is kept and a statement the next run sends again byte for
    byte (signing another would be a fork, which every reader refuses to follow).
    """
    members.require_admin(store, "names its successor")
    joined = sync.destination(store)
    retired = store.identity.signer.public
    with client_for(joined.server, store) as client:
        with store.alone(members.SIGNING):  # never two statements at one seq of our making
            earlier = orgkeys.pending(store)
            finishing = earlier is not None and orglog.parse(earlier).kind == orglog.SUCCESSION
            _require_delivered(store)  # (no version is signed while a succession is pending)
            sync.follow_org_log(store, client)  # in force now if an earlier run's got there
            raw = earlier if finishing else orgkeys.pending(store)  # the same one sent again
            if raw is not None and not finishing:  # another statement an earlier run signed
                members.flush_pending(store, client)
            orgkeys.require_every_read_key(store, doing="nothing was changed")
            state = orgkeys.followed(store)
            assert state is not None
            if state.blocked:
                raise StoreStateError(
                    "the organisation's log forks: nothing more is signed; nothing was changed",
                    hint="See docs/security.md, 'A stolen admin key'.",
                )
            if not finishing:
                raw = _succession(store, state)
                orgkeys.set_pending(store, raw)
            assert raw is not None
            _start_afresh(store)
            # the custodians' backup holds the new key before it is in force: a laptop lost
            # after the announcement loses nothing
            backed_up = backup.refresh(store, client) is not None
            page = client.send_statement(raw)
            orgkeys.keep(store, list(page.statements), list(page.forks))
            orgkeys.use_admin_key_in_force(store)
            client.sign_with(store.identity.signer)  # the new key's requests from now on
        bundles = members.give_bundles(store, client)
    statement = orglog.parse(raw)
    new = bytes.fromhex(str(statement.fields["admin_key"]))
    if store.identity.signer.public != new:
        raise StoreStateError(  # the server took it, yet the log names another: never silent
            "the succession was sent, but the organisation's log does not name its key in force",
            hint="Run 'fieldsync admin pull' and look at its alerts.",
        )
    return Succeeded(
        fingerprint(new),
        fingerprint(bytes.fromhex(statement.signer) if finishing else retired),
        statement.seq,
        finishing,
        backed_up,
        bundles,
    )


def _require_delivered(store: Store) -> None:
    left = sync.pending(store)
    if left:
        raise StoreStateError(
            f"this store has {words.count(left, 'version')} of its own that the server has not "
            "acknowledged: signed by the admin key in force, they must reach the server before "
            "it is retired; nothing was changed",
            hint="Run 'fieldsync push' first, then run this command again.",
        )


def _succession(store: Store, state: orglog.OrgState) -> bytes:
    """The succession statement, its new key kept first (a key kept but never signed for, by a
    run that failed before signing, is the one named now)."""
    used = set(state.admin_keys)
    unused = [k for k in orgkeys.admin_keys(store) if k.public.hex() not in used]
    successor = unused[-1] if unused else crypto.SigningPair.generate()
    orgkeys.add_successor(store, successor)
    fields = {"admin_key": successor.public.hex()}
    return orglog.sign(
        store.identity.signer, state, orglog.SUCCESSION, fields, time_ms=store.now_ms()
    )


def _start_afresh(store: Store) -> None:
    """What belongs to the retired key, marked before the new key signs: the delivery point
    is the old key's log (the new key's starts at seq 1, ``sync.delivered_seq``), and every
    member's key bundle is made again, signed by the new key. Done before the announcement:
    if it is never sent, a bundle is only signed again by the old key."""
    kept = settings.load(store, Delivery)
    if kept is not None and kept.author is None:
        settings.save(store, replace(kept, author=store.identity.device_id))
    given = settings.load(store, Bundles)
    if given is not None and given.given:
        settings.save(store, replace(given, given={}))
