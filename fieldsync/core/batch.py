"""Batches: a signed run of one author's consecutive entries, as sent and as carried on USB.

Layout (integers big-endian; docs/protocol.md, "Batch")::

    offset  size  field
    0       4     magic "FSBA"
    4       1     format version (2)
    5       4     M: manifest length
    9       M     manifest: canonical JSON (see ``Manifest``)
    9+M     4     N: number of entries (equal to the manifest's)
    ...           N times: 4-byte length L, L bytes of entry, 80 bytes of org key wrap,
                  1 byte R (0..MAX_READERS), R times: 32-byte reader box key, 80-byte wrap
    end-64  64    Ed25519 signature by manifest.author over LABEL_BATCH || 0 || all bytes before

    batch id = BLAKE2b-256(LABEL_BATCH_ID || 0 || every byte of the batch)

The signature covers the wraps too, so nothing in a batch can be swapped in transit; the wraps
are not part of the entries' own signed bytes, so a reader can be added later without re-signing
an entry. The reader wraps after the org wrap let an analyst's version reach the device that
recorded the record (R is 0 in a device's batches). Parsing checks everything that needs no
registry and no keys: every entry's signature and id, that they are the manifest's entries in
order, by its author, and form an unbroken chain from ``prev``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fieldsync.core import crypto, encoding
from fieldsync.core import entry as entry_format
from fieldsync.core.entry import Entry
from fieldsync.core.ids import from_hex, is_hex32
from fieldsync.errors import BatchInvalid, MalformedData

MAGIC = b"FSBA"
VERSION = 2  # 2 added the reader wraps
TARGET_BYTES = 1024 * 1024  # what ``plan`` aims for
MAX_ENTRIES = 500
MAX_BATCH_BYTES = 16 * 1024 * 1024  # one oversized entry still fits; anything larger is refused
MAX_MANIFEST = 256 * 1024
MAX_READERS = 8
READER_WRAP_BYTES = 32 + crypto.SEAL_BYTES
MANIFEST_KEYS = frozenset({"author", "blobs", "entries", "first_seq", "last_seq", "prev"})


@dataclass(frozen=True)
class Manifest:
    author: str  # hex Ed25519 key of the device (or administrator) whose log this is
    first_seq: int
    last_seq: int
    prev: str | None  # id of the author's entry at first_seq - 1; None when first_seq is 1
    entries: tuple[str, ...]  # entry ids, in seq order
    blobs: tuple[tuple[str, int], ...]  # (blob id, stored size) the entries reference

    def to_json(self) -> dict[str, Any]:
        return {
            "author": self.author,
            "blobs": [[blob_id, size] for blob_id, size in self.blobs],
            "entries": list(self.entries),
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "prev": self.prev,
        }

    @classmethod
    def from_json(cls, value: object) -> Manifest:
        if not isinstance(value, dict) or set(value) != MANIFEST_KEYS:
            raise MalformedData("batch manifest does not have exactly the expected fields")
        first, last, entries = value["first_seq"], value["last_seq"], value["entries"]
        blobs, prev = value["blobs"], value["prev"]
        ok = (
            is_hex32(value["author"])
            and _count(first)
            and first >= 1
            and _count(last)
            and isinstance(entries, list)
            and 1 <= len(entries) <= MAX_ENTRIES
            and last - first + 1 == len(entries)
            and all(is_hex32(e) for e in entries)
            and len(set(entries)) == len(entries)
            and (prev is None) == (first == 1)
            and (prev is None or is_hex32(prev))
            and isinstance(blobs, list)
            and all(
                isinstance(b, list) and len(b) == 2 and is_hex32(b[0]) and _count(b[1])
                for b in blobs
            )
            and len({b[0] for b in blobs}) == len(blobs)
        )
        if not ok:
            raise MalformedData("batch manifest has invalid values")
        return cls(
            value["author"], first, last, prev, tuple(entries), tuple((b[0], b[1]) for b in blobs)
        )


@dataclass(frozen=True)
class Batch:
    raw: bytes
    id: str
    manifest: Manifest
    entries: tuple[Entry, ...]
    wraps: tuple[bytes, ...]  # the content key of each entry, sealed for the org read key
    readers: tuple[Readers, ...] = ()  # each entry's further wraps: (reader box key hex, wrap)


Readers = tuple[tuple[str, bytes], ...]


def build(
    signer: crypto.SigningPair,
    entries: list[Entry],
    wraps: list[bytes],
    blobs: Iterable[tuple[str, int]] = (),
    readers: list[Readers] | None = None,
) -> Batch:
    """Sign a batch of consecutive entries of ``signer``'s own log."""
    if not entries or len(entries) != len(wraps):
        raise ValueError("a batch needs entries and one wrap for each")
    first = entries[0].header
    manifest = Manifest(
        author=signer.public.hex(),
        first_seq=first.seq,
        last_seq=entries[-1].header.seq,
        prev=first.prev,
        entries=tuple(e.id for e in entries),
        blobs=tuple(sorted(set(blobs))),
    )
    # refuse what we would refuse
    return parse(encode(signer, manifest, entries, wraps, readers))


