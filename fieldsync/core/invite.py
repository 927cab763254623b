"""Invites: how an administrator lets one device join the organisation's server.

One line of text, so it can travel by any channel (docs/protocol.md, "Invite")::

    fieldsync-invite-v1:<base64url(canonical JSON)>.<base64url(Ed25519 signature)>

The JSON names the device, the server's URL and receipt key, the organisation's read key and
admin key, a one-time token and an expiry. The signature is the admin key's, over
``LABEL_INVITE || 0 || the JSON bytes``. A device checks it against the admin key the invite
names, and enrols only once a person has confirmed that fingerprint (``confirmed_by``), as
the administrator gave it over a trusted channel: anyone can sign an invite, and the device
gives the invite's organisation every record it holds. The server checks the signature
against the admin key it was set up with.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fieldsync.core import crypto, encoding, orglog
from fieldsync.core.ids import fingerprint, is_hex32
from fieldsync.errors import (
    InputError,
    IntegrityError,
    InviteExpired,
    MalformedData,
    SignatureInvalid,
    UnsupportedFormat,
)

PREFIX = "fieldsync-invite-v1:"
FORMAT = "fieldsync/invite"
VERSION = 1
MAX_TEXT = 8192
MAX_SUCCESSIONS = 8  # an invite carries the chain from the first admin key to its signer
MAX_NAME = 100
KEYS = frozenset(
    {
        "admin_key",
        "expires_ms",
        "format",
        "name",
        "org_read_key",
        "server",
        "server_key",
        "token",
        "version",
    }
)
ANALYST, VIEWER = "analyst", "viewer"
ROLES = (ANALYST, VIEWER)  # an invite with no role is a documenter's device's
MIN_CONFIRMED_DIGITS = 20  # the first four groups of a fingerprint: about 66 bits
# a host name or IPv4 address, or an IPv6 address in brackets; a port; a path
SERVER_URL = re.compile(
    r"https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/]*)?"
)


@dataclass(frozen=True)
class Invite:
    name: str  # what the administrator calls this device
    server: str  # base URL of the organisation's server
    server_key: str  # hex Ed25519 key the server signs receipts with: pinned by the device
    org_read_key: str  # hex X25519 key every entry's content key is wrapped for
    admin_key: str  # hex Ed25519: the organisation's first admin key, where its log starts
    token: str  # hex, 32 random bytes, good for one enrolment
    expires_ms: int  # Unix milliseconds
    role: str | None = None  # "analyst" or "viewer": a member of the organisation's staff
    # how far the organisation's log was followed when the invite was made: the device refuses
    # an older log from its first push on (a server hiding a rotation from a newcomer)
    org_seq: int | None = None
    org_head: str | None = None
    # the admin key in force that signed it, when a succession made it other than the first,
    # with the chain of succession statements (signed bytes) from the first key to it: the
    # device checks the chain offline, so no one but the organisation's admin keys can sign
    # an invite that shows the organisation's fingerprint
    signer: str | None = None
    successions: tuple[bytes, ...] = ()

    @property
    def signed_by(self) -> str:
        return self.signer or self.admin_key

    @property
    def organisation_fingerprint(self) -> str:
        """Of the admin key and the org read key, as ``admin init`` and ``OrgKeys`` show it."""
        return fingerprint(bytes.fromhex(self.admin_key), bytes.fromhex(self.org_read_key))

    def confirmed_by(self, typed: str) -> bool:
        """Whether ``typed`` is this invite's organisation fingerprint, or at least its first
        ``MIN_CONFIRMED_DIGITS`` digits (spaces anywhere); a shorter prefix confirms nothing."""
        digits = "".join(typed.split())
        return (
            len(digits) >= MIN_CONFIRMED_DIGITS
            and digits.isdigit()
            and "".join(self.organisation_fingerprint.split()).startswith(digits)
        )

    @property
    def plain_http(self) -> bool:
        """The server is reached without TLS, other than on this machine (loopback)."""
        return self.server.startswith("http://") and not is_loopback(self.server)

    def to_json(self) -> dict[str, Any]:
        value = {
            "admin_key": self.admin_key,
            "expires_ms": self.expires_ms,
            "format": FORMAT,
            "name": self.name,
            "org_read_key": self.org_read_key,
            "server": self.server,
            "server_key": self.server_key,
            "token": self.token,
            "version": VERSION,
        }
        if self.role is not None:
            value["role"] = self.role
        if self.org_seq is not None:
            value |= {"org_head": self.org_head, "org_seq": self.org_seq}
        if self.signer is not None:
            value["signer"] = self.signer
            value["successions"] = [base64.b64encode(raw).decode() for raw in self.successions]
        return value


def issue(
    admin: crypto.SigningPair,
    *,
    name: str,
    server: str,
    server_key: bytes,
    org_read_key: bytes,
    expires_ms: int,
    token: bytes | None = None,
    role: str | None = None,
    org_log: tuple[int, str] | None = None,
    successions: Sequence[bytes] = (),
) -> str:
    """A signed invite as one line of text (``token`` is random unless given, for vectors);
    ``role`` invites an analyst or a viewer rather than a documenter's device;
    ``successions``: the succession statements of the organisation's log, oldest first, when
    ``admin`` succeeded the first admin key (the first one's signer is the first key)."""
    signer = admin.public.hex()
    root = orglog.parse(successions[0]).signer if successions else signer
    invite = Invite(
        name=name,
        server=server.rstrip("/"),
        server_key=server_key.hex(),
        org_read_key=org_read_key.hex(),
        admin_key=root,
        token=(token if token is not None else crypto.random_bytes(32)).hex(),
        expires_ms=expires_ms,
        role=role,
        org_seq=org_log[0] if org_log else None,
        org_head=org_log[1] if org_log else None,
        signer=signer if signer != root else None,
        successions=tuple(successions) if signer != root else (),
    )
    _check(invite.to_json())  # never sign what a reader would refuse
    payload = encoding.encode(invite.to_json())
    signature = admin.sign(crypto.LABEL_INVITE, payload)
    return f"{PREFIX}{_b64(payload)}.{_b64(signature)}"


def read(text: str, *, now_ms: int | None) -> Invite:
    """Parse and verify an invite; raises ``MalformedData``, ``SignatureInvalid`` or
    ``InviteExpired``. ``now_ms=None`` skips the expiry: an audit re-checks invites that were
    valid when they were used."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise MalformedData(
            f"this is not a fieldsync invite (it should start with {PREFIX!r}); copy the whole line"
        )
    if len(text) > MAX_TEXT:
        raise MalformedData(
            f"this invite is longer than any fieldsync makes ({MAX_TEXT} characters)"
        )
    payload, signature = _parts(text[len(PREFIX) :])
    value = encoding.decode(payload, what="the invite", max_bytes=MAX_TEXT)
    invite = _check(value)
    _check_successions(invite)
    crypto.verify(
        bytes.fromhex(invite.signed_by),
        crypto.LABEL_INVITE,
        payload,
        signature,
        what="the invite",
    )
    if now_ms is not None and now_ms >= invite.expires_ms:
        raise InviteExpired("this invite has expired")
    return invite


def _parts(rest: str) -> tuple[bytes, bytes]:
    """The payload and signature after the prefix. Where they are not there whole, the line
    was almost always cut when it was copied (a chat or mail client wraps or truncates it):
    the person is told so, not that it is no invite."""
    pieces = rest.split(".")
    if len(pieces) == 2:
        try:
            payload, signature = _unb64(pieces[0]), _unb64(pieces[1])
        except MalformedData:
            pass
        else:
            if len(signature) == crypto.SIGNATURE_BYTES:
                return payload, signature
    raise MalformedData(
        "this invite is incomplete or damaged (probably cut when it was copied); "
        "copy the whole line, as one line"
    )


def _check(value: object) -> Invite:
    optional = {"role"}, {"org_head", "org_seq"}, {"signer", "successions"}
    extra = set(value) - KEYS if isinstance(value, dict) else set()
    if (
        not isinstance(value, dict)
        or not set(value) >= KEYS
        or not all(extra & part in (set(), part) for part in optional)
        or extra - set().union(*optional)
        or ("signer" in value and "org_seq" not in value)  # a successor exists from a seq on
    ):
        raise MalformedData("the invite does not have exactly the expected fields")
    seq, head = value.get("org_seq", 1), value.get("org_head", "00" * 32)
    if value["format"] != FORMAT or value["version"] != VERSION:
        raise MalformedData("the invite is of an unknown format or version")
    name, server, expires = value["name"], value["server"], value["expires_ms"]
    ok = (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME
        and name.isprintable()
        and isinstance(server, str)
        and _is_server_url(server)
        and all(is_hex32(value[k]) for k in ("server_key", "org_read_key", "admin_key", "token"))
        and isinstance(expires, int)
        and not isinstance(expires, bool)
        and expires > 0
        and value.get("role", ROLES[0]) in ROLES
        and type(seq) is int
        and 0 < seq <= encoding.MAX_SAFE_INTEGER
        and is_hex32(head)
        and value.get("signer") != value["admin_key"]
        and is_hex32(value.get("signer", value["admin_key"]))
        and ("successions" not in value or _are_statements(value["successions"]))
    )
    if not ok:
        raise MalformedData("the invite has invalid values")
    return Invite(
        name=name,
        server=server,
        server_key=value["server_key"],
        org_read_key=value["org_read_key"],
        admin_key=value["admin_key"],
        token=value["token"],
        expires_ms=expires,
        role=value.get("role"),
        org_seq=value.get("org_seq"),
        org_head=value.get("org_head"),
        signer=value.get("signer"),
        successions=tuple(base64.b64decode(raw) for raw in value.get("successions", [])),
    )


def _are_statements(found: object) -> bool:
    if not isinstance(found, list) or not 0 < len(found) <= MAX_SUCCESSIONS:
        return False
    try:
        return all(isinstance(raw, str) and base64.b64decode(raw, validate=True) for raw in found)
    except (ValueError, binascii.Error):
        return False


def _check_successions(invite: Invite) -> None:
    """``SignatureInvalid`` unless the invite's signer is the first admin key, or the last of a
    chain of successions each signed by the key the one before named, from the first key on,
    all at or before the log position the invite names."""
    key, seq = invite.admin_key, 0
    for raw in invite.successions:
        try:
            statement = orglog.parse(raw)
        except (IntegrityError, UnsupportedFormat) as exc:
            raise SignatureInvalid(
                f"a succession the invite carries does not verify ({exc.message})"
            ) from exc
        if (
            statement.kind != orglog.SUCCESSION
            or statement.signer != key
            or not seq < statement.seq <= (invite.org_seq or 0)
        ):
            raise SignatureInvalid(
                "the invite's signer is not an admin key the organisation's first one named"
            )
        key, seq = str(statement.fields["admin_key"]), statement.seq
    if key != invite.signed_by:
        raise SignatureInvalid(
            "the invite's signer is not an admin key the organisation's first one named"
        )


def checked_server_url(text: str) -> str:
    """``text`` if it is a server URL fieldsync can use, else an ``InputError`` saying what to
    fix. Every URL a person gives (``--server``) and every client is checked here: without a
    scheme, httpx reads ``127.0.0.1:18443`` as a scheme and a path, and the failure looked like
    a dropped connection."""
    if "://" not in text:
        raise InputError(
            f"{text!r} is not a server URL: it does not start with https:// or http://; "
            "nothing was sent",
            hint=f"Add https:// (or http:// for a test server), e.g. 'https://{text}'.",
        )
    if not _is_server_url(text):
        raise InputError(
            f"{text!r} is not a server URL fieldsync can use; nothing was sent",
            hint="Give it as https://HOST or https://HOST:PORT (http:// only for a test "
            "server), as your administrator wrote it.",
        )
    return text


def _is_server_url(text: str) -> bool:
    """The pattern, and a URL Python can take apart: ``http://[127.0.0.1]`` fits the pattern
    but is no address, and a port may be out of range."""
    if not SERVER_URL.fullmatch(text):
        return False
    try:
        parts = urlsplit(text)
        return bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:
        return False


def is_loopback(url: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1: a server on this very machine."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        data: bytes | None = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        data = None
    if data is None or _b64(data) != text:  # one spelling per invite, as for all our formats
        raise MalformedData("the invite is damaged (not valid base64url); copy the whole line")
    return data
