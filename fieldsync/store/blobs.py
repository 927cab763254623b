"""A store's attachment files: HOME/blobs/ab/abcd.., each encrypted and named by its hash.

A blob is written to HOME/blobs/tmp first, flushed, then renamed into place and recorded, so a
crash leaves at most an encrypted leftover in blobs/tmp (``discard_partial_blobs``) and never a
half-written file under a blob's name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlmodel import Session

from fieldsync import durable
from fieldsync.core import blob, crypto
from fieldsync.errors import IntegrityError, StoreCorrupted
from fieldsync.store import files
from fieldsync.store.db import BlobRow, db_errors

BLOBS_DIR = "blobs"


class BlobHome(Protocol):
    """What blob files need of a store (a ``Store``): its folder, and a session to record
    them in. A protocol, so that store.py and integrity.py can use this module."""

    home: Path

    def session(self) -> Session: ...


def blob_path(store: BlobHome, blob_id: str) -> Path:
    return store.home / BLOBS_DIR / blob_id[:2] / blob_id


def put_blob(store: BlobHome, source: BinaryIO) -> blob.Sealed:
    """Encrypt a file into the store, streaming; returns its id, key and measurements."""
    sealed = blob.Sealed(key=blob.new_key())
    staging = _staging(store, "incoming")
    files.write_chunks_atomic(staging, blob.encrypt(source, sealed), tmp_dir=staging.parent)
    _keep_blob(store, staging, sealed.blob_id, sealed.stored_size)
    return sealed


def import_blob(
    store: BlobHome, blob_id: str, fill: Callable[[Callable[[bytes], None]], None]
) -> int:
    """Keep an encrypted blob that ``fill(write)`` delivers (a download), only if its bytes
    hash to ``blob_id``; returns its size. Nothing is kept otherwise."""
    staging = _staging(store, "download")
    hasher = crypto.StreamHash(crypto.LABEL_BLOB_ID)
    size = 0
    try:
        with open(staging, "xb") as out:
            os.chmod(staging, 0o600)

            def write(piece: bytes) -> None:
                nonlocal size
                hasher.update(piece)
                out.write(piece)
                size += len(piece)

            fill(write)
            out.flush()
            os.fsync(out.fileno())
        if hasher.digest().hex() != blob_id:
            raise IntegrityError(
                f"attachment blob {blob_id[:12]} from the server does not match its hash"
            )
        _keep_blob(store, staging, blob_id, size)
    finally:
        staging.unlink(missing_ok=True)
    return size


def read_blob(store: BlobHome, blob_id: str, key: bytes) -> Iterator[bytes]:
    path = blob_path(store, blob_id)
    what = f"attachment blob {blob_id[:12]}"
    if not path.is_file():
        raise StoreCorrupted(f"{what} is missing from {path.parent}")
    with open(path, "rb") as handle:
        yield from blob.decrypt(key, handle, what=what)


def discard_partial_blobs(store: BlobHome) -> int:
    """Remove encrypted leftovers of interrupted blob writes; returns how many."""
    tmp_dir = store.home / BLOBS_DIR / "tmp"
    removed = 0
    for leftover in tmp_dir.glob("*") if tmp_dir.exists() else []:
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def _staging(store: BlobHome, kind: str) -> Path:
    """A fresh path in blobs/tmp, where a blob is written before it is complete."""
    tmp_dir = store.home / BLOBS_DIR / "tmp"
    files.make_private_dir(tmp_dir)
    return tmp_dir / f"{kind}-{os.getpid()}-{time.monotonic_ns()}"


def _keep_blob(store: BlobHome, staging: Path, blob_id: str, stored_size: int) -> None:
    """Move a complete, durable blob file from blobs/tmp to its name, then record it."""
    final = blob_path(store, blob_id)
    files.make_private_dir(final.parent)
    os.replace(staging, final)
    durable.fsync_dir(final.parent)
    _remember_blob(store, blob_id, stored_size)


@db_errors
def _remember_blob(store: BlobHome, blob_id: str, stored_size: int) -> None:
    with store.session() as session, session.begin():
        if session.get(BlobRow, blob_id) is None:
            session.add(BlobRow(id=blob_id, stored_size=stored_size))
