"""``enroll``, ``push``, ``status``: joining the organisation's server and delivering to it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fieldsync.cli.options import FromStart, Home, Json, PassphraseFile, unlocked
from fieldsync.cli.progress import PushProgress, bars
from fieldsync.cli.render import emit_json, err, iso, out, safe, when
from fieldsync.core import invite as invite_format
from fieldsync.errors import InputError
from fieldsync.services import enrol, members, problems, sync
from fieldsync.services import pull as pulling
from fieldsync.services import status as status_service
from fieldsync.store.store import Store


def enroll(
    invite: Annotated[str, typer.Argument(help="The invite line, or a file holding it.")],
    expect_fingerprint: Annotated[
        str | None,
        typer.Option(
            "--expect-fingerprint",
            metavar="FINGERPRINT",
            help="The organisation's fingerprint, as your administrator gave it (for scripts; "
            "otherwise you are asked to type it). Nothing is sent or saved if it differs.",
        ),
    ] = None,
    allow_http: Annotated[
        bool,
        typer.Option(
            "--allow-http",
            help="Accept an invite whose server is reached by plain http on another machine "
            "(only on a network you trust end to end).",
        ),
    ] = False,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Join the organisation's server with an invite from its administrator, once you have
    confirmed the organisation's fingerprint."""
    text = _invite_text(invite)
    with unlocked(home, passphrase_file) as store:
        if expect_fingerprint is None:
            expect_fingerprint = _ask_fingerprint(enrol.preview(store, text, allow_http=allow_http))
        done = enrol.enrol(
            store, text, expect_fingerprint=expect_fingerprint, allow_http=allow_http
        )
    if json:
        emit_json(
            {
                "server": done.server,
                "name": done.name,
                "device_fingerprint": done.device_fingerprint,
                "server_fingerprint": done.server_fingerprint,
                "organisation_fingerprint": done.admin_fingerprint,
                "wrapped_for_organisation": done.wrapped,
                "role": done.role or "device",
            }
        )
        return
    as_role = f" ({done.role})" if done.role else ""
    out.print(f"Enrolled as {safe(done.name)!r}{as_role} with {safe(done.server)}", markup=False)
    out.print(f"This device:   {done.device_fingerprint}", markup=False)
    out.print(f"Server:        {done.server_fingerprint}", markup=False)
    out.print(f"Organisation:  {done.admin_fingerprint} (confirmed)", markup=False)
    out.print("Your administrator can compare this device's fingerprint with theirs.", markup=False)
    if done.wrapped:
        out.print(
            f"{done.wrapped} version(s) recorded before enrolling can now be read by the "
            "organisation once delivered.",
            markup=False,
        )
    if done.role:
        out.print(
            "Your administrator's next 'fieldsync admin pull' certifies you and seals the "
            "organisation's read keys to you; then 'fieldsync pull' reads what it holds.",
            markup=False,
        )


def _ask_fingerprint(shown: invite_format.Invite) -> str:
    """The organisation's fingerprint as the person types it (on stderr: ``--json`` keeps
    stdout to its one document)."""
    # The invite's own fingerprint is not shown before it is typed: shown, it would be copied
    # from the line above, and a hostile invite would confirm itself.
    err.print(
        f"This invite enrols this device as {safe(shown.name)!r} with {safe(shown.server)}. "
        "Whoever made it will be able to read every record on this device. Nothing has been "
        "sent or saved yet. Type the organisation's fingerprint as your administrator gave it "
        "to you in person or by phone (at least the first "
        f"{invite_format.MIN_CONFIRMED_DIGITS // 5} groups); anything else stops here.",
        markup=False,
    )
    try:
        typed: str = typer.prompt(
            "Organisation's fingerprint", default="", show_default=False, err=True
        )
    except typer.Abort:
        typed = ""
    if not typed.strip():
        raise InputError(
            "the organisation's fingerprint was not confirmed; nothing was sent or saved",
            hint="Run 'fieldsync enroll' again and type it, or give --expect-fingerprint.",
        )
    return typed


