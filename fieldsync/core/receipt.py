"""Receipts: the server's signed word that it has stored a device's entries up to a point.

Canonical JSON (docs/protocol.md, "Receipt")::

    {"receipt": {"batch": batch id, "device": hex key, "format": "fieldsync/receipt",
                 "head": entry id at last_seq, "last_seq": n, "server": hex key,
                 "time_ms": Unix ms, "version": 1},
     "signature": hex Ed25519 signature by "server" over
                  LABEL_RECEIPT || 0 || canonical JSON of "receipt"}

A device verifies a receipt against the server key it pinned at enrolment, never against the
key the receipt names, and deletes local data (wipe-after-push) only on a receipt that verifies
and names the head it sent.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from fieldsync.core import crypto, encoding
from fieldsync.core.ids import is_hex, is_hex32
from fieldsync.errors import MalformedData, SignatureInvalid

FORMAT = "fieldsync/receipt"
VERSION = 1
MAX_RECEIPT = 4096
KEYS = frozenset({"batch", "device", "format", "head", "last_seq", "server", "time_ms", "version"})


@dataclass(frozen=True)
class Receipt:
    device: str  # hex Ed25519 key of the device whose entries were stored
    last_seq: int  # every entry of that device up to this seq is stored
    head: str  # id of the device's entry at last_seq
    batch: str  # id of the batch this receipt answers
    time_ms: int  # when the server committed it
    server: str  # hex Ed25519 key that signed this receipt

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "device": self.device,
            "format": FORMAT,
            "head": self.head,
            "last_seq": self.last_seq,
            "server": self.server,
            "time_ms": self.time_ms,
            "version": VERSION,
        }


def sign(
    server: crypto.SigningPair, *, device: str, last_seq: int, head: str, batch: str, time_ms: int
) -> bytes:
    receipt = Receipt(device, last_seq, head, batch, time_ms, server.public.hex())
    _check(receipt.to_json())
    body = encoding.encode(receipt.to_json())
    return encoding.encode(
        {"receipt": receipt.to_json(), "signature": server.sign(crypto.LABEL_RECEIPT, body).hex()}
    )


def verify(data: bytes, *, pinned_server_key: bytes) -> Receipt:
    """The receipt, if ``pinned_server_key`` signed it; ``SignatureInvalid`` otherwise."""
    doc = encoding.decode(data, what="the receipt", max_bytes=MAX_RECEIPT)
    if not isinstance(doc, dict) or set(doc) != {"receipt", "signature"}:
        raise MalformedData("the receipt does not have the expected fields")
    receipt = _check(doc["receipt"])
    signature = doc["signature"]
    if not is_hex(signature, crypto.SIGNATURE_BYTES):
        raise MalformedData("the receipt's signature is malformed")
    if receipt.server != pinned_server_key.hex():
        raise SignatureInvalid(
            "the receipt was signed by a server key other than the one pinned at enrolment"
        )
    crypto.verify(
        pinned_server_key,
        crypto.LABEL_RECEIPT,
        encoding.encode(doc["receipt"]),
        bytes.fromhex(signature),
        what=f"the receipt for seq {receipt.last_seq}",
    )
    return receipt


def parse_unverified(data: bytes) -> Receipt:
    """What a receipt says, its signature unchecked: for the server, re-signing one it keeps."""
    doc = encoding.decode(data, what="the receipt", max_bytes=MAX_RECEIPT)
    if not isinstance(doc, dict) or set(doc) != {"receipt", "signature"}:
        raise MalformedData("the receipt does not have the expected fields")
    return _check(doc["receipt"])


def verify_any(data: bytes, keys: Collection[bytes]) -> Receipt:
    """The receipt, if one of ``keys`` signed it (a server's receipt keys over time, as the
    organisation's log names them); ``SignatureInvalid`` otherwise."""
    doc = encoding.decode(data, what="the receipt", max_bytes=MAX_RECEIPT)
    body = doc.get("receipt") if isinstance(doc, dict) else None
    named = body.get("server") if isinstance(body, dict) else None
    by_hex = {key.hex(): key for key in keys}
    if not isinstance(named, str) or named not in by_hex:
        raise SignatureInvalid(
            "the receipt was signed by a server key the organisation's log does not name"
        )
    return verify(data, pinned_server_key=by_hex[named])


def _check(value: object) -> Receipt:
    if not isinstance(value, dict) or set(value) != KEYS:
        raise MalformedData("the receipt does not have exactly the expected fields")
    if value["format"] != FORMAT or value["version"] != VERSION:
        raise MalformedData("the receipt is of an unknown format or version")
    seq, time_ms = value["last_seq"], value["time_ms"]
    ok = (
        all(is_hex32(value[k]) for k in ("device", "head", "batch", "server"))
        and isinstance(seq, int)
        and not isinstance(seq, bool)
        and seq >= 1
        and isinstance(time_ms, int)
        and not isinstance(time_ms, bool)
        and time_ms >= 0
    )
    if not ok:
        raise MalformedData("the receipt has invalid values")
    return Receipt(value["device"], seq, value["head"], value["batch"], time_ms, value["server"])
