"""The JSON shapes of the sync protocol's HTTP API (docs/protocol.md, "Endpoints"), written once.

The server builds every JSON answer from one of these classes (``to_json``: the keys, their
order and their value types as the protocol pins them); the device reads every answer back
into one (``from_json``), checking each key and type, so that a hostile or broken server gets a
clear ``ServerError`` rather than a ``KeyError`` deep in a service. ``source`` is how that error
names the server ("the server at URL").

    GET  /v1/info                        ServerInfo
    POST /v1/enrol                       EnrolAnswer
    GET, PUT, PATCH /v1/blobs/{id}/...   BlobState
    GET  /v1/feed/{after}                FeedPage of FeedItem
    GET  /v1/admin/devices               DeviceListing of DeviceInfo
    POST /v1/admin/devices/{key}/revoke  RevokeAnswer
    GET  /v1/org/log                     OrgLogPage
    PUT  /v1/admin/backup                BackupStored (GET /v1/org/backup: the sealed backup)
    any refusal                          ErrorAnswer, its class named in ERRORS

Receipts (``core/receipt.py``) and batches (``core/batch.py``) are signed formats of their own.

Kept whole: every shape of the API side by side, each small, with the one
reader they share, is what makes the server's and the device's side one definition.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from fieldsync.core import encoding
from fieldsync.errors import (
    AccessDenied,
    BatchInvalid,
    BodyTooSlow,
    ChainFork,
    ChainGap,
    DatabaseDriverMissing,
    DatabaseUnreachable,
    DecryptionFailed,
    DeviceRevoked,
    FieldsyncError,
    InputError,
    IntegrityError,
    InviteExpired,
    InviteUsed,
    KdfParamsRefused,
    MalformedData,
    NotFound,
    QuotaExceeded,
    ReceiptKeyMissing,
    RequestCut,
    SchemaMismatch,
    ServerBusy,
    ServerError,
    ServerStorageFailed,
    SignatureInvalid,
    StoreExists,
    StoreNotFound,
    StoreStateError,
    TooLarge,
    UnsupportedFormat,
    UploadBusy,
)

# The largest count, offset or time an answer may carry: what a device can keep (its store's
# canonical JSON holds integers up to 2**53 - 1; the server's BIGINT columns hold more).
MAX_INT = encoding.MAX_SAFE_INTEGER

# Every error a fieldsync server may answer with, by the name it sends (``ErrorAnswer.error``):
# those its own code and the core formats it uses raise, and FieldsyncError itself (a path or
# method FastAPI refuses). A device raises the same class; any other name is a ServerError.
ERRORS: dict[str, type[FieldsyncError]] = {
    kind.__name__: kind
    for kind in (
        FieldsyncError,
        InputError,
        InviteExpired,
        TooLarge,
        RequestCut,
        AccessDenied,
        DeviceRevoked,
        NotFound,
        StoreNotFound,
        StoreStateError,
        StoreExists,
        KdfParamsRefused,
        UnsupportedFormat,
        InviteUsed,
        ChainGap,
        UploadBusy,
        QuotaExceeded,
        ChainFork,
        SchemaMismatch,
        DatabaseUnreachable,
        DatabaseDriverMissing,
        ServerStorageFailed,
        ReceiptKeyMissing,
        BodyTooSlow,
        ServerBusy,
        IntegrityError,
        MalformedData,
        SignatureInvalid,
        DecryptionFailed,
        BatchInvalid,
    )
}


def unexpected(source: str) -> str:
    """Today's words for an answer that is not the shape its request promises."""
    return f"{source} sent an unexpected answer"


