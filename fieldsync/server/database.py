"""The server's database connection: SQLite in the data folder by default, or a URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import create_engine

from fieldsync.errors import DatabaseDriverMissing


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ImportError as exc:  # SQLAlchemy imports the URL's driver as it makes the engine
        raise DatabaseDriverMissing(
            f"the database driver for this URL is not installed ({exc.name or 'unknown'})",
            hint="For PostgreSQL: pip install 'fieldsync[postgres]' (the psycopg driver), and "
            "give the URL as postgresql+psycopg://...",
        ) from exc


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
