"""Fetching what others wrote: ``fieldsync pull`` and ``fieldsync admin pull`` (docs/conflicts.md).

Every page is checked in full before anything of it is stored, and refused whole for any sign
that the server, or something between it and this store, altered what it serves: a version
whose signature or id does not verify, one signed by a key this store does not trust (a device:
the organisation's admin key; an administrator: the devices whose enrolment the admin key
vouched for), one served before a version it builds on, a second version at an author's seq,
a receipt that does not verify.

What only a reader can find wrong is the author's doing, not the server's, and must not stop
everyone else's testimony: a wrap that does not open, a body that is not one, answers that do
not fit their form, a parent from another record, an attachment the server cannot give; and,
for an administrator, a device the server lists under an invite whose token another device
already used (a token vouches for one device key: only the server can have made the other,
and setting it aside keeps it from stopping the rest). Such a version is set aside by name
(``fieldsync.services.problems``), kept as served (each version once, up to a cap per author)
and tried again at every pull, and with any other wrap the server serves it with later; the
rest of the page is stored and the cursor moves on. An administrator's pull then names every
version the server's feed skipped, by author and seq.

Then every record with several heads is settled (``records.settle``): merged into a new signed
version when the heads' changes fit together, marked in conflict when they do not.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fieldsync.core import blob, enrolment, receipt, words
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.entry import Entry
from fieldsync.errors import (
    FieldsyncError,
    FormNotFound,
    IntegrityError,
    Interrupted,
    NotFound,
    ServerError,
)
from fieldsync.services import problems, records, sync
from fieldsync.services.forms import get_form
from fieldsync.services.problems import Listed, SetAside, digest
from fieldsync.services.sync import ClientFor, signed_client
from fieldsync.store import blobs, custody, delivery
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient

RETRIED = 200  # versions set aside before, loaded and checked again at a time

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
    set_aside: int = 0  # versions this pull could not use, kept to try again
    recovered: int = 0  # versions set aside by an earlier pull and stored now
    problems: list[problems.Problem] = field(default_factory=list)  # all still outstanding


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
    touched: set[str] = set()
    earlier = problems.listed(store)
    try:
        with client_for(url, store) as client:
            claimed, refused = _registry(store, client) if store.identity.is_admin else ({}, {})
            judge = _Judge(store, trusted | set(claimed), earlier, refused)
            for retried in judge.retry(report):
                _store(store, judge, retried, client, report, touched)
            page, report.restarted = _resume(client, cursor, anchor)
            if report.restarted:
                cursor = 0
            while True:
                page = page or client.feed(cursor)
                items, after, more = _page(page, cursor)
                checked = judge.page(items, report)
                custody.keep_receipts(
                    store, _receipts(store, page) if store.identity.is_admin else []
                )
                _store(store, judge, checked, client, report, touched)
                if items:  # the version at the cursor, to see next time that it is still there
                    anchor = entry_format.entry_id(items[-1][0])
                # a crash before this re-reads a page
                store.save_setting("pull", {"after": after, "anchor": anchor})
                progress(len(items))
                cursor, page = after, None
                if not more:
                    break
    except KeyboardInterrupt:
        # each page is stored, then the cursor saved: nothing checked is lost, and the branched
        # records left unsettled are settled by the next pull (settle_all)
        raise Interrupted(
            f"pull interrupted; {words.count(report.received, 'version')} received and "
            f"checked so far {words.verb(report.received, 'is', 'are')} kept",
            hint="Run 'fieldsync pull' again: it resumes where it stopped.",
        ) from None
    if store.identity.is_admin:
        held_back = _withheld(store, judge.kept(), claimed)
        if held_back != problems.withheld(store):
            problems.save_withheld(store, held_back)
    known = {item.id for item in earlier}
    report.set_aside = len(set(judge.aside) - known)
    report.recovered = len(known - set(judge.aside))
    report.problems = problems.named(store)
    settle_all(store, report, touched)
    return report


def _store(
    store: Store,
    judge: _Judge,
    checked: list[_Checked],
    client: SyncClient,
    report: PullReport,
    touched: set[str],
) -> None:
    """Fetch the attachments of what was checked, then store it and keep what was set aside
    (before the cursor moves past it)."""
    usable = judge.with_attachments(checked, client, report)
    if usable:
        with store.writer() as writer:
            for item in usable:
                summary = get_form(item.body.form).summary(item.body.answers)
                if writer.receive(item.entry, item.wrap, item.body, summary):
                    report.received += 1
                    touched.add(item.entry.header.record)
                else:
                    report.held += 1
    judge.stored(usable)
    judge.save()


def settle_all(
    store: Store, report: PullReport | None = None, touched: set[str] | None = None
) -> PullReport:
    """Merge or mark the branched records: those a pull touched, and any not yet marked in
    conflict (so a merge a crash interrupted is made on the next pull)."""
    report = report or PullReport()
    settled = records.settle(store, delivery.branched_records(store), touched)
    report.merged, report.conflicts = settled.merged, settled.conflicts
    return report


def _source(store: Store) -> tuple[str, set[str]]:
    """The server to pull from, and the authors whose versions this store accepts: itself and
    the organisation's admin key (an administrator adds the vouched devices)."""
    joined = sync.enrolment(store)
    return str(joined["server"]), {store.identity.device_id, str(joined["admin_key"])}


