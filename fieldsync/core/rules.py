"""Cross-field rules that JSON Schema cannot express, named by a form's ``x-rules``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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