class _Fields:
    """One JSON object's members, each read as one type; anything else is ``complaint``."""

    def __init__(self, value: object, complaint: str) -> None:
        if not isinstance(value, dict):
            raise ServerError(complaint)
        self._value: dict[str, object] = value
        self._complaint = complaint

    def malformed(self) -> ServerError:
        return ServerError(self._complaint)

    def text(self, key: str) -> str:
        value = self._value.get(key)
        if not isinstance(value, str):
            raise self.malformed()
        return value

    def optional_text(self, key: str) -> str | None:
        """A text or null; the key itself is never left out."""
        if key not in self._value:
            raise self.malformed()
        return None if self._value[key] is None else self.text(key)

    def number(self, key: str) -> int:
        value = self._value.get(key)
        if not _is_number(value) or value < 0:
            raise self.malformed()
        return value

    def optional_number(self, key: str) -> int | None:
        """A number or null; the key itself is never left out."""
        if key not in self._value:
            raise self.malformed()
        return None if self._value[key] is None else self.number(key)

    def flag(self, key: str, default: bool | None = None) -> bool:
        value = self._value.get(key, default)
        if not isinstance(value, bool):
            raise self.malformed()
        return value

    def has(self, key: str) -> bool:
        return key in self._value

    def items(self, key: str) -> list[object]:
        value = self._value.get(key)
        if not isinstance(value, list):
            raise self.malformed()
        return value

    def base64(self, key: str) -> bytes:
        try:
            return base64.b64decode(self.text(key), validate=True)
        except (ValueError, binascii.Error) as exc:
            raise self.malformed() from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class ServerInfo:
    """Who the server is (``GET /v1/info``).

    Each key is None when the server left it out or sent another type: every reader compares
    the key it needs with the one it trusts, and says in its own words which one differs
    (another organisation, not the invite's server, no receipt key), so nothing is refused
    here."""

    protocol: int | None
    server_key: str | None
    server_fingerprint: str | None
    admin_key: str | None
    org_read_key: str | None
    org_fingerprint: str | None
    # the first receipt key is ``server_key`` (where the organisation's log starts); the one
    # signing now, and a newer one the administrator may name, signed by the one in force
    receipt_key: str | None = None
    next_receipt_key: str | None = None
    next_receipt_key_proof: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "server_key": self.server_key,
            "server_fingerprint": self.server_fingerprint,
            "admin_key": self.admin_key,
            "org_read_key": self.org_read_key,
            "org_fingerprint": self.org_fingerprint,
            "receipt_key": self.receipt_key,
            "next_receipt_key": self.next_receipt_key,
            "next_receipt_key_proof": self.next_receipt_key_proof,
        }

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> ServerInfo:
        if not isinstance(value, dict):
            raise ServerError(unexpected(source))

        def text(key: str) -> str | None:
            found = value.get(key)
            return found if isinstance(found, str) else None

        protocol = value.get("protocol")
        if isinstance(protocol, bool) or not isinstance(protocol, int):
            protocol = None
        return cls(
            protocol=protocol,
            server_key=text("server_key"),
            server_fingerprint=text("server_fingerprint"),
            admin_key=text("admin_key"),
            org_read_key=text("org_read_key"),
            org_fingerprint=text("org_fingerprint"),
            receipt_key=text("receipt_key"),
            next_receipt_key=text("next_receipt_key"),
            next_receipt_key_proof=text("next_receipt_key_proof"),
        )


@dataclass(frozen=True)
class EnrolAnswer:
    """A device just registered (``POST /v1/enrol``)."""

    device: str
    name: str
    fingerprint: str
    enrolled_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "name": self.name,
            "fingerprint": self.fingerprint,
            "enrolled_ms": self.enrolled_ms,
        }

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> EnrolAnswer:
        fields = _Fields(value, unexpected(source))
        return cls(
            device=fields.text("device"),
            name=fields.text("name"),
            fingerprint=fields.text("fingerprint"),
            enrolled_ms=fields.number("enrolled_ms"),
        )


@dataclass(frozen=True)
class BlobState:
    """How much of a blob the server holds (every answer of ``/v1/blobs/{id}...``)."""

    id: str
    size: int
    offset: int
    complete: bool
    busy: bool = False  # a request is appending to it right now

    def to_json(self) -> dict[str, object]:
        state = {"id": self.id, "size": self.size, "offset": self.offset}
        return state | {"complete": self.complete, "busy": self.busy}

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> BlobState:
        fields = _Fields(value, unexpected(source))
        size, offset = fields.number("size"), fields.number("offset")
        if offset > size:
            raise fields.malformed()
        return cls(
            id=fields.text("id"),
            size=size,
            offset=offset,
            complete=fields.flag("complete"),
            busy=fields.flag("busy", default=False),  # docs/protocol.md's four keys suffice
        )


NOT_A_PAGE = "the server's answer to a pull is not a page of versions"
BAD_RECEIPTS = "the server's answer to a pull has malformed receipts"