def _registry(store: Store, client: SyncClient) -> tuple[dict[str, int], dict[str, str]]:
    """The devices the admin key vouched for, checked here from the enrolments the server
    kept (its word alone is not enough); remembered for sealing analysts' versions. Returns
    each one's last seq as the server claims it (the analysts' log's too): a pull that ends
    short of it names what the feed withheld; and the devices refused because another device
    used their invite's token, each with the reason it is named by."""
    admin_key = store.identity.device_id
    found: dict[str, tuple[enrolment.Vouched, str]] = {}
    claimed: dict[str, int] = {}
    for listed in client.devices():
        if listed.get("device") == admin_key:
            claimed[admin_key] = _count(listed.get("last_seq"))
            continue
        try:
            shown = enrolment.vouched(
                base64.b64decode(str(listed["enrolment"]), validate=True), admin_key
            )
        except (FieldsyncError, KeyError, ValueError, binascii.Error):
            continue  # not vouched for: its versions will be refused by name below
        if shown.device_key == listed.get("device"):
            found[shown.device_key] = (shown, str(listed["enrolment"]))
            claimed[shown.device_key] = _count(listed.get("last_seq"))
    saved = store.setting("registry") or {}
    bound = _tokens_bound(saved, admin_key)
    refused = _spent_tokens(store, found, bound)
    devices = {
        key: {
            "box_key": shown.box_key,
            "name": shown.name,
            "enrolment": raw,  # verbatim, for evidence packages
        }
        for key, (shown, raw) in found.items()
        if key not in refused
    }
    store.save_setting("registry", {"devices": devices, "tokens": bound})
    return {k: n for k, n in claimed.items() if k not in refused}, refused


def _tokens_bound(saved: dict[str, Any], admin_key: str) -> dict[str, str]:
    """Each invite token this store has seen enrol a device, and the one device key it vouches
    for ("": none, two having shown it); kept across pulls, so a device the server stops
    listing still holds its token. A registry saved before tokens were kept gives them from
    its devices' enrolments."""
    bound = {str(token): str(key) for token, key in (saved.get("tokens") or {}).items()}
    if bound or not saved.get("devices"):
        return bound
    users: dict[str, set[str]] = {}
    for key, device in saved["devices"].items():
        try:
            raw = base64.b64decode(str(device["enrolment"]), validate=True)
            users.setdefault(enrolment.vouched(raw, admin_key).token, set()).add(str(key))
        except (FieldsyncError, KeyError, ValueError, binascii.Error):
            continue
    return {token: next(iter(keys)) if len(keys) == 1 else "" for token, keys in users.items()}


