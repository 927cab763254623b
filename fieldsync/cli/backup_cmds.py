"""``fieldsync admin backup`` and ``fieldsync admin recover``: the organisation's secrets under
K-of-N shares, and the administrator's store made again from K of them."""

from __future__ import annotations

import getpass
import io
import sys
import warnings
from pathlib import Path
from typing import Annotated

import segno
import typer

from fieldsync.cli.admin_cmds import admin_app
from fieldsync.cli.options import (
    Home,
    Json,
    PassphraseFile,
    RememberedServerUrl,
    home_dir,
    new_passphrase,
    unlocked,
)
from fieldsync.cli.render import emit_json, err, out, safe
from fieldsync.core import shares
from fieldsync.core.invite import checked_server_url
from fieldsync.core.org import OrgKeys
from fieldsync.errors import InputError, Interrupted, SharesInvalid
from fieldsync.services import backup

WORDS_PER_LINE = 4


def register(_app: typer.Typer) -> None:
    admin_app.command("backup")(backup_command)
    admin_app.command("recover")(recover_command)


def backup_command(
    shares_count: Annotated[
        int,
        typer.Option(
            "--shares", min=1, max=shares.MAX_SHARES, metavar="N", help="How many shares (N)."
        ),
    ],
    threshold: Annotated[
        int,
        typer.Option(
            "--threshold", min=1, max=shares.MAX_SHARES, metavar="K", help="How many rebuild (K)."
        ),
    ],
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the sealed backup to this file.", dir_okay=False),
    ] = None,
    qr: Annotated[bool, typer.Option("--qr", help="Also print each share as a QR code.")] = False,
    server: RememberedServerUrl = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Back up the organisation's secrets (admin key, every read key) to the server, sealed
    under a new key split into N shares: give each to one custodian; any K rebuild this store
    with 'admin recover'. A new backup replaces the last one: collect the old shares."""
    shares.check_counts(threshold, shares_count)  # before the passphrase is asked for
    with unlocked(home, passphrase_file) as store:
        made = backup.make_backup(store, shares_count, threshold, out=out_file, server_url=server)
    if json:
        emit_json({"shares": made.shares, "threshold": made.threshold})
        return
    err.print(
        f"The server at {safe(made.server_url)} keeps the sealed backup ({made.read_keys} read "
        f"key(s)); it replaces any backup made before."
        + (f" Also written to {safe(made.out)}." if made.out else ""),
        markup=False,
    )
    if threshold == shares_count and shares_count > 1:
        err.print(
            "warning: every share is needed, so one lost share loses the backup.", markup=False
        )
    count = len(made.shares)
    for number, (share, code) in enumerate(zip(made.shares, made.codes, strict=True), 1):
        out.print(
            f"\nshare {number} of {count}, any {threshold} rebuild; check code {code}",
            markup=False,
        )
        words = share.split()
        for start in range(0, len(words), WORDS_PER_LINE):
            row = words[start : start + WORDS_PER_LINE]
            out.print(
                "  " + "  ".join(f"{start + i + 1:>2} {w:<9}" for i, w in enumerate(row)),
                markup=False,
            )
        if qr:
            drawn = io.StringIO()
            segno.make(share, error="m").terminal(out=drawn, compact=True)
            out.print(drawn.getvalue(), markup=False, highlight=False)
    err.print(
        "\nWrite each share on paper with its number and check code, and give it to one "
        f"custodian. Any {threshold} of them can rebuild the organisation's keys: keep the "
        "shares apart, never in one place, never in a photo or a message.",
        markup=False,
    )


RecoverFrom = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="The organisation's server, which keeps the sealed backup.",
        callback=lambda value: value and checked_server_url(value),
    ),
]


def recover_command(
    server: RecoverFrom = None,
    backup_file: Annotated[
        Path | None,
        typer.Option(
            "--backup-file", help="The sealed backup 'admin backup --out' wrote.", dir_okay=False
        ),
    ] = None,
    shares_file: Annotated[
        Path | None,
        typer.Option(
            "--shares-file", help="Read the shares from this file, one a line.", dir_okay=False
        ),
    ] = None,
    public_out: Annotated[
        Path | None,
        typer.Option("--public-out", help="Also write the organisation's public keys here."),
    ] = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Make the administrator's store again from K custodians' shares and the sealed backup
    (from the server, or a --backup-file): the admin key and every read key. Nothing is
    created unless every share and the backup check."""
    folder = home_dir(home)
    backup.check_can_recover(folder, public_out, server, backup_file)
    given = _read_shares(shares_file) if shares_file else _ask_shares()
    opened = backup.open_backup(given, server_url=server, backup_file=backup_file)
    done = backup.create_recovered(
        folder, new_passphrase(passphrase_file), opened, public_out=public_out
    )
    if json:
        emit_json(
            {
                "home": str(done.home),
                "admin_key": done.org.admin_key,
                "org_read_key": done.org.org_read_key,
                "fingerprint": done.org.fingerprint,
                "read_keys": done.read_keys,
                "org_seq": done.org_seq,
                "server": done.server_url,
                "server_fingerprint": done.server_fingerprint,
                "public_out": str(done.public_out) if done.public_out else None,
                "check_codes": [shares.check_code(s) for s in given if s.strip()],
            }
        )
        return
    _print_recovered(done.org, done.read_keys, str(done.home))
    if done.server_fingerprint:
        err.print(
            f"Pinned the server's receipt key, fingerprint {done.server_fingerprint}: compare "
            "it with the one 'fieldsync server init' printed.",
            markup=False,
        )
    if done.public_out:
        out.print(f"Wrote the public keys to {safe(done.public_out)}.", markup=False)
    out.print(
        "Next: 'fieldsync admin pull --from-start' reads everything the server holds into it.",
        markup=False,
    )


