"""Blobs: attachments encrypted in chunks, named by the hash of their ciphertext.

Layout (docs/format.md, "Blob")::

    offset  size  field
    0       4     magic "FSBL"
    4       1     format version (1)
    5       24    secretstream header
    29      ...   secretstream chunks of 64 KiB plaintext (+17 bytes each); the last one,
                  possibly empty, carries the FINAL tag

    blob id = BLAKE2b-256(LABEL_BLOB_ID || 0 || every byte of the blob file)

Each blob has its own random key, which lives only inside the encrypted body of the entry that
references it. Everything streams: memory use does not grow with the size of the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from fieldsync.core import crypto
from fieldsync.errors import MalformedData

MAGIC = b"FSBL"
VERSION = 1
PREFIX = MAGIC + bytes([VERSION])


@dataclass
class Sealed:
    """Filled in as ``encrypt`` is consumed; complete once the iterator is exhausted."""

    key: bytes = field(repr=False)
    blob_id: str = ""
    size: int = 0  # plaintext bytes
    sha256: str = ""  # of the plaintext
    stored_size: int = 0  # ciphertext bytes


class _Measured:
    """A reader that hashes and counts what passes through it."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data


def encrypt(source: BinaryIO, result: Sealed) -> Iterator[bytes]:
    """Yield the blob file's bytes for ``source``; fills ``result`` when done."""
    measured = _Measured(source)
    blob_hash = crypto.StreamHash(crypto.LABEL_BLOB_ID)
    stored = 0
    for piece in _with_prefix(crypto.stream_encrypt(result.key, measured)):  # type: ignore[arg-type]
        blob_hash.update(piece)
        stored += len(piece)
        yield piece
    result.blob_id = blob_hash.digest().hex()
    result.size = measured.size
    result.sha256 = measured.sha256.hexdigest()
    result.stored_size = stored


def decrypt(key: bytes, source: BinaryIO, *, what: str) -> Iterator[bytes]:
    """Yield the plaintext of a blob file; raises ``DecryptionFailed`` if it was altered."""
    prefix = source.read(len(PREFIX))
    if prefix[:4] != MAGIC:
        raise MalformedData(f"{what} is not a fieldsync blob")
    if prefix[4:] != bytes([VERSION]):
        raise MalformedData(f"{what} has an unsupported blob format version")
    yield from crypto.stream_decrypt(key, source, what=what)


def blob_id_of(source: BinaryIO) -> str:
    """Recompute a blob file's id from its bytes (no key needed)."""
    return blob_id_of_pieces(iter(lambda: source.read(1024 * 1024), b""))


def blob_id_of_pieces(pieces: Iterable[bytes]) -> str:
    """The id of a blob whose bytes arrive in pieces."""
    blob_hash = crypto.StreamHash(crypto.LABEL_BLOB_ID)
    for piece in pieces:
        blob_hash.update(piece)
    return blob_hash.digest().hex()


def sealed_size(size: int) -> int:
    """The bytes of the blob file that holds a ``size``-byte original: the prefix, the
    secretstream header, and every chunk with its tag (an empty original still has its final
    chunk)."""
    chunks = max(1, -(-size // crypto.STREAM_CHUNK))
    return len(PREFIX) + crypto.STREAM_HEADER_BYTES + size + chunks * crypto.STREAM_ABYTES


def new_key() -> bytes:
    return crypto.random_bytes(crypto.KEY_BYTES)


def _with_prefix(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield PREFIX
    yield from chunks
