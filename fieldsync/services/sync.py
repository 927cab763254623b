"""Delivering this device's versions to the organisation's server (docs/protocol.md).

``push`` uploads every blob the pending versions reference (resuming from the server's offset),
then sends the versions in seq order in bounded batches. A batch counts as delivered only when
the server's receipt verifies against the key pinned at enrolment and names the batch's last
entry; only then does the delivery point move. Every step is idempotent, so a push that stops
anywhere can simply be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fieldsync.core import batch as batch_format
from fieldsync.core import carry, words
from fieldsync.core import receipt as receipts
from fieldsync.core.receipt import Receipt
from fieldsync.core.settings import Delivery, DeliveryBeforeRestore, Enrolment, Server
from fieldsync.errors import (
    ChainGap,
    DeviceRevoked,
    FieldsyncError,
    Interrupted,
    ServerBehind,
    ServerError,
    ServerUnreachable,
    StoreCorrupted,
    StoreStateError,
)
from fieldsync.services import problems, uploads
from fieldsync.store import blobs, delivery, files, orgkeys, settings
from fieldsync.store.delivery import Outgoing
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient

ClientFor = Callable[[str, Store], SyncClient]


@dataclass
class PushReport:
    sent_entries: int = 0
    batches: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    receipt: Receipt | None = None
    pending: int = 0  # still queued when it stopped
    wiped_records: int = 0
    wiped_attachments: int = 0
    alerts: list[str] = field(default_factory=list)  # forks of the organisation's log


@dataclass
class Progress:
    """Callbacks for the CLI's progress bars (no-ops by default)."""

    plan: Callable[[int, int], None] = field(default=lambda entries, blob_bytes: None)
    bytes_sent: Callable[[int], None] = field(default=lambda n: None)
    entries_sent: Callable[[int], None] = field(default=lambda n: None)


def signed_client(url: str, store: Store) -> SyncClient:
    return SyncClient(url, signer=store.identity.signer)


@dataclass(frozen=True)
class Destination:
    """Where a store delivers, and the keys it holds the server and the organisation to."""

    server: str  # URL
    server_key: str  # hex: the key that signs the server's receipts now, as the log names it
    org_read_keys: tuple[str, ...]  # hex, newest first: every new version is wrapped for the first

    def org_readers(self) -> list[bytes]:
        return [bytes.fromhex(key) for key in self.org_read_keys]


def destination(store: Store) -> Destination:
    """Where this store delivers to: a device's enrolment, or for an administrator's store
    (analysts' versions) the server its invites named."""
    if store.identity.org_read is not None:
        remembered = settings.load(store, Server)
        if remembered is None:
            raise StoreStateError(
                "this administrator's store knows no server yet",
                hint="Make an invite with 'fieldsync admin invite NAME --server URL' first; "
                "the server is remembered from it.",
            )
        return Destination(
            server=remembered.url,
            server_key=_receipt_key(store),
            org_read_keys=_read_keys(store),
        )
    current = settings.load(store, Enrolment)
    if current is None:
        raise StoreStateError(
            "this device is not enrolled with a server",
            hint="Ask your administrator for an invite, then run 'fieldsync enroll INVITE'.",
        )
    return Destination(
        server=current.server,
        server_key=_receipt_key(store),
        org_read_keys=_read_keys(store),
    )


def _receipt_key(store: Store) -> str:
    """The server's receipt key in force, as the log this store followed names it: the one
    pinned at enrolment (or the first invite) until the admin key names another."""
    state = orgkeys.followed(store)
    assert state is not None, "an enrolled or administrator's store has a root"
    return state.server_key


def _read_keys(store: Store) -> tuple[str, ...]:
    """The organisation's read keys as the log this store followed names them, newest first."""
    state = orgkeys.followed(store)
    assert state is not None, "an enrolled or administrator's store has a root"
    return tuple(key.key for key in reversed(state.read_keys))


def delivered_seq(store: Store) -> int:
    """How far the server acknowledged this store's own log (0 for a key whose log has not
    been delivered yet: an admin key that succeeded the one the receipts were for)."""
    kept = settings.load(store, Delivery) or Delivery()
    return kept.seq if kept.author in (None, store.identity.device_id) else 0


def pending(store: Store) -> int:
    """Versions this device has not had acknowledged by a verified receipt."""
    return delivery.own_entries_after(store, delivered_seq(store))


def undelivered(store: Store) -> tuple[int, int]:
    """The versions and attachments a wipe now would destroy before any server has them."""
    seq = delivered_seq(store)
    return delivery.own_entries_after(store, seq), delivery.own_blobs_after(store, seq)


