"""Identifiers: record ids (UUIDv7), device ids and fingerprints a person can read aloud."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Iterable

from fieldsync.core.crypto import LABEL_FINGERPRINT, hash32
from fieldsync.errors import MalformedData

# Always used with ``fullmatch``: ``match`` with ``$`` would also take a final newline, and
# ``bytes.fromhex`` skips white space and takes capitals, so one key would have many spellings.
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
HEX_PATTERN = re.compile(r"(?:[0-9a-f]{2})*")

FINGERPRINT_GROUPS = 8


def new_record_id(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, variant 10, 74 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms & (2**48 - 1)) << 80
    value |= 0x7 << 76
    value |= secrets.randbits(12) << 64
    value |= 0b10 << 62
    value |= secrets.randbits(62)
    return str(uuid.UUID(int=value))


def is_record_id(text: str) -> bool:
    return bool(UUID_PATTERN.fullmatch(text))


def is_hex(text: object, size: int) -> bool:
    """Whether ``text`` is ``size`` bytes in canonical (lowercase, unspaced) hex."""
    return isinstance(text, str) and len(text) == 2 * size and bool(HEX_PATTERN.fullmatch(text))


def is_hex32(text: object) -> bool:
    return is_hex(text, 32)


def from_hex(text: str, size: int, *, what: str) -> bytes:
    """The bytes of canonical hex: decoded once, so every key has one spelling and compares as
    bytes would; any other spelling (capitals, spaces, a final newline) is refused."""
    if not is_hex(text, size):
        raise MalformedData(f"{what} is not {size} bytes in lowercase hex")
    return bytes.fromhex(text)


def fingerprint(*public_keys: bytes) -> str:
    """Eight groups of five digits, e.g. ``04819 33170 ...`` (about 132 bits).

    Digits read aloud the same way in any language, which matters for a check done over a
    phone line between people who may not share one.
    """
    digest = hash32(LABEL_FINGERPRINT, b"".join(public_keys))
    groups = []
    for i in range(FINGERPRINT_GROUPS):
        chunk = int.from_bytes(digest[i * 4 : i * 4 + 4], "big")
        groups.append(f"{chunk % 100000:05d}")
    return " ".join(groups)


def short_id(hex_or_uuid: str, length: int = 8) -> str:
    return hex_or_uuid.replace("-", "")[:length]


def unique_prefixes(ids: Iterable[str], minimum: int = 8) -> dict[str, str]:
    """Each id's shortest prefix that names it alone among ``ids`` (at least ``minimum``
    characters, never ending on a ``-``), as ``git`` abbreviates commits.

    Sorted, an id shares its longest prefix with one of its two neighbours, so one pass over
    the sorted ids is enough (100,000 ids in a fraction of a second)."""
    ordered = sorted(set(ids))
    shared = [0] * len(ordered)
    for i in range(1, len(ordered)):
        common = _common_length(ordered[i - 1], ordered[i])
        shared[i - 1] = max(shared[i - 1], common)
        shared[i] = common
    shown = {}
    for text, common in zip(ordered, shared, strict=True):
        length = max(minimum, common + 1)
        while length < len(text) and text[length - 1] == "-":
            length += 1
        shown[text] = text[:length]
    return shown


def _common_length(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