def push(
    to_file: Annotated[
        Path | None,
        typer.Option(
            "--to-file",
            help="Write the pending batches to this file instead, to "
            "carry offline to an administrator ('admin import-file').",
            dir_okay=False,
        ),
    ] = None,
    wipe_after: Annotated[
        bool,
        typer.Option(
            "--wipe-after",
            help="Then destroy this device's keys to every record the "
            "server's verified receipts cover in full.",
        ),
    ] = False,
    after_restore: Annotated[
        bool,
        typer.Option(
            "--after-restore",
            help="The server was restored from an older backup: send it again everything "
            "it lost (only when your administrator says so).",
        ),
    ] = False,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Deliver this device's new versions and attachments to the organisation's server."""
    with unlocked(home, passphrase_file) as store:
        if to_file is not None:
            versions, blobs = sync.write_carry(store, to_file)
            _print_carry(to_file, versions, blobs, json)
            return
        report = push_with_progress(
            store, json=json, wipe_after=wipe_after, after_restore=after_restore
        )
    print_push(report, json=json)


def push_with_progress(
    store: Store, *, json: bool, wipe_after: bool = False, after_restore: bool = False
) -> sync.PushReport:
    with bars(json=json) as shown:
        line = PushProgress(shown)
        return sync.push(
            store,
            wipe_after=wipe_after,
            after_restore=after_restore,
            progress=sync.Progress(
                plan=line.plan, bytes_sent=line.bytes_sent, entries_sent=line.entries_sent
            ),
        )


def print_push(report: sync.PushReport, *, json: bool) -> None:
    got = report.receipt
    if json:
        emit_json(
            {
                "delivered": report.sent_entries,
                "batches": report.batches,
                "attachments": report.blobs,
                "attachment_bytes": report.blob_bytes,
                "acknowledged_seq": got.last_seq if got else None,
                "receipt_time": iso(got.time_ms) if got else None,
                "wiped_records": report.wiped_records,
                "wiped_attachments": report.wiped_attachments,
                "alerts": report.alerts,
            }
        )
        return
    print_alerts(report.alerts)
    if not report.sent_entries:
        out.print("Nothing to deliver: every version is acknowledged by the server.", markup=False)
    else:
        out.print(
            f"Delivered {report.sent_entries} version(s) in {report.batches} batch(es) and "
            f"{report.blobs} attachment(s) ({report.blob_bytes} bytes).",
            markup=False,
        )
    if got:
        out.print(
            f"The server's signed receipt covers everything up to seq {got.last_seq} "
            f"({when(got.time_ms)}).",
            markup=False,
        )
    if report.wiped_records or report.wiped_attachments:
        out.print(
            f"Wiped from this device: {report.wiped_records} record(s) and "
            f"{report.wiped_attachments} attachment(s) the server holds.",
            markup=False,
        )


def pull(
    from_start: FromStart = False,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Fetch the versions others made of your records (analysts' edits), verify each, merge."""
    with unlocked(home, passphrase_file) as store:
        report = pull_with_progress(store, json=json, from_start=from_start)
    print_pull(report, json=json)


def pull_with_progress(store: Store, *, json: bool, from_start: bool = False) -> pulling.PullReport:
    with bars(json=json, total_known=False) as shown:
        task = shown.add_task("versions", total=None)
        return pulling.pull(store, progress=lambda n: shown.advance(task, n), from_start=from_start)


def print_pull(report: pulling.PullReport, *, json: bool) -> None:
    if json:
        emit_json(
            {
                "received": report.received,
                "already_held": report.held,
                "skipped_wiped": report.skipped,
                "attachments": report.blobs,
                "merged": report.merged,
                "in_conflict": report.conflicts,
                "restarted": report.restarted,
                "set_aside": report.set_aside,
                "recovered": report.recovered,
                "problems": [p.to_json() for p in report.problems],
                "alerts": report.alerts,
                "certified": report.certified,
                "held_back": report.held_back,
                "not_certified": report.strangers,
            }
        )
        return
    for name in report.strangers:
        err.print(
            f"warning: {safe(name)!r} enrolled as a member with an invite this store did not "
            "make, and was not certified: nothing is sealed to them. If you invited them from "
            "another store (or before a recovery), revoke them and invite them again from this "
            "one; if not, someone holding an old admin key let them in: see docs/security.md.",
            markup=False,
        )
    if report.held_back:
        err.print(
            f"note: no member was certified: {report.held_back}"
            + "".join(
                f". {hint}"
                for said, hint in members.UNFINISHED.values()
                if said == report.held_back
            ),
            markup=False,
        )
    for name in report.certified:
        out.print(
            f"Certified {safe(name)!r} as a member of the organisation, and sealed the "
            "organisation's read keys to them.",
            markup=False,
        )
    if report.restarted:
        out.print(
            "The server's feed changed under this store's place in it (the server was "
            "probably restored from a backup): read it again from the start.",
            markup=False,
        )
    out.print(
        f"Received {report.received} version(s) and {report.blobs} attachment(s)"
        + (f"; {report.held} already here" if report.held else "")
        + (f"; {report.skipped} of records wiped from this device" if report.skipped else "")
        + ".",
        markup=False,
    )
    for record in report.merged:
        out.print(
            f"Merged {record}: the changes fit together (a new signed version).", markup=False
        )
    for record in report.conflicts:
        out.print(
            f"In conflict: {record}. See 'fieldsync conflicts', settle with 'fieldsync resolve'.",
            markup=False,
        )
    if report.merged:
        out.print("Run 'fieldsync push' to deliver the merged version(s).", markup=False)
    if report.recovered:
        out.print(
            f"Stored {report.recovered} version(s) set aside by an earlier pull.", markup=False
        )
    print_problems(report.problems)
    print_alerts(report.alerts)


def print_alerts(alerts: list[str]) -> None:
    """Forks of the organisation's log: a person must act (docs/security.md)."""
    for alert in alerts:
        err.print(f"alert: {safe(alert)}", markup=False)
    if alerts:
        err.print(
            "Tell your administrator at once, by a channel other than this server: the "
            "organisation's admin key may be in someone else's hands.",
            markup=False,
        )


def print_problems(found: list[problems.Problem]) -> None:
    """The named problems pulls left, each on a line, then what to do about them."""
    for problem in found:
        out.print(f"problem: {safe(problem.message)}", markup=False)
    if any(not p.withheld for p in found):
        out.print(
            "Versions that cannot be read are kept as signed and tried again at every pull; "
            "everything else was stored. Tell the device's owner, or your administrator.",
            markup=False,
        )
    if any(p.withheld for p in found):
        out.print(
            "Versions the server withholds: run 'fieldsync admin verify' on its data and keep "
            "the devices' stores; they still hold what they sent.",
            markup=False,
        )


def _print_carry(path: Path, versions: int, blobs: int, json: bool) -> None:
    if json:
        emit_json({"file": str(path), "versions": versions, "attachments": blobs})
        return
    out.print(
        f"Wrote {versions} version(s) and {blobs} attachment(s) to {safe(path)}. Nothing is "
        "marked delivered until the server's receipt comes back (push again once online).",
        markup=False,
    )


def status(
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """What is waiting to be delivered, what the server has acknowledged, and to whom."""
    with unlocked(home, passphrase_file) as store:
        shown = status_service.status(store)
    receipt_ms = shown.last_receipt_ms
    if json:
        emit_json(
            {
                "enrolled": shown.enrolled,
                "server": shown.server,
                "server_fingerprint": shown.server_fingerprint,
                "device_fingerprint": shown.device_fingerprint,
                "pending": shown.pending,
                "acknowledged_seq": shown.acknowledged_seq,
                "last_receipt": iso(receipt_ms) if receipt_ms else None,
                "problems": [p.to_json() for p in shown.problems],
                "read_key_epoch": shown.read_key_epoch,
                "alerts": shown.alerts,
            }
        )
        return
    print_alerts(shown.alerts)
    out.print(f"Device fingerprint: {shown.device_fingerprint}", markup=False)
    if not shown.enrolled:
        out.print("Not enrolled with a server: run 'fieldsync enroll INVITE'.", markup=False)
    else:
        out.print(
            f"Server: {safe(shown.server)} (fingerprint {shown.server_fingerprint})", markup=False
        )
        out.print(
            f"Acknowledged by the server: up to seq {shown.acknowledged_seq}"
            + (f", receipt of {when(receipt_ms)}" if receipt_ms else ""),
            markup=False,
        )
    out.print(f"Waiting to be delivered: {shown.pending} version(s)", markup=False)
    print_problems(shown.problems)


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
    app.command()(push)
    app.command()(pull)
    app.command()(status)
