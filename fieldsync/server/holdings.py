"""Everything a server holds, read as stored, for ``fieldsync admin verify``.

This reads the database and the blob folder without going through the server process and
without writing anything, and passes the bytes on unjudged: the checking is
``fieldsync.core.audit``'s, against keys the administrator holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from fieldsync.core import blob
from fieldsync.core.audit import (
    HeldBlob,
    HeldDevice,
    HeldFeedRow,
    HeldQuarantine,
    HeldReceipt,
    HeldVersion,
)
from fieldsync.errors import NotFound, StoreNotFound
from fieldsync.server import schema
from fieldsync.server.blobs import final_path
from fieldsync.server.data import DB_FILE, ServerData
from fieldsync.server.tables import (
    AcceptedBatch,
    DeviceRow,
    FeedRow,
    Quarantined,
    StoredBlob,
    StoredEntry,
)

BATCH_ROWS = 500  # rows fetched at a time: memory stays flat however much the server holds


class ServerHoldings:
    def __init__(
        self,
        server: ServerData,
        database_url: str | None = None,
        blob_folder: Path | None = None,
    ) -> None:
        if database_url is None and not (server.folder / DB_FILE).exists():
            raise StoreNotFound(f"the server in {server.folder} has no database yet")
        self.engine: Engine = schema.current_engine(
            database_url or server.database_url(), server.migrate_command(database_url)
        )
        self.blob_folder: Path = blob_folder or server.blob_folder
        self.admin_key = server.org.admin_key
        self.server_key = server.receipt_key.public.hex()

    def devices(self) -> Iterator[HeldDevice]:
        with Session(self.engine) as session:
            for row in session.exec(select(DeviceRow).order_by(col(DeviceRow.key))):
                yield HeldDevice(
                    row.key,
                    row.box_key,
                    row.name,
                    row.status,
                    row.enrolment,
                    row.last_seq,
                    row.head,
                )

    def versions(self) -> Iterator[HeldVersion]:
        with Session(self.engine) as session:
            rows = session.exec(select(StoredEntry).execution_options(yield_per=BATCH_ROWS))
            for row in rows:
                yield HeldVersion(row.id, row.author, row.seq, row.record, row.raw, row.org_wrap)
                session.expunge(row)

    def feed(self) -> Iterator[HeldFeedRow]:
        with Session(self.engine) as session:
            query = select(FeedRow.pos, FeedRow.entry).order_by(col(FeedRow.pos))
            for pos, entry in session.exec(query.execution_options(yield_per=BATCH_ROWS)):
                yield HeldFeedRow(int(pos or 0), entry)

    def receipts(self) -> Iterator[HeldReceipt]:
        with Session(self.engine) as session:
            for row in session.exec(select(AcceptedBatch).execution_options(yield_per=BATCH_ROWS)):
                yield HeldReceipt(row.id, row.author, row.receipt)

    def quarantined(self) -> Iterator[HeldQuarantine]:
        with Session(self.engine) as session:
            for row in session.exec(select(Quarantined.author, Quarantined.reason)):
                yield HeldQuarantine(*row)

    def blobs(self) -> Iterator[HeldBlob]:
        with Session(self.engine) as session:
            rows = list(session.exec(select(StoredBlob).where(col(StoredBlob.complete))))
        for row in rows:
            path = final_path(self.blob_folder, row.id)
            try:
                with open(path, "rb") as handle:
                    actual = blob.blob_id_of(handle)
                    size = handle.tell()
            except (FileNotFoundError, NotFound):  # gone, or an id that names no file
                yield HeldBlob(row.id, row.size, None, 0)
                continue
            yield HeldBlob(row.id, row.size, actual, size)

    def close(self) -> None:
        self.engine.dispose()
