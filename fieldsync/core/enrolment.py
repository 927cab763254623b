"""Enrolment: a device asks the server to register its keys, showing an invite.

Canonical JSON (docs/protocol.md, "Enrolment")::

    {"box_key": hex X25519, "device_key": hex Ed25519, "invite": the invite's text,
     "proof": hex Ed25519 signature by device_key over
              LABEL_ENROL || 0 || canonical {"box_key", "device_key", "token"}}

The proof shows the device holds the key it registers, and binds that key to this invite's
one-time token, so a token seen in transit cannot enrol another key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fieldsync.core import crypto, encoding, invite
from fieldsync.core.ids import from_hex, is_hex, is_hex32
from fieldsync.errors import MalformedData, SignatureInvalid

KEYS = frozenset({"box_key", "device_key", "invite", "proof"})
MAX_REQUEST = 8 * 1024


@dataclass(frozen=True)
class Enrolment:
    invite: str
    device_key: str
    box_key: str
    proof: str

    def to_json(self) -> dict[str, Any]:
        return {
            "box_key": self.box_key,
            "device_key": self.device_key,
            "invite": self.invite,
            "proof": self.proof,
        }

    def encode(self) -> bytes:
        return encoding.encode(self.to_json())


def _claim(device_key: str, box_key: str, token: str) -> bytes:
    return encoding.encode({"box_key": box_key, "device_key": device_key, "token": token})


def request(
    signer: crypto.SigningPair, box_public: bytes, invite_text: str, token: str
) -> Enrolment:
    device_key, box_key = signer.public.hex(), box_public.hex()
    proof = signer.sign(crypto.LABEL_ENROL, _claim(device_key, box_key, token))
    return Enrolment(invite_text.strip(), device_key, box_key, proof.hex())


def parse(data: bytes) -> Enrolment:
    value = encoding.decode(data, what="the enrolment request", max_bytes=MAX_REQUEST)
    if not isinstance(value, dict) or set(value) != KEYS:
        raise MalformedData("the enrolment request does not have the expected fields")
    ok = (
        is_hex32(value["device_key"])
        and is_hex32(value["box_key"])
        and isinstance(value["invite"], str)
        and is_hex(value["proof"], crypto.SIGNATURE_BYTES)
    )
    if not ok:
        raise MalformedData("the enrolment request has invalid values")
    return Enrolment(value["invite"], value["device_key"], value["box_key"], value["proof"])


def verify_proof(enrolment: Enrolment, token: str) -> None:
    """Raises ``SignatureInvalid`` unless the device key signed this claim for this token."""
    proof = from_hex(enrolment.proof, crypto.SIGNATURE_BYTES, what="the enrolment proof")
    crypto.verify(
        from_hex(enrolment.device_key, crypto.KEY_BYTES, what="the enrolment's device key"),
        crypto.LABEL_ENROL,
        _claim(enrolment.device_key, enrolment.box_key, token),
        proof,
        what="the enrolment request",
    )


@dataclass(frozen=True)
class Vouched:
    """A device the organisation's admin key let in: its keys and the name in its invite."""

    device_key: str
    box_key: str
    name: str


def vouched(data: bytes, admin_key: str) -> Vouched:
    """Check a stored enrolment request against the admin key, whenever its invite expired.

    Raises an ``IntegrityError`` unless the admin key signed the invite and the device key
    signed the claim for that invite's token.
    """
    request = parse(data)
    shown = invite.read(request.invite, now_ms=None)
    if shown.admin_key != admin_key:
        raise SignatureInvalid("its invite was not signed by this organisation's admin key")
    verify_proof(request, shown.token)
    return Vouched(request.device_key, request.box_key, shown.name)
