"""One stored version of a record, as the store hands it out: verified, and opened if it can be."""

from __future__ import annotations

from dataclasses import dataclass

from fieldsync.core import clock
from fieldsync.core.body import Body
from fieldsync.core.entry import Entry, Header
from fieldsync.store.db import EntryRow


@dataclass(frozen=True)
class Version:
    """One stored version: its verified entry and, if it could be opened, its body."""

    entry: Entry
    body: Body | None
    problem: str | None = None

    @property
    def id(self) -> str:
        return self.entry.id


def heads_of(versions: list[Version]) -> set[str]:
    """The versions of a record that no other version builds on."""
    return {v.id for v in versions} - {p for v in versions for p in v.entry.header.parents}


def damaged_entry(row: EntryRow) -> Entry:
    """A stand-in for an entry whose bytes no longer verify, so it can still be listed."""
    header = Header(
        author=row.author,
        seq=row.seq,
        prev=None,
        record=row.record,
        parents=(),
        hlc=clock.ZERO,
        nonce="",
        commit="",
    )
    return Entry(raw=b"", id=row.id, header=header, ciphertext=b"", associated=b"")
