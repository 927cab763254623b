"""Addresses of one answer, list entries by number (core/paths.py)."""

from __future__ import annotations

import pytest

from fieldsync.core import paths
from fieldsync.errors import InputError
from fieldsync.services.forms import get_form

FORM = get_form("incident")


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("victims.total", ("victims", "total")),
        ("victims.individuals[2].age", ("victims", "individuals", 1, "age")),
        ("victims.individuals[+]", ("victims", "individuals", paths.APPEND)),
        ("victims.individuals", ("victims", "individuals")),
        (" sources[1].type ", ("sources", 0, "type")),
    ],
)
def test_an_address_is_read_and_written_back_the_same(text: str, steps: tuple) -> None:
    address = paths.locate(FORM, text)
    assert address.steps == steps
    assert address.text == text.strip()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("victims.individuals.age", "say which one by its number"),
        ("victims.individuals[0].age", "counted from 1"),
        ("victims.total[1]", "is not a list of entries"),
        ("victims.individuals[+].age", "[+] adds a whole entry"),
        ("victims.nothing", "has no field 'victims.nothing'"),
        ("victims..total", "is not a field name"),
        ("victims.individuals[-1].age", "is not a field name"),
    ],
)
def test_an_address_that_cannot_be_used_says_how_to_write_it(text: str, said: str) -> None:
    with pytest.raises(InputError, match=said.replace("[", r"\[").replace("+", r"\+")):
        paths.locate(FORM, text)


def test_put_creates_groups_but_never_replaces_a_value_of_another_shape() -> None:
    answers: dict = {}
    paths.put(answers, ("location", "coordinates", "latitude"), 36.2)
    assert answers == {"location": {"coordinates": {"latitude": 36.2}}}
    odd = {"victims": {"individuals": ["not an entry"]}}
    with pytest.raises(InputError, match=r"victims.individuals\[1\] holds a str"):
        paths.put(odd, ("victims", "individuals", 0, "age"), 3)
    with pytest.raises(InputError, match="victims holds a list"):
        paths.put({"victims": []}, ("victims", "total"), 3)


def test_entries_are_added_changed_and_removed_by_position() -> None:
    answers: dict = {"victims": {"individuals": [{"age": 1}]}}
    paths.put(answers, ("victims", "individuals", paths.APPEND), {"age": 2})
    paths.put(answers, ("victims", "individuals", 0, "age"), 5)
    assert paths.get(answers, ("victims", "individuals", 1, "age")) == 2
    assert paths.get(answers, ("victims", "individuals", 7, "age")) is None
    with pytest.raises(InputError, match="has 2 entries, so there is no"):
        paths.put(answers, ("victims", "individuals", 4, "age"), 3)
    paths.remove(answers, ("victims", "individuals", 0))
    paths.remove(answers, ("victims", "individuals", 5))  # nothing there: nothing removed
    assert answers == {"victims": {"individuals": [{"age": 2}]}}
