"""Enrolment: a device asks the server to register its keys, showing an invite.

Canonical JSON (docs/protocol.md, "Enrolment")::

    {"box_key": hex X25519, "box_proof": hex BOX_PROOF_BYTES, "device_key": hex Ed25519,
     "invite": the invite's text,
     "proof": hex Ed25519 signature by device_key over
              LABEL_ENROL || 0 || canonical {"box_key", "box_proof", "device_key", "token"}}

    box_proof = the box key's proof of possession for the server (``crypto.BoxPair.prove``:
                nonce || crypto_box from the box key to the invite's server key in X25519 form)
                of hash32(LABEL_ENROL_BOX, canonical {"box_key", "device_key", "token"})

The proof shows the device holds the key it registers, and binds that key to this invite's
one-time token, so a token seen in transit cannot enrol another key. The box proof shows the
server the same of the box key (which versions for the device are sealed to), so no device can
register a box key it does not hold. Only the server can open it (``verify_box_proof``);
everyone else checks the device's proof, which covers it, so it cannot be stripped or changed
afterwards (decision 52). Requests made before the box proof existed (no ``box_proof``, and a
proof over the claim without it) are still read, for the registrations they made; the server
accepts no new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fieldsync.core import crypto, encoding, invite
from fieldsync.core.ids import from_hex, is_hex, is_hex32
from fieldsync.errors import MalformedData, SignatureInvalid

KEYS = frozenset({"box_key", "box_proof", "device_key", "invite", "proof"})
KEYS_BEFORE_BOX_PROOF = KEYS - {"box_proof"}
MAX_REQUEST = 16 * 1024


@dataclass(frozen=True)
class Enrolment:
    invite: str
    device_key: str
    box_key: str
    proof: str
    box_proof: str | None  # None only in a request made before the box proof existed

    def to_json(self) -> dict[str, Any]:
        value = {
            "box_key": self.box_key,
            "device_key": self.device_key,
            "invite": self.invite,
            "proof": self.proof,
        }
        return value if self.box_proof is None else value | {"box_proof": self.box_proof}

    def encode(self) -> bytes:
        return encoding.encode(self.to_json())


def _claim(device_key: str, box_key: str, token: str) -> bytes:
    return encoding.encode({"box_key": box_key, "device_key": device_key, "token": token})


def _signed_claim(device_key: str, box_key: str, token: str, box_proof: str | None) -> bytes:
    if box_proof is None:
        return _claim(device_key, box_key, token)
    return encoding.encode(
        {"box_key": box_key, "box_proof": box_proof, "device_key": device_key, "token": token}
    )


def request(
    signer: crypto.SigningPair,
    box: crypto.BoxPair,
    invite_text: str,
    token: str,
    *,
    server_key: bytes,
) -> Enrolment:
    """The request for the invite's token, its box proof for the invite's ``server_key``."""
    device_key, box_key = signer.public.hex(), box.public.hex()
    claim = _claim(device_key, box_key, token)
    box_proof = box.prove(server_key, crypto.LABEL_ENROL_BOX, claim).hex()
    proof = signer.sign(crypto.LABEL_ENROL, _signed_claim(device_key, box_key, token, box_proof))
    return Enrolment(invite_text.strip(), device_key, box_key, proof.hex(), box_proof)


def parse(data: bytes) -> Enrolment:
    value = encoding.decode(data, what="the enrolment request", max_bytes=MAX_REQUEST)
    if not isinstance(value, dict) or set(value) not in (KEYS, KEYS_BEFORE_BOX_PROOF):
        raise MalformedData("the enrolment request does not have the expected fields")
    box_proof = value.get("box_proof")
    ok = (
        is_hex32(value["device_key"])
        and is_hex32(value["box_key"])
        and isinstance(value["invite"], str)
        and is_hex(value["proof"], crypto.SIGNATURE_BYTES)
        and (box_proof is None or is_hex(box_proof, crypto.BOX_PROOF_BYTES))
    )
    if not ok:
        raise MalformedData("the enrolment request has invalid values")
    return Enrolment(
        value["invite"], value["device_key"], value["box_key"], value["proof"], box_proof
    )


def verify_proof(enrolment: Enrolment, token: str) -> None:
    """Raises ``SignatureInvalid`` unless the device key signed this claim for this token (with
    its box proof, in a request that has one). What anyone holding the invite can check."""
    device_key, box_key = enrolment.device_key, enrolment.box_key
    crypto.verify(
        from_hex(device_key, crypto.KEY_BYTES, what="the enrolment's device key"),
        crypto.LABEL_ENROL,
        _signed_claim(device_key, box_key, token, enrolment.box_proof),
        from_hex(enrolment.proof, crypto.SIGNATURE_BYTES, what="the enrolment proof"),
        what="the enrolment request",
    )


def verify_box_proof(enrolment: Enrolment, token: str, server: crypto.SigningPair) -> None:
    """Raises ``SignatureInvalid`` unless the box proof opens for ``server`` (whose receipt key
    the invite names) to this claim: the device holds the box key it registers. Only the
    server holds the key that opens it."""
    if enrolment.box_proof is None:
        raise SignatureInvalid("the enrolment request does not prove that it holds its box key")
    device_key, box_key = enrolment.device_key, enrolment.box_key
    server.open_box_proof(
        from_hex(box_key, crypto.KEY_BYTES, what="the enrolment's box key"),
        crypto.LABEL_ENROL_BOX,
        _claim(device_key, box_key, token),
        from_hex(enrolment.box_proof, crypto.BOX_PROOF_BYTES, what="the enrolment's box proof"),
        what="the enrolment's box key",
    )


@dataclass(frozen=True)
class Vouched:
    """A device the organisation's admin key let in: its keys, the name in its invite and that
    invite's one-time token (which vouches for one device key only)."""

    device_key: str
    box_key: str
    name: str
    token: str
    role: str | None = None  # from the invite: "analyst", "viewer", or None for a device


def vouched(data: bytes, admin_keys: str | Sequence[str]) -> Vouched:
    """Check a stored enrolment request against the admin keys (the organisation's first,
    then each that succeeded it, as its log names them), whenever its invite expired.

    Raises an ``IntegrityError`` unless one of the admin keys signed the invite for this
    organisation and the device key signed the claim for that invite's token.
    """
    keys = (admin_keys,) if isinstance(admin_keys, str) else tuple(admin_keys)
    request = parse(data)
    shown = invite.read(request.invite, now_ms=None)
    if shown.admin_key != keys[0] or shown.signed_by not in keys:
        raise SignatureInvalid("its invite was not signed by this organisation's admin key")
    verify_proof(request, shown.token)
    return Vouched(request.device_key, request.box_key, shown.name, shown.token, shown.role)
