from __future__ import annotations

from typing import Any

import pytest

from fieldsync.core import forms
from fieldsync.errors import AnswersInvalid, InputError, MalformedData
from fieldsync.services.forms import builtin_forms, get_form
from tests.conftest import example


@pytest.mark.parametrize("name", ["incident", "interview", "disappearance"])
def test_builtin_forms_accept_their_examples(name: str) -> None:
    form = get_form(name)
    assert form.problems(example(name)) == []
    assert form.title and form.title_ar
    for field in form.walk():
        assert field.label and field.label_ar, field.dotted


def test_taxonomy_of_design_section_6_is_present() -> None:
    incident = get_form("incident")
    violations = {c.value for c in incident.field("violations").choices}
    assert {
        "extrajudicial_killing",
        "enforced_disappearance",
        "attack_on_vital_facility",
        "outlawed_weapon",
        "siege_starvation",
        "landmine_erw",
    } <= violations
    parties = {c.value for c in incident.field("perpetrator.parties").choices}
    assert {
        "regime_army",
        "russian_forces",
        "hts",
        "isis",
        "sdf",
        "turkish_forces",
        "landmines_unknown_origin",
        "unknown_persons",
    } <= parties
    assert len(incident.field("location.governorate").choices) == 14
    assert incident.field("location.coordinates").sensitive
    assert incident.field("victims.individuals.name").sensitive
    assert get_form("disappearance").field("family_contact").sensitive


def problems(name: str, **changes: object) -> list[str]:
    answers = example(name) | changes
    return get_form(name).problems(answers)


def test_errors_name_the_field_in_words() -> None:
    found = problems("incident", date="2024-02-30")
    assert found == [
        "Date of the incident must be a real date written YYYY-MM-DD (e.g. 2024-03-05), not "
        "'2024-02-30'"
    ]
    missing = get_form("incident").problems(
        {k: v for k, v in example("incident").items() if k != "narrative"}
    )
    assert missing == ["Narrative is required"]
    wrong_choice = problems("incident", location={"governorate": "gaza"})
    assert wrong_choice[0].startswith("Location › Governorate must be one of: damascus")


def test_joint_attribution_needs_two_parties_and_facility_attacks_need_a_type() -> None:
    one_party = problems(
        "incident", perpetrator={"parties": ["regime_army"], "attribution": "joint_undetermined"}
    )
    assert one_party == [
        "Perpetrator › Parties must list at least two parties when the attribution is joint"
    ]
    answers = example("incident")
    del answers["facility_type"]
    assert get_form("incident").problems(answers) == ["Type of facility attacked is required"]


def test_victim_totals_must_agree_with_listed_individuals() -> None:
    incident = get_form("incident")
    answers = example("incident")
    answers["victims"]["total"] = 1
    assert any("2 individual victims are listed" in p for p in incident.problems(answers))
    answers = example("incident")
    answers["victims"]["children"] = 0
    assert any("1 listed victims are under 18" in p for p in incident.problems(answers))
    answers = example("incident")
    answers["victims"].update(total=2, children=2, adult_women=1)
    assert any("add up to more than the total" in p for p in incident.problems(answers))
    answers = example("incident")
    answers["victims"] = {"total": 10}  # totals alone, nobody named: fine
    assert incident.problems(answers) == []


def test_unknown_fields_and_non_objects_are_refused() -> None:
    assert problems("interview", nickname="x") == ["the answers have an unknown field: nickname"]
    assert problems("interview", nickname="x", alias="y") == [
        "the answers have unknown fields: alias, nickname"
    ]
    location = example("incident")["location"] | {"street": "x"}
    assert problems("incident", location=location) == ["an unknown field in Location: street"]
    assert get_form("interview").problems(["not", "an", "object"]) == [
        "the answers must be a set of named fields (a JSON object)"
    ]
    with pytest.raises(AnswersInvalid, match="interview form"):
        get_form("interview").validate({})


def test_typed_text_becomes_the_field_type() -> None:
    incident = get_form("incident")
    assert incident.field("victims.total").parse(" 12 ") == 12
    assert incident.field("violations").parse("massacre, torture") == ["massacre", "torture"]
    assert incident.field("location.governorate").parse("حلب") == "aleppo"
    assert incident.field("location.governorate").parse("Aleppo") == "aleppo"
    assert get_form("interview").field("consent.record").parse("نعم") is True
    with pytest.raises(InputError, match="whole number"):
        incident.field("victims.total").parse("three")


def test_a_schema_without_identity_is_refused() -> None:
    with pytest.raises(MalformedData):
        forms.load({"type": "object"})
    with pytest.raises(MalformedData):
        forms.load({"type": "object", "x-form": "x", "x-version": 1, "x-rules": ["nope"]})
    with pytest.raises(MalformedData):
        forms.load({"type": 5, "x-form": "x", "x-version": 1})


def test_builtin_forms_are_three() -> None:
    assert sorted(builtin_forms()) == ["disappearance", "incident", "interview"]


RECORD = "01890a5d-ac96-774b-bcce-b302099a8057"


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("incident", ["location", "coordinates"], {"latitude": "36.2\n", "longitude": "37.1"}),
        ("incident", ["location", "coordinates"], {"latitude": "٣٦.٢", "longitude": "37.1"}),
        ("incident", ["victims", "individuals", 0, "id"], RECORD + "\n"),
        ("interview", ["linked_incidents"], [RECORD + "\n"]),
        ("interview", ["linked_incidents"], [RECORD.upper()]),
    ],
)
def test_a_pattern_takes_one_spelling_only(name: str, path: list[object], value: object) -> None:
    """jsonschema matches a pattern with Python's ``re.search``: ``$`` there also matches before a
    final newline and ``\\d`` takes any script's digits, where ECMA-262's take neither."""
    answers = example(name)
    assert form_problems(name, answers) == []
    *parents, last = path
    place: Any = answers
    for step in parents:
        place = place.setdefault(step, {}) if isinstance(step, str) else place[step]
    place[last] = value
    assert form_problems(name, answers) != []


def form_problems(name: str, answers: object) -> list[str]:
    return get_form(name).problems(answers)
