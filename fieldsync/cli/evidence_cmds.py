"""``fieldsync admin evidence`` and ``fieldsync evidence-verify``: packages for investigators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fieldsync.cli.admin_cmds import admin_app, staff_store
from fieldsync.cli.options import Home, Json, PassphraseFile, RecordArg
from fieldsync.cli.render import emit_json, err, literal, one_line, out
from fieldsync.core import evidence as core_evidence
from fieldsync.core import org
from fieldsync.core.evidence import Verdict
from fieldsync.errors import InputError, IntegrityError
from fieldsync.services import evidence

STYLES = {"ok": "green", "warning": "yellow", "failed": "bold red"}


def register(app: typer.Typer) -> None:
    admin_app.command("evidence")(evidence_command)
    app.command("evidence-verify")(verify_command)


def evidence_command(
    record: RecordArg,
    out_file: Annotated[Path, typer.Option("--out", help="The package to write (.zip).")],
    force: Annotated[bool, typer.Option("--force", help="Replace a file already there.")] = False,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """A self-verifying evidence package of one record, for investigators and courts."""
    evidence.check_target(out_file, force)  # before the passphrase
    with staff_store(home, passphrase_file) as store:
        built = evidence.build(store, record, out_file, force=force)
    if json:
        emit_json(
            {
                "path": str(built.path),
                "record": built.record,
                "versions": built.versions,
                "attachments": built.attachments,
                "receipts": built.receipts,
                "verification": built.verdict.to_json(),
            }
        )
        return
    out.print(
        literal(
            f"Wrote {built.path}: record {built.record}, {built.versions} version(s), "
            f"{built.attachments} attachment(s), {built.receipts} server receipt(s); "
            "checked after writing, as 'fieldsync evidence-verify' checks it."
        )
    )
    err.print(
        "It holds the decrypted record and its files: hand it over only to whom it is meant for.",
        markup=False,
    )


def verify_command(
    package: Annotated[Path, typer.Argument(help="The evidence package (.zip).")],
    org_file: Annotated[
        Path | None,
        typer.Option("--org", help="The organisation's published public keys (org-public.json)."),
    ] = None,
    org_log_file: Annotated[
        Path | None,
        typer.Option(
            "--org-log",
            help="The organisation's log as it stands now ('fieldsync admin org-log'): a key "
            "retired or revoked since signs no package after.",
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Check an evidence package offline: every signature, hash and commitment in it."""
    admin_key = None
    if org_file is not None:
        admin_key = org.parse(_read(org_file)).admin_key
    org_log = None
    if org_log_file is not None:
        org_log = core_evidence.read_log(_read(org_log_file))
    verdict = evidence.verify_file(package, admin_key, org_log)
    if json:
        emit_json(verdict.to_json())
    else:
        _render(verdict, anchored=admin_key is not None)
    if not verdict.holds:
        raise IntegrityError(
            "the evidence package does not verify: the failed checks above say what was altered",
            hint="Ask the organisation for a fresh package; do not rely on this one.",
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc.strerror}") from exc


def _render(verdict: Verdict, *, anchored: bool) -> None:
    table = Table("check", "about", "finding")
    for finding in verdict.findings:
        table.add_row(
            literal(finding.level, STYLES[finding.level]),
            literal(one_line(finding.subject)),  # a package's names are anyone's text
            literal(one_line(finding.statement)),
        )
    out.print(table)
    if not verdict.holds:
        return
    out.print(literal(f"The package holds: record {one_line(verdict.record)}."), style="bold green")
    fingerprint = one_line(verdict.organisation_fingerprint)
    if anchored:
        out.print(literal(f"Signed by the organisation whose fingerprint is {fingerprint}."))
    else:
        err.print(
            f"Compare the organisation fingerprint {fingerprint} with the one the "
            "organisation publishes (or give its public keys with --org): the check proves "
            "the package is intact and signed by that key, not whose key it is.",
            markup=False,
        )
