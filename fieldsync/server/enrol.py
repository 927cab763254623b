"""Registering a device that shows an invite (docs/protocol.md, "Enrolment"), and revoking
one."""

from __future__ import annotations

import base64
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError as RowConflict
from sqlmodel import Session, select

from fieldsync.core import crypto, enrolment, invite
from fieldsync.core.ids import fingerprint
from fieldsync.core.wire import DeviceInfo, RevokeAnswer
from fieldsync.errors import AccessDenied, InviteUsed, MalformedData, NotFound
from fieldsync.server import orglog
from fieldsync.server.blobs import BlobStorage
from fieldsync.server.data import ServerData
from fieldsync.server.ingest import ADMIN
from fieldsync.server.tables import DeviceRow, InviteUseRow

LABEL_TOKEN = b"fieldsync/invite-token/v1"


def enrol(session: Session, server: ServerData, body: bytes, now_ms: int) -> DeviceRow:
    """Verify the request and the invite, then register the device, all or nothing.

    Enrolling the same device with the same invite again returns the same registration, so a
    device whose connection dropped before the answer can simply ask again.
    """
    request = enrolment.parse(body)
    if request.box_proof is None:
        raise MalformedData(
            "the enrolment request does not prove that the device holds its box key",
            hint="Update fieldsync on the device, then enrol again with the same invite.",
        )
    if not crypto.is_canonical_box_key(bytes.fromhex(request.box_key)):
        raise MalformedData(
            "the enrolment's box key is not in its one canonical spelling (X25519, below "
            "2^255 - 19, top bit clear); nothing was registered",
            hint="A key fieldsync made is always canonical: enrol from fieldsync's own store.",
        )
    shown = invite.read(request.invite, now_ms=now_ms)
    if shown.admin_key != server.org.admin_key:
        raise AccessDenied("this invite was not signed by this organisation's admin key")
    if shown.signed_by != orglog.admin_key(session, server):
        raise AccessDenied(
            "this invite was signed by an admin key the organisation's log retired; nothing "
            "was registered",
            hint="Ask your administrator for a new invite: it is signed by the key in force.",
        )
    if shown.server_key != server.receipt_key.public.hex():
        raise AccessDenied("this invite was made for another server")
    enrolment.verify_proof(request, shown.token)
    enrolment.verify_box_proof(request, shown.token, server.receipt_key)
    token_hash = crypto.hash32(LABEL_TOKEN, bytes.fromhex(shown.token)).hex()
    key = request.device_key
    _box_key_is_free(session, request.box_key, key)
    if session.get(InviteUseRow, token_hash) is None and session.get(DeviceRow, key) is None:
        device = DeviceRow(
            key=key,
            box_key=request.box_key,
            name=shown.name,
            role=shown.role or "device",
            enrolled_ms=now_ms,
            enrolment=body,
        )
        try:
            session.add(device)
            session.flush()  # the device row first: the invite use refers to it
            session.add(InviteUseRow(token_hash=token_hash, device=key, used_ms=now_ms))
            session.commit()
        except RowConflict:  # another request (perhaps at another process) enrolled just now
            session.rollback()
            _box_key_is_free(session, request.box_key, key)  # or took this box key just now
        else:
            session.refresh(device)
            return device
    return _enrolled_before(session, token_hash, key)


def revoke(
    session: Session,
    server: ServerData,
    blobs: BlobStorage,
    device_key: str,
    now_ms: Callable[[], int],
) -> dict[str, object]:
    """Revoke a device (again: the same answer): from now on its batches are refused and kept
    for review, and its uploads that no batch names are deleted (nothing it sends can name
    them now). ``now_ms`` is read only when the device is revoked now."""
    device = session.get(DeviceRow, device_key)
    if device is None or device.key in orglog.followed(session, server).admin_keys:
        raise NotFound("no such device is enrolled")
    if device.status != "revoked":
        device.status, device.revoked_ms = "revoked", now_ms()
        session.add(device)
        session.commit()
        session.refresh(device)
    answer = RevokeAnswer(device.key, device.status, device.revoked_ms).to_json()
    # after the commit: a batch accepted before it has marked the blobs it names
    blobs.forget_owner(session, device.key)
    return answer


def _box_key_is_free(session: Session, box_key: str, device_key: str) -> None:
    """Versions for a device are sealed to its box key, and its feed is what is sealed to that
    key: two devices must never share one (the box proof already keeps a device from naming a
    key it does not hold; this keeps one holder from registering it twice). The UNIQUE index on
    ``devices.box_key`` holds the line between two requests at once."""
    taken = session.exec(
        select(DeviceRow.key).where(DeviceRow.box_key == box_key, DeviceRow.key != device_key)
    ).first()
    if taken is not None:
        raise AccessDenied(
            "this box key is already registered to another device; nothing was registered",
            hint="Enrol each device from its own store; tell your administrator.",
        )


def _enrolled_before(session: Session, token_hash: str, device_key: str) -> DeviceRow:
    """The registration this invite made, if it made it for this very device (which asks
    again after losing the answer, perhaps at another server process while the first request
    is still being handled); otherwise the invite is spent, or the device enrolled with
    another."""
    used = session.get(InviteUseRow, token_hash)
    device = session.get(DeviceRow, device_key)
    if used is not None and used.device == device_key and device is not None:
        return device
    if used is None and device is not None:
        raise InviteUsed("this device is already enrolled (with another invite)")
    raise InviteUsed()


def device_fingerprint(device: DeviceRow) -> str:
    return fingerprint(bytes.fromhex(device.key), bytes.fromhex(device.box_key))


def listed(device: DeviceRow) -> DeviceInfo:
    """A registry row as the listing shows it."""
    return DeviceInfo(
        device=device.key,
        box_key=device.box_key,
        name=device.name,
        fingerprint=device_fingerprint(device) if device.status != ADMIN else "",
        status=device.status,
        enrolled_ms=device.enrolled_ms,
        revoked_ms=device.revoked_ms,
        last_seen_ms=device.last_seen_ms,
        last_seq=device.last_seq,
        entries=device.entries,
        alert=device.alert,
        # verbatim, so the administrator can check the invite it shows (admin pull)
        enrolment=base64.b64encode(device.enrolment).decode("ascii"),
        role=device.role,
    )
