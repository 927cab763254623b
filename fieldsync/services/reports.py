"""``fieldsync admin report``: monthly tallies from the records this store holds."""

from __future__ import annotations

from collections.abc import Iterator

from fieldsync.core import report
from fieldsync.core.report import Period, Report, Source
from fieldsync.errors import InputError
from fieldsync.services.every_record import Unreadable, every_record
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store

# The fields whose choices name a report's rows.
LABELLED = {
    "incident": (
        "location.governorate",
        "perpetrator.parties",
        "facility_type",
        "weapons",
        "violations",
    ),
    "disappearance": ("perpetrator_party",),
}


def monthly(store: Store, period: Period | None = None, governorate: str | None = None) -> Report:
    """Tallies of the incident and disappearance records whose dates fall in ``period``."""
    if governorate is not None and governorate not in report.GOVERNORATES:
        raise InputError(
            f"{governorate!r} is not a governorate",
            hint="Use one of: " + ", ".join(report.GOVERNORATES) + ".",
        )
    unreadable: list[tuple[str, str]] = []
    found = report.tally(_sources(store, unreadable), period, governorate, choice_labels())
    found.excluded.extend(unreadable)
    return found


def _sources(store: Store, unreadable: list[tuple[str, str]]) -> Iterator[Source]:
    for view in every_record(store, LABELLED):
        if isinstance(view, Unreadable):
            unreadable.append((view.record, view.reason))
            continue
        yield Source(view.record, view.form.id, view.body.answers, view.in_conflict)


def choice_labels() -> dict[str, str]:
    """English labels of the choices a report's rows are named by."""
    labels: dict[str, str] = {}
    for form_id, fields in LABELLED.items():
        form = get_form(form_id)
        for dotted in fields:
            labels.update((c.value, c.label) for c in form.field(dotted).choices)
    return labels
