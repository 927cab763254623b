"""What a person enters now is held to more than the form (issue 16, item 4): coordinates in
range, breakdowns inside their total whatever is left out, no date after tomorrow. Records
entered by older versions, read without ``entering``, still fit the form as before."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fieldsync.core import report, rules
from fieldsync.errors import AnswersInvalid
from fieldsync.services.forms import get_form
from tests.conftest import example

TODAY = date(2026, 12, 3)


def incident(**changes: Any) -> dict[str, Any]:
    answers = example("incident")
    answers.update(changes)
    return answers


def entering(answers: dict[str, Any], form: str = "incident", **kw: Any) -> list[str]:
    return get_form(form).problems(answers, entering=True, today=TODAY, **kw)


def at(latitude: str, longitude: str) -> dict[str, Any]:
    answers = incident()
    answers["location"]["coordinates"] = {"latitude": latitude, "longitude": longitude}
    return answers


@pytest.mark.parametrize(
    ("latitude", "longitude", "wrong"),
    [
        ("36.2", "200", "Longitude (decimal degrees) must be from -180 to 180 (not 200)"),
        ("95", "37.1", "Latitude (decimal degrees) must be from -90 to 90 (not 95)"),
        ("36.2", "-500", "Longitude (decimal degrees) must be from -180 to 180 (not -500)"),
        ("90.0000001", "37.1", "Latitude (decimal degrees) must be from -90 to 90"),
    ],
)
def test_coordinates_out_of_range_are_refused_at_entry(
    latitude: str, longitude: str, wrong: str
) -> None:
    found = entering(at(latitude, longitude))
    assert len(found) == 1 and found[0].startswith(f"Location › Coordinates › {wrong}")
    assert get_form("incident").problems(at(latitude, longitude)) == []  # as pull reads it


def test_coordinates_at_the_edges_are_accepted() -> None:
    assert entering(at("-90", "180")) == entering(at("90", "-180.0")) == []
    answers = example("disappearance")
    answers["location"]["coordinates"] = {"latitude": "33.5", "longitude": "-181"}
    assert entering(answers, "disappearance") == [
        "Location › Coordinates › Longitude (decimal degrees) must be from -180 to 180 (not -181)"
    ]


@pytest.mark.parametrize(
    ("victims", "wrong"),
    [
        ({"total": 3, "children": 5}, "Victims: children (5) are more than the total (3)"),
        ({"total": 3, "adult_women": 4}, "Victims: adult women (4) are more than the total (3)"),
        ({"total": 0, "children": 1}, "Victims: children (1) are more than the total (0)"),
    ],
)
def test_a_part_larger_than_the_total_is_refused_whatever_is_left_out(
    victims: dict[str, int], wrong: str
) -> None:
    answers = incident(victims=victims)
    assert entering(answers) == [wrong]
    assert get_form("incident").problems(answers) == []  # an older version's record still fits


def test_parts_that_fit_alone_and_together_are_accepted() -> None:
    assert entering(incident(victims={"total": 3, "children": 3})) == []
    assert entering(incident(victims={"total": 3, "children": 1, "adult_women": 2})) == []
    assert entering(incident(victims={"children": 3})) == []  # no total to exceed


def test_a_date_after_tomorrow_is_refused_saying_why() -> None:
    why = "a date after tomorrow cannot have happened yet: check the year"
    assert entering(incident(date="2099-03-05")) == [
        f"Date of the incident is 2099-03-05, but {why}"
    ]
    assert entering(incident(date="2026-12-05")) == [
        f"Date of the incident is 2026-12-05, but {why}"
    ]
    assert entering(incident(date="2026-12-04")) == []  # tomorrow: already today east of UTC
    assert get_form("incident").problems(incident(date="2099-03-05")) == []


def test_every_date_of_every_form_is_checked_inside_lists_too() -> None:
    answers = example("disappearance")
    answers["status_updates"] = [
        {"date": "2014-01-01", "status": "missing"},
        {"date": "2140-01-01", "status": "missing"},
    ]
    found = entering(answers, "disappearance")
    assert len(found) == 1 and found[0].startswith("Status updates #2 › Date is 2140-01-01, but")
    interview = example("interview")
    interview["interview_date"] = "2099-01-01"
    assert len(entering(interview, "interview")) == 1


def test_an_edit_is_held_to_the_entry_checks_only_on_the_fields_it_changes() -> None:
    old = incident(date="2099-03-05", victims={"total": 3, "children": 5})  # an older version's
    renarrated = incident(date="2099-03-05", victims={"total": 3, "children": 5}, narrative="x")
    assert entering(renarrated, before=old) == []
    recounted = incident(date="2099-03-05", victims={"total": 4, "children": 5})
    assert entering(recounted, before=old) == ["Victims: children (5) are more than the total (4)"]
    with pytest.raises(AnswersInvalid):
        get_form("incident").validate(recounted, entering=True, before=old)


def test_a_typed_value_is_checked_as_it_is_typed() -> None:
    form = get_form("incident")
    longitude = form.field("location.coordinates.longitude")
    assert form.check_value(longitude, "200", today=TODAY) == [
        "Location › Coordinates › Longitude (decimal degrees) must be from -180 to 180 (not 200)"
    ]
    day = form.check_value(form.field("date"), "2099-01-01", today=TODAY)
    assert len(day) == 1 and "cannot have happened yet" in day[0]


def test_entry_problems_are_listed_beside_the_forms_own() -> None:
    answers = incident(date="2099-03-05", date_precision="sometimes")
    found = entering(answers)
    assert len(found) == 2 and found[0].startswith("How precise is the date must be one of")
    assert "cannot have happened yet" in found[1]


def test_an_outcome_is_refused_where_the_violation_already_says_what_the_totals_are() -> None:
    killing = incident(
        violations=["extrajudicial_killing"], victims={"total": 3, "outcome": "injured"}
    )
    (found,) = entering(killing)
    assert "neither a killing nor an arrest" in found
    assert get_form("incident").problems(killing) == []  # the report reads the totals as killed
    killing["victims"]["outcome"] = "unknown"
    assert entering(killing) == []
    landmine = incident(violations=["landmine_erw"], victims={"total": 3, "outcome": "injured"})
    assert entering(landmine) == []


def test_the_entry_check_and_the_report_agree_on_which_totals_the_violation_reads() -> None:
    assert rules.TOTALS_READ_BY_VIOLATION == report.KILLING | report.ARREST


@pytest.mark.parametrize(
    "violations",
    [[{}], [["torture"]], "massacre", [None, 3]],
    ids=["object", "list", "text", "odd"],
)
def test_answers_of_any_shape_are_refused_in_words_not_a_crash(violations: Any) -> None:
    """The entry checks run beside the schema's problems, so on answers that fail it too: a
    list where a word belongs once raised a TypeError (exit 1, and an import lost its place)."""
    answers = example("incident")
    answers["violations"] = violations
    answers["victims"]["outcome"] = "killed"
    problems = get_form("incident").problems(answers, entering=True)
    assert problems and all(isinstance(p, str) for p in problems)


@pytest.mark.parametrize("text", ["200\n", " 36.2", "36.2\n", "١٢"])
def test_a_coordinate_is_checked_as_the_whole_text(text: str) -> None:
    answers = example("incident")
    answers["location"]["coordinates"] = {"latitude": text, "longitude": "36.6"}
    with pytest.raises(AnswersInvalid):
        get_form("incident").validate(answers, entering=True)
