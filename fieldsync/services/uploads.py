"""Uploading one blob, resuming from the server's offset over a link that drops
(docs/protocol.md, "Blobs"): bounded requests, each signed over its digest, streamed from the
file as the link takes it; after a cut, the server asked where the upload is once it has settled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fieldsync.core import httpsig
from fieldsync.core.wire import BlobState
from fieldsync.errors import (
    ChainGap,
    FieldsyncError,
    NotFound,
    ServerError,
    ServerStorageFailed,
    ServerUnreachable,
    UploadBusy,
)
from fieldsync.transport.client import SyncClient

UPLOAD_SEGMENT = 16 * 1024 * 1024  # one streamed request (hashed first, for its signature)
UPLOAD_PIECE = 256 * 1024  # read from the file and written to the link at a time
MAX_STALLED_TRIES = 6  # tries in a row that move an upload no further
BUSY_PATIENCE_S = 45.0  # outlasts the server's idle limit for a silent body (Limits.body_idle_s)
SETTLE_PATIENCE_S = 2.0  # how long a cut request's bytes may wait for the server to begin on them


def upload(
    client: SyncClient,
    blob_id: str,
    size: int,
    read_at: Callable[[int, int], bytes],
    sent: Callable[[int], None] = lambda n: None,
) -> int:
    """Upload a blob from wherever ``read_at(offset, count)`` reads it, resuming from the
    server's offset; returns the bytes the server took (0 if it already had them all).

    Each request streams up to ``UPLOAD_SEGMENT`` bytes, and the server keeps whatever arrived
    of a request the link cut, so a dropped link costs only the bytes in flight. The upload
    goes on as long as tries move it forward; ``MAX_STALLED_TRIES`` in a row that move nothing
    end it with ``ServerUnreachable`` (a push then says to run it again: it resumes).
    """
    state = where_upload_is(client, blob_id, size)
    first, stalled = state.offset, 0
    while not state.complete:
        offset = state.offset
        length = min(UPLOAD_SEGMENT, size - offset)
        spans = list(_spans(offset, length))
        digest = httpsig.content_digest_of(read_at(start, count) for start, count in spans)
        streamed = [0]  # bytes put on the link by this request
        failure: FieldsyncError | None = None
        try:
            body = _pieces(read_at, spans, sent, streamed)
            state = client.blob_append(blob_id, offset, body, length=length, digest=digest)
        except ServerStorageFailed:
            raise  # the server's disk is full: trying again now would fail the same way
        except (ServerError, ChainGap, UploadBusy, NotFound) as exc:
            # Cut mid-body (ServerUnreachable), another request holds or passed this offset,
            # or the upload expired under this request (NotFound): ask where the upload is
            # (starting it again if need be), and carry on from there.
            failure = exc
            cut = isinstance(exc, ServerUnreachable)
            state = where_upload_is(client, blob_id, size, cut_at=offset if cut else None)
        moved = state.offset - offset
        sent(moved - streamed[0])  # the progress bar forgets what did not arrive
        if moved > 0:
            stalled = 0
            continue
        stalled += 1
        if stalled >= MAX_STALLED_TRIES:
            why = failure.message if failure else "the server took none of the bytes"
            raise ServerUnreachable(
                f"the upload of an attachment made no progress in {stalled} tries ({why})",
                hint="Nothing was lost. Run the command again when the connection is back.",
            ) from failure
        client.backoff(stalled)
    return state.offset - first


def where_upload_is(
    client: SyncClient, blob_id: str, size: int, *, cut_at: int | None = None
) -> BlobState:
    """The server's state of an upload (starting it if need be), once no request is appending
    to it: just after a link drops, the server may still be writing what arrived, or reading a
    body whose link died silently (it lets go after its idle limit).

    ``cut_at`` is the offset of a request the link just cut. What crossed of it may still wait,
    unread, for a busy server to begin on it, and this question, on a new connection, can be
    answered first: an upload still at ``cut_at`` is asked again for up to
    ``SETTLE_PATIENCE_S``, so the next request is not sent from an offset about to move (the
    server would refuse it, and the link would carry it for nothing)."""
    waited, pause = 0.0, 0.02
    while True:
        state = client.blob_state(blob_id) or client.blob_create(blob_id, size)
        if waited >= BUSY_PATIENCE_S:
            return state
        settled = cut_at is None or state.offset != cut_at or waited >= SETTLE_PATIENCE_S
        if not state.busy and settled:
            return state
        client.pause(pause)
        waited, pause = waited + pause, min(1.0, pause * 2)


def _pieces(
    read_at: Callable[[int, int], bytes],
    spans: list[tuple[int, int]],
    sent: Callable[[int], None],
    streamed: list[int],
) -> Iterator[bytes]:
    """A request's body, read from the file as the link takes it; counts into ``streamed``."""
    for start, count in spans:
        piece = read_at(start, count)
        streamed[0] += len(piece)
        sent(len(piece))
        yield piece


def _spans(offset: int, length: int) -> Iterator[tuple[int, int]]:
    for start in range(offset, offset + length, UPLOAD_PIECE):
        yield start, min(UPLOAD_PIECE, offset + length - start)
