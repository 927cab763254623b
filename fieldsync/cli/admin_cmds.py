"""``fieldsync admin ...``: the organisation's administrator."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fieldsync.cli import record_cmds, sync_cmds
from fieldsync.cli.options import (
    BlobFolder,
    DatabaseUrl,
    DataDir,
    FromStart,
    Home,
    Json,
    PassphraseFile,
    RememberedServerUrl,
    ServerUrl,
    home_dir,
    new_passphrase,
    unlocked,
)
from fieldsync.cli.render import emit_json, err, labelled, literal, out, safe, when
from fieldsync.core.audit import AuditReport
from fieldsync.core.invite import ROLES, is_loopback
from fieldsync.errors import InputError, IntegrityError, NotAdminStore
from fieldsync.server import data as server_data
from fieldsync.server.holdings import ServerHoldings
from fieldsync.services import admin, problems
from fieldsync.store import orgkeys
from fieldsync.store.store import Store

admin_app = typer.Typer(help="The organisation's administrator.", no_args_is_help=True)


@admin_app.command("init")
def init(
    public_out: Annotated[
        Path,
        typer.Option("--public-out", help="Where to write the public keys for 'server init'."),
    ] = Path("org-public.json"),
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Create the organisation's keys in a new, encrypted administrator's store."""
    folder = home_dir(home)
    admin.check_can_create(folder, public_out)
    keys = admin.create_org(folder, new_passphrase(passphrase_file), public_out)
    if json:
        emit_json(
            {
                "home": str(folder),
                "public_out": str(public_out),
                "admin_key": keys.admin_key,
                "org_read_key": keys.org_read_key,
                "fingerprint": keys.fingerprint,
            }
        )
        return
    out.print(
        f"Created the organisation's keys in an encrypted store in {safe(folder)}", markup=False
    )
    out.print(f"Organisation fingerprint: {keys.fingerprint}", markup=False)
    out.print(
        f"Wrote the public keys to {safe(public_out)}: give that file to "
        "'fieldsync server init --org'. The read key itself never leaves this store.",
        markup=False,
    )


RepinServerKey = Annotated[
    str | None,
    typer.Option(
        "--repin-server-key",
        metavar="FINGERPRINT",
        help="Trust the server's new receipt key, of this fingerprint, in place of the one "
        "this store pinned (only once its operator confirmed the server was set up again).",
    ),
]


@admin_app.command("invite")
def invite(
    name: Annotated[str, typer.Argument(help="What to call the device, e.g. 'laptop 7'.")],
    server: ServerUrl,
    valid_days: Annotated[
        int, typer.Option("--valid-days", min=1, max=90, help="Days the invite can be used.")
    ] = 7,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="device (a documenter's laptop), analyst (own keys; reads, edits, resolves, "
            "reports) or viewer (reads and reports; signs nothing).",
        ),
    ] = "device",
    repin_server_key: RepinServerKey = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """A one-time invite for a device or a member of staff, as one line of text for
    'fieldsync enroll'."""
    if role not in ("device", *ROLES):
        raise InputError(
            f"--role takes device, analyst or viewer, not {role!r}; no invite was made"
        )
    with unlocked(home, passphrase_file) as store:
        text, shown = admin.make_invite(
            store,
            name,
            server,
            valid_ms=valid_days * 86_400_000,
            repin=repin_server_key,
            role=None if role == "device" else role,
        )
    if json:
        emit_json({"invite": text, **shown})
        return
    _print_pinning(shown["server_key_pinned"], shown["server_fingerprint"])
    if server.startswith("http://") and not is_loopback(server):
        err.print(
            "warning: the server's URL is plain http on another machine; devices refuse such "
            "an invite unless enrolled with --allow-http. Use the https:// address of the "
            "server's TLS proxy (docs/deploy.md).",
            markup=False,
        )
    err.print(
        f"Invite for {safe(name)!r}, valid {valid_days} day(s), for the server with "
        f"fingerprint {shown['server_fingerprint']}. Send it privately; it enrols one device. "
        "Tell its user, over a channel you trust (in person, by phone), the organisation's "
        f"fingerprint, which 'fieldsync enroll' asks for: {shown['organisation_fingerprint']}",
        markup=False,
    )
    out.print(text, markup=False, soft_wrap=True)


