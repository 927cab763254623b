"""An invite whose server URL no parser can take apart is refused clearly, not a traceback."""

from __future__ import annotations

import base64

import pytest

from fieldsync.core import crypto, encoding, invite
from tests.cli.conftest import Run

DAY = 86_400_000


def signed(admin: crypto.SigningPair, server: str) -> str:
    """An invite for ``server`` signed by a real admin key, past the checks ``issue`` makes."""
    value = {
        "admin_key": admin.public.hex(),
        "expires_ms": 4_000_000_000_000,
        "format": invite.FORMAT,
        "name": "laptop",
        "org_read_key": crypto.BoxPair.generate().public.hex(),
        "server": server,
        "server_key": crypto.SigningPair.generate().public.hex(),
        "token": crypto.random_bytes(32).hex(),
        "version": invite.VERSION,
    }
    payload = encoding.encode(value)
    signature = admin.sign(crypto.LABEL_INVITE, payload)
    b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")  # noqa: E731
    return f"{invite.PREFIX}{b64(payload)}.{b64(signature)}"


@pytest.mark.parametrize(
    "server", ["http://[127.0.0.1]", "http://a]b", "https://[::1", "http://a:99999"]
)
def test_an_invite_whose_server_url_cannot_be_parsed_is_refused(run: Run, server: str) -> None:
    admin = crypto.SigningPair.generate()
    text = signed(admin, server)
    result = run("enroll", text, "--allow-http", "--expect-fingerprint", "1" * 20)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 6, result.stderr
    assert "the invite has invalid values" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
