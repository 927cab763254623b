"""Identifiers: record ids (UUIDv7), device ids and fingerprints a person can read aloud."""

from __future__ import annotations

import re
import secrets
import time
import uuid

from fieldsync.core.crypto import LABEL_FINGERPRINT, hash32

UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HEX32_PATTERN = re.compile(r"^[0-9a-f]{64}$")

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
    return bool(UUID_PATTERN.match(text))


def is_hex32(text: object) -> bool:
    return isinstance(text, str) and bool(HEX32_PATTERN.match(text))


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
