"""Fetching what others wrote: ``fieldsync pull`` and ``fieldsync admin pull`` (docs/conflicts.md).

The server's pages are checked in full before anything is stored: every version's signature
and id, that its author is one this store trusts (a device: the organisation's admin key; an
administrator: the devices whose enrolment the admin key vouched for), that it was sealed for
this store's key and opens to the body its header commits to, and that every version it builds
on is held already or came earlier. One bad version and nothing of its page is stored.

Then every record with several heads is settled (``records.settle``): merged into a new signed
version when the heads' changes fit together, marked in conflict when they do not.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fieldsync.core import enrolment, receipt
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.entry import Entry
from fieldsync.errors import FieldsyncError, IntegrityError, ServerError
from fieldsync.services import records, sync
from fieldsync.services.forms import get_form
from fieldsync.services.sync import ClientFor, signed_client
from fieldsync.store import custody
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient

REFUSED_HINT = (
    "Nothing from that page was stored; this store is as it was. The server, or something "
    "between it and you, sent data that is not what its authors signed: tell your administrator."
)


@dataclass
class PullReport:
    received: int = 0  # versions stored
    held: int = 0  # versions this store had already
    skipped: int = 0  # versions of records this device has wiped after delivery
    blobs: int = 0  # attachments downloaded
    merged: list[str] = field(default_factory=list)  # records merged into a new version
    conflicts: list[str] = field(default_factory=list)  # records left for a person
    restarted: bool = False  # the feed was rewritten under the cursor: read again from the start


@dataclass(frozen=True)
class _Checked:
    entry: Entry
    wrap: bytes
    body: Body


def pull(
    store: Store,
    *,
    client_for: ClientFor = signed_client,
    progress: Callable[[int], None] = lambda n: None,
    from_start: bool = False,
) -> PullReport:
    """Fetch from the cursor everything this store may read, then settle branched records;
    ``from_start`` reads the whole feed again (after a restore), storing nothing twice."""
    url, trusted = _source(store)
    report = PullReport()
    saved = {} if from_start else store.setting("pull") or {}
    cursor, anchor = int(saved.get("after", 0)), saved.get("anchor")
    forgotten = store.forgotten_records()
    touched: set[str] = set()
    with client_for(url, store) as client:
        if store.identity.is_admin:
            trusted |= _registry(store, client)
        page, report.restarted = _resume(client, cursor, anchor)
        if report.restarted:
            cursor = 0
        while True:
            page = page or client.feed(cursor)
            items, after, more = _page(page, cursor)
            checked = _check(store, items, trusted, forgotten, report)
            receipts = _receipts(store, page) if store.identity.is_admin else []
            report.blobs += _fetch_blobs(store, client, checked)
            with store.writer() as writer:
                for item in checked:
                    summary = get_form(item.body.form).summary(item.body.answers)
                    if writer.receive(item.entry, item.wrap, item.body, summary):
                        report.received += 1
                        touched.add(item.entry.header.record)
                    else:
                        report.held += 1
            custody.keep_receipts(store, receipts)
            if items:  # the version at the cursor, to see next time that it is still there
                anchor = entry_format.entry_id(items[-1][0])
            # a crash before this re-reads a page
            store.save_setting("pull", {"after": after, "anchor": anchor})
            progress(len(items))
            cursor, page = after, None
            if not more:
                break
    settle_all(store, report, touched)
    return report


def settle_all(
    store: Store, report: PullReport | None = None, touched: set[str] | None = None
) -> PullReport:
    """Merge or mark the branched records: those a pull touched, and any not yet marked in
    conflict (so a merge a crash interrupted is made on the next pull)."""
    report = report or PullReport()
    settled = records.settle(store, store.branched_records(), touched)
    report.merged, report.conflicts = settled.merged, settled.conflicts
    return report


def _source(store: Store) -> tuple[str, set[str]]:
    """The server to pull from, and the authors whose versions this store accepts: itself and
    the organisation's admin key (an administrator adds the vouched devices)."""
    joined = sync.enrolment(store)
    return str(joined["server"]), {store.identity.device_id, str(joined["admin_key"])}


def _registry(store: Store, client: SyncClient) -> set[str]:
    """The devices the admin key vouched for, checked here from the enrolments the server
    kept (its word alone is not enough); remembered for sealing analysts' versions."""
    admin_key = store.identity.device_id
    devices: dict[str, dict[str, str]] = {}
    for listed in client.devices():
        if listed.get("device") == admin_key:
            continue
        try:
            shown = enrolment.vouched(base64.b64decode(str(listed["enrolment"])), admin_key)
        except (FieldsyncError, KeyError, ValueError, binascii.Error):
            continue  # not vouched for: its versions will be refused by name below
        if shown.device_key == listed.get("device"):
            devices[shown.device_key] = {
                "box_key": shown.box_key,
                "name": shown.name,
                "enrolment": str(listed["enrolment"]),  # verbatim, for evidence packages
            }
    store.save_setting("registry", {"devices": devices})
    return set(devices)


