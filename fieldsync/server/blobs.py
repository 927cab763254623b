"""Resumable blob uploads (docs/protocol.md, "Blobs").

The partial file's length is the upload's offset, read and extended under an exclusive lock
that is never waited for, so two requests for the same blob cannot both append (the second is
told the upload is busy). A body is accepted only at the current offset and is written as it
arrives, so a link that drops mid-body costs only the bytes in flight: what arrived stays, and
the device resumes from there. A body that arrives whole must match its signed Content-Digest.
When the last byte arrives the server recomputes the blob id from the ciphertext (it needs no
key for that) and keeps the blob only if they match; otherwise the partial upload is discarded
and must start again. That hash is what vouches for bytes kept from a body cut short.

Each upload belongs to the device that started it: only that device appends to it (and the
administrator, who delivers devices' carried batches), and it counts against that device's
quota (``Limits``: how many, and their declared sizes together) until an accepted batch names
it: an upload finished but named by nothing would otherwise let a device fill the disk with
complete blobs, one after another. The count and the new row are made under the owner's lock
(``locks``), so requests at once cannot each find room. An upload no batch names, partial or
complete, not touched for ``Limits.upload_expiry_h`` (its row's ``touched_ms``, set by the
server's clock as it starts, as each append ends and as it completes) is deleted, and so is
every one of a device when it is revoked: the device still holds the blob, and uploads it
again if it still wants to send it. A blob a batch names is never deleted: the row is deleted
only while no batch names it, and a batch is accepted only if every blob it names still has
its row as it is marked named (``ingest``).

Bodies are not fsynced as they arrive (that cost a third of the upload's time): after a crash
the offset is whatever length survived, and the client resumes from it. The complete file is
fsynced, renamed into place and its folder fsynced before the row says it is complete, so a
batch is never accepted against a blob a crash could still take away.

Kept whole: the offset, the lock, the quota and the durability rules above hold only together,
so the storage they govern is one class.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sqlalchemy import ColumnElement, CursorResult, delete, false, func, update
from sqlalchemy.exc import IntegrityError as RowConflict
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from fieldsync import durable
from fieldsync.core import blob, httpsig, words
from fieldsync.core.ids import is_hex32
from fieldsync.core.wire import BlobState
from fieldsync.errors import (
    AccessDenied,
    BatchInvalid,
    ChainGap,
    NotFound,
    QuotaExceeded,
    SignatureInvalid,
    StoreStateError,
    TooLarge,
    UploadBusy,
)
from fieldsync.server.limits import Limits
from fieldsync.server.locks import UPLOADS, lock_owner
from fieldsync.server.tables import StoredBlob

MAX_BLOB = 8 * 1024**3
LOCK_TRIES = 20


class BlobStorage(Protocol):
    """What the server needs of wherever blobs are kept; ``BlobStore`` (a folder, local or a
    shared mount) is the one there is. Another (object storage, say) must keep its promises:

    - an append lands at the upload's current offset or not at all, and two at once for one
      blob cannot both land (one is told the upload is busy), whichever server process takes
      them;
    - what a cut body delivered stays, so the device resumes after it;
    - a blob is complete only once its bytes hash to its id and are durable;
    - the state is the same whichever server process is asked.
    """

    def state(self, session: Session, blob_id: str) -> BlobState: ...

    def create(self, session: Session, blob_id: str, size: int, owner: str) -> BlobState: ...

    def expire(self, session: Session) -> int:
        """Delete the uploads no batch names, untouched for longer than the limit; returns
        how many."""
        ...

    def forget_owner(self, session: Session, owner: str) -> int:
        """Delete the uploads of ``owner`` (a device just revoked) that no batch names."""
        ...

    async def append(
        self,
        session: Session,
        blob_id: str,
        offset: int,
        digest: str,
        declared: int | None,
        body: AsyncIterator[bytes],
        signer: str,
    ) -> BlobState: ...

    def final_path(self, blob_id: str) -> Path:
        """A complete blob's file, for the server to send."""
        ...

    def writable(self) -> bool:
        """Whether uploads can be taken now (the health check asks)."""
        ...


