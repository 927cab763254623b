"""Who may make a signed request: each gate is handed the key that signed it, once the
signature verified (core/httpsig.py's ``admit``), and raises if that key may not.

Each looks the key up in a session of its own, given back at once: a blob append's body
streams for as long as the link takes, and must not hold a database connection all that time.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from fieldsync.errors import AccessDenied, DeviceRevoked
from fieldsync.server import orglog
from fieldsync.server.data import ServerData
from fieldsync.server.ingest import ACTIVE, ANALYST, VIEWER
from fieldsync.server.tables import DeviceRow

MEMBER_ROLES = (ANALYST, VIEWER)
RETIRED = (
    "this admin key was succeeded in the organisation's log: it signs nothing for the "
    "organisation now"
)


class Gates:
    def __init__(self, server: ServerData, engine: Engine) -> None:
        self._server = server
        self._engine = engine

    def admin_key(self) -> str:
        """The admin key in force, as the organisation's log names it now."""
        with Session(self._engine) as lookup:
            return orglog.admin_key(lookup, self._server)

    def known_device(self, keyid: str) -> None:
        """An enrolled, active device or member (or the administrator), told only once it has
        proved it holds the key whether that key is enrolled or revoked."""
        if keyid == self.admin_key():  # an administrator delivering carried batches
            return
        self._active(keyid)

    def log_reader(self, keyid: str) -> None:
        """``known_device``, or any admin key the log names, a retired one too: a store whose
        succession reached the server unseen (the answer was lost) learns it from the log."""
        if not self._retired(keyid):
            self.known_device(keyid)

    def admin_only(self, keyid: str) -> None:
        if keyid != self.admin_key():
            only = "only the organisation's administrator may do this"
            raise AccessDenied(RETIRED if self._retired(keyid) else only)

    def admin_or_member(self, keyid: str) -> None:
        """The administrator, or an active analyst or viewer (who reads the registry to name
        authors and to seal an analyst's versions for the device that recorded a record)."""
        if keyid == self.admin_key():
            return
        if self._active(keyid).role not in MEMBER_ROLES:
            raise AccessDenied("only the organisation's administrator and its members may do this")
        with Session(self._engine) as lookup:
            certified(lookup, self._server, keyid)

    def _retired(self, keyid: str) -> bool:
        with Session(self._engine) as lookup:
            return keyid in orglog.followed(lookup, self._server).retired

    def _active(self, keyid: str) -> DeviceRow:
        if self._retired(keyid):  # its own log's row is no enrolment
            raise AccessDenied(RETIRED)
        with Session(self._engine) as lookup:
            device = lookup.get(DeviceRow, keyid)
        if device is None:
            raise AccessDenied("this key is not enrolled with this server")
        if device.status != ACTIVE:
            raise DeviceRevoked()
        return device


def certified(session: Session, server: ServerData, member: str) -> None:
    """``AccessDenied`` unless the organisation's log names ``member`` a member not revoked:
    an invite with a role lets a key enrol, and only the administrator's certification lets it
    read as a member (the registry, the whole feed)."""
    found = orglog.followed(session, server).member(member)
    if found is None or found.revoked:
        raise AccessDenied(
            "this member is not certified in the organisation's log (yet, or any more)",
            hint="Ask your administrator to run 'fieldsync admin pull', then try again.",
        )
