"""``check``: re-verify a whole store without trusting any of its bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlmodel import Session, col, select

from fieldsync.core import blob
from fieldsync.store import blobs
from fieldsync.store.db import BlobRow, EntryRow, LocalWrapRow, RecordRow, db_errors
from fieldsync.store.identity import Identity
from fieldsync.store.index import IndexCodec
from fieldsync.store.version import Version


class CheckedStore(Protocol):
    """What ``check`` reads of a store (a ``Store``): a protocol, so that this module and
    store.py do not import each other."""

    home: Path
    identity: Identity

    @property
    def index_codec(self) -> IndexCodec: ...

    def session(self) -> Session: ...

    def own_wraps(
        self, session: Session, ids: list[str] | None = None
    ) -> dict[str, LocalWrapRow]: ...

    def open_version(self, row: EntryRow, wrapped: LocalWrapRow | None) -> Version: ...

    def forgotten_records(self) -> set[str]: ...


@dataclass
class CheckReport:
    entries: int = 0
    records: int = 0
    blobs: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@db_errors
def check(store: CheckedStore) -> CheckReport:
    """Database pages, every signature and key, each author's chain, the index, the blobs."""
    report = CheckReport()
    with store.session() as session:
        verdict = session.connection().exec_driver_sql("PRAGMA integrity_check").scalars()
        report.problems += [f"database: {line}" for line in verdict if line != "ok"]
        rows = session.exec(
            select(EntryRow).order_by(col(EntryRow.author), col(EntryRow.seq))
        ).all()
        records = session.exec(select(RecordRow)).all()
        report.blobs = len(session.exec(select(BlobRow.id)).all())
        wraps = store.own_wraps(session)
    report.entries, report.records = len(rows), len(records)
    forgotten = store.forgotten_records()  # delivered, then made unreadable on purpose
    referenced_blobs: set[str] = set()
    previous: dict[str, tuple[int, str]] = {}
    held: dict[str, set[str]] = {}  # each record's versions, and below, the ones built on
    built_on: dict[str, set[str]] = {}
    me = store.identity.device_id
    for row in rows:
        version = store.open_version(row, wraps.get(row.id))
        if version.problem and not version.entry.raw:  # the bytes themselves are damaged
            report.problems.append(version.problem)
            continue
        header = version.entry.header
        last_seq, last_id = previous.get(header.author, (0, ""))
        # Only this store's own log must be whole here: of another author's log (an analyst's,
        # a device's) a store holds just the versions of records it may read.
        if header.author == me:
            report.problems += _chain_problems(row.id, header.seq, header.prev, last_seq, last_id)
        previous[header.author] = (header.seq, row.id)
        held.setdefault(row.record, set()).add(row.id)
        built_on.setdefault(row.record, set()).update(header.parents)
        if version.problem and not (row.record in forgotten and row.id not in wraps):
            report.problems.append(version.problem)
        elif version.body is not None:
            referenced_blobs.update(a.blob for a in version.body.attachments)
    heads = {record: ids - built_on[record] for record, ids in held.items()}
    for missing in sorted(set(heads) - {r.record for r in records} - forgotten):
        report.problems.append(f"index: record {missing} is missing from the index")
    for record_row in records:
        opened = store.index_codec.open(
            record_row.record, record_row.heads, record_row.index_nonce, record_row.index_ct
        )
        if opened.problem:
            report.problems.append(opened.problem)
        if set(opened.heads) != heads.get(record_row.record, set()):
            report.problems.append(f"index: the heads of record {record_row.record} disagree")
    for blob_id in sorted(referenced_blobs):
        path = blobs.blob_path(store, blob_id)
        if not path.is_file():
            report.problems.append(f"blob {blob_id[:12]} is missing")
            continue
        with open(path, "rb") as handle:
            if blob.blob_id_of(handle) != blob_id:
                report.problems.append(f"blob {blob_id[:12]} does not match its hash")
    return report


def _chain_problems(
    entry_id: str, seq: int, prev: str | None, last_seq: int, last_id: str
) -> list[str]:
    """What is wrong where this device's own version ``seq`` follows ``last_seq``."""
    if seq > last_seq + 1:  # rows deleted from the log: name what is gone
        gone = f"{last_seq + 1}" if seq == last_seq + 2 else f"{last_seq + 1}..{seq - 1}"
        return [
            f"chain: seq {gone} of this device is missing (version {entry_id[:12]} at seq {seq} "
            f"follows seq {last_seq})"
        ]
    if seq != last_seq + 1 or (prev or "") != last_id:
        return [
            f"chain: version {entry_id[:12]} (seq {seq}) does not follow seq {last_seq} of its "
            "author"
        ]
    return []
