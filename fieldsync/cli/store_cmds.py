"""``init``, ``passwd``, ``wipe``, ``check``: the store itself."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from fieldsync.cli.options import (
    Home,
    Json,
    PassphraseFile,
    home_dir,
    new_passphrase,
    read_passphrase,
    unlocked,
)
from fieldsync.cli.render import emit_json, err, labelled, out, safe
from fieldsync.errors import FieldsyncError, InputError, StoreCorrupted
from fieldsync.services import setup

WIPE_WORD = "wipe"


def init(home: Home = None, passphrase_file: PassphraseFile = None, json: Json = False) -> None:
    """Create the encrypted store and this device's keys; print the device fingerprint."""
    folder = home_dir(home)
    setup.refuse_existing(folder)
    identity = setup.create_store(folder, new_passphrase(passphrase_file))
    if json:
        emit_json(
            {"home": str(folder), "device": identity.device_id, "fingerprint": identity.fingerprint}
        )
        return
    out.print(f"Created an encrypted store in {safe(folder)}", markup=False)
    out.print(f"Device fingerprint: {identity.fingerprint}", markup=False)
    out.print(
        "Read the fingerprint aloud to your administrator when you enrol this device.",
        markup=False,
    )


def passwd(
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    new_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--new-passphrase-file",
            help="Read the new passphrase from this file (or set FIELDSYNC_NEW_PASSPHRASE).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Change the passphrase and the keys under it; the old vault is overwritten, so an old
    copy of it with the old passphrase opens nothing written afterwards."""
    with unlocked(home, passphrase_file) as store:
        fresh = new_passphrase(new_passphrase_file, env="FIELDSYNC_NEW_PASSPHRASE")
        store.change_passphrase(fresh)
    out.print("The passphrase was changed.", markup=False)


def wipe(home: Home = None, passphrase_file: PassphraseFile = None) -> None:
    """Destroy the store's keys, making everything in it unreadable, then remove it.

    No passphrase is needed. Given one (or typed at the optional prompt), the confirmation
    says how many versions and attachments were never delivered and will be lost."""
    folder = home_dir(home)
    setup.require_store_files(folder)
    err.print(_wipe_warning(folder, _undelivered(folder, passphrase_file)), markup=False)
    answer = typer.prompt(f"Type {WIPE_WORD!r} to confirm", default="", show_default=False)
    if answer.strip() != WIPE_WORD:
        raise InputError("not confirmed; nothing was wiped")
    removed = setup.wipe(folder)
    out.print(f"Wiped: the keys were destroyed and {len(removed)} item(s) removed.", markup=False)


def _undelivered(folder: Path, passphrase_file: Path | None) -> tuple[int, int] | None:
    """(versions, attachments) not yet delivered, or None when they cannot be counted. Never
    stands in the way of the wipe: a person under pressure may not know the passphrase."""
    passphrase = _optional_passphrase(passphrase_file)
    if not passphrase:
        return None
    try:
        return setup.undelivered(folder, passphrase)
    except FieldsyncError as exc:
        why = f"{exc.message}; what was not delivered cannot be counted"
        err.print(labelled("warning:", why, "yellow"))
        return None


def _optional_passphrase(passphrase_file: Path | None) -> str:
    if passphrase_file is not None or os.environ.get("FIELDSYNC_PASSPHRASE"):
        try:
            return read_passphrase(passphrase_file)
        except FieldsyncError:
            return ""
    if not sys.stdin.isatty():
        return ""
    answer: str = typer.prompt(
        "Passphrase, to count what was not delivered (Enter to skip)",
        default="",
        show_default=False,
        hide_input=True,
    )
    return answer


def _wipe_warning(folder: Path, undelivered: tuple[int, int] | None) -> str:
    start = f"This destroys the keys of the store in {safe(folder)}."
    if undelivered is None:
        return f"{start} Records that were not delivered are lost for good."
    versions, attachments = undelivered
    if not versions:
        return f"{start} Nothing recorded on this device is waiting to be delivered."
    return (
        f"{start} {versions:,} version(s) and {attachments:,} attachment(s) recorded on this "
        "device were never delivered to the server: they will be lost for good. Run "
        "'fieldsync push' first if you can."
    )


def check(
    repair: Annotated[
        bool, typer.Option("--repair", help="First rebuild the record index from the entries.")
    ] = False,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Re-verify the whole store: database, signatures, chain, keys, index, attachments."""
    with unlocked(home, passphrase_file) as store:
        report = setup.check(store, repair=repair)
    if json:
        emit_json(
            {
                "ok": report.ok,
                "entries": report.entries,
                "records": report.records,
                "blobs": report.blobs,
                "problems": report.problems,
            }
        )
    else:
        out.print(
            f"Checked {report.entries} versions of {report.records} records and "
            f"{report.blobs} attachments.",
            markup=False,
        )
        for problem in report.problems:
            out.print(Text("  ").append(labelled("problem:", problem, "red")))
    if not report.ok:
        raise StoreCorrupted(
            f"{len(report.problems)} problem(s) found; the rest of the store is intact",
            hint="Records not named above are readable. If only the index is damaged, "
            "'fieldsync check --repair' rebuilds it; restore other damaged files from a backup.",
        )
    if not json:
        out.print("Everything checks out.", style="green", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(passwd)
    app.command()(wipe)
    app.command()(check)
