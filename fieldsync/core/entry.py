"""Entries: one signed, encrypted version of one record (docs/format.md, "Entry").

Layout (integers big-endian)::

    offset      size  field
    0           4     magic "FSEN"
    4           1     format version (1)
    5           4     H: header length, 2..MAX_HEADER
    9           H     header: canonical JSON (see ``Header``)
    9+H         4     C: ciphertext length, 16..MAX_CIPHERTEXT
    13+H        C     ciphertext: XChaCha20-Poly1305(content key, header.nonce, AD, body)
    13+H+C      64    Ed25519 signature by header.author over LABEL_ENTRY || 0 || bytes[0:13+H+C]

    AD (associated data) = LABEL_ENTRY || 0 || bytes[0:9+H]   (magic, version, H, header)
    entry id             = BLAKE2b-256(LABEL_ENTRY_ID || 0 || all bytes of the entry)

The entry is stored, sent and verified as exactly these bytes. Content keys are not in it:
they are wrapped for each reader beside it (``crypto.wrap_key``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from fieldsync.core import crypto, encoding
from fieldsync.core.clock import HLC
from fieldsync.core.ids import is_hex, is_hex32, is_record_id
from fieldsync.errors import DecryptionFailed, MalformedData

MAGIC = b"FSEN"
VERSION = 1
SUPPORTED_VERSIONS = (1,)
PREFIX_BYTES = 9  # magic, version, header length
MAX_HEADER = 64 * 1024
MAX_CIPHERTEXT = 8 * 1024 * 1024
MAX_PARENTS = 64
MAX_ENTRY = PREFIX_BYTES + MAX_HEADER + 4 + MAX_CIPHERTEXT + crypto.SIGNATURE_BYTES

HEADER_KEYS = frozenset({"author", "commit", "hlc", "nonce", "parents", "prev", "record", "seq"})


@dataclass(frozen=True)
class Header:
    author: str  # hex Ed25519 public key of the signing device (or administrator)
    seq: int  # position in the author's log, from 1
    prev: str | None  # id of the author's entry at seq - 1; None at seq 1
    record: str  # record id (UUIDv7)
    parents: tuple[str, ...]  # version ids this one is based on, sorted; () for a new record
    hlc: HLC
    nonce: str  # hex, 24 bytes
    commit: str  # hex, key-committing hash of the body

    def to_json(self) -> dict[str, Any]:
        return {
            "author": self.author,
            "commit": self.commit,
            "hlc": self.hlc.to_json(),
            "nonce": self.nonce,
            "parents": list(self.parents),
            "prev": self.prev,
            "record": self.record,
            "seq": self.seq,
        }

    @classmethod
    def from_json(cls, value: object) -> Header:
        if not isinstance(value, dict) or set(value) != HEADER_KEYS:
            raise MalformedData("entry header does not have exactly the expected fields")
        author, seq, prev = value["author"], value["seq"], value["prev"]
        parents, nonce, commit = value["parents"], value["nonce"], value["commit"]
        problems = []
        if not is_hex32(author):
            problems.append("author")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            problems.append("seq")
        elif (seq == 1) != (prev is None) or (prev is not None and not is_hex32(prev)):
            problems.append("prev")
        if not isinstance(value["record"], str) or not is_record_id(value["record"]):
            problems.append("record")
        if (
            not isinstance(parents, list)
            or len(parents) > MAX_PARENTS
            or not all(is_hex32(p) for p in parents)
            or parents != sorted(set(parents))
        ):
            problems.append("parents")
        if not is_hex(nonce, crypto.NONCE_BYTES):
            problems.append("nonce")
        if not is_hex32(commit):
            problems.append("commit")
        try:
            hlc = HLC.from_json(value["hlc"])
        except ValueError:
            problems.append("hlc")
        if problems:
            raise MalformedData(f"entry header has invalid {', '.join(problems)}")
        return cls(author, seq, prev, value["record"], tuple(parents), hlc, nonce, commit)


@dataclass(frozen=True)
class Entry:
    """A parsed entry whose signature and id have been checked."""

    raw: bytes
    id: str
    header: Header
    ciphertext: bytes
    associated: bytes  # the AD the ciphertext was sealed with

    def open(self, content_key: bytes) -> bytes:
        """The body, after checking the AEAD tag and the key commitment."""
        what = f"version {self.id[:12]}"
        body = crypto.aead_decrypt(
            content_key,
            bytes.fromhex(self.header.nonce),
            self.ciphertext,
            self.associated,
            what=what,
        )
        if not crypto.equal(
            crypto.commitment(content_key, body), bytes.fromhex(self.header.commit)
        ):
            raise DecryptionFailed(f"{what} does not match its signed commitment")
        return body


def seal(
    signer: crypto.SigningPair,
    *,
    seq: int,
    prev: str | None,
    record: str,
    parents: list[str] | tuple[str, ...],
    hlc: HLC,
    body: bytes,
    content_key: bytes | None = None,
    nonce: bytes | None = None,
) -> tuple[Entry, bytes]:
    """Encrypt and sign a body; returns the entry and its content key.

    ``content_key`` and ``nonce`` are for known-answer tests only; left out, they are random.
    """
    key = content_key if content_key is not None else crypto.random_bytes(crypto.KEY_BYTES)
    nonce_bytes = nonce if nonce is not None else crypto.random_bytes(crypto.NONCE_BYTES)
    header = Header(
        author=signer.public.hex(),
        seq=seq,
        prev=prev,
        record=record,
        parents=tuple(sorted(set(parents))),
        hlc=hlc,
        nonce=nonce_bytes.hex(),
        commit=crypto.commitment(key, body).hex(),
    )
    Header.from_json(header.to_json())  # refuse to sign a header we would refuse to read
    header_bytes = encoding.encode(header.to_json())
    prefix = MAGIC + bytes([VERSION]) + struct.pack(">I", len(header_bytes)) + header_bytes
    associated = crypto.labelled(crypto.LABEL_ENTRY, prefix)
    ciphertext = crypto.aead_encrypt(key, nonce_bytes, body, associated)
    signed = prefix + struct.pack(">I", len(ciphertext)) + ciphertext
    raw = signed + signer.sign(crypto.LABEL_ENTRY, signed)
    return Entry(raw, entry_id(raw), header, ciphertext, associated), key


def entry_id(raw: bytes) -> str:
    return crypto.hash32(crypto.LABEL_ENTRY_ID, raw).hex()


def parse(raw: bytes) -> Entry:
    """Decode an entry and verify its signature; raises an ``IntegrityError`` on any defect."""
    if len(raw) > MAX_ENTRY:
        raise MalformedData(f"entry is too large ({len(raw)} bytes)")
    if len(raw) < PREFIX_BYTES or raw[:4] != MAGIC:
        raise MalformedData("not a fieldsync entry (bad magic or truncated)")
    if raw[4] not in SUPPORTED_VERSIONS:
        raise MalformedData(f"entry format version {raw[4]} is not supported")
    (header_len,) = struct.unpack(">I", raw[5:9])
    if not 2 <= header_len <= MAX_HEADER or len(raw) < PREFIX_BYTES + header_len + 4:
        raise MalformedData("entry is truncated or its header length is wrong")
    header_end = PREFIX_BYTES + header_len
    header = Header.from_json(
        encoding.decode(raw[PREFIX_BYTES:header_end], what="entry header", max_bytes=MAX_HEADER)
    )
    (cipher_len,) = struct.unpack(">I", raw[header_end : header_end + 4])
    cipher_start = header_end + 4
    cipher_end = cipher_start + cipher_len
    if not crypto.AEAD_TAG_BYTES <= cipher_len <= MAX_CIPHERTEXT:
        raise MalformedData("entry ciphertext length is out of range")
    if len(raw) != cipher_end + crypto.SIGNATURE_BYTES:
        raise MalformedData("entry is truncated or has trailing bytes")
    crypto.verify(
        bytes.fromhex(header.author),
        crypto.LABEL_ENTRY,
        raw[:cipher_end],
        raw[cipher_end:],
        what=f"entry {header.record}#{header.seq}",
    )
    return Entry(
        raw=raw,
        id=entry_id(raw),
        header=header,
        ciphertext=raw[cipher_start:cipher_end],
        associated=crypto.labelled(crypto.LABEL_ENTRY, raw[:header_end]),
    )
