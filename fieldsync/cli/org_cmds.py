"""``fieldsync admin revoke``, ``admin rotate-read-key`` and ``admin rotate-admin-key``: who
belongs to the organisation, and its keys over time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fieldsync.cli.admin_cmds import admin_app, analysts_store, staff_store
from fieldsync.cli.options import Home, Json, PassphraseFile, RememberedServerUrl
from fieldsync.cli.render import emit_json, err, out, safe
from fieldsync.core.invite import ROLES
from fieldsync.core.wire import DeviceInfo
from fieldsync.errors import InputError
from fieldsync.services import admin, rotation, succession
from fieldsync.services import org_log as org_log_file


def register(_app: typer.Typer) -> None:
    admin_app.command("revoke")(revoke)
    admin_app.command("rotate-read-key")(rotate_read_key)
    admin_app.command("rotate-admin-key")(rotate_admin_key)
    admin_app.command("rotate-receipt-key")(rotate_receipt_key)
    admin_app.command("org-log")(org_log)


def revoke(
    device: Annotated[
        str, typer.Argument(help="The device's name, or its key or fingerprint (a prefix).")
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Revoke without asking (for scripts).")
    ] = False,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate", help="Then rotate the organisation's read key (for a member of staff)."
        ),
    ] = False,
    server: RememberedServerUrl = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Revoke a device or a member of staff: what it sends is refused from now on and kept
    for review."""
    with analysts_store(home, passphrase_file) as store:
        url = admin.server_url(store, server)
        target = admin.find_device(store, url, device)
        if not yes:
            _confirm_revoke(target)
        result = admin.revoke(store, url, target.device)
        rotated = rotation.rotate_read_key(store) if rotate else None
    if json:
        emit_json(result.to_json() | {"rotated_to": rotated.epoch if rotated else None})
        return
    out.print(
        f"Revoked {target.role if target.role in ROLES else 'device'} {safe(target.name)!r} "
        f"({result.device[:16]}…); "
        "what it sends from now on is refused and kept for review.",
        markup=False,
    )
    if target.role in ROLES:
        err.print(
            "This cannot take back what they already hold: every record they pulled, and "
            "the read keys sealed to them, which open everything wrapped for those keys, "
            "here or in any copy of the server's data."
            + (
                f" The read key is now epoch {rotated.epoch}: nothing recorded from here on "
                "opens with the keys they hold."
                if rotated
                else " Run 'fieldsync admin rotate-read-key' now, so that nothing recorded "
                "from here on opens with those keys."
            ),
            markup=False,
        )


def _confirm_revoke(target: DeviceInfo) -> None:
    """Ask before a revocation, which cannot be undone; without a terminal nobody can answer,
    so a script must say --yes rather than hang or revoke unasked."""
    if not sys.stdin.isatty():
        raise InputError(
            "revoking a device needs a confirmation, and there is no terminal to ask at; "
            "nothing was revoked",
            hint="Pass --yes to revoke without asking.",
        )
    question = (
        f"Revoke device {safe(target.name)!r} (id {target.device}, "
        f"fingerprint {target.fingerprint})?"
    )
    try:
        confirmed = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        confirmed = False
    if not confirmed:
        raise InputError("not confirmed; nothing was revoked")


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
    _say_backed_up(done.backed_up)


def rotate_admin_key(
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Make a new admin key and announce it, signed by the one in force: devices, analysts,
    the server and evidence-verify follow it, and refuse what the old key signs from now on."""
    with analysts_store(home, passphrase_file) as store:
        done = succession.rotate_admin_key(store)
    if json:
        emit_json(
            {
                "fingerprint": done.fingerprint,
                "retired": done.retired,
                "seq": done.seq,
                "resent": done.resent,
                "backed_up": done.backed_up,
                "bundles": done.bundles,
            }
        )
        return
    again = " (the succession signed before was sent again)" if done.resent else ""
    out.print(
        f"The admin key is now {done.fingerprint}, named as statement {done.seq} of the "
        f"organisation's log by the key it succeeds ({done.retired}){again}. This store signs "
        "with it from now on; devices, analysts and the server follow it on their next push "
        "or pull, and refuse what the old key signs from now on. Invites made before stay "
        "good; the organisation's fingerprint does not change.",
        markup=False,
    )
    if done.bundles:
        out.print(
            f"Gave {done.bundles} member(s) a key bundle signed by the new key.", markup=False
        )
    _say_backed_up(done.backed_up)


def org_log(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write it to this file (else to stdout).")
    ] = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
) -> None:
    """The organisation's log as this store last followed it (pull first for the newest), for
    'fieldsync evidence-verify --org-log': every statement the admin keys signed."""
    with staff_store(home, passphrase_file) as store:
        count, document = org_log_file.as_file(store)
    if out_file is None:
        sys.stdout.buffer.write(document)
        return
    org_log_file.write(out_file, document)
    err.print(f"Wrote {count} statement(s) of the organisation's log.", markup=False)


def rotate_receipt_key(
    confirm: Annotated[
        str | None,
        typer.Option(
            "--confirm",
            help="The new key's fingerprint, as 'server new-receipt-key' printed it: only when "
            "the server lost its receipt key in force and cannot prove the offer.",
        ),
    ] = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Name the new receipt key the server offers ('fieldsync server new-receipt-key'):
    devices and analysts check its receipts from their next push or pull, no new invite."""
    with analysts_store(home, passphrase_file) as store:
        done = rotation.rotate_receipt_key(store, confirm=confirm)
    if json:
        emit_json({"fingerprint": done.fingerprint, "seq": done.seq})
        return
    out.print(
        f"The server's receipt key is now {done.fingerprint}, named as statement {done.seq} "
        "of the organisation's log. Devices and analysts check receipts against it from "
        "their next push or pull; receipts signed before stay good.",
        markup=False,
    )


def _say_backed_up(backed_up: bool) -> None:
    """After a new key: the custodians' backup on the server holds it, or there is none."""
    if backed_up:
        out.print("The sealed backup on the server now holds the new key.", markup=False)
        return
    err.print(
        "warning: there is no backup of the organisation's keys; losing this store loses "
        "every record. Run 'fieldsync admin backup --shares 5 --threshold 3'.",
        markup=False,
    )