class BlobStore:
    """Blobs in a folder: DATA/blobs by default, or shared storage every server process
    mounts (NFS, CephFS, a cloud file share) whose locks are ``flock`` locks across hosts."""

    def __init__(
        self,
        folder: Path,
        limits: Limits,
        clock: Callable[[], int],
        *,
        carrier: Callable[[], str] | None = None,
    ) -> None:
        self.folder = folder
        self.limits = limits
        self.clock = clock  # Unix ms
        # the administrator's key in force: it delivers devices' carried batches, and may go
        # on with an upload a device began before it carried the rest
        self.carrier = carrier
        (folder / "partial").mkdir(parents=True, exist_ok=True)

    def final_path(self, blob_id: str) -> Path:
        return final_path(self.folder, blob_id)

    def writable(self) -> bool:
        return os.access(self.folder / "partial", os.W_OK)

    def partial_path(self, blob_id: str) -> Path:
        return self.folder / "partial" / blob_id

    def state(self, session: Session, blob_id: str) -> BlobState:
        row = session.get(StoredBlob, _checked(blob_id))
        if row is None:
            raise NotFound("no upload of this blob has started")
        self._recover(session, row)
        return self._state(row)

    def create(self, session: Session, blob_id: str, size: int, owner: str) -> BlobState:
        """Start an upload for ``owner`` within its quota (or answer the one already started,
        if it is the same size)."""
        if not 0 < size <= MAX_BLOB:
            raise TooLarge(f"a blob must be 1 byte to {MAX_BLOB} bytes")
        row = session.get(StoredBlob, _checked(blob_id))
        if row is None:
            lock_owner(session, UPLOADS, owner)  # to the commit: the count stays true
            try:
                self._check_quota(session, owner, size)
            except QuotaExceeded:
                session.rollback()  # the lock is let go now, not when the request ends
                raise
            try:
                started = StoredBlob(
                    id=blob_id, size=size, complete=False, owner=owner, touched_ms=self.clock()
                )
                session.add(started)
                session.commit()
            except RowConflict:  # another server process started it at the same moment
                session.rollback()
            row = session.get(StoredBlob, blob_id)
            assert row is not None
            self.partial_path(blob_id).touch()
        if row.size != size:
            raise StoreStateError("this blob's upload was started with another size")
        self._check_owner(row, owner)
        self._recover(session, row)
        return self._state(row)

    def _check_owner(self, row: StoredBlob, signer: str) -> None:
        """Only the device that started an unfinished upload adds to it: another's bytes would
        spoil it (the hash fails at the end and the upload is discarded). Uploads from before
        owners were kept (migration 0003) have none, and are anyone's to finish."""
        if row.complete or row.owner in (None, signer):
            return
        if self.carrier is not None and signer == self.carrier():
            return
        raise AccessDenied(
            "this upload belongs to another device; nothing was written",
            hint="A device uploads only the blobs it started. If this device holds the same "
            "blob, send it again once the other device's upload completes or expires.",
        )

    def _check_quota(self, session: Session, owner: str, size: int) -> None:
        """Refuse an upload that would pass the owner's limits on uploads no batch names yet,
        unfinished or waiting for their batch (counted at their declared sizes: what the
        device could still fill)."""
        waiting = select(func.count(), func.coalesce(func.sum(StoredBlob.size), 0)).where(
            StoredBlob.owner == owner, col(StoredBlob.named) == false()
        )
        count, reserved = session.exec(waiting).one()
        expiry = (
            f"Uploads no batch names are deleted once untouched for "
            f"{self.limits.upload_expiry_h:g} h."
        )
        if count >= self.limits.open_uploads:
            raise QuotaExceeded(
                f"this device has {words.count(count, 'upload')} on the server that no batch "
                "names yet "
                "(unfinished, or waiting for their batch): its limit",
                hint=f"{QuotaExceeded.hint} {expiry}",
            )
        if reserved + size > self.limits.open_upload_bytes:
            raise QuotaExceeded(
                f"an upload of {size} bytes would take this device's uploads that no batch "
                f"names yet past the server's limit of {self.limits.open_upload_bytes} bytes",
                hint=f"{QuotaExceeded.hint} {expiry}",
            )

    def expire(self, session: Session) -> int:
        """Delete every upload no batch names, partial or complete, not touched for
        ``Limits.upload_expiry_h``; returns how many. One being appended to right now (its
        lock is held) is left alone."""
        now_ms = self.clock()
        self._adopt(session, now_ms)
        return self._delete_where(session, *_abandoned(now_ms - self.limits.upload_expiry_ms))

    def forget_owner(self, session: Session, owner: str) -> int:
        """Delete ``owner``'s uploads that no batch names (its revocation): nothing it sends
        can name them any more. One being appended to at this moment is left to expire."""
        return self._delete_where(session, col(StoredBlob.owner) == owner, _unnamed())

    def _delete_where(self, session: Session, *where: ColumnElement[bool]) -> int:
        ids = list(session.exec(select(StoredBlob.id).where(*where)))
        session.rollback()  # the read's transaction: nothing is held while files are locked
        return sum(self._deleted(session, blob_id, where) for blob_id in ids)

    def _adopt(self, session: Session, now_ms: int) -> None:
        """Uploads started before the server knew when they were appended to (migration 0003)
        get a full period from the first look at them, by this server's clock."""
        unknown = (_unnamed(), col(StoredBlob.touched_ms).is_(None))
        if session.exec(select(StoredBlob.id).where(*unknown).limit(1)).first() is not None:
            session.execute(update(StoredBlob).where(*unknown).values(touched_ms=now_ms))
            session.commit()

    def _deleted(
        self, session: Session, blob_id: str, where: tuple[ColumnElement[bool], ...]
    ) -> bool:
        """Delete one upload if ``where`` still holds of its row, then its file. The row goes
        first, under the partial file's lock: an append that opened the file before takes the
        lock after, finds it unlinked and says the upload starts again."""
        partial = self.partial_path(blob_id)
        with contextlib.ExitStack() as held:
            with contextlib.suppress(FileNotFoundError):  # complete, or no byte arrived
                handle = held.enter_context(open(partial, "rb"))
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # being appended to right now
                    return False
            gone: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                delete(StoredBlob).where(col(StoredBlob.id) == blob_id, *where)
            )
            session.commit()
            if not gone.rowcount:  # touched, or named by a batch, since it was listed
                return False
            partial.unlink(missing_ok=True)
            self.final_path(blob_id).unlink(missing_ok=True)
        return True

    async def append(
        self,
        session: Session,
        blob_id: str,
        offset: int,
        digest: str,
        declared: int | None,
        body: AsyncIterator[bytes],
        signer: str,
    ) -> BlobState:
        """Append a request's body at ``offset``, writing it as it arrives.

        ``digest`` is the body's signed Content-Digest and ``signer`` the key that signed it:
        only the upload's owner appends. A body that arrives whole must match the digest, or
        its bytes are discarded. A body cut short (the link dropped, or went silent) keeps
        what arrived, so the device resumes from there instead of resending it: those bytes
        were sent under a valid signature, and the blob's hash at the end vouches for them.
        """
        row = await run_in_threadpool(_detached, session, _checked(blob_id))
        if row is None:
            raise NotFound("no upload of this blob has started")
        if row.complete:
            return self._state(row)
        self._check_owner(row, signer)
        try:
            # unbuffered: every byte written is in the file's length, the offset others read
            handle = open(self.partial_path(blob_id), "r+b", buffering=0)  # noqa: SIM115
        except FileNotFoundError:  # completed a moment ago, or a crash came between the two
            return await run_in_threadpool(self.state, session, blob_id)
        with handle:
            if not await _lock_soon(handle):
                raise UploadBusy("another request is appending to this blob right now")
            held = await run_in_threadpool(self._held, session, blob_id, handle)
            if held is None:
                raise NotFound(
                    "the upload expired; it starts again",
                    hint="Nothing of this request was kept. Start the upload again from byte 0.",
                )
            if held.complete:  # another request finished it a moment ago
                return self._state(held)
            current = handle.seek(0, os.SEEK_END)
            if offset != current:
                raise ChainGap(
                    f"the upload is at byte {current}, not {offset}",
                    hint=f"Send from byte {current}.",
                )
            room = row.size - current
            if declared is not None and not 0 < declared <= room:
                raise TooLarge(f"the body must be 1 to {room} bytes: the rest of the blob")
            try:
                written, sha256 = await _write(handle, body, room)
            finally:  # after the body, not before: bytes arriving meanwhile wait in no buffer
                await run_in_threadpool(self._touch, session, blob_id)
            if not httpsig.digest_matches(digest, sha256):
                handle.truncate(current)
                raise SignatureInvalid(
                    "the body does not match its signed Content-Digest; its bytes were discarded"
                )
            if current + written == row.size:
                await run_in_threadpool(self._finish_locked, session, row, handle)
        return self._state(row)

    def _recover(self, session: Session, row: StoredBlob) -> None:
        """Finish an upload a server killed at the end of it left unfinished: its last byte was
        written, or its file even renamed into place, but the row not yet marked complete. No
        byte is left to send, so nothing else would ever finish it."""
        if row.complete:
            return
        final = self.final_path(row.id)
        if final.exists():  # killed between the rename and the row's commit
            with open(final, "rb") as handle:
                if blob.blob_id_of(handle) == row.id:
                    self._mark_complete(session, row)
                    return
            final.unlink()
        self.partial_path(row.id).touch()  # the upload starts again if its file is gone
        # BatchInvalid: the bytes were discarded and the upload starts again from 0;
        # FileNotFoundError: a request at the same moment finished it first;
        # BlockingIOError: a request is appending to it (and will finish it)
        with (
            contextlib.suppress(BatchInvalid, FileNotFoundError, BlockingIOError),
            open(self.partial_path(row.id), "r+b", buffering=0) as handle,
        ):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(handle.fileno()).st_size == row.size:
                self._finish_locked(session, row, handle)

    def _held(self, session: Session, blob_id: str, handle: BinaryIO) -> StoredBlob | None:
        """The upload's row, once an append holds the lock of the file it opened, if that file
        is still the upload's: expiry may have deleted the row and unlinked the file in
        between, and a write there would land where the server never looks again (None)."""
        try:
            path = os.stat(self.partial_path(blob_id))
        except FileNotFoundError:
            path = None
        opened = os.fstat(handle.fileno())
        row = _detached(session, blob_id)  # the connection is given back while the body streams
        if row is None or row.complete:
            return row
        same = path is not None and (path.st_dev, path.st_ino) == (opened.st_dev, opened.st_ino)
        return row if same and opened.st_nlink > 0 else None

    def _touch(self, session: Session, blob_id: str) -> None:
        """Note that the upload was appended to now: what keeps it from expiring."""
        touched = update(StoredBlob).where(col(StoredBlob.id) == blob_id)
        session.execute(touched.values(touched_ms=self.clock()))
        session.commit()

    def _finish_locked(self, session: Session, row: StoredBlob, handle: BinaryIO) -> None:
        """Keep a fully written upload if it hashes to its id (the caller holds its lock)."""
        os.fsync(handle.fileno())  # a complete blob is durable before it is used
        handle.seek(0)
        if blob.blob_id_of(handle) != row.id:
            handle.truncate(0)
            raise BatchInvalid(
                "the uploaded bytes do not hash to the blob's id; the upload was discarded",
                hint="Upload the blob again from the start.",
            )
        final = self.final_path(row.id)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.partial_path(row.id), final)
        durable.fsync_dir(final.parent)
        self._mark_complete(session, row)

    def _mark_complete(self, session: Session, row: StoredBlob) -> None:
        row.complete, row.touched_ms = True, self.clock()  # its period to be named starts
        session.add(row)
        session.commit()

    def _state(self, row: StoredBlob) -> BlobState:
        if row.complete:
            return BlobState(row.id, row.size, row.size, True)
        try:
            with open(self.partial_path(row.id), "rb") as handle:
                offset = os.fstat(handle.fileno()).st_size
                try:
                    fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:  # a request is appending: the offset may still grow
                    return BlobState(row.id, row.size, offset, False, busy=True)
        except FileNotFoundError:
            offset = 0
        return BlobState(row.id, row.size, offset, False)


