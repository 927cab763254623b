"""What a pull found wrong that only a reader can see, kept by name (docs/protocol.md, "Named
problems").

A version set aside verified (its author signed it; the server served it as signed) but cannot
be used here: the wrap served with it does not open, its body is not one this fieldsync can
read, it builds on another record's version, an attachment it names cannot be fetched. It is
kept as served, each version in a setting of its record (``aside:<id>``: its signed bytes and
wrap; ``keyvalue.save_record_settings``), written once, and every later pull tries it again: a
fixed reader, an attachment uploaded after all, or the right wrap served again brings it in.
The list of what is set aside (the setting ``aside``, core/settings.py: each version's id,
author, seq and reason, no bytes) is all that ``status`` and ``admin devices`` read. Past
``KEPT_BYTES`` from one author, versions are still named but their bytes are not kept: the
server holds them, and a pull from the start fetches them again. What was stored before and
after them is not held back.

A record's settings are under the epoch key, not the vault key: on a device the wrap kept opens
with the device's own box key, so a copy left in a freed page or an old WAL frame would open,
with the passphrase, what the wipe of the record destroyed. Under the epoch key, every copy goes
with the wipe (which deletes them in its transaction) and with each ``passwd``. A store written
before kept them as vault-key settings; ``load`` moves those it is asked for, once.

A version withheld is one the server's feed skipped: an author's later versions, or a receipt
the server signed, show it exists, and this store has not got it. It is worked out again at the
end of every administrator's pull from what the store holds, so it clears once the server
serves it.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from fieldsync.core.ids import fingerprint
from fieldsync.core.settings import Aside, Listed, Problems, Registry, Span
from fieldsync.store import keyvalue, orgkeys, settings
from fieldsync.store.store import Store

ASIDE = "aside:"
KEPT_BYTES = 256 * 2**20  # of versions set aside, per author: a device cannot fill the store

WRAP = "the key wrap served with it does not open (the device or the server may be at fault)"
BODY = (
    "the body does not open to a record's body with the key wrap served "
    "(the device or the server may be at fault)"
)
FORM = "its form is one this fieldsync does not know"
ANSWERS = "its answers do not fit its form"
OTHER_RECORD = "it builds on another record's version"
ON_SET_ASIDE = "it builds on a version set aside"
BLOB_MISSING = "an attachment it names is not on the server"
BLOB_ALTERED = "the server's copy of an attachment it names does not match its hash"
WITHHELD = "the server's feed skips them (later versions or its receipts show they exist)"


def digest(wrap: bytes) -> str:
    """A wrap as the list names it: the server chooses wraps, so the list keeps no copy."""
    return hashlib.blake2b(wrap, digest_size=16).hexdigest()


@dataclass(frozen=True)
class SetAside:
    """A verified version this store could not use, kept as served to try again."""

    id: str
    author: str
    seq: int
    record: str
    why: str
    detail: str  # the error's own words
    raw: bytes  # the entry exactly as signed
    wrap: bytes  # its content key as served for this store's reader key

    def listed(self, kept: bool) -> Listed:
        size = len(self.raw) + len(self.wrap)
        return Listed(
            self.id, self.author, self.seq, self.record, self.why, digest(self.wrap), size, kept
        )


LISTED = 1000  # seqs listed one by one in --json; beyond that, the spans alone


@dataclass(frozen=True)
class Problem:
    """Versions of one author that this store lacks for one reason, in words a person reads."""

    author: str
    who: str  # "device 'laptop 7' (fingerprint …)", "the administrator"
    why: str
    spans: tuple[Span, ...]
    withheld: bool = False
    unkept: tuple[Span, ...] = ()  # set aside past KEPT_BYTES: named, their bytes not kept

    @property
    def count(self) -> int:
        return sum(last - first + 1 for first, last in self.spans)

    @property
    def seqs(self) -> list[int]:
        return [seq for first, last in self.spans for seq in range(first, last + 1)]

    @property
    def message(self) -> str:
        versions = f"{self.count} version{'s' if self.count != 1 else ''}"
        where = "seq " + ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in self.spans)
        if self.withheld:
            return f"the server withholds {versions} from {self.who} ({where}): {self.why}"
        said = f"{versions} from {self.who} cannot be read: {self.why} ({where})"
        if not self.unkept:
            return said
        unkept = sum(last - first + 1 for first, last in self.unkept)
        return (
            f"{said}; the bytes of {unkept} of them are not kept here (more than "
            f"{KEPT_BYTES // 2**20} MiB set aside from one author): the server still holds "
            "them, and a pull with --from-start fetches them again"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.author,
            "who": self.who,
            "kind": "withheld" if self.withheld else "set aside",
            "why": self.why,
            "count": self.count,
            "spans": [list(span) for span in self.spans],
            "seqs": self.seqs if self.count <= LISTED else None,
            "not_kept": sum(last - first + 1 for first, last in self.unkept),
            "message": self.message,
        }


def listed(store: Store) -> list[Listed]:
    """The versions set aside, in the order they were served; no bytes are read."""
    return list((settings.load(store, Aside) or Aside()).versions)


def load(store: Store, items: list[Listed]) -> list[SetAside]:
    """The kept bytes of these versions (none for those past the cap), in their order."""
    names = {ASIDE + item.id: item.record for item in items if item.kept}
    keyvalue.move_to_record_settings(store, names)  # an earlier fieldsync's, to the epoch key
    found = keyvalue.record_settings(store, list(names))
    loaded = []
    for item in items:
        value = found.get(ASIDE + item.id)
        if value is not None:
            raw, wrap = base64.b64decode(value["raw"]), base64.b64decode(value["wrap"])
            why, detail = item.why, str(value["detail"])
            loaded.append(
                SetAside(item.id, item.author, item.seq, item.record, why, detail, raw, wrap)
            )
    return loaded


def set_aside(store: Store) -> list[SetAside]:
    """The versions set aside whose bytes are kept, in the order they were served."""
    return load(store, listed(store))


def keep(store: Store, items: list[SetAside]) -> None:
    """Each version's bytes in a setting of its record, all in one transaction."""
    values = {}
    for item in items:
        kept = {
            "detail": item.detail,
            "raw": base64.b64encode(item.raw).decode("ascii"),
            "wrap": base64.b64encode(item.wrap).decode("ascii"),
        }
        values[ASIDE + item.id] = (item.record, kept)
    keyvalue.save_record_settings(store, values)


