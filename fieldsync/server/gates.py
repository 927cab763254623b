"""Who may make a signed request: each gate is handed the key that signed it, once the
signature verified (core/httpsig.py's ``admit``), and raises if that key may not.

Each looks the key up in a session of its own, given back at once: a blob append's body
streams for as long as the link takes, and must not hold a database connection all that time.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from fieldsync.core.orglog import OrgState
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


NOT_CERTIFIED = "this member is not certified in the organisation's log (yet, or any more)"
CERTIFY = "Ask your administrator to run 'fieldsync admin pull', then try again."


class Gates:
    def __init__(self, server: ServerData, engine: Engine) -> None:
        self._server = server
        self._engine = engine

    def _log(self) -> OrgState:
        """The organisation's log as the server holds it: read once per gate."""
        with Session(self._engine) as lookup:
            return orglog.followed(lookup, self._server)

    def admin_key(self) -> str:
        """The admin key in force, as the organisation's log names it now."""
        return self._log().admin_key

    def known_device(self, keyid: str) -> None:
        """An enrolled, active device or member (or the administrator), told only once it has
        proved it holds the key whether that key is enrolled or revoked."""
        log = self._log()
        if keyid == log.admin_key:  # an administrator delivering carried batches
            return
        self._active(keyid, log)

    def log_reader(self, keyid: str) -> None:
        """``known_device``, or any admin key the log names, a retired one too: a store whose
        succession reached the server unseen (the answer was lost) learns it from the log."""
        log = self._log()
        if keyid != log.admin_key and keyid not in log.retired:
            self._active(keyid, log)

    def admin_only(self, keyid: str) -> None:
        log = self._log()
        if keyid != log.admin_key:
            only = "only the organisation's administrator may do this"
            raise AccessDenied(RETIRED if keyid in log.retired else only)

    def admin_or_member(self, keyid: str) -> None:
        """The administrator, or an active analyst or viewer (who reads the registry to name
        authors and to seal an analyst's versions for the device that recorded a record)."""
        log = self._log()
        if keyid == log.admin_key:
            return
        if self._active(keyid, log).role not in MEMBER_ROLES:
            raise AccessDenied("only the organisation's administrator and its members may do this")
        found = log.member(keyid)
        if found is None or found.revoked:
            raise AccessDenied(NOT_CERTIFIED, hint=CERTIFY)

    def _active(self, keyid: str, log: OrgState) -> DeviceRow:
        if keyid in log.retired:  # its own log's row is no enrolment
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
        raise AccessDenied(NOT_CERTIFIED, hint=CERTIFY)
