"""``fieldsync enroll``: joining the organisation's server (push and pull arrive next)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fieldsync.cli.options import Home, Json, PassphraseFile, unlocked
from fieldsync.cli.render import emit_json, out, safe
from fieldsync.errors import InputError
from fieldsync.services import enrol


def enroll(
    invite: Annotated[str, typer.Argument(help="The invite line, or a file holding it.")],
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Join the organisation's server with an invite from its administrator."""
    text = _invite_text(invite)
    with unlocked(home, passphrase_file) as store:
        done = enrol.enrol(store, text)
    if json:
        emit_json(
            {
                "server": done.server,
                "name": done.name,
                "device_fingerprint": done.device_fingerprint,
                "server_fingerprint": done.server_fingerprint,
                "organisation_fingerprint": done.admin_fingerprint,
                "wrapped_for_organisation": done.wrapped,
            }
        )
        return
    out.print(f"Enrolled as {safe(done.name)!r} with {safe(done.server)}", markup=False)
    out.print(f"This device:   {done.device_fingerprint}", markup=False)
    out.print(f"Server:        {done.server_fingerprint}", markup=False)
    out.print(f"Organisation:  {done.admin_fingerprint}", markup=False)
    out.print("Compare these with your administrator over a channel you trust.", markup=False)
    if done.wrapped:
        out.print(
            f"{done.wrapped} version(s) recorded before enrolling can now be read by the "
            "organisation once delivered.",
            markup=False,
        )


def _invite_text(given: str) -> str:
    if given.strip().startswith("fieldsync-invite-"):
        return given
    path = Path(given)
    try:
        if path.is_file() and path.stat().st_size <= 16 * 1024:
            return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the invite file {given!r}") from exc
    raise InputError("that is neither an invite (fieldsync-invite-v1:...) nor a file holding one")


def register(app: typer.Typer) -> None:
    app.command()(enroll)
