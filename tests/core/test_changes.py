"""core/changes.py: what a version changed, value by value, list entries matched by id."""

from __future__ import annotations

import copy
from typing import Any

from fieldsync.core.changes import diff
from fieldsync.services.forms import get_form
from tests.conftest import example

FORM = get_form("incident")


def answers() -> dict[str, Any]:
    given = example("incident")
    for n, victim in enumerate(given["victims"]["individuals"]):
        victim["id"] = f"victim-{n}"
    return given


def said(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(c.path, c.old, c.new) for c in diff(FORM, before, after)]


def test_entries_that_only_move_change_nothing() -> None:
    before = answers()
    after = copy.deepcopy(before)
    after["victims"]["individuals"].reverse()
    assert said(before, after) == []


def test_a_moved_entry_is_named_where_it_is_now() -> None:
    before = answers()
    after = copy.deepcopy(before)
    after["victims"]["individuals"].reverse()
    after["victims"]["individuals"][0]["age"] = 35  # the second victim, now first
    assert said(before, after) == [("victims.individuals[1].age", 34, 35)]


def test_entries_without_ids_are_compared_by_position() -> None:
    before = example("incident")  # entries with no ids, as in a hand-made record
    after = copy.deepcopy(before)
    del after["victims"]["individuals"][0]
    changed = said(before, after)
    assert ("victims.individuals[1].name", "سارة", "محمد") in changed
    assert ("victims.individuals[2].name", "محمد", None) in changed


def test_an_answer_the_form_does_not_describe_is_a_change_too() -> None:
    before = answers()
    after = copy.deepcopy(before) | {"typed_by_hand": "x"}
    (change,) = diff(FORM, before, after)
    assert (change.path, change.field, change.new) == ("typed_by_hand", None, "x")
    assert not change.sensitive


def test_sensitive_answers_are_marked_one_by_one() -> None:
    before = answers()
    after = copy.deepcopy(before)
    after["victims"]["individuals"].append({"id": "new", "name": "ليلى", "age": 3})
    marked = {c.path: c.sensitive for c in diff(FORM, before, after)}
    assert marked == {"victims.individuals[3].name": True, "victims.individuals[3].age": False}