def encode(
    signer: crypto.SigningPair,
    manifest: Manifest,
    entries: list[Entry],
    wraps: list[bytes],
    readers: list[Readers] | None = None,
) -> bytes:
    """Lay out and sign a batch as given, checking nothing (``build`` is the checked way).

    Tests use it to make what a hostile sender holding a device key could send.
    """
    manifest_bytes = encoding.encode(manifest.to_json())
    parts = [
        MAGIC,
        bytes([VERSION]),
        struct.pack(">I", len(manifest_bytes)),
        manifest_bytes,
        struct.pack(">I", len(entries)),
    ]
    extra = readers if readers is not None else [()] * len(entries)
    for entry, wrap, more in zip(entries, wraps, extra, strict=True):
        parts += [struct.pack(">I", len(entry.raw)), entry.raw, wrap, bytes([len(more)])]
        parts += [bytes.fromhex(reader) + sealed for reader, sealed in more]
    signed = b"".join(parts)
    return signed + signer.sign(crypto.LABEL_BATCH, signed)


def batch_id(raw: bytes) -> str:
    return crypto.hash32(crypto.LABEL_BATCH_ID, raw).hex()


def read_manifest(raw: bytes) -> Manifest:
    """The manifest alone, unverified: enough to look its author up before any real work."""
    if len(raw) > MAX_BATCH_BYTES:
        raise MalformedData(f"batch is too large ({len(raw)} bytes, limit {MAX_BATCH_BYTES})")
    if len(raw) < 13 + crypto.SIGNATURE_BYTES or raw[:4] != MAGIC:
        raise MalformedData("not a fieldsync batch (bad magic or truncated)")
    if raw[4] != VERSION:
        raise MalformedData(f"batch format version {raw[4]} is not supported")
    (manifest_len,) = struct.unpack(">I", raw[5:9])
    if manifest_len > MAX_MANIFEST or 13 + manifest_len > len(raw) - crypto.SIGNATURE_BYTES:
        raise MalformedData("batch is truncated or its manifest length is wrong")
    return Manifest.from_json(
        encoding.decode(raw[9 : 9 + manifest_len], what="batch manifest", max_bytes=MAX_MANIFEST)
    )


def parse(raw: bytes) -> Batch:
    """Decode a batch and check everything it says about itself; raises ``IntegrityError``."""
    manifest = read_manifest(raw)
    manifest_len = struct.unpack(">I", raw[5:9])[0]
    signed, signature = raw[: -crypto.SIGNATURE_BYTES], raw[-crypto.SIGNATURE_BYTES :]
    crypto.verify(
        from_hex(manifest.author, crypto.KEY_BYTES, what="the batch's author"),
        crypto.LABEL_BATCH,
        signed,
        signature,
        what=f"batch seq {manifest.first_seq}..{manifest.last_seq}",
    )
    offset = 9 + manifest_len
    (count,) = struct.unpack(">I", signed[offset : offset + 4])
    offset += 4
    if count != len(manifest.entries):
        raise BatchInvalid(
            f"batch holds {count} entries, its manifest names {len(manifest.entries)}"
        )
    entries, wraps, readers = [], [], []
    for _ in range(count):
        if offset + 4 > len(signed):
            raise MalformedData("batch is truncated")
        (length,) = struct.unpack(">I", signed[offset : offset + 4])
        end = offset + 4 + length
        if end + crypto.SEAL_BYTES + 1 > len(signed):
            raise MalformedData("batch is truncated")
        entries.append(entry_format.parse(signed[offset + 4 : end]))
        wraps.append(signed[end : end + crypto.SEAL_BYTES])
        offset = end + crypto.SEAL_BYTES
        wanted = signed[offset]
        offset += 1
        if wanted > MAX_READERS or offset + wanted * READER_WRAP_BYTES > len(signed):
            raise MalformedData("batch has too many reader wraps, or is truncated")
        more = []
        for _ in range(wanted):
            reader, sealed = (
                signed[offset : offset + 32],
                signed[offset + 32 : offset + READER_WRAP_BYTES],
            )
            more.append((reader.hex(), sealed))
            offset += READER_WRAP_BYTES
        if len({reader for reader, _ in more}) != len(more):
            raise MalformedData("batch names one reader twice for an entry")
        readers.append(tuple(more))
    if offset != len(signed):
        raise MalformedData("batch has bytes after its last entry")
    _check_chain(manifest, entries)
    return Batch(raw, batch_id(raw), manifest, tuple(entries), tuple(wraps), tuple(readers))


def _check_chain(manifest: Manifest, entries: list[Entry]) -> None:
    prev = manifest.prev
    for position, (entry, named) in enumerate(zip(entries, manifest.entries, strict=True)):
        header = entry.header
        where = f"entry {position + 1} of the batch"
        if entry.id != named:
            raise BatchInvalid(f"{where} is not the entry its manifest names")
        if header.author != manifest.author:
            raise BatchInvalid(f"{where} was signed by another author")
        if header.seq != manifest.first_seq + position or header.prev != prev:
            raise BatchInvalid(f"{where} does not continue the author's chain")
        prev = entry.id


def plan(sizes: list[int], *, target: int = TARGET_BYTES, most: int = MAX_ENTRIES) -> list[int]:
    """How many of the next entries (with the given byte sizes) go into each batch, in order."""
    counts, count, total = [], 0, 0
    for size in sizes:
        if count and (count == most or total + size > target):
            counts.append(count)
            count, total = 0, 0
        count += 1
        total += size
    if count:
        counts.append(count)
    return counts


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
