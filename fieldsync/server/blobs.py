"""Resumable blob uploads (docs/protocol.md, "Blobs").

The partial file's length is the upload's offset, read and extended under an exclusive lock,
so two requests for the same blob cannot both append. A chunk is accepted only at the current
offset; its checksum is the signed Content-Digest. When the last byte arrives the server
recomputes the blob id from the ciphertext (it needs no key for that) and keeps the blob only if
they match; otherwise the partial upload is discarded and must start again.

Chunks are not fsynced one by one (that cost a third of the upload's time): after a crash the
offset is whatever length survived, and the client resumes from it. The complete file is
fsynced, renamed into place and its folder fsynced before the row says it is complete, so a
batch is never accepted against a blob a crash could still take away.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from fieldsync.core import blob
from fieldsync.core.ids import is_hex32
from fieldsync.errors import BatchInvalid, ChainGap, NotFound, StoreStateError, TooLarge
from fieldsync.server.tables import StoredBlob

MAX_BLOB = 8 * 1024**3
MAX_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class BlobState:
    id: str
    size: int
    offset: int
    complete: bool

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "size": self.size, "offset": self.offset, "complete": self.complete}


class BlobStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "partial").mkdir(parents=True, exist_ok=True)

    def final_path(self, blob_id: str) -> Path:
        return final_path(self.folder, blob_id)

    def partial_path(self, blob_id: str) -> Path:
        return self.folder / "partial" / blob_id

    def state(self, session: Session, blob_id: str) -> BlobState:
        row = session.get(StoredBlob, _checked(blob_id))
        if row is None:
            raise NotFound("no upload of this blob has started")
        self._recover(session, row)
        return self._state(row)

    def create(self, session: Session, blob_id: str, size: int) -> BlobState:
        """Start an upload (or answer the one already started, if it is the same size)."""
        if not 0 < size <= MAX_BLOB:
            raise TooLarge(f"a blob must be 1 byte to {MAX_BLOB} bytes")
        row = session.get(StoredBlob, _checked(blob_id))
        if row is None:
            row = StoredBlob(id=blob_id, size=size, complete=False)
            session.add(row)
            session.commit()
            self.partial_path(blob_id).touch()
        elif row.size != size:
            raise StoreStateError("this blob's upload was started with another size")
        self._recover(session, row)
        return self._state(row)

    def append(self, session: Session, blob_id: str, offset: int, chunk: bytes) -> BlobState:
        row = session.get(StoredBlob, _checked(blob_id))
        if row is None:
            raise NotFound("no upload of this blob has started")
        if row.complete:
            return self._state(row)
        if not chunk or len(chunk) > MAX_CHUNK:
            raise TooLarge(f"a chunk must be 1 byte to {MAX_CHUNK} bytes")
        partial = self.partial_path(blob_id)
        with open(partial, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            current = os.fstat(handle.fileno()).st_size
            if offset != current:
                raise ChainGap(
                    f"the upload is at byte {current}, not {offset}",
                    hint=f"Send from byte {current}.",
                )
            if current + len(chunk) > row.size:
                raise TooLarge("the chunk goes past the blob's declared size")
            handle.write(chunk)
            handle.flush()  # not fsynced: after a crash the client resumes from whatever
            # length survived, and a tail the crash garbled fails the hash at the end
            done = current + len(chunk) == row.size
            if done:
                os.fsync(handle.fileno())  # a complete blob is durable before it is used
        if done:
            self._finish(session, row)
        return self._state(row)

    def _recover(self, session: Session, row: StoredBlob) -> None:
        """Finish an upload whose last byte was written by a server killed before it could mark
        the blob complete: no chunk is left to send, so nothing else would ever finish it."""
        if row.complete:
            return
        # BatchInvalid: the bytes were discarded and the upload starts again from 0;
        # FileNotFoundError: a request at the same moment finished it first
        with contextlib.suppress(BatchInvalid, FileNotFoundError):
            with open(self.partial_path(row.id), "rb") as handle:
                if os.fstat(handle.fileno()).st_size != row.size:
                    return
                os.fsync(handle.fileno())  # the write before the kill was never fsynced
            self._finish(session, row)

    def _finish(self, session: Session, row: StoredBlob) -> None:
        partial = self.partial_path(row.id)
        with open(partial, "rb") as handle:
            actual = blob.blob_id_of(handle)
        if actual != row.id:
            partial.unlink(missing_ok=True)
            partial.touch()
            raise BatchInvalid(
                "the uploaded bytes do not hash to the blob's id; the upload was discarded",
                hint="Upload the blob again from the start.",
            )
        final = self.final_path(row.id)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
        _fsync_folder(final.parent)
        row.complete = True
        session.add(row)
        session.commit()

    def _state(self, row: StoredBlob) -> BlobState:
        if row.complete:
            return BlobState(row.id, row.size, row.size, True)
        partial = self.partial_path(row.id)
        offset = partial.stat().st_size if partial.exists() else 0
        return BlobState(row.id, row.size, offset, False)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def final_path(folder: Path, blob_id: str) -> Path:
    return folder / _checked(blob_id)[:2] / blob_id


def _checked(blob_id: str) -> str:
    if not is_hex32(blob_id):  # it becomes a file name: only 64 lower-case hex digits
        raise NotFound("there is no such blob")
    return blob_id