def _spent_tokens(
    store: Store, found: dict[str, tuple[enrolment.Vouched, str]], bound: dict[str, str]
) -> dict[str, str]:
    """The listed devices refused because their invite's token vouches for another device key
    (each with why), binding in ``bound`` the tokens seen for the first time. A token enrols
    one device, so only the server can have made a second from the enrolment it kept: the
    device the token first vouched for here keeps its trust, and of two first seen together
    neither is trusted, now or later."""
    by_token: dict[str, list[str]] = {}
    for key, (shown, _) in found.items():
        by_token.setdefault(shown.token, []).append(key)
    refused = {}
    for token, keys in by_token.items():
        if token not in bound:
            bound[token] = keys[0] if len(keys) == 1 else ""
        owner = bound[token]
        user = problems.who(store, owner) if owner else "another device"
        for key in keys:
            if key != owner:
                refused[key] = (
                    f"the server lists it under invite {found[key][0].name!r}, whose token "
                    f"{user} already used: refused"
                )
    return refused


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _withheld(
    store: Store, aside: list[Listed], claimed: dict[str, int]
) -> dict[str, list[problems.Span]]:
    """Each trusted author's seqs that this store lacks and did not set aside, up to the
    highest seq that its versions held here, a verified receipt, or the server's registry
    show to exist: what the feed skipped."""
    through = dict(claimed)
    for author, seq in custody.receipted_through(store).items():
        if author in claimed:
            through[author] = max(through[author], seq)
    set_aside: dict[str, set[int]] = {}
    for item in aside:
        set_aside.setdefault(item.author, set()).add(item.seq)
    found = {}
    for author, gaps in custody.seqs_missing(store, through).items():
        left = problems.without(gaps, set_aside.get(author, set()))
        if left:
            found[author] = left
    return found


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
    if after < cursor or (more and (not items or after == cursor)):
        raise ServerError("the server's answer to a pull does not move forward")
    return items, after, more


def _parse(raw: bytes, number: int) -> Entry:
    try:
        return entry_format.parse(raw)
    except IntegrityError as exc:
        raise IntegrityError(
            f"version {number} of the server's page does not verify: {exc.message}",
            hint=REFUSED_HINT,
        ) from exc