def _receipts(store: Store, page: dict[str, Any]) -> list[custody.KeptReceipt]:
    """The receipts of the batches a page's versions came in, each verified against the
    server key pinned at the first invite (an administrator's page only)."""
    pinned = bytes.fromhex(str(sync.enrolment(store)["server_key"]))
    kept = []
    try:
        encoded = [base64.b64decode(r, validate=True) for r in page.get("receipts", [])]
    except (TypeError, ValueError, binascii.Error) as exc:
        raise ServerError("the server's answer to a pull has malformed receipts") from exc
    for raw in encoded:
        try:
            shown = receipt.verify(raw, pinned_server_key=pinned)
        except IntegrityError as exc:
            raise IntegrityError(
                f"the server sent a receipt that does not verify: {exc.message}",
                hint=REFUSED_HINT,
            ) from exc
        kept.append(
            custody.KeptReceipt(shown.batch, shown.device, shown.last_seq, raw, store.now_ms())
        )
    return kept


def _resume(
    client: SyncClient, cursor: int, anchor: str | None
) -> tuple[dict[str, Any] | None, bool]:
    """The first page to read, and whether the feed was rewritten under this store's cursor.

    The page from just before the cursor must begin with the version this store read there
    last. A server restored from an older backup numbers what devices send it again from where
    the backup ended, so a cursor past that point would skip versions: then everything is read
    again from the start (what is held already is recognised, not stored twice)."""
    if not cursor or not anchor:
        return None, False
    page = client.feed(cursor - 1)
    items, _, more = _page(page, cursor - 1)
    try:
        at_cursor = bool(items) and int(page["entries"][0]["pos"]) == cursor
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError("the server's answer to a pull is not a page of versions") from exc
    if not at_cursor or entry_format.entry_id(items[0][0]) != anchor:
        return None, True
    rest = page | {"entries": page["entries"][1:]}
    return (None if more and not rest["entries"] else rest), False


def _page(page: dict[str, Any], cursor: int) -> tuple[list[tuple[bytes, bytes]], int, bool]:
    try:
        items = [
            (
                base64.b64decode(i["entry"], validate=True),
                base64.b64decode(i["wrap"], validate=True),
            )
            for i in page["entries"]
        ]
        after, more = int(page["next"]), bool(page["more"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ServerError("the server's answer to a pull is not a page of versions") from exc
    if after < cursor or (more and not items):
        raise ServerError("the server's answer to a pull does not move forward")
    return items, after, more


def _check(
    store: Store,
    items: list[tuple[bytes, bytes]],
    trusted: set[str],
    forgotten: set[str],
    report: PullReport,
) -> list[_Checked]:
    """Verify a whole page before any of it is stored."""
    checked: list[_Checked] = []
    entries = [_parse(raw, n) for n, (raw, _) in enumerate(items, 1)]
    wanted = list({p for e in entries for p in e.header.parents} | {e.id for e in entries})
    held = store.held(wanted)
    taken = store.held_at({(e.header.author, e.header.seq) for e in entries})
    seen: dict[str, str] = {}  # id -> record, of this page's versions taken so far
    for (_raw, wrap), entry in zip(items, entries, strict=True):
        header = entry.header
        where = f"version {entry.id[:12]} of record {header.record}"
        if header.author not in trusted:
            raise IntegrityError(
                f"the server sent {where}, signed by a key this store does not trust",
                hint=REFUSED_HINT,
            )
        if header.record in forgotten:
            report.skipped += 1
            continue
        if entry.id in held:
            report.held += 1
            continue
        for parent in header.parents:
            record = held[parent][0] if parent in held else seen.get(parent)
            if record != header.record:
                raise IntegrityError(
                    f"the server sent {where} before a version it builds on, or builds it on "
                    "another record's version",
                    hint=REFUSED_HINT,
                )
        if (header.author, header.seq) in taken:
            raise IntegrityError(
                f"the server sent {where} at seq {header.seq} of its author, where this store "
                "holds a different version (a fork)",
                hint=REFUSED_HINT,
            )
        try:
            key = store.reader.unwrap(wrap, what=where)
            body = Body.decode(entry.open(key))
            get_form(body.form)
        except FieldsyncError as exc:
            raise IntegrityError(
                f"the server sent {where} that this store cannot open: {exc.message}",
                hint=REFUSED_HINT,
            ) from exc
        checked.append(_Checked(entry, wrap, body))
        seen[entry.id] = header.record
    return checked


def _parse(raw: bytes, number: int) -> Entry:
    try:
        return entry_format.parse(raw)
    except IntegrityError as exc:
        raise IntegrityError(
            f"version {number} of the server's page does not verify: {exc.message}",
            hint=REFUSED_HINT,
        ) from exc


def _fetch_blobs(store: Store, client: SyncClient, checked: list[_Checked]) -> int:
    """Download the attachments the page's versions reference and this store lacks; each is
    kept only if its bytes hash to its id."""
    wanted = dict.fromkeys(a.blob for item in checked for a in item.body.attachments)
    fetched = 0
    for blob_id in wanted:
        if store.blob_path(blob_id).is_file():
            continue

        def fill(write: Callable[[bytes], None], wanted_id: str = blob_id) -> None:
            client.blob_content(wanted_id, write)

        store.import_blob(blob_id, fill)
        fetched += 1
    return fetched
