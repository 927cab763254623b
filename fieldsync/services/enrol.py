"""A device joins its organisation's server with an invite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fieldsync.core import enrolment, invite
from fieldsync.core.ids import fingerprint
from fieldsync.core.settings import Enrolment
from fieldsync.errors import AccessDenied, InputError, ServerError, StoreStateError
from fieldsync.store import delivery, settings
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient


@dataclass(frozen=True)
class Enrolled:
    server: str
    name: str
    device_fingerprint: str
    server_fingerprint: str
    admin_fingerprint: str
    wrapped: int  # entries recorded before enrolment, now readable by the organisation
    role: str | None = None  # "analyst" or "viewer" for a member of staff; None: a device


def preview(store: Store, invite_text: str, *, allow_http: bool = False) -> invite.Invite:
    """The invite, checked, with nothing sent to anyone and nothing saved: what a person is
    shown before confirming the organisation's fingerprint."""
    if store.identity.is_admin:
        raise StoreStateError("this is an administrator's store; enrol a documenter's device")
    current = settings.load(store, Enrolment)
    if current is not None:
        raise StoreStateError(f"this device is already enrolled with {current.server}")
    shown = invite.read(invite_text, now_ms=store.now_ms())
    if shown.plain_http and not allow_http:
        raise InputError(
            f"the invite's server {shown.server} is reached without encryption (http, not "
            "https); nothing was sent or saved",
            hint="Ask your administrator for an invite with an https:// address. Only on a "
            "network you trust end to end, enrol with --allow-http.",
        )
    return shown


def enrol(
    store: Store,
    invite_text: str,
    *,
    expect_fingerprint: str,
    allow_http: bool = False,
    client_for: Callable[[str], SyncClient] = SyncClient,
) -> Enrolled:
    """Check the invite, its organisation's fingerprint and the server, register this device,
    then let the org read its past.

    ``expect_fingerprint`` is the organisation's fingerprint as the person had it from their
    administrator (at least its first four groups): an invite anyone could sign would
    otherwise be handed every record held. Until it matches, no server is contacted and
    nothing is saved or wrapped. Nothing is stored locally unless the server accepted the
    device; asking again after a dropped answer is safe (the server answers the same device
    and invite the same way).
    """
    shown = preview(store, invite_text, allow_http=allow_http)
    if not shown.confirmed_by(expect_fingerprint):
        raise AccessDenied(
            "the invite's organisation is not the one whose fingerprint was given (the invite "
            f"names {shown.organisation_fingerprint}); nothing was sent, saved or made "
            "readable",
            hint="Someone may have sent a false invite. Ask your administrator for the "
            "organisation's fingerprint in person or by phone, not by the channel the invite "
            f"came by; give at least its first {invite.MIN_CONFIRMED_DIGITS} digits.",
        )
    with client_for(shown.server) as client:
        info = client.info()
        if info.server_key != shown.server_key:
            raise AccessDenied(
                f"the server at {shown.server} is not the one the invite names (its key "
                "differs); nothing was sent to it",
                hint="Someone may be intercepting the connection. Tell your administrator.",
            )
        request = enrolment.request(
            store.identity.signer,
            store.identity.box,
            invite_text,
            shown.token,
            server_key=bytes.fromhex(shown.server_key),
        )
        answer = client.enrol(request.encode())
    if answer.device != store.identity.device_id:
        raise ServerError("the server's answer names another device; nothing was stored")
    settings.save(
        store,
        Enrolment(
            admin_key=shown.admin_key,
            name=shown.name,
            org_read_key=shown.org_read_key,
            server=shown.server,
            server_key=shown.server_key,
            role=shown.role,
            org_log=(shown.org_seq, shown.org_head)
            if shown.org_seq is not None and shown.org_head is not None
            else None,
        ),
    )
    wrapped = delivery.add_reader(store, bytes.fromhex(shown.org_read_key))
    return Enrolled(
        server=shown.server,
        name=shown.name,
        device_fingerprint=store.identity.fingerprint,
        server_fingerprint=fingerprint(bytes.fromhex(shown.server_key)),
        admin_fingerprint=shown.organisation_fingerprint,
        wrapped=wrapped,
        role=shown.role,
    )
