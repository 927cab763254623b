"""Rotating the organisation's read key: a new key, announced by the admin key in the
organisation's log (core/orglog.py), which every device and analyst follows on its next push
or pull and wraps everything new for. Old records stay readable: this store keeps every read
key the organisation has had (store/orgkeys.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldsync.core import crypto, orglog
from fieldsync.core.bundle import ReadSecret
from fieldsync.core.ids import fingerprint, is_hex32
from fieldsync.errors import (
    InputError,
    IntegrityError,
    SignatureInvalid,
    StoreStateError,
)
from fieldsync.services import backup, members, sync
from fieldsync.services.sync import ClientFor, signed_client
from fieldsync.store import orgkeys
from fieldsync.store.store import Store


@dataclass(frozen=True)
class Rotated:
    epoch: int
    fingerprint: str  # of the new read key
    seq: int  # its statement's place in the organisation's log
    resent: bool  # an announcement signed before (its sending failed) was sent again
    backed_up: bool  # the sealed backup on the server was refreshed (False: none was made)
    bundles: int  # members given a key bundle holding the new key


def rotate_read_key(store: Store, *, client_for: ClientFor = signed_client) -> Rotated:
    """Make the next read key and announce it.

    Its secret is kept in this store before the announcement is signed, and the announcement
    before it is sent: a crash or a dropped link leaves a key that is kept and an announcement
    that the next run sends again byte for byte. Signing another at the same seq would be a
    fork, which every reader refuses to follow.
    """
    members.require_admin(store, "announces a new read key")
    joined = sync.destination(store)
    with client_for(joined.server, store) as client:
        with store.alone(members.SIGNING):  # never two statements at one seq of our making
            sync.follow_org_log(store, client)
            raw = orgkeys.pending(store)
            resent = raw is not None and orglog.parse(raw).kind == orglog.READ_KEY
            if raw is not None and not resent:  # another statement an earlier run signed
                members.flush_pending(store, client)
            orgkeys.require_every_read_key(store, doing="nothing was changed")
            if not resent:
                raw = _announcement(store)
                orgkeys.set_pending(store, raw)
            assert raw is not None
            # the custodians' backup holds the new key before anyone wraps for it: a laptop
            # lost after the announcement loses nothing written under the new key
            backed_up = backup.refresh(store, client) is not None
            page = client.send_statement(raw)
            state = orgkeys.keep(store, list(page.statements), list(page.forks))
        bundles = members.give_bundles(store, client)  # each member's, with the new key
    statement = orglog.parse(raw)
    epoch = int(statement.fields["epoch"])
    key = fingerprint(bytes.fromhex(state.read_keys[epoch - 1].key))
    return Rotated(epoch, key, statement.seq, resent, backed_up, bundles)


def _announcement(store: Store) -> bytes:
    """The next read-key statement, its secret kept first (a key kept but never announced, by
    a run that failed before signing, is the one announced now)."""
    state = orgkeys.followed(store)
    assert state is not None
    epoch = state.read_key.epoch + 1
    kept = {secret.epoch: secret for secret in orgkeys.read_keys(store)}
    secret = kept.get(epoch) or ReadSecret(epoch, crypto.BoxPair.generate())
    orgkeys.add_read_key(store, secret)
    fields = {"epoch": epoch, "read_key": secret.pair.public.hex()}
    return orglog.sign(
        store.identity.signer, state, orglog.READ_KEY, fields, time_ms=store.now_ms()
    )


@dataclass(frozen=True)
class ReceiptKeyNamed:
    fingerprint: str  # of the receipt key in force now
    seq: int  # its statement's place in the organisation's log


def rotate_receipt_key(
    store: Store, *, confirm: str | None = None, client_for: ClientFor = signed_client
) -> ReceiptKeyNamed:
    """Name in the organisation's log the new receipt key the server offers (made on the
    server by ``fieldsync server new-receipt-key``): from then on it signs every receipt, and
    devices and members check receipts against it without a new invite. The server proves the
    offer with the receipt key in force, which this store knows from the log, not from the
    server's word; a server that lost the key in force can prove nothing, and the offer is
    taken only with ``confirm``, the new key's fingerprint as the server printed it."""
    members.require_admin(store, "names the server's receipt key")
    joined = sync.destination(store)
    with client_for(joined.server, store) as client:
        joined = sync.follow_org_log(store, client)
        earlier = orgkeys.pending(store)
        if earlier is not None and orglog.parse(earlier).kind == orglog.RECEIPT_KEY:
            state = members.flush_pending(store, client)  # the one a dropped link kept back
            return ReceiptKeyNamed(fingerprint(bytes.fromhex(state.server_key)), state.seq)
        info = client.info()
        offered = info.next_receipt_key
        if offered is None or not is_hex32(offered):
            raise StoreStateError(
                f"the server at {joined.server} offers no new receipt key; nothing was changed",
                hint="Run 'fieldsync server new-receipt-key --data DIR' on the server first.",
            )
        _check_offer(joined.server_key, offered, info.next_receipt_key_proof, confirm)
        state = members.announce(store, client, orglog.RECEIPT_KEY, {"server_key": offered})
    if state.server_key != offered:
        raise StoreStateError(
            "the receipt key was sent, but the organisation's log does not name it in force",
            hint="Run 'fieldsync admin pull' and look at its alerts.",
        )
    return ReceiptKeyNamed(fingerprint(bytes.fromhex(offered)), state.seq)


def _check_offer(in_force: str, offered: str, proof: str | None, confirm: str | None) -> None:
    """The offer proved by the receipt key in force, or confirmed by its fingerprint."""
    shown = fingerprint(bytes.fromhex(offered))
    if confirm is not None:
        if "".join(confirm.split()) != "".join(shown.split()):
            raise InputError(
                f"the server offers the receipt key {shown}, not the one given to --confirm; "
                "nothing was changed",
                hint="Compare with what 'fieldsync server new-receipt-key' printed on the server.",
            )
        return
    try:
        if proof is None:
            raise ValueError("no proof")
        crypto.verify(
            bytes.fromhex(in_force),
            crypto.LABEL_NEXT_RECEIPT_KEY,
            bytes.fromhex(offered),
            bytes.fromhex(proof),
            what="the server's offer of a new receipt key",
        )
    except (ValueError, IntegrityError) as exc:
        raise SignatureInvalid(
            "the new receipt key the server offers is not signed by its receipt key in force: "
            "it may not be this organisation's server, or it lost that key; nothing was changed",
            hint="If the server lost its receipt key, run this again with --confirm and the new "
            f"key's fingerprint as the server printed it (the server offers {shown}).",
        ) from exc