def _print_pinning(pinning: str, server_fingerprint: str) -> None:
    if pinning == admin.FIRST_USE:
        err.print(
            f"Pinned the server's receipt key, fingerprint {server_fingerprint}, on first use: "
            "compare it with the one 'fieldsync server init' printed. A server with another "
            "key will be refused from now on.",
            markup=False,
        )
    elif pinning == admin.REPINNED:
        err.print(
            f"Re-pinned the server's receipt key: fingerprint {server_fingerprint}.",
            markup=False,
        )


@admin_app.command("devices")
def devices(
    server: RememberedServerUrl = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """The organisation's registry of people and devices: name, role, fingerprint, status,
    entries received, last seen; alerts, and what the last pull could not read or found
    withheld, by device or member."""
    with unlocked(home, passphrase_file) as store:
        listed = admin.devices(store, admin.server_url(store, server))
        every = problems.named(store)
        state = orgkeys.followed(store)
        org_alerts = orgkeys.alerts(store)
    found = problems.by_author(every)
    # the server's alert, and this store's own
    retired = set(state.retired) if state is not None else set()
    rows = [
        d.to_json()
        | {
            "problems": [p.to_json() for p in found.get(d.device, [])],
            "certified": state is not None and state.member(d.device) is not None,
        }
        | ({"status": "retired"} if d.status == "admin" and d.device in retired else {})
        for d in listed
    ]
    if json:
        emit_json(rows)
        return
    table = Table("name", "role", "fingerprint", "status", "entries", "last seen", "alert")
    for row in rows:
        waiting = row["role"] in ROLES and not row["certified"]
        alerts = [
            "not yet certified: run 'fieldsync admin pull'" if waiting else "",
            row["alert"] or "",
            *(_short(p) for p in row["problems"]),
        ]
        table.add_row(
            literal(row["name"]),
            literal(row["role"]),
            literal(row["fingerprint"]),
            literal(row["status"]),
            str(row["entries"]),
            when(row["last_seen_ms"] or 0),
            literal("; ".join(a for a in alerts if a)),
        )
    out.print(table)
    sync_cmds.print_problems(every)
    sync_cmds.print_alerts(org_alerts)


def _short(problem: dict[str, Any]) -> str:
    """A named problem in a table cell: '3 set aside', '1 withheld' (in full below it)."""
    return f"{problem['count']} {problem['kind']}"


@admin_app.command("import-file")
def import_file(
    file: Annotated[Path, typer.Argument(help="A file written by 'fieldsync push --to-file'.")],
    server: ServerUrl,
    repin_server_key: RepinServerKey = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Deliver batches carried offline to the server, with exactly the same verification
    (receipts against the server key this store pinned)."""
    with unlocked(home, passphrase_file) as store:
        report = admin.import_carry(store, file, server, repin=repin_server_key)
    _print_pinning(report.pinning, report.server_fingerprint)
    if json:
        emit_json(
            {
                "attachments": report.blobs,
                "batches_accepted": report.accepted,
                "versions": report.versions,
                "refused": report.refused,
            }
        )
    else:
        out.print(
            f"Delivered {report.versions} version(s) in {report.accepted} batch(es) and "
            f"{report.blobs} attachment(s); each receipt verified.",
            markup=False,
        )
        for reason in report.refused:
            out.print(f"  refused: {safe(reason)}", markup=False)
    if report.refused:
        raise InputError(
            f"{len(report.refused)} batch(es) were refused; the others were delivered",
            hint="Nothing was lost: the device still holds them.",
        )


@admin_app.command("verify")
def verify(
    data_dir: DataDir,
    database_url: DatabaseUrl = None,
    blobs: BlobFolder = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Re-check every signature, chain, receipt and blob the server holds, independently."""
    server = server_data.load(data_dir)
    with (
        unlocked(home, passphrase_file) as store,
        closing(ServerHoldings(server, database_url, blobs)) as holdings,
    ):
        report = admin.verify(store, holdings)
    if json:
        emit_json(report.to_json())
    else:
        _print_audit(report)
    if not report.ok:
        raise IntegrityError(
            f"the server's data is not intact: {report.problem_count} problem(s), listed above",
            hint="Keep a copy of the data folder as it is, then compare with the devices' "
            "stores and backups; the devices still hold what they sent.",
        )


def _print_audit(report: AuditReport) -> None:
    table = Table("device", "fingerprint", "status", "versions", "chain", "receipts", "problems")
    for author in report.authors:
        if author.intact_through == author.last_seq:
            chain = f"intact, seq 1–{author.last_seq}" if author.last_seq else "no versions"
        else:
            chain = f"intact to seq {author.intact_through} of {author.last_seq}"
        table.add_row(
            literal(author.name or "(not enrolled)"),
            literal(author.fingerprint),
            literal(author.status),
            str(author.versions),
            chain,
            str(author.receipts),
            Text(str(len(author.problems)), "red") if author.problems else Text("none", "green"),
        )
    out.print(table)
    for author in report.authors:
        name = safe(author.name or author.key[:16])
        for reason in author.quarantined:
            out.print(f"  {name}: a batch is quarantined for review ({safe(reason)})", markup=False)
        for problem in author.problems:
            where = "".join(
                [
                    f", seq {problem.seq}" if problem.seq is not None else "",
                    f", record {problem.record}" if problem.record else "",
                ]
            )
            what = f"{name}{safe(where)}: {safe(problem.what)}"
            out.print(Text("  ").append(labelled("problem:", what, "red")))
    for problem in report.problems:
        out.print(Text("  ").append(labelled("problem:", problem.what, "red")))
    opened = "every version opened with the org read key, " if report.bodies_opened else ""
    out.print(
        f"{report.blobs} blob(s) hash to their ids; {opened}{report.attachments} attachment "
        "reference(s) checked.",
        markup=False,
    )
    if not report.server_key_pinned:
        out.print(
            "note: this store has pinned no server key (it has made no invite), so receipts "
            "were checked against the key in the server's own data.",
            markup=False,
        )
    if report.ok:
        out.print("Everything the server holds verifies.", style="green", markup=False)


@admin_app.command("pull")
def admin_pull(
    from_start: FromStart = False,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Fetch, verify and decrypt everything the server holds into this store; merge."""
    with analysts_store(home, passphrase_file) as store:
        report = sync_cmds.pull_with_progress(store, json=json, from_start=from_start)
    sync_cmds.print_pull(report, json=json)


@admin_app.command("push")
def admin_push(
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Send the analysts' versions (edits, merges, resolutions) to the server."""
    with analysts_store(home, passphrase_file) as store:
        report = sync_cmds.push_with_progress(store, json=json)
    sync_cmds.print_push(report, json=json)


@admin_app.command(
    "edit",
    help="An analyst's version of a record (the same options as 'edit'): signed by the admin "
    "key, readable by the organisation and by the device that recorded the record.",
)
@functools.wraps(record_cmds.edit)
def admin_edit(**options: Any) -> None:
    with analysts_store(options.pop("home"), options.pop("passphrase_file")) as store:
        record_cmds.edit_in(store, **options)


@contextlib.contextmanager
def analysts_store(home: Path | None, passphrase_file: Path | None) -> Iterator[Store]:
    """The unlocked store, refused before anything is asked if it is a documenter's."""
    with unlocked(home, passphrase_file) as store:
        admin.org_keys(store)
        yield store


@contextlib.contextmanager
def staff_store(home: Path | None, passphrase_file: Path | None) -> Iterator[Store]:
    """The unlocked store of the administrator or of a member of staff (an analyst, a
    viewer): one that reads what the organisation receives (reports, exports)."""
    with unlocked(home, passphrase_file) as store:
        if not orgkeys.reads_everything(store):
            raise NotAdminStore(
                f"the store in {store.home} is a documenter's: it holds only its own records",
                hint="Run this in the administrator's store, or an analyst's or viewer's.",
            )
        yield store


def register(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")
