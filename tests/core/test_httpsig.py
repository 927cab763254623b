from __future__ import annotations

import pytest

from fieldsync.core import crypto, httpsig
from fieldsync.errors import AccessDenied, MalformedData, SignatureInvalid

DEVICE = crypto.SigningPair(bytes([7]) * 32)
NOW = 1_800_000_000
BODY = b"chunk of encrypted blob"
PATH = "/v1/blobs/" + "ab" * 32 + "/0"


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def known(keyid: str) -> None:
    if keyid != DEVICE.public.hex():
        raise AccessDenied("unknown device")


def check(
    method: str = "PATCH",
    path: str = PATH,
    body: bytes = BODY,
    now: int = NOW,
    headers: dict[str, str] | None = None,
) -> str:
    signed = (
        headers if headers is not None else lower(httpsig.sign(DEVICE, "PATCH", PATH, BODY, NOW))
    )
    return httpsig.verify(method, path, signed, body, now=now, admit=known)


def test_a_signed_request_verifies_and_names_its_device() -> None:
    headers = httpsig.sign(DEVICE, "PATCH", PATH, BODY, NOW)
    assert headers["Signature-Input"] == (
        f'fs=("@method" "@path" "content-digest");created={NOW};'
        f'keyid="{DEVICE.public.hex()}";alg="ed25519"'
    )
    assert headers["Content-Digest"].startswith("sha-256=:")
    assert check() == DEVICE.public.hex()
    assert check(now=NOW + httpsig.WINDOW_S) == DEVICE.public.hex()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"method": "PUT"}, SignatureInvalid),
        ({"path": PATH.replace("/0", "/1")}, SignatureInvalid),  # another offset
        ({"body": BODY + b"!"}, SignatureInvalid),
        ({"now": NOW + httpsig.WINDOW_S + 1}, SignatureInvalid),  # a replay after the window
        ({"now": NOW - httpsig.WINDOW_S - 1}, SignatureInvalid),
        ({"headers": {}}, SignatureInvalid),
    ],
)
def test_anything_covered_that_changes_is_refused(
    change: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        check(**change)  # type: ignore[arg-type]


def test_an_unknown_key_that_signed_is_refused_once_its_signature_verifies() -> None:
    stranger = crypto.SigningPair.generate()
    headers = lower(httpsig.sign(stranger, "PATCH", PATH, BODY, NOW))
    with pytest.raises(AccessDenied):
        check(headers=headers)


def test_a_signature_with_its_keyid_swapped_is_refused() -> None:
    stranger = crypto.SigningPair.generate()
    headers = lower(httpsig.sign(stranger, "PATCH", PATH, BODY, NOW))
    headers["signature-input"] = headers["signature-input"].replace(
        stranger.public.hex(), DEVICE.public.hex()
    )
    with pytest.raises(SignatureInvalid):
        check(headers=headers)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: h | {"signature-input": h["signature-input"] + ';nonce="x"'},
        lambda h: h | {"signature-input": h["signature-input"].replace('"@path" ', "")},
        lambda h: h | {"signature": "fs=:not base64:"},
        lambda h: h | {"signature": h["signature"].replace("fs=", "sig1=")},
    ],
)
def test_headers_in_any_other_form_are_refused(mangle: object) -> None:
    headers = lower(httpsig.sign(DEVICE, "PATCH", PATH, BODY, NOW))
    with pytest.raises(MalformedData):
        check(headers=mangle(headers))  # type: ignore[operator]


def test_only_plain_paths_are_signed() -> None:
    with pytest.raises(MalformedData):
        httpsig.sign(DEVICE, "GET", '/v1/x?y=1\n"@method": GET', b"", NOW)
