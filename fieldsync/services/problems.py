"""What a pull found wrong that only a reader can see, kept by name (docs/protocol.md, "Named
problems").

A version set aside verified (its author signed it; the server served it as signed) but cannot
be used here: its wrap does not open, its body is not one this fieldsync can read, it builds on
another record's version, an attachment it names cannot be fetched. It is kept, exactly as
served (the signed bytes and the wrap), in encrypted settings (``problems`` lists the parts,
``problems:N`` hold the versions), and every later pull tries it again: a fixed reader, or an
attachment uploaded after all, brings it in. What was stored before and after it is not held
back.

A version withheld is one the server's feed skipped: an author's later versions, or a receipt
the server signed, show it exists, and this store has not got it. It is worked out again at the
end of every administrator's pull from what the store holds, so it clears once the server
serves it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from fieldsync.core.ids import fingerprint
from fieldsync.store.store import Store

SETTING = "problems"

WRAP = "the key wrap does not open"
BODY = "the body does not open to a record's body"
FORM = "its form is one this fieldsync does not know"
ANSWERS = "its answers do not fit its form"
OTHER_RECORD = "it builds on another record's version"
ON_SET_ASIDE = "it builds on a version set aside"
BLOB_MISSING = "an attachment it names is not on the server"
BLOB_ALTERED = "the server's copy of an attachment it names does not match its hash"
WITHHELD = "the server's feed skips them (later versions or its receipts show they exist)"


@dataclass(frozen=True)
class SetAside:
    """A verified version this store could not use, kept as served to try again."""

    id: str
    author: str
    seq: int
    record: str
    why: str  # one of the reasons above
    detail: str  # the error's own words
    raw: bytes  # the entry exactly as signed
    wrap: bytes  # its content key as served for this store's reader key

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "author": self.author,
            "seq": self.seq,
            "record": self.record,
            "why": self.why,
            "detail": self.detail,
            "raw": base64.b64encode(self.raw).decode("ascii"),
            "wrap": base64.b64encode(self.wrap).decode("ascii"),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SetAside:
        return cls(
            id=str(value["id"]),
            author=str(value["author"]),
            seq=int(value["seq"]),
            record=str(value["record"]),
            why=str(value["why"]),
            detail=str(value["detail"]),
            raw=base64.b64decode(value["raw"]),
            wrap=base64.b64decode(value["wrap"]),
        )


Span = tuple[int, int]  # first and last seq, both included
LISTED = 1000  # seqs listed one by one in --json; beyond that, the spans alone


@dataclass(frozen=True)
class Problem:
    """Versions of one author that this store lacks for one reason, in words a person reads."""

    author: str
    who: str  # "device 'laptop 7' (fingerprint …)", "the administrator"
    why: str
    spans: tuple[Span, ...]
    withheld: bool = False

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
        return f"{versions} from {self.who} cannot be read: {self.why} ({where})"

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.author,
            "who": self.who,
            "kind": "withheld" if self.withheld else "set aside",
            "why": self.why,
            "count": self.count,
            "spans": [list(span) for span in self.spans],
            "seqs": self.seqs if self.count <= LISTED else None,
            "message": self.message,
        }


def set_aside(store: Store) -> list[SetAside]:
    """The versions set aside, in the order they were served."""
    found: dict[str, SetAside] = {}
    for part in _index(store).get("parts", []):
        for value in (store.setting(_part(part)) or {}).get("set_aside", []):
            item = SetAside.from_json(value)
            found.setdefault(item.id, item)  # a rewrite a crash cut short repeats some
    return list(found.values())


def withheld(store: Store) -> dict[str, list[Span]]:
    found = _index(store).get("withheld", {}).items()
    return {str(author): [(int(a), int(b)) for a, b in kept] for author, kept in found}


def add(store: Store, new: list[SetAside]) -> None:
    """Keep more versions set aside, in a part of their own: each is written once, however
    many pages a pull sets versions aside on."""
    index = _index(store)
    parts = [int(n) for n in index.get("parts", [])]
    part = max(parts, default=0) + 1
    store.save_setting(_part(part), {"set_aside": [item.to_json() for item in new]})
    store.save_setting(SETTING, index | {"parts": [*parts, part]})


def replace(store: Store, aside: list[SetAside]) -> None:
    """Keep exactly these versions set aside (after some were stored, or failed anew)."""
    index = _index(store)
    store.save_setting(_part(1), {"set_aside": [item.to_json() for item in aside]})
    store.save_setting(SETTING, index | {"parts": [1] if aside else []})
    for part in index.get("parts", []):
        if int(part) != 1:
            store.save_setting(_part(int(part)), {})


def save_withheld(store: Store, held_back: dict[str, list[Span]]) -> None:
    shown = {author: [list(span) for span in kept] for author, kept in held_back.items()}
    store.save_setting(SETTING, _index(store) | {"withheld": shown})


def _index(store: Store) -> dict[str, Any]:
    return store.setting(SETTING) or {}


def _part(number: int) -> str:
    return f"{SETTING}:{number}"


def named(store: Store) -> list[Problem]:
    """Every problem a pull left, grouped by author and reason, in the order first found."""
    grouped: dict[tuple[str, str], list[int]] = {}
    for item in set_aside(store):
        grouped.setdefault((item.author, item.why), []).append(item.seq)
    found = [Problem(a, who(store, a), why, spans(s)) for (a, why), s in grouped.items()]
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
    admin_key = store.identity.device_id if store.identity.is_admin else None
    joined = store.setting("enrolment") or {}
    if author in (admin_key, joined.get("admin_key")):
        return "the administrator (analysts' versions)"
    if author == store.identity.device_id:
        return "this device"
    device = ((store.setting("registry") or {}).get("devices") or {}).get(author)
    if device:
        shown = fingerprint(bytes.fromhex(author), bytes.fromhex(str(device["box_key"])))
        return f"device {device['name']!r} ({shown})"
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
    """The spans less the given seqs (few: those set aside)."""
    left: list[Span] = []
    for first, last in gaps:
        start = first
        for seq in sorted(s for s in seqs if first <= s <= last):
            if seq > start:
                left.append((start, seq - 1))
            start = seq + 1
        if start <= last:
            left.append((start, last))
    return left