def push(
    store: Store,
    *,
    client_for: ClientFor = signed_client,
    progress: Progress | None = None,
    wipe_after: bool = False,
    after_restore: bool = False,
) -> PushReport:
    """Deliver what is pending; with ``wipe_after``, then forget every record the server's
    verified receipts cover in full (never before, and never anything else).

    With ``after_restore``, a server that holds less than its receipts said (``ServerBehind``:
    restored from an older backup) is sent again everything it lacks. Without it, the push
    stops there and says so: a server that lost data is for a person to notice first.
    """
    try:
        return _push(store, client_for, progress, wipe_after)
    except ServerBehind as exc:
        if not after_restore:
            raise
        _rewind(store, int(exc.details["server_seq"]))
        return _push(store, client_for, progress, wipe_after)


def _rewind(store: Store, server_seq: int) -> None:
    """Move the delivery point back to what the server holds, keeping the receipts it gave
    before (evidence of what it once acknowledged). Only if every version after it can be
    sent again: a record wiped after delivery no longer can."""
    joined = destination(store)
    try:
        delivery.outbox(store, server_seq, joined.org_readers())
    except StoreCorrupted as exc:
        raise StoreStateError(
            f"this device cannot send again what the server lost after seq {server_seq}: "
            "some of it was wiped from this device after delivery (push --wipe-after)",
            hint="Nothing was changed. The server's backup is the only copy of those "
            "versions left: tell your administrator.",
        ) from exc
    before = settings.load(store, Delivery) or Delivery()
    history = settings.load(store, DeliveryBeforeRestore) or DeliveryBeforeRestore()
    settings.save(store, DeliveryBeforeRestore((*history.receipts, before)))
    settings.save(store, Delivery(last_seq=server_seq, author=store.identity.device_id))


def _push(
    store: Store, client_for: ClientFor, progress: Progress | None, wipe_after: bool
) -> PushReport:
    joined = destination(store)
    progress = progress or Progress()
    report = PushReport()
    outbox, sizes = _pending(store, joined)
    blob_ids = list(sizes)
    progress.plan(len(outbox), sum(sizes.values()))
    me = store.identity.device_id
    try:
        with client_for(joined.server, store) as client:
            followed = _followed_for_push(store, client)
            # a new read key (wrapped for it), a new receipt key, or a succession this store
            # learns of only now (its own log is the new key's)
            if followed != joined or store.identity.device_id != me:
                joined = followed
                outbox, sizes = _pending(store, joined)
                blob_ids = list(sizes)
            for blob_id in blob_ids:
                report.blob_bytes += _upload(store, client, blob_id, sizes[blob_id], progress)
                report.blobs += 1
            _send_batches(store, client, joined, outbox, sizes, report, progress)
    except KeyboardInterrupt:
        raise _push_stopped(
            len(outbox) - report.sent_entries, len(blob_ids) - report.blobs
        ) from None
    except (ServerUnreachable, ServerError) as exc:
        left = len(outbox) - report.sent_entries
        raise type(exc)(
            f"{exc.message}. Nothing was lost: {words.count(left, 'version')} "
            f"{words.verb(left, 'stays', 'stay')} queued on this device",
            hint="Run 'fieldsync push' again when the connection is back; it resumes. "
            "Nothing was wiped.",
        ) from exc
    report.alerts = orgkeys.alerts(store)
    if wipe_after:
        report.wiped_records, report.wiped_attachments = delivery.forget_delivered(
            store, delivered_seq(store)
        )
        problems.forget_records(store, store.forgotten_records())
    return report


def follow_org_log(store: Store, client: SyncClient) -> Destination:
    """Follow the organisation's log as the server serves it (refused whole if it does not
    verify, or is older than the one this store followed: core/orglog.py), and wrap what this
    store has not delivered for the newest read key, so that nothing the server receives from
    now on needs a retired one. Where this store delivers, as it now stands."""
    page = client.org_log()
    state = orgkeys.keep(store, list(page.statements), list(page.forks))
    orgkeys.use_admin_key_in_force(store)  # an administrator's: a succession may have arrived
    client.sign_with(store.identity.signer)
    delivery.add_reader(store, bytes.fromhex(state.read_key.key), own_after=delivered_seq(store))
    return destination(store)


def _followed_for_push(store: Store, client: SyncClient) -> Destination:
    """``follow_org_log``; a device the server says is revoked goes on to send its batches
    all the same, which the server keeps for review (and refuses), as before the log."""
    try:
        return follow_org_log(store, client)
    except DeviceRevoked:
        return destination(store)


def _push_stopped(versions: int, attachments: int) -> Interrupted:
    """What a Ctrl-C mid-push leaves: a version counts as delivered only once its receipt is
    verified and saved, so everything else is still queued, and the next push resumes (an
    attachment from where the server's copy of it ends)."""
    return Interrupted(
        f"push interrupted; nothing was lost: {words.count(versions, 'version')} and "
        f"{words.count(attachments, 'attachment')} stay queued on this device; nothing was "
        "wiped",
        hint="Run 'fieldsync push' again: it resumes where it stopped.",
    )


