"""The organisation's members of staff: analysts (own keys, own log, the organisation's read
keys) and viewers (read, sign nothing).

The administrator certifies each one the admin key invited (the invite names the role, and
the registry's enrolment shows it), once, as a ``member`` statement of the organisation's log,
so every device and analyst learns the member's key from the admin key rather than from the
server; then seals the organisation's read keys to the member's box key in a signed key bundle
the server keeps and cannot open, again after every rotation. A member fetches and checks its
bundle on each pull and push.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fieldsync.core import bundle, orglog
from fieldsync.core.invite import ROLES
from fieldsync.core.settings import Bundles, MemberInvites, Registry
from fieldsync.errors import MalformedData, NotAdminStore, NotFound, StoreStateError
from fieldsync.store import orgkeys, settings
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient


@dataclass
class Certified:
    members: list[str] = field(default_factory=list)  # names certified now
    bundles: int = 0  # key bundles given now
    held_back: str | None = None  # why nothing was certified now, if something stood in the way
    strangers: list[str] = field(default_factory=list)  # enrolled with a member's invite not ours


def certify(store: Store, client: SyncClient) -> Certified:
    """Certify every member the registry (as the last pull checked it) shows the admin key
    invited and the log does not name yet, then give every member not revoked a key bundle
    holding every read key (an administrator's store)."""
    done = Certified()
    registry = settings.load(store, Registry) or Registry()
    unfinished = unfinished_key_change(store)
    if unfinished is not None:
        done.held_back = unfinished[0]
        return done
    state = flush_pending(store, client)
    if state.blocked:  # the log is frozen at a fork: sign nothing more (docs/security.md)
        done.held_back = "the organisation's log forks; nothing more is signed"
        return done
    refused = set((settings.load(store, Bundles) or Bundles()).refused)
    issued = settings.load(store, MemberInvites)
    ours = set(issued.tokens) if issued is not None else None  # None: a store from before
    token_of = {key: token for token, key in registry.tokens.items() if key}
    for key, device in registry.devices.items():
        if device.role not in ROLES or state.member(key) is not None or key in refused:
            continue
        if ours is not None and token_of.get(key) not in ours:
            done.strangers.append(device.name)
            continue
        fields = {"box_key": device.box_key, "member_key": key, "name": device.name}
        state = announce(store, client, orglog.MEMBER, fields | {"role": device.role})
        done.members.append(device.name)
    done.bundles = give_bundles(store, client)
    return done


def require_admin(store: Store, doing: str) -> None:
    """``NotAdminStore`` unless this is the administrator's store: only the admin key
    ``doing`` (announces a new read key, names its successor, ...)."""
    if not store.identity.is_admin:
        raise NotAdminStore(
            f"the store in {store.home} is not the administrator's: only the admin key "
            f"{doing}; nothing was changed"
        )


def revoke(store: Store, client: SyncClient, member: str) -> bool:
    """Name a member revoked in the organisation's log (False: it is no member, or revoked
    already), so that no device or analyst trusts its versions from now on."""
    state = flush_pending(store, client)
    found = state.member(member)
    if found is None:  # revoked before it was certified: it never will be
        kept = settings.load(store, Bundles) or Bundles()
        if member not in kept.refused:
            settings.save(store, replace(kept, refused=(*kept.refused, member)))
        return False
    if found.revoked:
        return False
    announce(store, client, orglog.REVOKE, {"member_key": member})
    return True


def give_bundles(store: Store, client: SyncClient) -> int:
    """A key bundle for each member not revoked whose last one lacks a read key."""
    state = orgkeys.followed(store)
    assert state is not None
    secrets = orgkeys.read_keys(store)
    given = dict((settings.load(store, Bundles) or Bundles()).given)
    made = 0
    for member in state.members:
        if member.revoked or given.get(member.key) == len(secrets):
            continue
        raw = bundle.make(
            store.identity.signer, state, member=member.key, box_key=member.box_key, secrets=secrets
        )
        client.put_bundle(member.key, raw)
        given[member.key] = len(secrets)
        settings.save(store, Bundles(given))
        made += 1
    return made


def receive_bundle(store: Store, client: SyncClient) -> int:
    """A member's read keys, from the bundle the server keeps for it (checked against the
    log this store followed: core/bundle.py); how many were new. ``StoreStateError`` if the
    administrator has not given this member one yet and it holds no read key."""
    state = orgkeys.followed(store)
    assert state is not None
    try:
        raw = client.bundle()
    except NotFound:
        if orgkeys.read_keys(store):
            return 0
        raise StoreStateError(
            "the administrator has not yet given this store the organisation's keys; "
            "nothing was pulled",
            hint="Ask your administrator to run 'fieldsync admin pull' (it certifies you and "
            "seals the keys to you), then run 'fieldsync pull' again.",
        ) from None
    secrets = bundle.open_bundle(
        raw, state=state, member=store.identity.signer, box=store.identity.box
    )
    return orgkeys.keep_bundle(store, secrets)


def flush_pending(store: Store, client: SyncClient) -> orglog.OrgState:
    """The log as it stands once a statement signed by an earlier run and not known to have
    reached the server is sent again, byte for byte (never signed afresh: that would be a
    fork)."""
    unfinished = unfinished_key_change(store)
    if unfinished is not None:  # announced only once the custodians' backup holds the key
        raise StoreStateError(unfinished[0] + "; nothing was changed", hint=unfinished[1])
    pending = orgkeys.pending(store)
    if pending is not None:
        page = client.send_statement(pending)
        return orgkeys.keep(store, list(page.statements), list(page.forks))
    state = orgkeys.followed(store)
    assert state is not None
    return state


UNFINISHED_ROTATION = "a read key rotation was signed but not announced"
ROTATE_AGAIN = (
    "Run 'fieldsync admin rotate-read-key' to finish it: it refreshes the custodians' backup, "
    "then announces the key."
)
UNFINISHED_SUCCESSION = "an admin key succession was signed but not announced"
SUCCEED_AGAIN = (
    "Run 'fieldsync admin rotate-admin-key' to finish it: it refreshes the custodians' "
    "backup, then announces the new key."
)
# a new key's statement goes out only by its own command, after the custodians' backup holds
# the key: each kind's words for an earlier run that signed one and did not send it
UNFINISHED = {
    orglog.READ_KEY: (UNFINISHED_ROTATION, ROTATE_AGAIN),
    orglog.SUCCESSION: (UNFINISHED_SUCCESSION, SUCCEED_AGAIN),
}


def unfinished_key_change(store: Store) -> tuple[str, str] | None:
    """What stands in the way, and what to run, if a key change is signed and not sent."""
    pending = orgkeys.pending(store)
    return None if pending is None else UNFINISHED.get(orglog.parse(pending).kind)


SIGNING = "signing a statement of the organisation's log"


def announce(
    store: Store, client: SyncClient, kind: str, fields: dict[str, str]
) -> orglog.OrgState:
    """Sign the log's next statement, keep it as pending, send it, and follow the answer: with
    the store held alone, after following the log again, so that two commands at once never
    sign two statements at one seq (a fork of the administrator's own making). A statement
    that another command made meanwhile (the same member certified) is not made again."""
    with store.alone(SIGNING):
        page = client.org_log()
        state = orgkeys.keep(store, list(page.statements), list(page.forks))
        if orgkeys.pending(store) is not None or state.blocked:
            raise StoreStateError(
                "the organisation's log is not in a state to sign in (a statement is pending, "
                "or the log forks); nothing was changed",
                hint="Run the command again; see docs/security.md if the log forks.",
            )
        try:
            raw = orglog.sign(store.identity.signer, state, kind, fields, time_ms=store.now_ms())
        except MalformedData:  # certified, or revoked, already (by another command)
            return state
        orgkeys.set_pending(store, raw)
        page = client.send_statement(raw)
        return orgkeys.keep(store, list(page.statements), list(page.forks))
