"""The settings a store keeps, one typed class each: its name in the store, its version, and
its JSON. Pure: store/settings.py loads and saves them (store/keyvalue.py seals them).

Kept whole: every setting's name, version and JSON side by side is the one place a store's
layout of settings is defined, as the table below lists it.

    name                      class                  written by
    enrolment                 Enrolment              enrol (a documenter's device)
    server                    Server                 an administrator's invite (the pinned key)
    delivery                  Delivery               push, after each verified receipt
    delivery_before_restore   DeliveryBeforeRestore  push --after-restore
    pull                      Pull                   pull, after each page
    registry                  Registry               an administrator's pull
    forgotten                 Forgotten              push --wipe-after
    problems                  Problems               pull (the seqs a feed withheld)
    aside                     Aside                  pull (the versions set aside)
    org_log                   OrgLog                 push and pull (the organisation's log, as
                                                     followed), an administrator's rotation
    org_keys                  OrgKeyring             an administrator's rotation, recover: the
                                                     read keys after the first (in the vault);
                                                     a member's, from its key bundle
    bundles                   Bundles                an administrator's pull and rotation
    backup_key                BackupKey              admin backup: the key its shares make, so
                                                     that a rotation re-seals the backup

Versions: every setting is at version 1, and version 1 is written without a version field,
so what is written is byte for byte what fieldsync wrote before these classes; a value with
no version field reads as version 1. A later version writes ``"version": N`` beside its
fields (an older fieldsync ignores a field it does not know), and a version newer than this
fieldsync's is refused rather than misread.

Fields an earlier fieldsync did not write read as their defaults (a registry without tokens, a
device without its enrolment, a pull without its anchor), as the readers before these classes
did with ``.get``; a field always written is required.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

from fieldsync.errors import StoreCorrupted, UnsupportedFormat

VERSION_FIELD = "version"
FIRST_VERSION = 1  # written without VERSION_FIELD

S = TypeVar("S", bound="Setting")
Span = tuple[int, int]  # first and last seq, both included


class Setting:
    """One setting: ``NAME`` in the store, ``VERSION`` of its JSON."""

    NAME: ClassVar[str]
    VERSION: ClassVar[int] = FIRST_VERSION

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        raise NotImplementedError


def encode(setting: Setting) -> dict[str, Any]:
    """The JSON to keep for ``setting``, with its version if it is past the first."""
    value = setting.to_json()
    if setting.VERSION > FIRST_VERSION:
        value[VERSION_FIELD] = setting.VERSION
    return value


def decode(kind: type[S], value: dict[str, Any]) -> S:
    """``value`` as kept, read as a ``kind``; refused if a newer fieldsync wrote it."""
    version = value.get(VERSION_FIELD, FIRST_VERSION) if isinstance(value, dict) else None
    if type(version) is int and version > kind.VERSION:
        raise UnsupportedFormat(
            f"the setting {kind.NAME!r} was written by a newer fieldsync (version {version})"
        )
    try:
        if type(version) is not int or version < FIRST_VERSION:
            raise ValueError(f"version {version!r}")
        return kind.from_json(value)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Sealed, so not a flipped bit: a value this fieldsync never writes.
        raise StoreCorrupted(f"the setting {kind.NAME!r} of this store is malformed") from exc


@dataclass(frozen=True)
class Enrolment(Setting):
    """Where a documenter's device delivers: what its invite named, kept once enrolled."""

    NAME = "enrolment"

    admin_key: str  # hex: the organisation's admin (analysts') signing key
    name: str  # the device's name, from the invite
    org_read_key: str  # hex: the organisation's box key every new version is wrapped for
    server: str  # URL
    server_key: str  # hex: the key that signs the server's receipts
    role: str | None = None  # "analyst" or "viewer" (a member of staff); None: a device
    org_log: tuple[int, str] | None = None  # how far the log was followed at the invite

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "admin_key": self.admin_key,
            "name": self.name,
            "org_read_key": self.org_read_key,
            "server": self.server,
            "server_key": self.server_key,
        }
        if self.role is not None:
            value["role"] = self.role
        if self.org_log is not None:
            value["org_log"] = list(self.org_log)
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(
            admin_key=str(value["admin_key"]),
            name=str(value["name"]),
            org_read_key=str(value["org_read_key"]),
            server=str(value["server"]),
            server_key=str(value["server_key"]),
            role=_str_or_none(value.get("role")),
            org_log=(int(value["org_log"][0]), str(value["org_log"][1]))
            if "org_log" in value
            else None,
        )


@dataclass(frozen=True)
class Server(Setting):
    """An administrator's server: the URL of the last invite, and the receipt key pinned."""

    NAME = "server"

    url: str
    server_key: str  # hex

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "server_key": self.server_key}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(url=str(value["url"]), server_key=str(value["server_key"]))