def forget(store: Store, versions: list[str]) -> None:
    names = [ASIDE + version for version in versions]
    keyvalue.delete_record_settings(store, names)
    keyvalue.delete_settings(store, names)  # the form before, if never moved


def forget_records(store: Store, records: set[str]) -> int:
    """Drop what is set aside of records this device wiped: a set-aside version keeps its wrap,
    and on a device that opens with the device's own key, so keeping it would keep what the
    wipe destroyed. The wipe deleted their bytes already (``delivery.forget_delivered``); this
    drops them from the list, and the bytes of any kept in the form before. Returns how many
    versions were dropped."""
    items = listed(store)
    gone = [item for item in items if item.record in records]
    if gone:
        forget(store, [item.id for item in gone])
        save_listed(store, [item for item in items if item.record not in records])
    return len(gone)


def save_listed(store: Store, versions: list[Listed]) -> None:
    settings.save(store, Aside(tuple(versions)))


def withheld(store: Store) -> dict[str, list[Span]]:
    found = (settings.load(store, Problems) or Problems()).withheld
    return {author: list(kept) for author, kept in found.items()}


def save_withheld(store: Store, held_back: dict[str, list[Span]]) -> None:
    before = settings.load(store, Problems) or Problems()
    shown = {author: tuple(kept) for author, kept in held_back.items()}
    settings.save(store, dataclasses.replace(before, withheld=shown))


def named(store: Store) -> list[Problem]:
    """Every problem a pull left, grouped by author and reason, in the order first found."""
    grouped: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for item in listed(store):
        every, unkept = grouped.setdefault((item.author, item.why), ([], []))
        every.append(item.seq)
        if not item.kept:
            unkept.append(item.seq)
    found = [
        Problem(a, who(store, a), why, spans(every), unkept=spans(unkept))
        for (a, why), (every, unkept) in grouped.items()
    ]
    for author, kept in withheld(store).items():
        found.append(Problem(author, who(store, author), WITHHELD, tuple(kept), withheld=True))
    return found


def by_author(found: list[Problem]) -> dict[str, list[Problem]]:
    grouped: dict[str, list[Problem]] = {}
    for problem in found:
        grouped.setdefault(problem.author, []).append(problem)
    return grouped


def who(store: Store, author: str) -> str:
    """An author as a person knows it: a device's name and fingerprint, or its role."""
    if author in orgkeys.admin_keys_trusted(store):
        return "the administrator (analysts' versions)"
    state = orgkeys.followed(store)
    member = state.member(author) if state is not None else None
    if member is not None:
        return f"analyst {member.name!r} ({author[:12]})"
    if author == store.identity.device_id:
        return "this device"
    device = (settings.load(store, Registry) or Registry()).devices.get(author)
    if device:
        shown = fingerprint(bytes.fromhex(author), bytes.fromhex(device.box_key))
        return f"device {device.name!r} ({shown})"
    return f"the key {author[:16]}…"


def spans(seqs: list[int]) -> tuple[Span, ...]:
    """Consecutive seqs as one span: [3, 4, 5, 9] is (3, 5), (9, 9)."""
    found: list[Span] = []
    for seq in sorted(set(seqs)):
        if found and seq == found[-1][1] + 1:
            found[-1] = (found[-1][0], seq)
        else:
            found.append((seq, seq))
    return tuple(found)


def without(gaps: list[Span], seqs: set[int]) -> list[Span]:
    """The spans less the given seqs (sorted once, each gap's found by bisection)."""
    ordered = sorted(seqs)
    left: list[Span] = []
    for first, last in gaps:
        start = first
        at = bisect.bisect_left(ordered, first)
        while at < len(ordered) and ordered[at] <= last:
            if ordered[at] > start:
                left.append((start, ordered[at] - 1))
            start = ordered[at] + 1
            at += 1
        if start <= last:
            left.append((start, last))
    return left
