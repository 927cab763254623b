"""``fieldsync admin report``: the tallies of a monthly human-rights report."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fieldsync.cli import chart
from fieldsync.cli.admin_cmds import admin_app, staff_store
from fieldsync.cli.options import Home, Json, PassphraseFile
from fieldsync.cli.render import emit_json, err, literal, out, safe
from fieldsync.core.report import Period, Report, Row, Section
from fieldsync.errors import InputError
from fieldsync.services import reports

SHOWN_PROBLEMS = 20  # records not counted, named one by one before "and N more"


def register(_app: typer.Typer) -> None:
    admin_app.command("report")(report)


def report(
    month: Annotated[
        str | None, typer.Option("--month", help="One month of incidents, YYYY-MM.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First day of incidents, YYYY-MM-DD.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day of incidents, YYYY-MM-DD.")
    ] = None,
    governorate: Annotated[
        str | None, typer.Option("--governorate", help="Only this governorate (e.g. idlib).")
    ] = None,
    chart_file: Annotated[
        Path | None,
        typer.Option("--chart", help="Also draw the monthly series to this .png, .svg or .pdf."),
    ] = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Tallies of killings, arrests and attacks by perpetrator party and governorate."""
    period = _period(month, start, end)
    if chart_file is not None:
        chart.check_target(chart_file)
    with staff_store(home, passphrase_file) as store:
        found = reports.monthly(store, period, governorate)
    document = found.to_json()
    if chart_file is not None:
        title = f"fieldsync report: {period.label}"
        chart.draw(chart_file, document["monthly"], title, period.start, period.end)
    if json:
        emit_json(document)
    else:
        _render(found)
    if chart_file is not None:
        err.print(f"Drew the monthly series to {safe(chart_file)}", markup=False)


def _period(month: str | None, start: str | None, end: str | None) -> Period:
    if month and (start or end):
        raise InputError("give either --month or --from/--to, not both")
    try:
        if month:
            return Period.month(month)
        return Period.between(_day(start), _day(end))
    except ValueError as exc:
        raise InputError(str(exc), hint="Months are YYYY-MM, days YYYY-MM-DD.") from exc


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a day written YYYY-MM-DD") from None


# --- the terminal ------------------------------------------------------------------------

HEADINGS = {
    "killed": "killed",
    "children": "children",
    "adult_women": "women",
    "died_under_torture": "under torture",
    "massacres": "massacres",
    "incidents": "incidents",
    "arrested": "arrested",
    "records": "records",
    "attacks": "attacks",
}


def _render(found: Report) -> None:
    where = f", {found.label(found.governorate)}" if found.governorate else ""
    out.print(
        literal(f"{found.period.heading}{where}: {found.counted} records counted"),
        style="bold",
    )
    if found.in_conflict:
        out.print(
            literal(
                f"{len(found.in_conflict)} of them are in conflict and counted with their "
                "provisional values (fieldsync conflicts lists them)"
            ),
            style="yellow",
        )
    _tables(
        found.killings, "Civilians killed", {"party": "perpetrator", "governorate": "governorate"}
    )
    _tables(
        found.arrests,
        "Arbitrary arrests and enforced disappearances",
        {"party": "perpetrator", "governorate": "governorate"},
    )
    _tables(
        found.facility_attacks,
        "Attacks on vital civilian facilities",
        {"facility": "facility", "party": "perpetrator"},
    )
    _tables(
        found.weapon_attacks,
        "Attacks with outlawed weapons",
        {"weapon": "weapon (an attack with two counts under each)", "party": "perpetrator"},
    )
    if len(found.series) > 1:
        _series(found)
    _notes(found)


def _tables(section: Section, title: str, breakdowns: dict[str, str]) -> None:
    for name, heading in breakdowns.items():
        table = Table(title=f"{title}, by {heading.split(' (')[0]}", title_justify="left")
        table.add_column(heading)
        for metric in section.metrics:
            table.add_column(HEADINGS[metric], justify="right")
        for row in section.breakdowns[name].ordered():
            if not any(row.counts.values()):
                continue
            table.add_row(literal(row.label), *_cells(row, section))
            shown = [r for r in row.rows.values() if r.label != row.label or len(row.rows) > 1]
            for sub in sorted(shown, key=lambda r: r.key):
                table.add_row(literal(f"  └ {sub.label}", "dim"), *_cells(sub, section, "dim"))
        table.add_section()
        table.add_row(
            literal("Total", "bold"),
            *(literal(str(section.totals[m]), "bold") for m in section.metrics),
        )
        out.print(table)


def _cells(row: Row, section: Section, style: str = "") -> list[Any]:
    return [literal(str(row.counts[m]), style) for m in section.metrics]


def _series(found: Report) -> None:
    table = Table(title="By month of the incident", title_justify="left")
    columns = {
        "killed": "killed",
        "children_killed": "children",
        "women_killed": "women",
        "died_under_torture": "torture",
        "massacres": "massacres",
        "arrested": "arrests",
        "facility_attacks": "facilities",
        "weapon_attacks": "weapons",
    }
    table.add_column("month")
    for heading in columns.values():
        table.add_column(heading, justify="right")
    for month in sorted(found.series):
        table.add_row(month, *(str(found.series[month][c]) for c in columns))
    out.print(table)


def _notes(found: Report) -> None:
    if found.mixed:
        out.print(
            literal(
                f"{found.mixed} incident(s) record both killings and arrests: their victims are "
                "counted from the individuals listed, by status"
            )
        )
    if found.uncertain:
        out.print(
            literal(
                f"{len(found.uncertain)} record(s) are dated only partly inside this period "
                "(by month or year) and are not counted; widen the period to count them"
            ),
            style="yellow",
        )
    _listed(found.excluded, "record(s) could not be counted")
    _listed(found.partly, "record(s) were counted only in part")


def _listed(found: list[tuple[str, str]], what: str) -> None:
    """Records with the reason, the first ``SHOWN_PROBLEMS`` of them (``--json`` has all)."""
    if not found:
        return
    out.print(literal(f"{len(found)} {what}:"), style="yellow")
    for record, why in found[:SHOWN_PROBLEMS]:
        out.print(literal(f"  {record}: {why}"))
    if len(found) > SHOWN_PROBLEMS:
        out.print(literal(f"  and {len(found) - SHOWN_PROBLEMS} more (--json lists every one)"))
