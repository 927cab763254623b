"""The local store's tables (SQLModel over SQLite in WAL mode).

Nothing here is plaintext content: entries are the signed, encrypted bytes; wraps are sealed
boxes for other readers, and the store's own copies of content keys are under an epoch key; the
record index and drafts are AEAD-encrypted under subkeys of the vault key. What stays readable
is what every entry header already shows the server: record ids, authors, sequence numbers,
parents and clock values.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine, LargeBinary, UniqueConstraint, event
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlmodel import Column, Field, SQLModel, create_engine

from fieldsync.errors import DiskError, DiskFull, FieldsyncError, StoreBusy, StoreCorrupted

# 2 added the receipts table (an administrator's evidence packages); 3 the local wraps (epochs)
SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 10
DB_FILE = "store.db"
IN_CHUNK = 500  # ids in one SQL IN (...), well under SQLite's limit


class EntryRow(SQLModel, table=True):
    __tablename__ = "entries"
    __table_args__ = (UniqueConstraint("author", "seq"),)

    id: str = Field(primary_key=True)  # entry id (hex)
    author: str = Field(index=True)
    seq: int
    record: str = Field(index=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class WrapRow(SQLModel, table=True):
    """A content key sealed for one reader's box key; beside the entry, not inside it."""

    __tablename__ = "wraps"

    entry_id: str = Field(primary_key=True, foreign_key="entries.id")
    reader: str = Field(primary_key=True)  # hex X25519 public key
    wrapped: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LocalWrapRow(SQLModel, table=True):
    """The device's own copy of a content key, under an epoch key (store/epochs.py)."""

    __tablename__ = "local_wraps"

    entry_id: str = Field(primary_key=True, foreign_key="entries.id")
    epoch: int = Field(index=True)
    wrapped: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # nonce || AEAD


class RecordRow(SQLModel, table=True):
    """One row per record: its heads, and an encrypted summary for fast listing."""

    __tablename__ = "records"

    record: str = Field(primary_key=True)
    heads: str  # JSON list of version ids
    created_ms: int = Field(index=True)
    index_nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    index_ct: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class BlobRow(SQLModel, table=True):
    __tablename__ = "blobs"

    id: str = Field(primary_key=True)
    stored_size: int


class DraftRow(SQLModel, table=True):
    """Answers typed so far into an unfinished ``new``, encrypted."""

    __tablename__ = "drafts"

    id: str = Field(primary_key=True)
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ct: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ReceiptRow(SQLModel, table=True):
    """A server receipt an administrator's pull fetched and verified against the pinned key:
    the server's signed word that it held an author's entries up to ``last_seq``."""

    __tablename__ = "receipts"

    batch: str = Field(primary_key=True)
    author: str = Field(index=True)
    last_seq: int
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    verified_ms: int  # when this store checked it (the custody log's "verified")


class MetaRow(SQLModel, table=True):
    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str


def make_engine(path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE itself (the pysqlite recipe), so a
    # writer takes the lock before it reads the chain head it is about to extend.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


STORE_TABLES = [EntryRow, WrapRow, LocalWrapRow, RecordRow, BlobRow, DraftRow, ReceiptRow, MetaRow]


def create_schema(engine: Engine) -> None:
    """Create the store's tables, or the ones an older schema lacks (each schema version so
    far only added tables, so this is also the migration)."""
    # Only the store's tables: SQLModel's metadata is shared with the server's tables.
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in STORE_TABLES])  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")


def schema_version(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)


class _HasHome(Protocol):
    home: Path


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=_HasHome)
T = TypeVar("T")


def db_errors(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Turn SQLite's failures inside a store method into fieldsync's, naming the file."""

    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except DatabaseError as exc:
            raise database_error(self.home / DB_FILE, exc) from exc

    functools.update_wrapper(wrapper, method)
    return wrapper


def database_error(path: Path, exc: DatabaseError) -> FieldsyncError:
    reason = str(exc.orig)
    if isinstance(exc, OperationalError) and ("locked" in reason or "busy" in reason):
        return StoreBusy()
    if "disk is full" in reason:
        return DiskFull(f"there is no space left to write to {path}")
    if "disk i/o error" in reason.lower():  # a failed write (EIO, a file size limit), not damage
        return DiskError(f"the disk failed while reading or writing {path}")
    return StoreCorrupted(f"the store database {path} is damaged or unreadable ({exc.orig})")


def in_chunks(items: list[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``items`` a few at a time, for ``IN (...)`` clauses SQLite can take."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
