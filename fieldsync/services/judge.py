"""What a pull does with each version served, in feed order (``services/pull.py`` fetches the
pages and stores what this lets through; ``core/pulled.py`` makes the decisions, this acts on
them): a whole page verified before any of it is stored; a version stored, known already,
skipped, set aside by name to try again (``services/problems.py``), or the page refused for a
sign that the server altered what it serves; attachments fetched, each bounded by the size its
body gives; what was set aside before tried again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, assert_never

from fieldsync.core import blob, crypto, pulled
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.entry import Entry
from fieldsync.core.settings import Listed
from fieldsync.errors import FieldsyncError, FormNotFound, IntegrityError, NotFound
from fieldsync.services import problems
from fieldsync.services.forms import get_form
from fieldsync.services.problems import SetAside, digest
from fieldsync.store import blobs, delivery
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient

RETRIED = 200  # versions set aside before, loaded and checked again at a time

REFUSED_HINT = (
    "Nothing from that page was stored; this store is as it was. The server, or something "
    "between it and you, sent data that is not what its authors signed: tell your administrator."
)


class Tally(Protocol):
    """The counts of a pull's report that judging adds to."""

    held: int  # versions this store had already
    skipped: int  # versions of records wiped here after delivery
    blobs: int  # attachments downloaded


@dataclass(frozen=True)
class Checked:
    """A version verified, opened and fit to store (once its attachments are here)."""

    entry: Entry
    wrap: bytes
    body: Body


SET_ASIDE_BECAUSE = {
    pulled.Reason.ON_SET_ASIDE: problems.ON_SET_ASIDE,
    pulled.Reason.OTHER_RECORD: problems.OTHER_RECORD,
}


def _breach(breach: pulled.Breach, where: str, seq: int) -> str:
    """What the server did, for the refusal of its page."""
    if breach is pulled.Breach.UNTRUSTED:
        return f"the server sent {where}, signed by a key this store does not trust"
    if breach is pulled.Breach.FORK:
        return (
            f"the server sent {where} at seq {seq} of its author, where this store holds a "
            "different version (a fork)"
        )
    return f"the server sent {where} before a version it builds on"


def _parse(raw: bytes, number: int) -> Entry:
    try:
        return entry_format.parse(raw)
    except IntegrityError as exc:
        raise IntegrityError(
            f"version {number} of the server's page does not verify: {exc.message}",
            hint=REFUSED_HINT,
        ) from exc


class Judge:
    """What becomes of each version served, in feed order: stored, known already, skipped,
    set aside (by name, to try again) or, for signs that the server altered what it serves,
    the whole page refused."""

    def __init__(
        self, store: Store, trusted: set[str], aside: list[Listed], refused: dict[str, str]
    ) -> None:
        self.store = store
        self.reader_keys = store.reader_keys()  # once: each is a key to derive, per version
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

    def page(self, items: list[tuple[bytes, bytes]], report: Tally) -> list[Checked]:
        """Verify a whole page before any of it is stored."""
        entries = [_parse(raw, n) for n, (raw, _) in enumerate(items, 1)]
        self._look_up(entries)
        checked = []
        for (_raw, wrap), entry in zip(items, entries, strict=True):
            found = self._judge(entry, wrap, report)
            if found is not None:
                checked.append(found)
        return checked

    def retry(self, report: Tally) -> Iterator[list[Checked]]:
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
                elif pulled.settled(entry.id, entry.header.record, self):
                    self._forget(entry.id)
            yield checked

    def stored(self, usable: list[Checked]) -> None:
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
        self, checked: list[Checked], client: SyncClient, report: Tally
    ) -> list[Checked]:
        """Download the attachments the checked versions name and this store lacks, each kept
        only if its bytes hash to its id; a version whose attachment cannot be had is set
        aside, and so is whatever builds on it."""
        usable = []
        for item in checked:
            header = item.entry.header
            if pulled.waits_on_set_aside(header.parents, self):
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
        self, entry: Entry, wrap: bytes, report: Tally, *, again: bool = False
    ) -> Checked | None:
        """``again``: a version set aside before, retried with the wrap kept
        (``core/pulled.py`` decides; this acts on its verdict)."""
        header = entry.header
        where = f"version {entry.id[:12]} of record {header.record}"
        served = pulled.Served(
            entry.id, header.author, header.seq, header.record, header.parents, digest(wrap)
        )
        match pulled.judge(served, self, again=again):
            case pulled.Skip():
                report.skipped += 1
                return None
            case pulled.Held():
                report.held += 1
                return None
            case pulled.Unchanged():
                return None
            case pulled.Refuse(why=breach):
                raise IntegrityError(_breach(breach, where, header.seq), hint=REFUSED_HINT)
            case pulled.SetAside(why=reason):
                self._set_aside(entry, wrap, self._reason(reason, header.author), "")
                return None
            case pulled.Open():
                pass  # nothing known against it: opened below
            case unknown:
                assert_never(unknown)
        body, why, detail = self._open(entry, wrap, where)
        if body is None:
            self._set_aside(entry, wrap, why or problems.BODY, detail)
            return None
        self.seen[entry.id] = header.record
        self.places.add((header.author, header.seq))
        return Checked(entry, wrap, body)

    def _reason(self, reason: pulled.Reason, author: str) -> str:
        """A verdict's reason in the words the list names it by."""
        if reason is pulled.Reason.REFUSED_AUTHOR:
            return self.refused[author]
        return SET_ASIDE_BECAUSE[reason]

    def _open(self, entry: Entry, wrap: bytes, where: str) -> tuple[Body | None, str, str]:
        """The version's body, or the reason it cannot be read and the error's words."""
        try:
            _, key = crypto.unwrap_any(self.reader_keys, wrap, what=where)
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
