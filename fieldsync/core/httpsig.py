"""Signed requests, in the style of HTTP Message Signatures (RFC 9421).

A device signs every request that is not itself a signed object (blob uploads, pulls)::

    Content-Digest:  sha-256=:<base64 SHA-256 of the body>:                      (RFC 9530)
    Signature-Input: fs=("@method" "@path" "content-digest");created=<Unix s>;
                     keyid="<hex Ed25519 key>";alg="ed25519"
    Signature:       fs=:<base64 Ed25519 signature>:

over the RFC 9421 signature base::

    "@method": PATCH
    "@path": /v1/blobs/<id>/<offset>
    "content-digest": sha-256=:...:
    "@signature-params": ("@method" "@path" "content-digest");created=...;keyid="...";alg="ed25519"

One departure, for the rule that every fieldsync signature names its purpose: what is signed is
``LABEL_REQUEST || 0 || base``. Everything a request means is in its method, path and body, so
those three are all that is covered; a signature is accepted for ``WINDOW_S`` seconds either way
of the server's clock, and the requests it can authorise are idempotent, so a replay within the
window changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping

from fieldsync.core import crypto
from fieldsync.errors import MalformedData, SignatureInvalid

WINDOW_S = 300
COVERED = '("@method" "@path" "content-digest")'
_INPUT = re.compile(
    r'^fs=\("@method" "@path" "content-digest"\);created=(\d{1,12});'
    r'keyid="([0-9a-f]{64})";alg="ed25519"$'
)
_SIGNATURE = re.compile(r"^fs=:([A-Za-z0-9+/]{86}==):$")
_DIGEST = re.compile(r"^sha-256=:[A-Za-z0-9+/]{43}=:$")
_PATH = re.compile(r"^/[A-Za-z0-9._~\-/]{0,400}$")


def content_digest(body: bytes) -> str:
    return digest_header(hashlib.sha256(body).digest())


def content_digest_of(pieces: Iterable[bytes]) -> str:
    """The Content-Digest of a body sent in pieces (hashed before it is sent, to sign it)."""
    hasher = hashlib.sha256()
    for piece in pieces:
        hasher.update(piece)
    return digest_header(hasher.digest())


def digest_header(sha256: bytes) -> str:
    """The Content-Digest value for a body whose SHA-256 is ``sha256``."""
    return f"sha-256=:{base64.b64encode(sha256).decode()}:"


def _params(created: int, keyid: str) -> str:
    return f'{COVERED};created={created};keyid="{keyid}";alg="ed25519"'


def _base(method: str, path: str, digest: str, params: str) -> bytes:
    if not _PATH.fullmatch(path):
        raise MalformedData("the request path is not one fieldsync signs")
    lines = [
        f'"@method": {method.upper()}',
        f'"@path": {path}',
        f'"content-digest": {digest}',
        f'"@signature-params": {params}',
    ]
    return "\n".join(lines).encode("ascii")


def sign(
    signer: crypto.SigningPair, method: str, path: str, body: bytes, created: int
) -> dict[str, str]:
    """The three headers that sign a request."""
    return sign_digest(signer, method, path, content_digest(body), created)


def sign_digest(
    signer: crypto.SigningPair, method: str, path: str, digest: str, created: int
) -> dict[str, str]:
    """The three headers that sign a request whose body's digest is already known (a body
    streamed from a file, hashed before it is sent)."""
    params = _params(created, signer.public.hex())
    signature = signer.sign(crypto.LABEL_REQUEST, _base(method, path, digest, params))
    return {
        "Content-Digest": digest,
        "Signature-Input": f"fs={params}",
        "Signature": f"fs=:{base64.b64encode(signature).decode()}:",
    }


def verify(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    admit: Callable[[str], None],
) -> str:
    """Check a signed request; returns the signer's key (hex). ``admit`` is asked about the
    key only once it is known to have signed (and refuses an unknown or revoked one)."""
    keyid, digest = verify_headers(method, path, headers, now=now, admit=admit)
    if not digest_matches(digest, hashlib.sha256(body).digest()):
        raise SignatureInvalid("the request's body does not match its Content-Digest")
    return keyid


def digest_matches(digest: str, sha256: bytes) -> bool:
    return crypto.equal(digest.encode(), digest_header(sha256).encode())


def verify_headers(
    method: str,
    path: str,
    headers: Mapping[str, str],
    *,
    now: int,
    admit: Callable[[str], None],
) -> tuple[str, str]:
    """Check a request's signature over its declared Content-Digest, before its body is read;
    returns the signer's key (hex) and that digest, which the caller must hold the body to
    (``digest_matches``, hashing the body, or a streamed body as it arrives).

    The key id is the signer's public key, so the signature is checked against it before
    anyone looks it up: a request that does not verify gets one answer whatever its key's
    status (unknown, enrolled, revoked), and only a signer that proved who it is hears it."""
    digest = headers.get("content-digest")
    signature_input = headers.get("signature-input")
    signature = headers.get("signature")
    if digest is None or signature_input is None or signature is None:
        raise SignatureInvalid(
            "the request is not signed (Content-Digest, Signature-Input and Signature are required)"
        )
    matched_input = _INPUT.fullmatch(signature_input)
    matched_signature = _SIGNATURE.fullmatch(signature)
    if matched_input is None or matched_signature is None or not _DIGEST.fullmatch(digest):
        raise MalformedData("the request's signature headers are not in fieldsync's form")
    created, keyid = int(matched_input.group(1)), matched_input.group(2)
    if abs(now - created) > WINDOW_S:
        raise SignatureInvalid(
            "the request's signature is too old or from the future",
            hint="Check this computer's clock, then try again.",
        )
    try:
        raw_signature = base64.b64decode(matched_signature.group(1), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedData("the request's signature is not valid base64") from exc
    base = _base(method, path, digest, _params(created, keyid))
    crypto.verify(
        bytes.fromhex(keyid), crypto.LABEL_REQUEST, base, raw_signature, what="the request"
    )
    admit(keyid)
    return keyid, digest
