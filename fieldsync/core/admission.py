"""What the server does with a batch, given what it holds: the decisions of steps 5 and 6 of
``server/ingest.py`` (docs/protocol.md's order), apart from the queries that feed them.

Step 5, the chain (``judge``), against the device's last accepted seq and head and the ids the
server holds at the batch's seqs:

    Gap(expected, got)  first_seq is past last accepted + 1: refused, the device resends in order
    Fork(seq)           a stored seq holds a different entry: quarantined, the device flagged
    Broken()            the entries not yet stored do not start at last + 1 on the stored head
    Replay()            every entry is stored already (a rebuilt batch): answered for the head
    Accept(fresh)       the positions in the batch of the entries to store; any before them
                        are a replayed overlap, the very entries stored

Step 6, the parents (``parents``), for the fresh entries against the records of the parents
stored: MissingParents(count) or ForeignParent(seq), or None when every parent is a version of
the same record, stored already or earlier in this batch.

tests/vectors/decisions-v1.json pins every case (scripts/make_vectors.py writes it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chain:
    """The device's chain as the server holds it."""

    last_seq: int  # 0: nothing accepted yet
    head: str | None  # id of the entry at last_seq


@dataclass(frozen=True, slots=True)
class Link:
    """One entry of a batch, as far as the chain and its parents go."""

    seq: int
    prev: str | None
    id: str
    record: str
    parents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Gap:
    expected: int  # the seq the server takes next
    got: int  # the batch's first seq


@dataclass(frozen=True, slots=True)
class Fork:
    seq: int  # the first seq at which the batch's entry differs from the stored one


@dataclass(frozen=True, slots=True)
class Broken:
    """The fresh entries do not continue the stored chain."""


@dataclass(frozen=True, slots=True)
class Replay:
    """Every entry of the batch is stored already."""


@dataclass(frozen=True, slots=True)
class Accept:
    fresh: tuple[int, ...]  # positions in the batch of the entries not stored yet, in order


ChainVerdict = Gap | Fork | Broken | Replay | Accept


@dataclass(frozen=True, slots=True)
class MissingParents:
    count: int  # parents neither stored nor earlier in the batch


@dataclass(frozen=True, slots=True)
class ForeignParent:
    seq: int  # the first fresh entry that builds on another record's version


ParentsVerdict = MissingParents | ForeignParent


def gap(chain: Chain, first_seq: int) -> Gap | None:
    """A batch that starts past the next seq: decided before anything is looked up."""
    if first_seq > chain.last_seq + 1:
        return Gap(expected=chain.last_seq + 1, got=first_seq)
    return None


def judge(chain: Chain, links: Sequence[Link], stored: Mapping[int, str]) -> ChainVerdict:
    """The verdict on a batch's entries (``links``, in order, from ``first_seq``) given the ids
    the server holds for this device at the batch's seqs (``stored``: seq -> entry id)."""
    if links and (found := gap(chain, links[0].seq)) is not None:
        return found
    fresh = []
    for position, link in enumerate(links):
        held = stored.get(link.seq)
        if held is None:
            fresh.append(position)
        elif held != link.id:
            return Fork(link.seq)
    if not fresh:
        return Replay()
    first = links[fresh[0]]
    if first.seq != chain.last_seq + 1 or first.prev != chain.head:
        return Broken()
    return Accept(tuple(fresh))


def parents_wanted(links: Sequence[Link], fresh: Sequence[int]) -> set[str]:
    """The parents of the fresh entries that are not in the batch: to be looked up."""
    own = {link.id for link in links}
    return {parent for i in fresh for parent in links[i].parents} - own


def parents(
    links: Sequence[Link], fresh: Sequence[int], stored: Mapping[str, str]
) -> ParentsVerdict | None:
    """Whether the fresh entries may build on their parents: ``stored`` gives the record of
    each wanted parent the server holds. A version built on another record's would be refused
    by every reader."""
    records = {link.id: link.record for link in links}
    wanted = parents_wanted(links, fresh)
    records.update({parent: stored[parent] for parent in wanted if parent in stored})
    missing = wanted - set(records)
    if missing:
        return MissingParents(len(missing))
    for position in fresh:
        link = links[position]
        if any(records[parent] != link.record for parent in link.parents):
            return ForeignParent(link.seq)
    return None
