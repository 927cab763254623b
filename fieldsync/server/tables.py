"""The server's tables (SQLModel; SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Field, SQLModel


class DeviceRow(SQLModel, table=True):
    """The device registry."""

    __tablename__ = "devices"

    key: str = Field(primary_key=True)  # hex Ed25519: the device's identity
    box_key: str  # hex X25519
    name: str  # as the administrator named it in the invite
    enrolled_ms: int
    status: str = "active"  # active | revoked
    revoked_ms: int | None = None
    last_seen_ms: int | None = None


class InviteUseRow(SQLModel, table=True):
    """Invite tokens that have enrolled a device (by hash: a token is a bearer secret)."""

    __tablename__ = "invite_uses"

    token_hash: str = Field(primary_key=True)
    device: str = Field(foreign_key="devices.key")
    used_ms: int


SERVER_TABLES = [DeviceRow, InviteUseRow]


def create_tables(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in SERVER_TABLES])  # type: ignore[attr-defined]
