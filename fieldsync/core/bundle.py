"""Key bundles: the organisation's read keys, sealed by the administrator to one member's box
key, so that an analyst (or viewer) reads what the organisation receives. The server stores
each member's newest bundle and cannot open it.

Canonical JSON (docs/format.md, "Key bundle")::

    {"bundle": {"format": "fieldsync/key-bundle", "version": 1,
                "member": hex Ed25519, "box_key": hex X25519 (the member's),
                "org_seq": the organisation's log seq it was made at,
                "signer": hex Ed25519, the admin key in force,
                "sealed": base64 of a sealed box to box_key of
                          canonical {"read_keys": [{"epoch": 1, "secret": hex}, ...]}},
     "signature": hex Ed25519 by "signer" over LABEL_KEY_BUNDLE || 0 || canonical "bundle"}

A member opens a bundle only if the admin key in force (as the log it followed says) signed it,
for its own keys, and every secret's public key is the read key the log announces at that
epoch: a server cannot hand it keys of its own making, nor another member's bundle.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from fieldsync.core import crypto, encoding
from fieldsync.core.ids import is_hex, is_hex32
from fieldsync.core.orglog import OrgState
from fieldsync.errors import IntegrityError, MalformedData, SignatureInvalid, UnsupportedFormat

FORMAT = "fieldsync/key-bundle"
VERSION = 1
MAX_BUNDLE = 64 * 1024
KEYS = frozenset({"box_key", "format", "member", "org_seq", "sealed", "signer", "version"})


@dataclass(frozen=True)
class ReadSecret:
    epoch: int
    pair: crypto.BoxPair

    def __repr__(self) -> str:  # never print a key
        return f"ReadSecret({self.epoch})"


def make(
    admin: crypto.SigningPair,
    state: OrgState,
    *,
    member: str,
    box_key: str,
    secrets: list[ReadSecret],
) -> bytes:
    """A bundle of ``secrets`` for one member, signed by the admin key in force."""
    if admin.public.hex() != state.admin_key:
        raise SignatureInvalid(
            "this store's admin key is not the organisation's admin key in force; no key "
            "bundle was made"
        )
    inner = {"read_keys": [{"epoch": s.epoch, "secret": s.pair.secret.hex()} for s in secrets]}
    sealed = crypto.seal_for(bytes.fromhex(box_key), encoding.encode(inner))
    body = {
        "box_key": box_key,
        "format": FORMAT,
        "member": member,
        "org_seq": state.seq,
        "sealed": base64.b64encode(sealed).decode("ascii"),
        "signer": admin.public.hex(),
        "version": VERSION,
    }
    signature = admin.sign(crypto.LABEL_KEY_BUNDLE, encoding.encode(body))
    return encoding.encode({"bundle": body, "signature": signature.hex()})


@dataclass(frozen=True)
class Addressed:
    member: str
    box_key: str


def check_signed(raw: bytes, admin_key: str) -> Addressed:
    """Whom a bundle is for, once its signature by ``admin_key`` verifies (what the server
    checks before it keeps one; it cannot open it)."""
    body = _signed_body(raw, admin_key)
    return Addressed(body["member"], body["box_key"])


def open_bundle(
    raw: bytes, *, state: OrgState, member: crypto.SigningPair, box: crypto.BoxPair
) -> list[ReadSecret]:
    """The read keys in a bundle, oldest first, once every check above has passed."""
    body = _signed_body(raw, state.admin_key)
    if body["member"] != member.public.hex() or body["box_key"] != box.public.hex():
        raise SignatureInvalid("the key bundle was made for another member; nothing of it was used")
    try:
        sealed = base64.b64decode(body["sealed"], validate=True)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise MalformedData("the key bundle's sealed keys are not base64") from exc
    inner = encoding.decode(
        box.open_sealed(sealed, what="the key bundle"), what="the key bundle's keys"
    )
    return _checked(inner, state)


def _signed_body(raw: bytes, admin_key: str) -> dict[str, Any]:
    doc = encoding.decode(raw, what="the key bundle", max_bytes=MAX_BUNDLE)
    if not isinstance(doc, dict) or set(doc) != {"bundle", "signature"}:
        raise MalformedData("the key bundle does not have the expected fields")
    body, signature = doc["bundle"], doc["signature"]
    if not isinstance(body, dict) or set(body) != KEYS or body["format"] != FORMAT:
        raise MalformedData("the key bundle does not have the expected fields")
    if type(body["version"]) is not int or body["version"] < VERSION:
        raise MalformedData("the key bundle has an invalid version")
    if body["version"] > VERSION:
        raise UnsupportedFormat("the key bundle was made by a newer fieldsync")
    ok = (
        is_hex(signature, crypto.SIGNATURE_BYTES)
        and all(is_hex32(body[k]) for k in ("signer", "member", "box_key"))
        and type(body["org_seq"]) is int
        and body["org_seq"] >= 0
        and isinstance(body["sealed"], str)
    )
    if not ok:
        raise MalformedData("the key bundle has invalid values")
    if body["signer"] != admin_key:
        raise SignatureInvalid(
            "the key bundle is not signed by the organisation's admin key; nothing of it was used"
        )
    crypto.verify(
        bytes.fromhex(body["signer"]),
        crypto.LABEL_KEY_BUNDLE,
        encoding.encode(body),
        bytes.fromhex(signature),
        what="the key bundle",
    )
    return body


def _checked(inner: object, state: OrgState) -> list[ReadSecret]:
    keys = (
        inner.get("read_keys") if isinstance(inner, dict) and set(inner) == {"read_keys"} else None
    )
    if not isinstance(keys, list) or not all(
        isinstance(k, dict)
        and set(k) == {"epoch", "secret"}
        and type(k["epoch"]) is int
        and is_hex32(k["secret"])
        for k in keys
    ):
        raise MalformedData("the key bundle's keys are malformed")
    found = [ReadSecret(k["epoch"], crypto.BoxPair(bytes.fromhex(k["secret"]))) for k in keys]
    if [s.epoch for s in found] != list(range(1, len(found) + 1)):
        raise MalformedData("the key bundle's read keys are not epochs 1, 2, 3, ...")
    for secret, announced in zip(found, state.read_keys, strict=False):
        if secret.pair.public.hex() != announced.key:
            raise IntegrityError(
                f"read key {secret.epoch} in the key bundle is not the one the organisation's "
                "log announces; nothing of it was used"
            )
    if len(found) < len(state.read_keys):
        raise IntegrityError(
            f"the key bundle holds {len(found)} read keys, and the organisation's log announces "
            f"{len(state.read_keys)}: it is older than the log",
            hint="Ask your administrator to run 'fieldsync admin pull', which makes a new one.",
        )
    return found[: len(state.read_keys)]
