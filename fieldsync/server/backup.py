"""The organisation's sealed backup as the server keeps it (docs/protocol.md, "Backup").

The server cannot open it (core/backup.py): it checks only that the body is a sealed backup
of this organisation, named by its root admin key, and keeps the newest it was given, in the
one row of ``org_backup``. Anyone may fetch it: whoever recovers has no key yet, and without
K of the custodians' shares it is ciphertext under a 256-bit key.
"""

from __future__ import annotations

from sqlmodel import Session

from fieldsync.core import backup
from fieldsync.core.wire import BackupStored
from fieldsync.errors import AccessDenied, NotFound
from fieldsync.server.data import ServerData
from fieldsync.server.tables import OrgBackupRow

ROW = 1


def store(session: Session, server: ServerData, body: bytes, now_ms: int) -> BackupStored:
    """Keep ``body`` in place of the backup held before, once it is known to be this
    organisation's sealed backup."""
    sealed = backup.parse(body)
    if sealed.admin_key != server.org.admin_key:
        raise AccessDenied(
            "this backup names another organisation's admin key than this server's; it was not kept"
        )
    row = session.get(OrgBackupRow, ROW)
    if row is None:
        session.add(OrgBackupRow(id=ROW, raw=body, stored_ms=now_ms))
    else:
        row.raw, row.stored_ms = body, now_ms
        session.add(row)
    session.commit()
    return BackupStored(stored_ms=now_ms, size=len(body))


def fetch(session: Session) -> bytes:
    row = session.get(OrgBackupRow, ROW)
    if row is None:
        raise NotFound(
            "this server holds no backup of the organisation's secrets",
            hint="An administrator makes one with 'fieldsync admin backup'. Without it, only "
            "a backup file written with --out can be recovered from (--backup-file).",
        )
    return bytes(row.raw)
