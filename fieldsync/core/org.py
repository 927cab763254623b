"""The organisation's public keys, as ``admin init`` writes them for ``server init --org``.

Canonical JSON::

    {"admin_key": hex Ed25519, "format": "fieldsync/org", "org_read_key": hex X25519,
     "version": 1}

Public, but not unimportant: a server set up with the wrong file would accept invites from the
wrong administrator. Both sides show the organisation's fingerprint for a person to compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fieldsync.core import encoding
from fieldsync.core.ids import fingerprint, is_hex32
from fieldsync.errors import MalformedData

FORMAT = "fieldsync/org"
VERSION = 1
KEYS = frozenset({"admin_key", "format", "org_read_key", "version"})


@dataclass(frozen=True)
class OrgKeys:
    admin_key: str  # hex Ed25519: signs invites, the registry, forms, analysts' versions
    org_read_key: str  # hex X25519: every content key is wrapped for it

    @property
    def fingerprint(self) -> str:
        return fingerprint(bytes.fromhex(self.admin_key), bytes.fromhex(self.org_read_key))

    def to_json(self) -> dict[str, Any]:
        return {
            "admin_key": self.admin_key,
            "format": FORMAT,
            "org_read_key": self.org_read_key,
            "version": VERSION,
        }

    def encode(self) -> bytes:
        return encoding.encode(self.to_json())


def parse(data: bytes) -> OrgKeys:
    """Read the file as ordinary JSON: it is not signed, and a person may have re-saved it."""
    if len(data) > 4096:
        raise MalformedData("this is not an organisation's public-keys file (too large)")
    try:
        value = encoding.parse_input(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedData("this is not an organisation's public-keys file (not JSON)") from exc
    if not isinstance(value, dict) or set(value) != KEYS:
        raise MalformedData("this is not an organisation's public-keys file")
    if value["format"] != FORMAT or value["version"] != VERSION:
        raise MalformedData("the organisation's public-keys file has an unknown format")
    if not (is_hex32(value["admin_key"]) and is_hex32(value["org_read_key"])):
        raise MalformedData("the organisation's public-keys file has invalid keys")
    return OrgKeys(value["admin_key"], value["org_read_key"])
