"""``fieldsync admin rotate-read-key``: the organisation's keys over time."""

from __future__ import annotations

import typer

from fieldsync.cli.admin_cmds import admin_app, analysts_store
from fieldsync.cli.options import Home, Json, PassphraseFile
from fieldsync.cli.render import emit_json, err, out
from fieldsync.services import rotation


def register(_app: typer.Typer) -> None:
    admin_app.command("rotate-read-key")(rotate_read_key)


def rotate_read_key(
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Make a new organisation read key and announce it: devices and analysts wrap what they
    record for it from their next push or pull; every old record stays readable here."""
    with analysts_store(home, passphrase_file) as store:
        done = rotation.rotate_read_key(store)
    if json:
        emit_json(
            {
                "epoch": done.epoch,
                "fingerprint": done.fingerprint,
                "seq": done.seq,
                "resent": done.resent,
                "backed_up": done.backed_up,
            }
        )
        return
    again = " (the announcement signed before was sent again)" if done.resent else ""
    out.print(
        f"Read key {done.epoch} (fingerprint {done.fingerprint}) announced as statement "
        f"{done.seq} of the organisation's log{again}. Devices and analysts wrap what they "
        "record for it from their next push or pull; what they recorded before stays "
        "readable with the keys this store keeps. It cannot take back what anyone already "
        "holds: whoever copied an old read key still opens what was wrapped for it.",
        markup=False,
    )
    if done.backed_up:
        out.print("The sealed backup on the server now holds the new key too.", markup=False)
    else:
        err.print(
            "warning: there is no backup of the organisation's keys; losing this store "
            "loses every record. Run 'fieldsync admin backup --shares 5 --threshold 3'.",
            markup=False,
        )