def _print_recovered(org: OrgKeys, read_keys: int, home: str) -> None:
    out.print(
        f"Recovered the organisation's keys ({read_keys} read key(s)) into a new store in "
        f"{safe(home)}",
        markup=False,
    )
    out.print(f"Organisation fingerprint: {org.fingerprint}", markup=False)


def _read_shares(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the shares file {str(path)!r}; nothing was created") from exc
    given = [line for line in lines if line.strip()]
    for n, line in enumerate(given, 1):
        err.print(f"share {n}: check code {shares.check_code(line)}", markup=False)
    return given


def _ask_shares() -> list[str]:
    """Each share typed at a hidden prompt, its check code shown to compare with the paper;
    the first says how many are needed. A share that does not read is asked for again."""
    given: list[str] = []
    needed = 1
    while len(given) < needed:
        label = f"Share {len(given) + 1}" + (f" of {needed}" if given else "")
        text = _ask_hidden(f"{label} (its words, hidden)")
        try:
            read = shares.read(len(given) + 1, text, hidden=True)
        except SharesInvalid as exc:
            err.print(f"error: {exc.message}. Type it again.", markup=False)
            continue
        needed = read.share.member_threshold
        given.append(text)
        err.print(f"share {len(given)}: check code {shares.check_code(text)}", markup=False)
    return given


def _ask_hidden(prompt: str) -> str:
    """As options.py asks for a passphrase: never echoed, and refused without a terminal."""
    if not sys.stdin.isatty():
        raise InputError(
            "the shares cannot be asked for: there is no terminal to type them at",
            hint="Pass --shares-file FILE, one share a line.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", getpass.GetPassWarning)
            answer: str = typer.prompt(prompt, hide_input=True, err=True)
            return answer
    except getpass.GetPassWarning:
        raise InputError(
            "the shares cannot be asked for: there is no terminal to type them at",
            hint="Pass --shares-file FILE, one share a line.",
        ) from None
    except typer.Abort as stopped:
        if isinstance(stopped.__context__, KeyboardInterrupt):
            raise Interrupted("interrupted at a share prompt; nothing was created") from None
        raise InputError("no share was given; nothing was created") from None
