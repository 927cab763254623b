"""Cross-field rules that JSON Schema cannot express, named by a form's ``x-rules``.

``RULES`` are part of the form: they hold for every version, including those pulled from
others, and a pulled version that breaks one is set aside. ``ENTRY_RULES`` and the value checks
below are stricter, and hold only for what a person enters now (new, edit, import): records
entered by older versions may break them and must still pull, count and be resolvable, and a
date "after tomorrow" depends on the clock, which a signed rule checked on pull cannot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

FieldPath = tuple[str | int, ...]  # field names and list positions
EntryProblem = tuple[tuple[FieldPath, ...], str]  # the fields it is about, and its words


def _victim_totals(answers: dict[str, Any]) -> list[str]:
    """Listed individuals must fit inside the totals given beside them.

    The totals may count victims nobody could name, so they may exceed the list; they may never
    be smaller than it. Children are under 18; adult women are female and 18 or older.
    """
    victims = answers.get("victims")
    if not isinstance(victims, dict):
        return []
    people = [p for p in victims.get("individuals", []) if isinstance(p, dict)]
    total, children, women = (victims.get(k) for k in ("total", "children", "adult_women"))
    problems = []
    if isinstance(total, int):
        if people and total < len(people):
            problems.append(
                f"Victims › Total number of victims is {total}, but {len(people)} individual "
                "victims are listed"
            )
        if isinstance(children, int) and isinstance(women, int) and children + women > total:
            problems.append(
                f"Victims: children ({children}) and adult women ({women}) add up to more than "
                f"the total ({total})"
            )
    listed_children = sum(1 for p in people if isinstance(p.get("age"), int) and p["age"] < 18)
    listed_women = sum(
        1
        for p in people
        if p.get("sex") == "female" and isinstance(p.get("age"), int) and p["age"] >= 18
    )
    if isinstance(children, int) and children < listed_children:
        problems.append(
            f"Victims › Children is {children}, but {listed_children} listed victims are under 18"
        )
    if isinstance(women, int) and women < listed_women:
        problems.append(
            f"Victims › Adult women is {women}, but {listed_women} listed victims are adult women"
        )
    return problems


RULES: dict[str, Callable[[dict[str, Any]], list[str]]] = {"victim-totals": _victim_totals}


COUNT_NAMES = {"children": "children", "adult_women": "adult women"}


def _counts_within_total(answers: dict[str, Any]) -> list[EntryProblem]:
    """Each part of the breakdown, and the parts given together, fit inside the total, whatever
    is left out (the signed rule checks the sum only when both parts are given)."""
    victims = answers.get("victims")
    if not isinstance(victims, dict) or not _whole(victims.get("total")):
        return []
    total = victims["total"]
    given = {k: victims[k] for k in COUNT_NAMES if _whole(victims.get(k))}
    about = tuple(("victims", k) for k in ("total", *given))
    problems: list[EntryProblem] = [
        (about, f"Victims: {COUNT_NAMES[k]} ({n}) are more than the total ({total})")
        for k, n in given.items()
        if n > total
    ]
    if not problems and sum(given.values()) > total:
        parts = " and ".join(f"{COUNT_NAMES[k]} ({n})" for k, n in given.items())
        problems.append((about, f"Victims: {parts} add up to more than the total ({total})"))
    return problems


# Violations whose totals the report reads as the killed or the arrested (core/report.py).
TOTALS_READ_BY_VIOLATION = frozenset(
    {
        "extrajudicial_killing",
        "death_under_torture",
        "massacre",
        "arbitrary_arrest",
        "enforced_disappearance",
    }
)


def _outcome_where_it_is_read(answers: dict[str, Any]) -> list[EntryProblem]:
    """An outcome on a killing or an arrest would say one thing while the report counts
    another: there the totals are the killed or the arrested."""
    victims, violations = answers.get("victims"), answers.get("violations")
    if not isinstance(victims, dict) or victims.get("outcome") not in ("killed", "injured"):
        return []
    # they run beside the schema's problems, so on answers of any shape: strings only
    named = {v for v in violations if isinstance(v, str)} if isinstance(violations, list) else set()
    if not TOTALS_READ_BY_VIOLATION & named:
        return []
    return [
        (
            (("victims", "outcome"), ("violations",)),
            "Victims: what happened to them is given only for an incident that is neither a "
            "killing nor an arrest (for those the totals are the killed or the arrested); "
            "leave it out, and list anyone injured as an individual victim",
        )
    ]


def _victims_at_entry(answers: dict[str, Any]) -> list[EntryProblem]:
    return _counts_within_total(answers) + _outcome_where_it_is_read(answers)


ENTRY_RULES: dict[str, Callable[[dict[str, Any]], list[EntryProblem]]] = {
    "victim-totals": _victims_at_entry
}  # by the name of the form's rule they tighten at entry

DECIMAL = re.compile(r"-?[0-9]{1,3}(\.[0-9]{1,7})?")  # always with fullmatch
NOT_YET = "a date after tomorrow cannot have happened yet: check the year"


def value_problems(schema: dict[str, Any], value: object, today: date) -> list[str]:
    """What is wrong with one entered value under its field's entry annotations (docs/forms.md):
    ``x-range: [low, high]`` on decimal text, ``x-past: true`` on a date. Each problem is
    worded to follow the field's label."""
    problems = []
    bounds = schema.get("x-range")
    if isinstance(value, str) and isinstance(bounds, list) and DECIMAL.fullmatch(value):
        low, high = bounds
        if not low <= float(value) <= high:
            problems.append(f"must be from {low} to {high} (not {value})")
    if schema.get("x-past") and isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return problems  # the schema names a date that is not one
        # One day of slack: "today" somewhere east of UTC is already tomorrow here.
        if day > today + timedelta(days=1):
            problems.append(f"is {value}, but {NOT_YET}")
    return problems


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
