"""The sealed backup of an organisation's secrets (``admin backup``, ``admin recover``).

Canonical JSON (docs/format.md, "The sealed backup")::

    {"admin_key": hex Ed25519, the ROOT admin key: which organisation this is,
     "ct": hex, "format": "fieldsync/org-backup", "nonce": hex (24 bytes), "version": 1}

    ct = XChaCha20-Poly1305(backup key, nonce, plaintext,
                            associated = LABEL_ORG_BACKUP || 0x00 || admin_key's 32 bytes)

    plaintext = canonical JSON {"admin_seed": hex, the seed of the admin key in force,
                                "org_head": id of the log's statement at org_seq, or null,
                                "org_seq": n, how far the organisation's log was followed,
                                "read_keys": [{"epoch": 1, "secret": hex X25519}, ...]}

The backup key is 32 random bytes that only K of the custodians' N shares make again
(core/shares.py). The server keeps the sealed backup and serves it to anyone: without K shares
it is ciphertext under a 256-bit key. The admin key is bound as associated data, so a backup
cannot be passed off as another organisation's; the plaintext names every read key, oldest
first, with epochs 1, 2, ... without a gap.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from fieldsync.core import crypto, encoding
from fieldsync.core.ids import is_hex, is_hex32
from fieldsync.errors import DecryptionFailed, MalformedData, UnsupportedFormat

FORMAT = "fieldsync/org-backup"
VERSION = 1
MAX_BACKUP = 64 * 1024  # a seed and 32 bytes per read key: a thousand rotations fit
KEYS = frozenset({"admin_key", "ct", "format", "nonce", "version"})
SECRET_KEYS = frozenset({"admin_seed", "org_head", "org_seq", "read_keys"})
WHAT = "the organisation's sealed backup"


@dataclass(frozen=True)
class Secrets:
    """What a backup holds: enough to make the administrator's store again."""

    admin_seed: bytes
    read_keys: tuple[tuple[int, bytes], ...]  # (epoch, X25519 secret), oldest first
    org_seq: int = 0
    org_head: str | None = None
    # a statement of the log signed and not yet known to be on the server (a rotation sealed
    # into the backup before it is announced): recovery sends it, so it is never signed again
    pending: bytes | None = None

    def __repr__(self) -> str:  # never print a key
        return f"Secrets(epochs={[e for e, _ in self.read_keys]}, org_seq={self.org_seq})"

    def to_json(self) -> dict[str, Any]:
        return {
            "admin_seed": self.admin_seed.hex(),
            "org_head": self.org_head,
            "org_seq": self.org_seq,
            "read_keys": [{"epoch": e, "secret": s.hex()} for e, s in self.read_keys],
        } | ({} if self.pending is None else {"pending": base64.b64encode(self.pending).decode()})


@dataclass(frozen=True)
class Sealed:
    admin_key: str  # hex: the root admin key
    nonce: bytes
    ct: bytes


def new_key() -> bytes:
    return crypto.random_bytes(crypto.KEY_BYTES)


def seal(key: bytes, admin_key: str, secrets: Secrets) -> bytes:
    """The sealed backup's canonical bytes."""
    _check_secrets(secrets.to_json())
    if not is_hex32(admin_key):
        raise ValueError("the admin key is not 32 bytes of hex")
    plaintext = encoding.encode(secrets.to_json())
    nonce, ct = crypto.seal_with_key(
        key, plaintext, crypto.LABEL_ORG_BACKUP, bytes.fromhex(admin_key)
    )
    return encoding.encode(
        {
            "admin_key": admin_key,
            "ct": ct.hex(),
            "format": FORMAT,
            "nonce": nonce.hex(),
            "version": VERSION,
        }
    )


def parse(raw: bytes) -> Sealed:
    """A sealed backup's outside, checked (what the server can check without the key)."""
    doc = encoding.decode(raw, what=WHAT, max_bytes=MAX_BACKUP)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise MalformedData(f"this is not {WHAT}")
    if isinstance(doc.get("version"), int) and doc["version"] > VERSION:
        raise UnsupportedFormat(
            f"{WHAT} was made by a newer fieldsync (version {doc['version']})",
            hint="Nothing was created. Upgrade fieldsync to recover from it.",
        )
    ok = (
        set(doc) == KEYS
        and type(doc["version"]) is int
        and doc["version"] == VERSION
        and is_hex32(doc["admin_key"])
        and is_hex(doc["nonce"], crypto.NONCE_BYTES)
        and isinstance(doc["ct"], str)
        and len(doc["ct"]) % 2 == 0
        and len(doc["ct"]) >= 2 * crypto.AEAD_TAG_BYTES
        and is_hex(doc["ct"], len(doc["ct"]) // 2)
    )
    if not ok:
        raise MalformedData(f"{WHAT} has unexpected or malformed fields")
    return Sealed(doc["admin_key"], bytes.fromhex(doc["nonce"]), bytes.fromhex(doc["ct"]))


def open_sealed(key: bytes, sealed: Sealed) -> Secrets:
    """The secrets inside, or ``DecryptionFailed`` if the key does not open it."""
    try:
        plaintext = crypto.open_with_key(
            key,
            sealed.nonce,
            sealed.ct,
            crypto.LABEL_ORG_BACKUP,
            what=WHAT,
            context=bytes.fromhex(sealed.admin_key),
        )
    except DecryptionFailed as exc:
        raise DecryptionFailed(
            f"{WHAT} does not open with the key these shares make: they are the shares of "
            "another backup (an older one this organisation replaced, or another "
            "organisation's), or the backup was altered",
            hint="Nothing was created. Give the shares of the newest backup, or the backup "
            "file that was made with these shares (--backup-file).",
        ) from exc
    value = encoding.decode(plaintext, what=f"the inside of {WHAT}", max_bytes=MAX_BACKUP)
    _check_secrets(value)
    return Secrets(
        admin_seed=bytes.fromhex(value["admin_seed"]),
        read_keys=tuple((k["epoch"], bytes.fromhex(k["secret"])) for k in value["read_keys"]),
        org_seq=value["org_seq"],
        org_head=value["org_head"],
        pending=base64.b64decode(value["pending"]) if "pending" in value else None,
    )


def _check_secrets(value: object) -> None:
    """Authenticated, so never a flipped bit: a shape no fieldsync writes is refused anyway."""
    if not isinstance(value, dict) or set(value) not in (SECRET_KEYS, SECRET_KEYS | {"pending"}):
        raise MalformedData(f"the inside of {WHAT} has unexpected fields")
    pending = value.get("pending", "")
    if not isinstance(pending, str) or (pending and not _is_base64(pending)):
        raise MalformedData(f"the inside of {WHAT} has a malformed pending statement")
    keys, seq, head = value["read_keys"], value["org_seq"], value["org_head"]
    ok = (
        is_hex32(value["admin_seed"])
        and isinstance(seq, int)
        and not isinstance(seq, bool)
        and seq >= 0
        and (head is None if seq == 0 else is_hex32(head))
        and isinstance(keys, list)
        and len(keys) >= 1
        and all(
            isinstance(k, dict)
            and set(k) == {"epoch", "secret"}
            and k["epoch"] == n
            and is_hex32(k["secret"])
            for n, k in enumerate(keys, 1)
        )
    )
    if not ok:
        raise MalformedData(f"the inside of {WHAT} has malformed values")


def _is_base64(text: str) -> bool:
    try:
        return base64.b64encode(base64.b64decode(text, validate=True)).decode() == text
    except (ValueError, binascii.Error):
        return False
