"""``conflicts`` and ``resolve``: seeing and settling fields that two people changed differently."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import typer
from rich.table import Table

from fieldsync.cli.options import Home, Json, PassphraseFile, RecordArg, unlocked
from fieldsync.cli.render import emit_json, iso, literal, one_line, out, when
from fieldsync.core.merge import MISSING, Competing
from fieldsync.errors import InputError
from fieldsync.services import reading, settling


def conflicts(
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """The records in conflict: each field's competing values, who set them and when."""
    with unlocked(home, passphrase_file) as store:
        found = settling.conflicted(store)
        label = reading.author_labels(store)
    if json:
        emit_json([_conflict_json(view, label) for view in found])
        return
    if not found:
        out.print("No record is in conflict.", markup=False)
        return
    for view in found:
        summary = one_line(view.form.summary(view.body.answers))
        out.print(literal(f"{view.record}  {summary}", "bold"))
        table = Table("field", "#", "value", "set by", "when")
        for conflict in view.conflicts:
            for n, competing in enumerate(conflict.values, start=1):
                version = settling.version_that_set(view, competing)
                mark = "  (shown)" if n == len(conflict.values) else ""
                table.add_row(
                    literal(one_line(conflict.path) if n == 1 else ""),
                    str(n),
                    literal(one_line(_shown(competing.value)) + mark),  # one row each
                    literal(one_line(label(version.entry.header.author))),
                    when(version.entry.header.hlc.wall_ms),
                )
        out.print(table)
    out.print(
        f"{len(found)} record(s) in conflict. Settle one with: fieldsync resolve RECORD "
        "--field FIELD --take N (or --value V)",
        markup=False,
    )


def _conflict_json(view: reading.RecordView, label: Any) -> dict[str, Any]:
    return {
        "record": view.record,
        "form": view.form.ref,
        "heads": list(view.heads),
        "fields": [
            {
                "field": c.path,
                "values": [
                    _value_json(view, label, n, v, n == len(c.values))
                    for n, v in enumerate(c.values, start=1)
                ],
            }
            for c in view.conflicts
        ],
    }


def _value_json(
    view: reading.RecordView, label: Any, number: int, competing: Competing, shown: bool
) -> dict[str, Any]:
    header = settling.version_that_set(view, competing).entry.header
    return {
        "number": number,
        "value": None if competing.value is MISSING else competing.value,
        "removed": competing.value is MISSING,
        "versions": list(competing.versions),
        "set_by": label(header.author),
        "time": iso(header.hlc.wall_ms),
        "shown": shown,
    }


def _shown(value: Any) -> str:
    if value is MISSING:
        return "(removed)"
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "…"
    return jsonlib.dumps(value, ensure_ascii=False, sort_keys=True)


def resolve(
    record: RecordArg,
    field: Annotated[
        list[str],
        typer.Option("--field", help="A field in conflict, as 'conflicts' names it (repeatable)."),
    ],
    take: Annotated[
        list[int] | None,
        typer.Option("--take", help="Keep competing value N of the field given in that place."),
    ] = None,
    value: Annotated[
        list[str] | None,
        typer.Option("--value", help="Or give the value (one field at a time)."),
    ] = None,
    home: Home = None,
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Settle a record's conflict: a new signed version, with every head as a parent."""
    takes, values = take or [], value or []
    if values and (takes or len(field) != 1 or len(values) != 1):
        raise InputError("--value settles exactly one --field; use --take to settle several")
    if not values and len(takes) != len(field):
        raise InputError("give one --take N for each --field, in the same order")
    choices: list[tuple[str, int | None, str | None]] = (
        [(field[0], None, values[0])]
        if values
        else [(f, n, None) for f, n in zip(field, takes, strict=True)]
    )
    with unlocked(home, passphrase_file) as store:
        full = store.resolve_record(record)
        version = settling.resolve(store, full, choices)
    if json:
        emit_json({"record": full, "version": version, "settled": [c[0] for c in choices]})
        return
    out.print(
        f"Settled {', '.join(c[0] for c in choices)} of {full} in a new version ({version[:12]}). "
        "Push it like any other.",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(conflicts)
    app.command()(resolve)