def _detached(session: Session, blob_id: str) -> StoredBlob | None:
    """The blob's row, with the session's database connection given back: an append holds
    none while its body streams in (minutes, on a slow link); finishing takes one again."""
    row = session.get(StoredBlob, blob_id)
    if row is not None:
        session.expunge(row)
    session.rollback()
    return row


def _unnamed() -> ColumnElement[bool]:
    # "= false", not "IS false", which PostgreSQL cannot look up in an index
    return col(StoredBlob.named) == false()


def _abandoned(before_ms: int) -> tuple[ColumnElement[bool], ...]:
    return _unnamed(), col(StoredBlob.touched_ms) < before_ms


async def _write(handle: BinaryIO, body: AsyncIterator[bytes], room: int) -> tuple[int, bytes]:
    """Write ``body`` at the handle's end as it arrives (at most ``room`` bytes); returns its
    size and SHA-256. If the body is cut short (``RequestCut``), what arrived stays written,
    unfsynced: after a crash the offset is whatever length survived."""
    hasher, written = hashlib.sha256(), 0
    async for piece in body:
        if written + len(piece) > room:
            handle.truncate(handle.tell() - written)
            raise TooLarge("the body goes past the blob's declared size; it was discarded")
        _write_all(handle, piece)
        hasher.update(piece)
        written += len(piece)
    if written == 0:
        raise TooLarge("the body is empty; send the blob's next bytes")
    return written, hasher.digest()


async def _lock_soon(handle: BinaryIO) -> bool:
    """Take the upload's exclusive lock if it is free within a few milliseconds: someone
    asking where the upload is holds it that briefly; another request appending holds it for
    its whole body, and is not waited for (that would tie up the server)."""
    for _ in range(LOCK_TRIES):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            await asyncio.sleep(0.005)
    return False


def _write_all(handle: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[handle.write(view) :]


def final_path(folder: Path, blob_id: str) -> Path:
    return folder / _checked(blob_id)[:2] / blob_id


def _checked(blob_id: str) -> str:
    if not is_hex32(blob_id):  # it becomes a file name: only 64 lower-case hex digits
        raise NotFound("there is no such blob")
    return blob_id