def _pending(store: Store, joined: Destination) -> tuple[list[Outgoing], dict[str, int]]:
    """The versions not yet acknowledged, and the stored size of each blob they reference
    (in the order they are first referenced)."""
    outbox = delivery.outbox(store, delivered_seq(store), joined.org_readers())
    blob_ids = dict.fromkeys(b for item in outbox for b in item.blobs)
    return outbox, {b: blobs.blob_path(store, b).stat().st_size for b in blob_ids}


def _upload(store: Store, client: SyncClient, blob_id: str, size: int, progress: Progress) -> int:
    with open(blobs.blob_path(store, blob_id), "rb") as handle:

        def read_at(offset: int, count: int) -> bytes:
            handle.seek(offset)
            return handle.read(count)

        return uploads.upload(client, blob_id, size, read_at, progress.bytes_sent)


def write_carry(store: Store, path: Path) -> tuple[int, int]:
    """Write the pending batches and their blobs to ``path`` for carrying offline.

    Nothing is marked delivered: that needs a server's receipt. Returns (versions, blobs).
    """
    outbox, sizes = _pending(store, destination(store))
    blob_ids = list(sizes)

    def chunks() -> Iterator[bytes]:
        yield carry.write_start()
        for blob_id in blob_ids:
            yield carry.header(carry.BLOB, sizes[blob_id])
            with open(blobs.blob_path(store, blob_id), "rb") as handle:
                while piece := handle.read(uploads.UPLOAD_PIECE):
                    yield piece
        for built in _batches(store, outbox, sizes):
            yield carry.header(carry.BATCH, len(built.raw))
            yield built.raw
        yield carry.write_end()

    files.write_chunks_atomic(path, chunks())
    return len(outbox), len(blob_ids)


def _batches(
    store: Store, outbox: list[Outgoing], sizes: dict[str, int]
) -> Iterator[batch_format.Batch]:
    start = 0
    for count in batch_format.plan([len(item.entry.raw) for item in outbox]):
        group = outbox[start : start + count]
        blobs = {(b, sizes[b]) for item in group for b in item.blobs}
        yield batch_format.build(
            store.identity.signer,
            [i.entry for i in group],
            [i.org_wrap for i in group],
            blobs,
            [i.readers for i in group],
        )
        start += count


def _send_batches(
    store: Store,
    client: SyncClient,
    joined: Destination,
    outbox: list[Outgoing],
    sizes: dict[str, int],
    report: PushReport,
    progress: Progress,
) -> None:
    pinned = bytes.fromhex(joined.server_key)
    for built in _batches(store, outbox, sizes):
        try:
            answer = client.send_batch(built.raw)
        except ChainGap as exc:
            held = int(exc.details.get("expected_seq", 1)) - 1
            raise ServerBehind(
                f"the server holds this device's versions only up to seq {held}, before what "
                "its receipts said it had: it may have been restored from an older backup",
                hint="Nothing was lost or changed. Tell your administrator; once they confirm "
                "the restore, run 'fieldsync push --after-restore' to send it again what it "
                "lacks.",
                details={"server_seq": held},
            ) from exc
        got = verified(answer, pinned, built)
        last = built.entries[-1]
        settings.save(
            store,
            Delivery(
                last_seq=last.header.seq,
                head=last.id,
                receipt=answer.decode("utf-8"),
                receipt_time_ms=got.time_ms,
                author=built.manifest.author,
            ),
        )
        report.sent_entries += len(built.entries)
        report.batches += 1
        report.receipt = got
        progress.entries_sent(len(built.entries))


def verified(answer: bytes, pinned: bytes, built: batch_format.Batch) -> Receipt:
    """The receipt, if it is the server's and answers exactly this batch; nothing is marked
    otherwise.

    A receipt names the batch it answers (its hash), so a receipt the server signed for
    another batch of this device, even one claiming the same seq and head, is refused. It
    names this batch's last seq and entry, or a later seq: a batch whose entries were all
    stored already (rebuilt after a lost answer) is answered for the device's head.
    """
    try:
        got = receipts.verify(answer, pinned_server_key=pinned)
    except FieldsyncError as exc:
        raise ServerError(
            "the server's answer is not a valid receipt; nothing was marked as delivered",
        ) from exc
    last = built.entries[-1]
    if (
        got.batch != built.id
        or got.device != built.manifest.author
        or got.last_seq < last.header.seq
        or (got.last_seq == last.header.seq and got.head != last.id)
    ):
        raise ServerError(
            "the server's receipt does not cover this batch; nothing was marked as delivered",
            hint="The server may be misbehaving: tell your administrator. Nothing was lost or "
            "wiped; the versions stay queued on this device.",
        )
    return got