class _Judge:
    """What becomes of each version served, in feed order: stored, known already, skipped,
    set aside (by name, to try again) or, for signs that the server altered what it serves,
    the whole page refused."""

    def __init__(
        self, store: Store, trusted: set[str], aside: list[Listed], refused: dict[str, str]
    ) -> None:
        self.store = store
        self.trusted = trusted
        self.refused = refused  # author -> why: a device the server made up, set aside
        self.forgotten = store.forgotten_records()
        self.aside = {item.id: item for item in aside}  # in the order they were served
        self.aside_at = {(item.author, item.seq): item.id for item in aside}
        self.kept_bytes: dict[str, int] = {}  # of the versions set aside, per author
        for item in aside:
            if item.kept:
                self.kept_bytes[item.author] = self.kept_bytes.get(item.author, 0) + item.size
        self.seen: dict[str, str] = {}  # id -> record, of versions checked and to be stored
        self.held: dict[str, tuple[str, str, int]] = {}
        self.taken: set[tuple[str, int]] = set()
        self.places: set[tuple[str, int]] = set()  # (author, seq) of the versions seen
        self.new: list[SetAside] = []  # bytes to keep, since the list was last saved
        self.dropped: set[str] = set()  # versions whose kept bytes are to go
        self.changed = False  # the list must be saved anew

    def kept(self) -> list[Listed]:
        return list(self.aside.values())

    def page(self, items: list[tuple[bytes, bytes]], report: PullReport) -> list[_Checked]:
        """Verify a whole page before any of it is stored."""
        entries = [_parse(raw, n) for n, (raw, _) in enumerate(items, 1)]
        self._look_up(entries)
        checked = []
        for (_raw, wrap), entry in zip(items, entries, strict=True):
            found = self._judge(entry, wrap, report)
            if found is not None:
                checked.append(found)
        return checked

    def retry(self, report: PullReport) -> Iterator[list[_Checked]]:
        """The versions set aside before whose bytes are kept, checked again a part at a time
        (a fixed reader, an attachment uploaded since); one that fails again stays as it is
        kept, whatever the reason."""
        earlier = [item for item in self.aside.values() if item.kept]
        for start in range(0, len(earlier), RETRIED):
            loaded = problems.load(self.store, earlier[start : start + RETRIED])
            found = [(item, entry_format.parse(item.raw)) for item in loaded]
            self._look_up([entry for _, entry in found])
            checked = []
            for item, entry in found:
                try:
                    judged = self._judge(entry, item.wrap, report, again=True)
                except IntegrityError:
                    continue
                if judged is not None:
                    checked.append(judged)
                elif entry.id in self.held or entry.header.record in self.forgotten:
                    self._forget(entry.id)
            yield checked

    def stored(self, usable: list[_Checked]) -> None:
        """What was set aside before and is stored now leaves the list."""
        for item in usable:
            if item.entry.id in self.aside:
                self._forget(item.entry.id)

    def save(self) -> None:
        """Keep the new bytes set aside, then the list, then let go of the bytes it no longer
        names (a crash between leaves bytes unnamed, never a name without its bytes)."""
        if self.new:
            problems.keep(self.store, self.new)
        if self.changed:
            problems.save_listed(self.store, self.kept())
        gone = [v for v in self.dropped if v not in self.aside or not self.aside[v].kept]
        if gone:
            problems.forget(self.store, gone)
        self.new, self.dropped, self.changed = [], set(), False

    def with_attachments(
        self, checked: list[_Checked], client: SyncClient, report: PullReport
    ) -> list[_Checked]:
        """Download the attachments the checked versions name and this store lacks, each kept
        only if its bytes hash to its id; a version whose attachment cannot be had is set
        aside, and so is whatever builds on it."""
        usable = []
        for item in checked:
            header = item.entry.header
            if any(parent in self.aside and parent not in self.seen for parent in header.parents):
                self._set_aside(item.entry, item.wrap, problems.ON_SET_ASIDE, "")
                continue
            try:
                for attachment in item.body.attachments:
                    report.blobs += self._fetch(client, attachment.blob, attachment.size)
            except NotFound as exc:
                self._set_aside(item.entry, item.wrap, problems.BLOB_MISSING, exc.message)
                continue
            except IntegrityError as exc:
                self._set_aside(item.entry, item.wrap, problems.BLOB_ALTERED, exc.message)
                continue
            usable.append(item)
        return usable

    def _look_up(self, entries: list[Entry]) -> None:
        wanted = list({p for e in entries for p in e.header.parents} | {e.id for e in entries})
        self.held = delivery.held(self.store, wanted)
        self.taken = delivery.held_at(
            self.store, {(e.header.author, e.header.seq) for e in entries}
        )

    def _judge(
        self, entry: Entry, wrap: bytes, report: PullReport, *, again: bool = False
    ) -> _Checked | None:
        """``again``: a version set aside before, retried with the wrap kept."""
        header = entry.header
        where = f"version {entry.id[:12]} of record {header.record}"
        if header.record in self.forgotten:  # wiped here: nothing of it is kept again
            report.skipped += 1
            return None
        if header.author in self.refused:
            if entry.id not in self.aside:
                self._set_aside(entry, wrap, self.refused[header.author], "")
            return None
        if header.author not in self.trusted:
            raise IntegrityError(
                f"the server sent {where}, signed by a key this store does not trust",
                hint=REFUSED_HINT,
            )
        if entry.id in self.held or entry.id in self.seen:  # the same served twice: once
            report.held += 1
            return None
        before = self.aside.get(entry.id)
        if not again and before is not None and before.kept and before.wrap == digest(wrap):
            return None  # served again as it is kept; with another wrap, that one is tried
        place = (header.author, header.seq)
        if (
            place in self.taken
            or place in self.places
            or self.aside_at.get(place, entry.id) != entry.id
        ):
            raise IntegrityError(
                f"the server sent {where} at seq {header.seq} of its author, where this store "
                "holds a different version (a fork)",
                hint=REFUSED_HINT,
            )
        why = self._parents(entry, where)
        body, detail = None, ""
        if why is None:
            body, why, detail = self._open(entry, wrap, where)
        if body is None:
            self._set_aside(entry, wrap, why or problems.BODY, detail)
            return None
        self.seen[entry.id] = header.record
        self.places.add(place)
        return _Checked(entry, wrap, body)

    def _parents(self, entry: Entry, where: str) -> str | None:
        """Why the version cannot be stored for what it builds on; refused when the server
        has not yet served a parent it holds (a feed out of order)."""
        header = entry.header
        for parent in header.parents:
            if parent in self.held:
                record = self.held[parent][0]
            elif parent in self.seen:
                record = self.seen[parent]
            elif parent in self.aside:
                record = self.aside[parent].record
                if record == header.record:
                    return problems.ON_SET_ASIDE
            else:
                raise IntegrityError(
                    f"the server sent {where} before a version it builds on",
                    hint=REFUSED_HINT,
                )
            if record != header.record:
                return problems.OTHER_RECORD
        return None

    def _open(self, entry: Entry, wrap: bytes, where: str) -> tuple[Body | None, str, str]:
        """The version's body, or the reason it cannot be read and the error's words."""
        try:
            key = self.store.reader.unwrap(wrap, what=where)
        except FieldsyncError as exc:
            return None, problems.WRAP, exc.message
        try:
            body = Body.decode(entry.open(key))
        except FieldsyncError as exc:
            return None, problems.BODY, exc.message
        try:
            found = get_form(body.form).problems(body.answers)
        except FormNotFound as exc:
            return None, problems.FORM, exc.message
        if found:
            return None, problems.ANSWERS, "; ".join(found[:3])
        return body, "", ""

    def _set_aside(self, entry: Entry, wrap: bytes, why: str, detail: str) -> None:
        """Keep a version set aside, once: one kept already stays as it is when it fails for
        the same reason, or when only the wrap differs and that does not open (the one kept
        may), and its bytes are kept while its author's are under the cap."""
        header = entry.header
        self.seen.pop(entry.id, None)
        before = self.aside.get(entry.id)
        if before is not None and before.kept and why in (before.why, problems.WRAP):
            return
        item = SetAside(
            entry.id, header.author, header.seq, header.record, why, detail, entry.raw, wrap
        )
        room = problems.KEPT_BYTES - self.kept_bytes.get(header.author, 0)
        if before is not None and before.kept:
            room += before.size
        listed = item.listed(kept=len(entry.raw) + len(wrap) <= room)
        if listed == before:
            return
        if before is not None and before.kept:
            self.kept_bytes[header.author] -= before.size
            self.dropped.add(entry.id)
        if listed.kept:
            self.kept_bytes[header.author] = self.kept_bytes.get(header.author, 0) + listed.size
            self.new.append(item)
        self.aside[entry.id] = listed
        self.aside_at[(header.author, header.seq)] = entry.id
        self.changed = True

    def _forget(self, version: str) -> None:
        item = self.aside.pop(version)
        self.aside_at.pop((item.author, item.seq), None)
        if item.kept:
            self.kept_bytes[item.author] -= item.size
            self.dropped.add(version)
        self.changed = True

    def _fetch(self, client: SyncClient, blob_id: str, size: int) -> int:
        """Download one attachment's blob, no longer than the file its body describes can be:
        a server sending without end would otherwise fill the disk before the hash is known."""
        if blobs.blob_path(self.store, blob_id).is_file():
            return 0
        most = blob.sealed_size(size)

        def fill(write: Callable[[bytes], None]) -> None:
            got = 0

            def bounded(piece: bytes) -> None:
                nonlocal got
                got += len(piece)
                if got > most:
                    raise IntegrityError(
                        f"the server sent more than the {most} bytes attachment blob "
                        f"{blob_id[:12]} can have"
                    )
                write(piece)

            client.blob_content(blob_id, bounded)

        blobs.import_blob(self.store, blob_id, fill)
        return 1