@dataclass(frozen=True)
class FeedItem:
    """One version of a feed page: its position, its signed bytes and the wrap of its key
    for the reader who asked."""

    pos: int
    entry: bytes
    wrap: bytes

    def to_json(self) -> dict[str, object]:
        return {"pos": self.pos, "entry": _b64(self.entry), "wrap": _b64(self.wrap)}

    @classmethod
    def from_json(cls, value: object) -> FeedItem:
        fields = _Fields(value, NOT_A_PAGE)
        return cls(fields.number("pos"), fields.base64("entry"), fields.base64("wrap"))


@dataclass(frozen=True)
class FeedPage:
    """One page of the feed (``GET /v1/feed/{after}``). ``receipts`` (their exact bytes) is
    sent to the administrator only: None when the page has none."""

    entries: tuple[FeedItem, ...]
    next: int
    more: bool
    receipts: tuple[bytes, ...] | None = None
    # Receipts a device could not read: refused by ``read_receipts``, which an administrator's
    # pull asks for once every version of the page verified (a documenter's never does).
    receipts_malformed: bool = False

    def read_receipts(self) -> tuple[bytes, ...]:
        """The page's receipts, each its exact bytes (checked by core/receipt.py)."""
        if self.receipts_malformed:
            raise ServerError(BAD_RECEIPTS)
        return self.receipts or ()

    def to_json(self) -> dict[str, object]:
        page: dict[str, object] = {
            "entries": [item.to_json() for item in self.entries],
            "next": self.next,
            "more": self.more,
        }
        if self.receipts is not None:
            page["receipts"] = [_b64(receipt) for receipt in self.receipts]
        return page

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> FeedPage:
        """An answer that is no JSON object is ``unexpected``, as every other; one that is
        has the words a pull has always had for a bad page."""
        if not isinstance(value, dict):
            raise ServerError(unexpected(source))
        fields = _Fields(value, NOT_A_PAGE)
        entries = tuple(FeedItem.from_json(item) for item in fields.items("entries"))
        after, more = fields.number("next"), fields.flag("more")
        receipts, malformed = None, False
        if "receipts" in value:
            try:
                receipts = _receipts_of(value)
            except ServerError:
                malformed = True
        return cls(entries, after, more, receipts, receipts_malformed=malformed)


def _is_number(value: object) -> TypeGuard[int]:
    """A JSON integer (not a boolean) a device can keep."""
    return type(value) is int and -MAX_INT <= value <= MAX_INT


def _receipts_of(page: dict[str, object]) -> tuple[bytes, ...]:
    """A page's receipts, each the base64 of its exact bytes (checked by ``core/receipt.py``)."""
    fields = _Fields(page, BAD_RECEIPTS)
    encoded = fields.items("receipts")
    texts = [one for one in encoded if isinstance(one, str)]
    if len(texts) != len(encoded):
        raise fields.malformed()
    try:
        return tuple(base64.b64decode(one, validate=True) for one in texts)
    except (ValueError, binascii.Error) as exc:
        raise fields.malformed() from exc


@dataclass(frozen=True)
class DeviceInfo:
    """One row of the device registry. ``enrolment`` is the base64 of the request as the
    device sent it, kept verbatim: the reader checks its spelling and its signatures."""

    device: str
    box_key: str
    name: str
    fingerprint: str
    status: str  # active | revoked | admin (the analysts' own log)
    enrolled_ms: int
    revoked_ms: int | None
    last_seen_ms: int | None
    last_seq: int
    entries: int
    alert: str | None
    enrolment: str
    role: str = "device"  # device | analyst | viewer (a server before roles sends none)

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "box_key": self.box_key,
            "name": self.name,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "enrolled_ms": self.enrolled_ms,
            "revoked_ms": self.revoked_ms,
            "last_seen_ms": self.last_seen_ms,
            "last_seq": self.last_seq,
            "entries": self.entries,
            "alert": self.alert,
            "enrolment": self.enrolment,
            "role": self.role,
        }

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> DeviceInfo:
        fields = _Fields(value, unexpected(source))
        return cls(
            device=fields.text("device"),
            box_key=fields.text("box_key"),
            name=fields.text("name"),
            fingerprint=fields.text("fingerprint"),
            status=fields.text("status"),
            enrolled_ms=fields.number("enrolled_ms"),
            revoked_ms=fields.optional_number("revoked_ms"),
            last_seen_ms=fields.optional_number("last_seen_ms"),
            last_seq=fields.number("last_seq"),
            entries=fields.number("entries"),
            alert=fields.optional_text("alert"),
            enrolment=fields.text("enrolment"),
            role=fields.text("role") if fields.has("role") else "device",
        )