@dataclass(frozen=True)
class Delivery(Setting):
    """How far the server's verified receipts acknowledge this device's versions. After a
    rewind (push --after-restore) only ``last_seq`` is known; before any push, nothing."""

    NAME = "delivery"

    last_seq: int | None = None
    head: str | None = None  # the id of the version at last_seq
    receipt: str | None = None  # the receipt as the server signed it
    receipt_time_ms: int | None = None  # the time the receipt states
    # whose log: an administrator's store signs with a new key after a succession, and its
    # log starts again at seq 1 (None: the store's one key, as before successions)
    author: str | None = None

    @property
    def seq(self) -> int:
        """The highest seq acknowledged (0: none)."""
        return self.last_seq or 0

    def to_json(self) -> dict[str, Any]:
        found = {
            "last_seq": self.last_seq,
            "head": self.head,
            "receipt": self.receipt,
            "receipt_time_ms": self.receipt_time_ms,
            "author": self.author,
        }
        return {key: value for key, value in found.items() if value is not None}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(
            last_seq=_int_or_none(value.get("last_seq")),
            head=_str_or_none(value.get("head")),
            receipt=_str_or_none(value.get("receipt")),
            receipt_time_ms=_int_or_none(value.get("receipt_time_ms")),
            author=_str_or_none(value.get("author")),
        )


@dataclass(frozen=True)
class DeliveryBeforeRestore(Setting):
    """Each delivery point a push --after-restore moved back from, oldest first: evidence of
    what the server once acknowledged."""

    NAME = "delivery_before_restore"

    receipts: tuple[Delivery, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"receipts": [delivery.to_json() for delivery in self.receipts]}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(tuple(Delivery.from_json(found) for found in value.get("receipts", [])))


@dataclass(frozen=True)
class Pull(Setting):
    """Where the next pull reads the feed from: the cursor, and the id of the version at it
    (to see next time that the server still serves it)."""

    NAME = "pull"

    after: int = 0
    anchor: str | None = None
    # A pull writes "anchor" even while it is null; a store re-reading the feed from the start
    # (opened from schema 1) was given none at all. Kept apart so the bytes stay as they were.
    anchor_written: bool = True

    def to_json(self) -> dict[str, Any]:
        if not self.anchor_written and self.anchor is None:
            return {"after": self.after}
        return {"after": self.after, "anchor": self.anchor}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        anchor = _str_or_none(value.get("anchor"))
        return cls(int(value.get("after", 0)), anchor, anchor_written="anchor" in value)


@dataclass(frozen=True)
class Device:
    """A device as an administrator's registry keeps it (a part of ``Registry``)."""

    box_key: str  # hex
    name: str = ""
    enrolment: str | None = None  # base64 of the enrolment, verbatim, for evidence packages
    role: str | None = None  # "analyst" or "viewer", as its invite says; None: a device

    def to_json(self) -> dict[str, Any]:
        found = {
            "box_key": self.box_key,
            "name": self.name,
            "enrolment": self.enrolment,
            "role": self.role,
        }
        return {key: value for key, value in found.items() if value is not None}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Device:
        return cls(
            box_key=str(value["box_key"]),
            name=str(value.get("name", "")),
            enrolment=_str_or_none(value.get("enrolment")),
            role=_str_or_none(value.get("role")),
        )


@dataclass(frozen=True)
class Registry(Setting):
    """An administrator's registry of devices, as its last pull checked it: each device by its
    key, and each invite token seen with the one device key it vouches for ("": none)."""

    NAME = "registry"

    devices: dict[str, Device] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "devices": {key: device.to_json() for key, device in self.devices.items()},
            "tokens": dict(self.tokens),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        devices = value.get("devices") or {}
        tokens = value.get("tokens") or {}
        return cls(
            {str(key): Device.from_json(found) for key, found in devices.items()},
            {str(token): str(key) for token, key in tokens.items()},
        )


@dataclass(frozen=True)
class Forgotten(Setting):
    """The records a push --wipe-after forgot: a pull must not bring them back."""

    NAME = "forgotten"

    records: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"records": list(self.records)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(tuple(str(record) for record in value.get("records", [])))


@dataclass(frozen=True)
class Problems(Setting):
    """The seqs of each author that a server's feed was found to withhold."""

    NAME = "problems"

    withheld: dict[str, tuple[Span, ...]] = field(default_factory=dict)
    # Keys an earlier fieldsync kept in this setting ("versions", "parts"): kept as they were,
    # since writing the withheld seqs always kept the rest of the setting.
    earlier: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        shown = {author: [list(span) for span in kept] for author, kept in self.withheld.items()}
        return self.earlier | {"withheld": shown}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        found = value.get("withheld", {}).items()
        withheld = {str(a): tuple((int(f), int(t)) for f, t in kept) for a, kept in found}
        return cls(withheld, {k: v for k, v in value.items() if k != "withheld"})


