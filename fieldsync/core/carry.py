"""Carry files: pending batches and their blobs in one file, for a USB stick.

Layout (docs/protocol.md, "Carrying batches offline")::

    magic "FSCARRY" and format version (1), 8 bytes
    items, each: kind (1 byte: "B" blob, "T" batch), length (8 bytes, big-endian), bytes
    end: kind "E", length 0

Nothing in the container is trusted: every blob is checked against its hash-name and every
batch against its signatures when it is delivered, exactly as over the network. The end marker
tells a truncated copy from a complete one. Items are located by seeking, so a large attachment
is never read into memory at once, and a batch is read whole only once its declared length is
one a batch can have.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from fieldsync.core.batch import MAX_BATCH_BYTES
from fieldsync.errors import MalformedData

MAGIC = b"FSCARRY\x01"
BLOB, BATCH, END = b"B", b"T", b"E"
MAX_ITEM = 16 * 1024**3
MAX_ITEMS = 1_000_000


@dataclass(frozen=True)
class Item:
    kind: bytes
    offset: int  # where its bytes start in the file
    length: int


def header(kind: bytes, length: int) -> bytes:
    return kind + struct.pack(">Q", length)


def write_start() -> bytes:
    return MAGIC


def write_end() -> bytes:
    return header(END, 0)


def index(handle: BinaryIO) -> list[Item]:
    """Every item of a carry file; raises ``MalformedData`` if it is not one or is truncated."""
    if handle.read(len(MAGIC)) != MAGIC:
        raise MalformedData("this is not a fieldsync carry file (or its version is unknown)")
    items: list[Item] = []
    while True:
        head = handle.read(9)
        if len(head) < 9:
            raise MalformedData("the carry file is truncated: it has no end marker; copy it again")
        kind, length = head[:1], struct.unpack(">Q", head[1:])[0]
        if kind == END:
            if length or handle.read(1):
                raise MalformedData("the carry file has bytes after its end marker")
            return items
        if kind not in (BLOB, BATCH) or length > MAX_ITEM or len(items) >= MAX_ITEMS:
            raise MalformedData("the carry file is damaged (an unknown or oversized item)")
        offset = handle.tell()
        handle.seek(length, 1)
        if handle.tell() != offset + length or _past_end(handle, offset + length):
            raise MalformedData("the carry file is truncated; copy it again")
        items.append(Item(kind, offset, length))


def read_chunks(handle: BinaryIO, item: Item, size: int = 1024 * 1024) -> Iterator[bytes]:
    handle.seek(item.offset)
    left = item.length
    while left:
        chunk = handle.read(min(size, left))
        if not chunk:
            raise MalformedData("the carry file is truncated; copy it again")
        left -= len(chunk)
        yield chunk


def read_batch(handle: BinaryIO, item: Item) -> bytes:
    """A batch item's bytes; one declaring more than any batch can hold is refused unread."""
    if item.length > MAX_BATCH_BYTES:
        raise MalformedData(
            f"a carried batch of {item.length} bytes is larger than any batch can be "
            f"({MAX_BATCH_BYTES}); it was not read"
        )
    return b"".join(read_chunks(handle, item))


def _past_end(handle: BinaryIO, position: int) -> bool:
    here = handle.tell()
    end = handle.seek(0, 2)
    handle.seek(here)
    return position > end
