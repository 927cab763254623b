"""Members' key bundles on the server (core/bundle.py): kept for the member to fetch, never
opened. The server checks only that the admin key in force signed one and whom it is for."""

from __future__ import annotations

from sqlmodel import Session

from fieldsync.core import bundle
from fieldsync.errors import AccessDenied, NotFound
from fieldsync.server import orglog
from fieldsync.server.data import ServerData
from fieldsync.server.gates import MEMBER_ROLES
from fieldsync.server.tables import DeviceRow, MemberBundle


def keep(session: Session, server: ServerData, member: str, raw: bytes, now_ms: int) -> None:
    """Keep a member's newest bundle (the administrator's, signed by the admin key in force)."""
    addressed = bundle.check_signed(raw, orglog.followed(session, server).admin_key)
    row = session.get(DeviceRow, member)
    if addressed.member != member or row is None or row.role not in MEMBER_ROLES:
        raise NotFound("no member of the organisation is enrolled with this key")
    if row.box_key != addressed.box_key:
        raise AccessDenied("the key bundle is sealed to another box key than this member's")
    session.merge(MemberBundle(member=member, raw=raw, stored_ms=now_ms))
    session.commit()


def fetch(session: Session, member: str) -> bytes:
    found = session.get(MemberBundle, member)
    if found is None:
        raise NotFound(
            "the administrator has not yet given this member the organisation's keys",
            hint="Ask your administrator to run 'fieldsync admin pull', then pull again.",
        )
    return found.raw
