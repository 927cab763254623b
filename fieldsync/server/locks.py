"""One lock per owner, held from a quota's count to the row it lets in, to the transaction's end.

Without it, requests of one device at once each counted what it holds, each found room, and
together passed its quota. PostgreSQL takes a transaction-level advisory lock on a 64-bit key
derived from the owner's key under a purpose label: a space of its own, which ``FEED_LOCK`` and
``MIGRATION_LOCK`` (small numbers) meet only by a 2^-64 chance, and each quota a lock of its own.
SQLite, with one writer, takes its write lock now (``BEGIN IMMEDIATE``) rather than at the
first write, when the count would be stale; a transaction already writing holds it.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlmodel import Session

UPLOADS = b"fieldsync:quota:uploads:"
QUARANTINE = b"fieldsync:quota:quarantine:"


def lock_owner(session: Session, purpose: bytes, owner: str) -> None:
    """Wait for ``owner``'s lock for ``purpose``; the session's transaction holds it."""
    if session.get_bind().dialect.name == "sqlite":
        if not session.connection().connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            session.execute(text("BEGIN IMMEDIATE"))
        return
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": owner_key(purpose, owner)})


def owner_key(purpose: bytes, owner: str) -> int:
    """The advisory lock's key: 8 bytes of a hash of the label and the owner, signed."""
    digest = hashlib.blake2b(purpose + owner.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
