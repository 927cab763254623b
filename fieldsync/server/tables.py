"""The server's tables (SQLModel; SQLite by default, PostgreSQL by URL).

They are created and changed only by the migrations in ``fieldsync/server/migrations`` (run by
``fieldsync.server.schema``); a test checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, LargeBinary, MetaData, UniqueConstraint
from sqlmodel import Column, Field, SQLModel


class DeviceRow(SQLModel, table=True):
    """The device registry."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("box_key", name="uq_devices_box_key"),)

    key: str = Field(primary_key=True)  # hex Ed25519: the device's identity
    box_key: str  # hex X25519, canonical: one device per box key (migration 0004)
    name: str  # as the administrator named it in the invite
    enrolled_ms: int = Field(sa_type=BigInteger)  # Unix ms: past 32 bits on PostgreSQL
    status: str = "active"  # active | revoked | admin (the analysts' own log, no enrolment)
    role: str = "device"  # device | analyst | viewer, as the invite it enrolled with says
    revoked_ms: int | None = Field(default=None, sa_type=BigInteger)
    last_seen_ms: int | None = Field(default=None, sa_type=BigInteger)
    last_seq: int = 0  # every entry of this device up to here is stored
    head: str | None = None  # id of the entry at last_seq
    entries: int = 0
    alert: str | None = None  # set when something needs a person (a fork)
    # the enrolment request exactly as received: the admin-signed invite and the device's
    # proof, so 'admin verify' can show that the admin let this key in
    enrolment: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class InviteUseRow(SQLModel, table=True):
    """Invite tokens that have enrolled a device (by hash: a token is a bearer secret)."""

    __tablename__ = "invite_uses"

    token_hash: str = Field(primary_key=True)
    device: str = Field(foreign_key="devices.key")
    used_ms: int = Field(sa_type=BigInteger)


class StoredEntry(SQLModel, table=True):
    """Entries exactly as signed: the server never rewrites or deletes one."""

    __tablename__ = "stored_entries"
    __table_args__ = (UniqueConstraint("author", "seq"),)

    id: str = Field(primary_key=True)
    author: str = Field(index=True)
    seq: int
    record: str = Field(index=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    org_wrap: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    batch: str = Field(index=True)
    received_ms: int = Field(sa_type=BigInteger)


class FeedRow(SQLModel, table=True):
    """The order entries were stored in: the cursor of every pull.

    The database numbers the rows as they are inserted, inside each batch's transaction. A
    position once handed out must never be filled in later, or a pull that read past it would
    miss it: SQLite has one writer at a time, and on PostgreSQL ingest takes a lock that orders
    the transactions writing here (``ingest.FEED_LOCK``), so positions commit in order.
    """

    __tablename__ = "feed"

    pos: int | None = Field(default=None, primary_key=True)
    entry: str = Field(unique=True, foreign_key="stored_entries.id")


class ReaderWrap(SQLModel, table=True):
    """A content key sealed for one more reader than the organisation: the device that recorded
    a record, for an analyst's version of it."""

    __tablename__ = "reader_wraps"

    entry: str = Field(primary_key=True, foreign_key="stored_entries.id")
    reader: str = Field(primary_key=True, index=True)  # hex X25519 box key
    wrapped: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class RecordHead(SQLModel, table=True):
    """The heads of each record's version graph; more than one means a conflict."""

    __tablename__ = "record_heads"

    record: str = Field(primary_key=True)
    version: str = Field(primary_key=True)


class AcceptedBatch(SQLModel, table=True):
    """Every accepted batch and the receipt it got: the same batch again gets the same answer."""

    __tablename__ = "accepted_batches"

    id: str = Field(primary_key=True)
    author: str = Field(index=True)
    last_seq: int
    receipt: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_ms: int = Field(sa_type=BigInteger, index=True)  # 0: unknown (none in practice)


class Quarantined(SQLModel, table=True):
    """Batches kept for a person to review and never merged: forks, revoked senders."""

    __tablename__ = "quarantine"

    id: str = Field(primary_key=True)  # batch id
    author: str = Field(index=True)
    reason: str
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_ms: int = Field(sa_type=BigInteger)


class StoredBlob(SQLModel, table=True):
    __tablename__ = "stored_blobs"
    __table_args__ = (
        Index("ix_stored_blobs_owner", "owner", "named"),  # what a device answers for
        Index("ix_stored_blobs_unnamed", "named", "touched_ms"),  # the abandoned ones
    )

    id: str = Field(primary_key=True)
    size: int = Field(sa_type=BigInteger)  # up to 8 GiB
    complete: bool = False
    owner: str | None = None  # the device that started the upload
    # some accepted batch names it: it no longer counts against the owner, and never expires
    # (complete blobs from before migration 0003 are all marked so by migration 0005)
    named: bool = False
    # when it started, an append last ended or it completed, for the expiry of an upload no
    # batch names (None: before migration 0003)
    touched_ms: int | None = Field(default=None, sa_type=BigInteger)


class OrgStatementRow(SQLModel, table=True):
    """The organisation's log (core/orglog.py): one statement per seq, exactly as signed."""

    __tablename__ = "org_statements"

    seq: int = Field(primary_key=True)
    id: str = Field(unique=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_ms: int = Field(sa_type=BigInteger)


class OrgForkRow(SQLModel, table=True):
    """A statement refused because another was held at its seq: served to every reader, who
    names the fork if the admin key really signed both."""

    __tablename__ = "org_forks"

    id: str = Field(primary_key=True)
    seq: int
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_ms: int = Field(sa_type=BigInteger)


class MemberBundle(SQLModel, table=True):
    """Each member's newest key bundle (core/bundle.py), sealed to its box key: the server
    keeps it for the member to fetch and cannot open it."""

    __tablename__ = "member_bundles"

    member: str = Field(primary_key=True, foreign_key="devices.key")
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    stored_ms: int = Field(sa_type=BigInteger)


class OrgBackupRow(SQLModel, table=True):
    """The organisation's secrets sealed under the backup key that the custodians' shares
    make (admin backup): the server cannot open it. One row, replaced by each newer one."""

    __tablename__ = "org_backup"

    id: int = Field(default=1, primary_key=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    stored_ms: int = Field(sa_type=BigInteger)


SERVER_TABLES = (
    DeviceRow,
    InviteUseRow,
    StoredEntry,
    FeedRow,
    ReaderWrap,
    RecordHead,
    AcceptedBatch,
    Quarantined,
    StoredBlob,
    OrgStatementRow,
    OrgForkRow,
    MemberBundle,
    OrgBackupRow,
)


def server_metadata() -> MetaData:
    """The server's tables alone (SQLModel keeps the device store's in the same registry)."""
    metadata = MetaData()
    for model in SERVER_TABLES:
        model.__table__.to_metadata(metadata)  # type: ignore[union-attr]
    return metadata
