"""The organisation's log: what the admin key announces, one signed statement after another.

Canonical JSON of one statement (docs/protocol.md, "The organisation's log")::

    {"statement": {"format": "fieldsync/org-statement", "version": 1, "seq": n,
                   "prev": id of the statement at n - 1, or null at 1,
                   "signer": hex Ed25519, the admin key in force at n,
                   "time_ms": Unix ms, "kind": KIND, ...the kind's fields},
     "signature": hex Ed25519 by "signer" over LABEL_ORG_STATEMENT || 0 || canonical "statement"}

    id = BLAKE2b-256(LABEL_ORG_STATEMENT_ID || 0 || the whole document's canonical bytes)

    kind          fields                          what follows from it
    read-key      epoch, read_key                 every new version is wrapped for this key
    succession    admin_key                       the next statement is signed by this key
    receipt-key   server_key                      the server's receipts are signed by it
    member        member_key, box_key, role, name an analyst (or viewer) of the organisation:
                                                  its versions are trusted, its bundle opened
    revoke        member_key                      that member is trusted no more

Every reader starts from what its invite or org-public.json named (the root: admin key, first
read key, receipt key) and follows the log from seq 1, so the server, which stores and serves
the log, cannot add a statement (it holds no admin key), alter one, reorder them or leave one
out in the middle. What it could do is serve an older log, hiding a rotation: a reader keeps
the seq and id it last followed and refuses a log that does not reach them (``RolledBack``).

Two different statements at one seq, both signed by the key in force there, are a fork: the
admin key signed both, and only a thief of that key (or an administrator working from two
copies of one store) does that. A reader follows the log only up to the seq before the
earliest fork it is shown or finds, and names the fork: a stolen key cannot take the
organisation over quietly by rotating the read key or naming a successor of its own.

Kept whole: the statement's bytes and the rules for following them (which key is in force at a
seq, what a fork is and when one is superseded) are one contract, pinned together by
tests/vectors/org-v1.json and docs/format.md, sections 11 and 12.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fieldsync.core import crypto, encoding
from fieldsync.core.ids import fingerprint, is_hex, is_hex32
from fieldsync.errors import (
    IntegrityError,
    MalformedData,
    SignatureInvalid,
    UnsupportedFormat,
)

FORMAT = "fieldsync/org-statement"
VERSION = 1
MAX_STATEMENT = 4096
MAX_STATEMENTS = 10_000  # a log is a statement per rotation or succession: never near this
READ_KEY, SUCCESSION, RECEIPT_KEY = "read-key", "succession", "receipt-key"
MEMBER, REVOKE = "member", "revoke"
ANALYST, VIEWER = "analyst", "viewer"
ROLES = (ANALYST, VIEWER)
MAX_NAME = 100
COMMON = frozenset({"format", "kind", "prev", "seq", "signer", "time_ms", "version"})
KIND_FIELDS: dict[str, frozenset[str]] = {
    READ_KEY: frozenset({"epoch", "read_key"}),
    SUCCESSION: frozenset({"admin_key"}),
    RECEIPT_KEY: frozenset({"server_key"}),
    MEMBER: frozenset({"member_key", "box_key", "role", "name"}),
    REVOKE: frozenset({"member_key"}),
}


class RolledBack(IntegrityError):
    """The server serves an older organisation log than this store has already followed."""

    default_hint = (
        "The server may have been restored from an old backup, or someone is hiding a key "
        "change from you: tell your administrator. Nothing was changed."
    )


@dataclass(frozen=True)
class Statement:
    seq: int
    prev: str | None
    signer: str  # hex Ed25519
    time_ms: int
    kind: str
    fields: dict[str, Any]  # the kind's own fields
    signature: str
    raw: bytes  # the document's canonical bytes, as signed and stored

    @property
    def id(self) -> str:
        return statement_id(self.raw)

    def body(self) -> dict[str, Any]:
        return _body(self.seq, self.prev, self.signer, self.time_ms, self.kind, self.fields)


def statement_id(raw: bytes) -> str:
    return crypto.hash32(crypto.LABEL_ORG_STATEMENT_ID, raw).hex()


def _body(
    seq: int, prev: str | None, signer: str, time_ms: int, kind: str, fields: dict[str, Any]
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "kind": kind,
        "prev": prev,
        "seq": seq,
        "signer": signer,
        "time_ms": time_ms,
        "version": VERSION,
    } | fields


@dataclass(frozen=True)
class ReadKey:
    """One of the organisation's read keys, public: epoch 1 is the root's."""

    epoch: int
    key: str  # hex X25519


@dataclass(frozen=True)
class Member:
    """An analyst or viewer the admin key certified: its own keys, its role and name."""

    key: str  # hex Ed25519: signs its versions (an analyst's)
    box_key: str  # hex X25519: its key bundle is sealed to it
    role: str  # analyst | viewer
    name: str
    revoked: bool = False


@dataclass(frozen=True)
class Fork:
    """Two statements the same admin key signed at one seq."""

    seq: int
    signer: str
    ids: tuple[str, str]
    # the signer was retired by a succession at or after this seq that the reader followed
    # before: whoever signed the other one is not the organisation, and nothing stops here
    superseded: bool = False

    @property
    def message(self) -> str:
        shown = fingerprint(bytes.fromhex(self.signer))
        if self.superseded:
            return (
                f"the organisation's retired admin key ({shown}) signed another statement at "
                f"seq {self.seq} of the organisation's log after it was succeeded: someone else "
                "holds it; nothing they signed is followed"
            )
        return (
            f"the organisation's admin key ({shown}) signed two different statements at seq "
            f"{self.seq} of the organisation's log: it may be stolen; this store follows no "
            "statement it had not followed before"
        )


@dataclass(frozen=True)
class OrgState:
    """What the log says, as followed up to ``seq``."""

    root_admin_key: str
    admin_key: str  # in force now: the root's, or the last succession's
    read_keys: tuple[ReadKey, ...]  # oldest first; the last is the one to wrap for
    server_key: str  # the receipt key in force now
    seq: int = 0
    head: str | None = None
    retired: tuple[str, ...] = ()  # admin keys succeeded, oldest first
    server_keys: tuple[str, ...] = ()  # receipt keys before ``server_key``, oldest first
    members: tuple[Member, ...] = ()  # in the order they were certified
    forks: tuple[Fork, ...] = field(default=())

    @classmethod
    def root(cls, admin_key: str, read_key: str, server_key: str) -> OrgState:
        return cls(admin_key, admin_key, (ReadKey(1, read_key),), server_key)

    @property
    def read_key(self) -> ReadKey:
        return self.read_keys[-1]

    def member(self, key: str) -> Member | None:
        return next((m for m in self.members if m.key == key), None)

    @property
    def analysts(self) -> set[str]:
        """The keys of every analyst ever certified: whose versions a reader trusts. A revoked
        one's too: a reader cannot tell when a version was signed, the server refuses what it
        sends after its revocation, and what it sent before stays part of the record."""
        return {m.key for m in self.members if m.role == ANALYST}

    @property
    def admin_keys(self) -> tuple[str, ...]:
        """Every admin key of the organisation, the first (the root) first and the one in force
        last: what a reader trusts an invite or a version by. A retired one's too, as with a
        revoked member: the server refuses what it signs after its retirement."""
        return (*self.retired, self.admin_key)

    @property
    def blocked(self) -> bool:
        """A fork stops this log: nothing past it is followed, and nothing more is signed."""
        return any(not fork.superseded for fork in self.forks)

    def admin_key_at(self, seq: int, log: Sequence[Statement]) -> str:
        """The admin key in force for the statement at ``seq`` of ``log``."""
        key = self.root_admin_key
        for statement in log[: seq - 1]:
            if statement.kind == SUCCESSION:
                key = statement.fields["admin_key"]
        return key


def sign(
    admin: crypto.SigningPair,
    state: OrgState,
    kind: str,
    fields: dict[str, Any],
    *,
    time_ms: int,
) -> bytes:
    """The next statement of the log ``state`` has followed, signed by ``admin`` (which must be
    the admin key in force: a reader would refuse anything else)."""
    if admin.public.hex() != state.admin_key:
        raise SignatureInvalid(
            "this store's admin key is not the organisation's admin key in force; nothing "
            "was signed"
        )
    body = _body(state.seq + 1, state.head, state.admin_key, time_ms, kind, fields)
    _check(body)
    signature = admin.sign(crypto.LABEL_ORG_STATEMENT, encoding.encode(body))
    raw = encoding.encode({"signature": signature.hex(), "statement": body})
    apply(state, parse(raw))  # never sign what a reader would refuse
    return raw


def parse(raw: bytes) -> Statement:
    """One statement, its signature checked against the signer it names (whether that signer
    is the admin key in force is ``apply``'s to say)."""
    doc = encoding.decode(
        raw, what="a statement of the organisation's log", max_bytes=MAX_STATEMENT
    )
    if not isinstance(doc, dict) or set(doc) != {"signature", "statement"}:
        raise MalformedData("a statement of the organisation's log has unexpected fields")
    body, signature = doc["statement"], doc["signature"]
    _check(body)
    if not is_hex(signature, crypto.SIGNATURE_BYTES):
        raise MalformedData("a statement of the organisation's log has a malformed signature")
    crypto.verify(
        bytes.fromhex(body["signer"]),
        crypto.LABEL_ORG_STATEMENT,
        encoding.encode(body),
        bytes.fromhex(signature),
        what=f"statement {body['seq']} of the organisation's log",
    )
    fields = {k: v for k, v in body.items() if k not in COMMON}
    return Statement(
        body["seq"],
        body["prev"],
        body["signer"],
        body["time_ms"],
        body["kind"],
        fields,
        signature,
        raw,
    )


def _check(body: object) -> None:
    if not isinstance(body, dict) or not set(body) >= COMMON:
        raise MalformedData("a statement of the organisation's log has unexpected fields")
    if body["format"] != FORMAT or type(body["version"]) is not int:
        raise MalformedData("a statement of the organisation's log is of an unknown format")
    if not isinstance(body["kind"], str):
        raise MalformedData("a statement of the organisation's log has an invalid kind")
    if body["version"] > VERSION or body["kind"] not in KIND_FIELDS:
        raise UnsupportedFormat(
            f"statement {body.get('seq')!r} of the organisation's log was written by a newer "
            "fieldsync",
            hint="Update fieldsync, then run the command again.",
        )
    kind = body["kind"]
    seq, time_ms, prev = body["seq"], body["time_ms"], body["prev"]
    ok = (
        body["version"] == VERSION
        and set(body) == COMMON | KIND_FIELDS[kind]
        and _is_count(seq)
        and seq >= 1
        and _is_count(time_ms)
        and (prev is None if seq == 1 else is_hex32(prev))
        and is_hex32(body["signer"])
        and _kind_values_ok(kind, body)
    )
    if not ok:
        raise MalformedData(f"statement {seq!r} of the organisation's log has invalid values")


def _kind_values_ok(kind: str, body: dict[str, Any]) -> bool:
    if kind == READ_KEY:
        key = body["read_key"]
        return (
            _is_count(body["epoch"])
            and body["epoch"] >= 2
            and is_hex32(key)
            and crypto.is_canonical_box_key(bytes.fromhex(key))
        )
    if kind == SUCCESSION:
        return is_hex32(body["admin_key"])
    if kind == MEMBER:
        name = body["name"]
        return (
            is_hex32(body["member_key"])
            and is_hex32(body["box_key"])
            and crypto.is_canonical_box_key(bytes.fromhex(body["box_key"]))
            and body["role"] in ROLES
            and isinstance(name, str)
            and 0 < len(name) <= MAX_NAME
            and name.isprintable()
        )
    if kind == REVOKE:
        return is_hex32(body["member_key"])
    return is_hex32(body["server_key"])


def _is_count(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= encoding.MAX_SAFE_INTEGER
    )


def apply(state: OrgState, statement: Statement) -> OrgState:
    """``state`` after ``statement``; ``IntegrityError`` naming the fault if it does not follow."""
    where = f"statement {statement.seq} of the organisation's log"
    if statement.seq != state.seq + 1 or statement.prev != state.head:
        raise MalformedData(f"{where} does not follow statement {state.seq}")
    if statement.signer != state.admin_key:
        retired = statement.signer in state.retired
        raise SignatureInvalid(
            f"{where} is signed by "
            + ("a retired admin key" if retired else "a key that is not the organisation's")
        )
    fields = statement.fields
    moved = replace(state, seq=statement.seq, head=statement.id)
    if statement.kind == READ_KEY:
        if fields["epoch"] != state.read_key.epoch + 1:
            raise MalformedData(f"{where} skips or repeats a read key's epoch")
        if any(k.key == fields["read_key"] for k in state.read_keys):
            raise MalformedData(f"{where} names a read key the organisation used before")
        return replace(
            moved, read_keys=(*state.read_keys, ReadKey(fields["epoch"], fields["read_key"]))
        )
    if statement.kind == SUCCESSION:
        new = fields["admin_key"]
        if new == state.admin_key or new in state.retired:
            raise MalformedData(f"{where} names an admin key the organisation used before")
        return replace(moved, admin_key=new, retired=(*state.retired, state.admin_key))
    if statement.kind == MEMBER:
        key = fields["member_key"]
        if state.member(key) is not None or key in (state.admin_key, *state.retired):
            raise MalformedData(f"{where} certifies a key the organisation certified before")
        member = Member(key, fields["box_key"], fields["role"], fields["name"])
        return replace(moved, members=(*state.members, member))
    if statement.kind == REVOKE:
        found = state.member(fields["member_key"])
        if found is None or found.revoked:
            raise MalformedData(f"{where} revokes no member of the organisation")
        kept = tuple(replace(m, revoked=True) if m is found else m for m in state.members)
        return replace(moved, members=kept)
    new = fields["server_key"]
    if new == state.server_key or new in state.server_keys:
        raise MalformedData(f"{where} names a receipt key the server used before")
    return replace(moved, server_key=new, server_keys=(*state.server_keys, state.server_key))


def follow(
    root: OrgState,
    log: Iterable[bytes],
    *,
    forks: Iterable[bytes] = (),
    known: tuple[int, str] | None = None,
    floor: int = 0,
) -> OrgState:
    """Follow ``log`` (every statement, from seq 1) from ``root``.

    ``forks``: statements the server refused because it held another at their seq; each one
    the admin key then in force really signed is a ``Fork``, and the log is followed only up to
    the seq before the earliest, or as far as this reader had followed it before: a fork never
    takes a reader back (a thief of a retired key forking before its succession must not make
    it the admin key in force again, nor an old read key the one to wrap for). ``known``: the
    seq and id this reader followed last time, which the log must reach unchanged
    (``RolledBack`` otherwise). ``floor``: a seq this reader followed through before, from a
    log it kept (its own ``known`` of then): followed again whatever the forks.
    """
    raws = list(log)
    if len(raws) > MAX_STATEMENTS:
        raise MalformedData("the organisation's log is longer than any fieldsync makes")
    statements = [parse(raw) for raw in raws]
    if known is not None:
        floor = max(floor, known[0])
    through = min(floor, len(statements))
    found = [_superseded(fork, statements, through) for fork in _forks(root, statements, forks)]
    blocking = [f.seq for f in found if not f.superseded]
    stop = max(min(blocking, default=len(statements) + 1) - 1, through)
    state = root
    for statement in statements[:stop]:
        state = apply(state, statement)
    if known is not None:
        seq, head = known
        if seq > len(statements) or (seq > 0 and statements[seq - 1].id != head):
            raise RolledBack(
                f"the server serves an organisation log of {len(statements)} statements, "
                f"older than the {seq} this store has followed"
                if seq > len(statements)
                else f"the server serves another statement {seq} of the organisation's log "
                "than the one this store followed"
            )
    return replace(state, forks=tuple(found))


def _superseded(fork: Fork, log: list[Statement], through: int) -> Fork:
    """``fork``, marked superseded if a succession at or after its seq, within what the reader
    had followed before it saw the fork, retired the key that signed it: the reader took that
    key's statements up to its succession as the organisation's, and the other one came from
    whoever else holds the retired key."""
    after = (s for s in log[fork.seq - 1 : through] if s.kind == SUCCESSION)
    first = next(after, None)
    return replace(fork, superseded=first is not None and first.signer == fork.signer)


def _forks(root: OrgState, log: list[Statement], offered: Iterable[bytes]) -> list[Fork]:
    """The forks among ``offered`` that verify: another statement at a seq of ``log``, signed
    by the key in force there. Anything else offered is the server's noise and is ignored."""
    found: dict[int, Fork] = {}
    for raw in offered:
        try:
            other = parse(raw)
        except (IntegrityError, UnsupportedFormat):  # not a statement this reader can weigh
            continue
        if not 1 <= other.seq <= len(log) or other.id == log[other.seq - 1].id:
            continue
        if other.signer == root.admin_key_at(other.seq, log) and other.seq not in found:
            found[other.seq] = Fork(other.seq, other.signer, (log[other.seq - 1].id, other.id))
    return sorted(found.values(), key=lambda f: f.seq)
