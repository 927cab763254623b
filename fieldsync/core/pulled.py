"""What a pull does with each version the server serves, given what the store and the pull know
of it: the decisions a pull acts on (``services/judge.py``), apart from the reads, the
decryption and the writes (docs/conflicts.md; ``services/problems.py`` names what is set aside).

``judge``, in this order, for a version that verified:

    Skip()            its record was wiped here after delivery: nothing of it is kept again
    SetAside(REFUSED_AUTHOR)  its author is a device this store refuses (another device
                      used its invite's token); Unchanged() if it is set aside already
    Refuse(UNTRUSTED) signed by a key this store does not trust: the whole page is refused
    Held()            held here, or earlier in this pull: counted once
    Unchanged()       set aside before, with its bytes, and served again with the same wrap
                      (with another wrap, that one is tried; ``again``: retried as kept)
    Refuse(FORK)      another version is held, seen or set aside at its author's seq
    then its parents (``parents``), each held, seen in this pull or set aside:
    SetAside(ON_SET_ASIDE)  a parent of the same record is set aside
    SetAside(OTHER_RECORD)  a parent is another record's version
    Refuse(OUT_OF_ORDER)    a parent the server has not served yet (a feed out of order)
    Open()            nothing known against it: open its wrap and body, check its answers

``waits_on_set_aside`` is the check before a checked version's attachments are fetched (a
parent set aside meanwhile); ``settled`` says when a version set aside need not be tried again.
tests/vectors/decisions-v1.json pins every case (scripts/make_vectors.py writes it).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol


class Reason(enum.Enum):
    """Why a version is set aside, as far as this module decides (the words are
    ``services/problems.py``'s; a refused author's, the registry check's)."""

    REFUSED_AUTHOR = "refused author"
    ON_SET_ASIDE = "on set aside"
    OTHER_RECORD = "other record"


class Breach(enum.Enum):
    """A sign that the server altered what it serves: the whole page is refused."""

    UNTRUSTED = "untrusted"
    FORK = "fork"
    OUT_OF_ORDER = "out of order"


@dataclass(frozen=True, slots=True)
class Skip:
    """Its record was wiped here after delivery."""


@dataclass(frozen=True, slots=True)
class Held:
    """Held here already, or earlier in this pull."""


@dataclass(frozen=True, slots=True)
class Unchanged:
    """Set aside already, as it is served now: nothing to do."""


@dataclass(frozen=True, slots=True)
class SetAside:
    why: Reason


@dataclass(frozen=True, slots=True)
class Refuse:
    why: Breach


@dataclass(frozen=True, slots=True)
class Open:
    """Nothing known against it: read it."""


Verdict = Skip | Held | Unchanged | SetAside | Refuse | Open


@dataclass(frozen=True, slots=True)
class Served:
    """A version as served, as far as the decisions go (its signature verified)."""

    id: str
    author: str
    seq: int
    record: str
    parents: tuple[str, ...]
    wrap: str  # digest of the wrap served with it (``services/problems.py``'s ``digest``)


class Aside(Protocol):
    """A version set aside, as the list names it."""

    @property
    def record(self) -> str: ...

    @property
    def kept(self) -> bool: ...  # its bytes are kept (under the author's cap)

    @property
    def wrap(self) -> str: ...  # digest of the wrap it was judged with


class Known(Protocol):
    """What the store holds and the pull has seen, when a version is judged."""

    @property
    def trusted(self) -> Collection[str]: ...  # authors whose versions this store accepts

    @property
    def refused(self) -> Mapping[str, str]: ...  # author -> why (a device the server made up)

    @property
    def forgotten(self) -> Collection[str]: ...  # records wiped here after delivery

    @property
    def held(self) -> Mapping[str, tuple[str, str, int]]: ...  # id -> (record, author, seq)

    @property
    def taken(self) -> Collection[tuple[str, int]]: ...  # (author, seq) held here

    @property
    def seen(self) -> Mapping[str, str]: ...  # id -> record, checked in this pull

    @property
    def places(self) -> Collection[tuple[str, int]]: ...  # (author, seq) checked in this pull

    @property
    def aside(self) -> Mapping[str, Aside]: ...  # id -> the version set aside

    @property
    def aside_at(self) -> Mapping[tuple[str, int], str]: ...  # (author, seq) -> id set aside


def judge(version: Served, known: Known, *, again: bool = False) -> Verdict:
    """What becomes of ``version``; ``again``: a version set aside before, retried with the
    wrap kept."""
    if version.record in known.forgotten:
        return Skip()
    if version.author in known.refused:
        return Unchanged() if version.id in known.aside else SetAside(Reason.REFUSED_AUTHOR)
    if version.author not in known.trusted:
        return Refuse(Breach.UNTRUSTED)
    if version.id in known.held or version.id in known.seen:  # the same served twice: once
        return Held()
    before = known.aside.get(version.id)
    if not again and before is not None and before.kept and before.wrap == version.wrap:
        return Unchanged()  # served again as it is kept; with another wrap, that one is tried
    place = (version.author, version.seq)
    if (
        place in known.taken
        or place in known.places
        or known.aside_at.get(place, version.id) != version.id
    ):
        return Refuse(Breach.FORK)
    return parents(version, known) or Open()


def parents(version: Served, known: Known) -> SetAside | Refuse | None:
    """Why the version cannot be stored for what it builds on, parent by parent; a refusal
    when the server has not yet served a parent (a feed out of order)."""
    for parent in version.parents:
        if parent in known.held:
            record = known.held[parent][0]
        elif parent in known.seen:
            record = known.seen[parent]
        elif parent in known.aside:
            record = known.aside[parent].record
            if record == version.record:
                return SetAside(Reason.ON_SET_ASIDE)
        else:
            return Refuse(Breach.OUT_OF_ORDER)
        if record != version.record:
            return SetAside(Reason.OTHER_RECORD)
    return None


def waits_on_set_aside(parents: Collection[str], known: Known) -> bool:
    """A checked version whose parent was set aside after it was checked (its attachment could
    not be had): it is set aside too, before its own attachments are fetched."""
    return any(parent in known.aside and parent not in known.seen for parent in parents)


def settled(version: str, record: str, known: Known) -> bool:
    """A version set aside that no longer needs trying, when a retry did not check it: it is
    held here now, or its record was wiped."""
    return version in known.held or record in known.forgotten