@dataclass(frozen=True)
class DeviceListing:
    """The device registry (``GET /v1/admin/devices``): a JSON list of ``DeviceInfo``."""

    devices: tuple[DeviceInfo, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [device.to_json() for device in self.devices]

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> DeviceListing:
        if not isinstance(value, list):
            raise ServerError(unexpected(source))
        return cls(tuple(DeviceInfo.from_json(row, source) for row in value))


@dataclass(frozen=True)
class OrgLogPage:
    """The organisation's log (``GET /v1/org/log``): every statement from seq 1 and every one
    refused as a fork, each its exact bytes (base64); the reader verifies them all."""

    statements: tuple[bytes, ...]
    forks: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "forks": [_b64(raw) for raw in self.forks],
            "statements": [_b64(raw) for raw in self.statements],
        }

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> OrgLogPage:
        fields = _Fields(value, unexpected(source))
        return cls(_all_base64(fields, "statements"), _all_base64(fields, "forks"))


def _all_base64(fields: _Fields, key: str) -> tuple[bytes, ...]:
    found = []
    for item in fields.items(key):
        if not isinstance(item, str):
            raise fields.malformed()
        try:
            raw = base64.b64decode(item, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise fields.malformed() from exc
        if not raw:
            raise fields.malformed()
        found.append(raw)
    return tuple(found)


@dataclass(frozen=True)
class RevokeAnswer:
    """A device revoked (``POST /v1/admin/devices/{key}/revoke``)."""

    device: str
    status: str
    revoked_ms: int | None

    def to_json(self) -> dict[str, object]:
        return {"device": self.device, "status": self.status, "revoked_ms": self.revoked_ms}

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> RevokeAnswer:
        fields = _Fields(value, unexpected(source))
        return cls(
            device=fields.text("device"),
            status=fields.text("status"),
            revoked_ms=fields.optional_number("revoked_ms"),
        )


@dataclass(frozen=True)
class BackupStored:
    """The organisation's sealed backup kept (``PUT /v1/admin/backup``), in place of the last."""

    stored_ms: int
    size: int

    def to_json(self) -> dict[str, object]:
        return {"stored_ms": self.stored_ms, "size": self.size}

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> BackupStored:
        fields = _Fields(value, unexpected(source))
        return cls(stored_ms=fields.number("stored_ms"), size=fields.number("size"))


@dataclass(frozen=True)
class ErrorAnswer:
    """A refusal in fieldsync's own words: the class's name, its message and hint, and its
    machine-readable details (the seq to resend from, the offset to resume at)."""

    error: str
    message: str
    hint: str | None = None
    details: Mapping[str, int | str] = field(default_factory=dict)

    @classmethod
    def of(cls, exc: FieldsyncError) -> ErrorAnswer:
        return cls(type(exc).__name__, exc.message, exc.hint, exc.details)

    def to_json(self) -> dict[str, object]:
        return {
            "error": self.error,
            "message": self.message,
            "hint": self.hint,
            "details": dict(self.details),
        }

    @classmethod
    def from_json(cls, value: object, source: str = "the server") -> ErrorAnswer:
        """The answer, if it has an error's name and message; a hint of another type is left
        out, and so is any detail that is not a number or a text."""
        fields = _Fields(value, unexpected(source))
        hint = value.get("hint") if isinstance(value, dict) else None
        raw = value.get("details") if isinstance(value, dict) else None
        details = (
            {str(k): v for k, v in raw.items() if isinstance(v, str) or _is_number(v)}
            if isinstance(raw, dict)
            else {}
        )
        return cls(
            error=fields.text("error"),
            message=fields.text("message"),
            hint=hint if isinstance(hint, str) else None,
            details=details,
        )

    def raised(self) -> FieldsyncError:
        """What a device raises for it: the class the server named (``ERRORS``), carrying the
        server's words, so a device shows them and can act on the details; a class it does
        not name, ServerError."""
        text = f"the server refused: {self.message[:1].lower()}{self.message[1:]}"
        kind = ERRORS.get(self.error)
        if kind is None:
            return ServerError(text)
        # Built without the class's own __init__ (some take other arguments).
        error = kind.__new__(kind)
        FieldsyncError.__init__(error, text, hint=self.hint, details=dict(self.details))
        return error
