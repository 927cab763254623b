"""Registering a device that shows an invite (docs/protocol.md, "Enrolment")."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError as RowConflict
from sqlmodel import Session

from fieldsync.core import crypto, enrolment, invite
from fieldsync.core.ids import fingerprint
from fieldsync.errors import AccessDenied, InviteUsed
from fieldsync.server.data import ServerData
from fieldsync.server.tables import DeviceRow, InviteUseRow

LABEL_TOKEN = b"fieldsync/invite-token/v1"


def enrol(session: Session, server: ServerData, body: bytes, now_ms: int) -> DeviceRow:
    """Verify the request and the invite, then register the device, all or nothing.

    Enrolling the same device with the same invite again returns the same registration, so a
    device whose connection dropped before the answer can simply ask again.
    """
    request = enrolment.parse(body)
    shown = invite.read(request.invite, now_ms=now_ms)
    if shown.admin_key != server.org.admin_key:
        raise AccessDenied("this invite was not signed by this organisation's admin key")
    if shown.server_key != server.receipt_key.public.hex():
        raise AccessDenied("this invite was made for another server")
    enrolment.verify_proof(request, shown.token)
    token_hash = crypto.hash32(LABEL_TOKEN, bytes.fromhex(shown.token)).hex()
    used = session.get(InviteUseRow, token_hash)
    if used is not None:
        device = session.get(DeviceRow, used.device)
        if used.device == request.device_key and device is not None:
            return device
        raise InviteUsed()
    existing = session.get(DeviceRow, request.device_key)
    if existing is not None:
        raise InviteUsed("this device is already enrolled (with another invite)")
    device = DeviceRow(
        key=request.device_key,
        box_key=request.box_key,
        name=shown.name,
        enrolled_ms=now_ms,
        enrolment=body,
    )
    session.add(device)
    session.flush()  # the device row first: the invite use refers to it
    session.add(InviteUseRow(token_hash=token_hash, device=request.device_key, used_ms=now_ms))
    try:
        session.commit()
    except RowConflict as exc:  # the same token, enrolled at the same moment by another request
        session.rollback()
        raise InviteUsed() from exc
    session.refresh(device)
    return device


def device_fingerprint(device: DeviceRow) -> str:
    return fingerprint(bytes.fromhex(device.key), bytes.fromhex(device.box_key))