@dataclass(frozen=True)
class Listed:
    """A version set aside as the list names it: no bytes, and whether they are kept."""

    id: str
    author: str
    seq: int
    record: str
    why: str  # one of services/problems.py's reasons
    wrap: str  # digest of the wrap it was judged with
    size: int  # of its signed bytes and wrap
    kept: bool  # False: past the bytes kept for its author; the server still holds it

    def to_json(self) -> list[Any]:
        return [
            self.id,
            self.author,
            self.seq,
            self.record,
            self.why,
            self.wrap,
            self.size,
            self.kept,
        ]

    @classmethod
    def from_json(cls, value: list[Any]) -> Listed:
        id_, author, seq, record, why, wrap, size, kept = value
        return cls(
            str(id_), str(author), int(seq), str(record), str(why), str(wrap), int(size), bool(kept)
        )


@dataclass(frozen=True)
class Aside(Setting):
    """The versions pulls set aside, in the order they were served, without their bytes (each
    version's bytes are a record setting of its own)."""

    NAME = "aside"

    versions: tuple[Listed, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"versions": [item.to_json() for item in self.versions]}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(tuple(Listed.from_json(found) for found in value.get("versions", [])))


@dataclass(frozen=True)
class OrgLog(Setting):
    """The organisation's log as this store last followed it (core/orglog.py): every
    statement's exact bytes from seq 1, and the forks it was shown, base64. What it says is
    worked out again from the root (the invite's keys) whenever it is read."""

    NAME = "org_log"

    statements: tuple[str, ...] = ()
    forks: tuple[str, ...] = ()
    # an administrator's statement signed but not yet known to be on the server: sent again,
    # byte for byte, never signed afresh (two statements at one seq would be a fork)
    pending: str | None = None
    followed: int = 0  # the seq this store has followed through: a fork never takes it back

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "followed": self.followed,
            "forks": list(self.forks),
            "statements": list(self.statements),
        }
        return value if self.pending is None else value | {"pending": self.pending}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(
            tuple(str(raw) for raw in value["statements"]),
            tuple(str(raw) for raw in value.get("forks", [])),
            _str_or_none(value.get("pending")),
            int(value.get("followed", 0)),
        )


@dataclass(frozen=True)
class Bundles(Setting):
    """An administrator's record of the key bundles it gave: each member's key, with how many
    read keys its newest bundle holds (a rotation makes every member a new one)."""

    NAME = "bundles"

    given: dict[str, int] = field(default_factory=dict)
    # members revoked before they were certified: never to be certified, whatever the server says
    refused: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"given": dict(self.given), "refused": list(self.refused)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(
            {str(k): int(v) for k, v in value["given"].items()},
            tuple(str(k) for k in value.get("refused", [])),
        )


@dataclass(frozen=True)
class OrgKeyring(Setting):
    """An administrator's read keys after the first (which is in the vault): each epoch's
    secret X25519 key, hex, oldest first. Sealed like every setting, under the vault key."""

    NAME = "org_keys"

    read_keys: tuple[tuple[int, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"read_keys": [{"epoch": e, "secret": s} for e, s in self.read_keys]}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(tuple((int(k["epoch"]), str(k["secret"])) for k in value["read_keys"]))

    def __repr__(self) -> str:  # never print a key
        return f"OrgKeyring(epochs={[e for e, _ in self.read_keys]})"


@dataclass(frozen=True)
class MemberInvites(Setting):
    """The one-time tokens of the invites with a role this administrator's store made: it
    certifies as a member (and seals the read keys to) only an enrolment showing one of them,
    never one an invite signed elsewhere let in (a retired admin key's, with a dishonest
    server's help)."""

    NAME = "member_invites"

    tokens: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(tuple(str(token) for token in value["tokens"]))

    def __repr__(self) -> str:  # never print a token
        return f"MemberInvites({len(self.tokens)})"


@dataclass(frozen=True)
class AdminKeys(Setting):
    """An administrator's admin keys after a succession (services/succession.py): the root's
    public key (the vault may hold the root's seed, or, in a store recovered after a
    succession, its successor's) and each successor's secret seed, hex, oldest first. Sealed
    like every setting, under the vault key."""

    NAME = "admin_keys"

    root: str
    successors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root, "successors": list(self.successors)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(str(value["root"]), tuple(str(s) for s in value["successors"]))

    def __repr__(self) -> str:  # never print a key
        return f"AdminKeys(root={self.root[:12]}, successors={len(self.successors)})"


@dataclass(frozen=True)
class BackupKey(Setting):
    """The key of the organisation's sealed backup (core/backup.py) and how it was split, kept
    so that a read-key rotation re-seals the backup for the same shares."""

    NAME = "backup_key"

    key: str  # hex, 32 bytes
    threshold: int
    shares: int
    made_ms: int

    def to_json(self) -> dict[str, Any]:
        kept = {"key": self.key, "made_ms": self.made_ms, "shares": self.shares}
        return kept | {"threshold": self.threshold}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        found = (value["key"], value["threshold"], value["shares"], value["made_ms"])
        return cls(str(found[0]), int(found[1]), int(found[2]), int(found[3]))

    def __repr__(self) -> str:  # never print a key
        return f"BackupKey({self.threshold} of {self.shares})"


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
