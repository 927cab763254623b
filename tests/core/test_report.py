"""Report tallies: the counting rules on worked cases, reconciliation on generated data, and
hostile answers that are listed rather than counted or crashed on."""

from __future__ import annotations

import copy
import random
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsync.core.report import Period, Report, Source, tally
from fieldsync.services.reports import choice_labels
from tests import generated
from tests.conftest import example


def incident(**changes: Any) -> dict[str, Any]:
    answers = copy.deepcopy(example("incident"))
    answers.update(changes)
    return answers


def killing(total: int = 3, children: int = 1, women: int = 1, **changes: Any) -> dict[str, Any]:
    base = {
        "violations": ["extrajudicial_killing"],
        "victims": {"total": total, "children": children, "adult_women": women},
        "perpetrator": {"parties": ["russian_forces"], "attribution": "confirmed"},
    }
    base.update(changes)
    answers = incident(**base)
    for field in ("weapons", "facility_type"):  # the demo's hospital attack has both
        if field not in changes:
            answers.pop(field)
    return answers


def rows(section: dict[str, Any], breakdown: str) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in section[f"by_{breakdown}"]}


def test_a_killing_counts_its_totals_less_those_listed_alive() -> None:
    answers = killing(
        total=5,
        children=2,
        women=1,
        victims={
            "total": 5,
            "children": 2,
            "adult_women": 1,
            "individuals": [
                {"age": 7, "sex": "female", "status": "killed"},
                {"age": 34, "sex": "male", "status": "injured"},
            ],
        },
    )
    found = tally([Source("r1", "incident", answers)]).to_json()["killings"]
    assert found["totals"]["killed"] == 4  # five victims, one of them listed as injured
    assert found["totals"]["children"] == 2
    assert found["totals"]["adult_women"] == 1
    assert rows(found, "party")["russian_forces"]["killed"] == 4


def test_joint_undetermined_is_its_own_row_never_split_or_counted_twice() -> None:
    joint = {"parties": ["regime_army", "russian_forces"], "attribution": "joint_undetermined"}
    found = tally([Source("r1", "incident", killing(total=6, perpetrator=joint))]).to_json()
    by_party = rows(found["killings"], "party")
    assert by_party["syrian_regime"]["killed"] == 0
    assert by_party["russian_forces"]["killed"] == 0
    joint_row = by_party["joint:syrian_regime+russian_forces"]
    assert joint_row["killed"] == 6
    assert joint_row["label"] == "Joint, undetermined: Syrian regime forces / Russian forces"
    assert sum(row["killed"] for row in found["killings"]["by_party"]) == 6


def test_parties_of_one_main_party_count_under_it_with_a_finer_row() -> None:
    joint = {"parties": ["regime_security", "regime_army"], "attribution": "joint_undetermined"}
    found = tally([Source("r1", "incident", killing(perpetrator=joint))], labels=choice_labels())
    regime = rows(found.to_json()["killings"], "party")["syrian_regime"]
    assert regime["killed"] == 3
    assert [r["label"] for r in regime["rows"]] == ["joint, undetermined: army / security services"]


def test_unknown_attribution_is_not_identified_not_the_suspected_party() -> None:
    unknown = {"parties": ["isis"], "attribution": "unknown"}
    found = tally([Source("r1", "incident", killing(perpetrator=unknown))]).to_json()
    other = rows(found["killings"], "party")["other_parties"]
    assert other["killed"] == 3
    assert other["rows"][0]["key"] == "not_identified"
    assert rows(found["killings"], "party")["extremist_groups"]["killed"] == 0


def test_the_incident_date_decides_the_month_not_when_it_was_recorded() -> None:
    march = Source("r1", "incident", killing(date="2024-03-31"))
    april = Source("r2", "incident", killing(date="2024-04-01", victims={"total": 2}))
    found = tally([march, april], Period.month("2024-04")).to_json()
    assert found["killings"]["totals"]["killed"] == 2
    assert found["records_counted"] == 1
    assert [m["month"] for m in found["monthly"]] == ["2024-04"]


def test_dates_known_only_by_month_or_year_count_only_where_wholly_inside() -> None:
    by_month = Source("m", "incident", killing(date="2024-03-01", date_precision="month"))
    by_year = Source("y", "incident", killing(date="2024-01-01", date_precision="year"))
    march = tally([by_month, by_year], Period.month("2024-03")).to_json()
    assert march["records_counted"] == 1
    assert [d["record"] for d in march["dates_partly_in_period"]] == ["y"]
    whole_year = tally([by_month, by_year], Period.between(date(2024, 1, 1), date(2024, 12, 31)))
    assert whole_year.counted == 2
    assert whole_year.series["2024-03"]["killed"] == 3  # the year-only one has no month


def test_an_incident_of_killings_and_arrests_counts_listed_people_by_status() -> None:
    answers = killing(
        violations=["extrajudicial_killing", "arbitrary_arrest"],
        victims={
            "total": 9,
            "individuals": [
                {"status": "killed", "age": 30},
                {"status": "detained", "age": 12},
                {"status": "disappeared", "age": 40, "sex": "female"},
            ],
        },
    )
    found = tally([Source("r1", "incident", answers)])
    assert found.killings.totals["killed"] == 1
    assert found.arrests.totals["arrested"] == 2
    assert found.arrests.totals["children"] == 1
    assert found.arrests.totals["adult_women"] == 1
    assert found.mixed == 1


def test_torture_massacres_disappearances_facilities_and_weapons() -> None:
    torture = killing(violations=["death_under_torture"], victims={"total": 1})
    massacre = killing(violations=["massacre"], victims={"total": 12})
    facility = incident()  # the demo's attack on a hospital with cluster munitions
    person = {"name": "x", "sex": "female", "age": 15}
    missing = {**example("disappearance"), "person": person, "perpetrator_party": "sdf"}
    found = tally(
        [
            Source("t", "incident", torture),
            Source("m", "incident", massacre),
            Source("f", "incident", facility),
            Source("d", "disappearance", missing),
            Source("i", "interview", example("interview")),
        ]
    ).to_json()
    assert found["killings"]["totals"]["died_under_torture"] == 1
    assert found["killings"]["totals"]["massacres"] == 1
    assert found["killings"]["totals"]["killed"] == 1 + 12 + 1  # the hospital: one listed dead
    assert rows(found["arrests"], "party")["sdf"]["arrested"] == 1
    assert found["arrests"]["totals"]["children"] == 1
    assert rows(found["facility_attacks"], "facility")["medical_facility"]["attacks"] == 1
    assert rows(found["weapon_attacks"], "weapon")["cluster_munitions"]["attacks"] == 1
    assert found["records_counted"] == 4  # an interview is not counted


def test_records_in_conflict_are_counted_and_named() -> None:
    found = tally([Source("r1", "incident", killing(), in_conflict=True)]).to_json()
    assert found["records_in_conflict"] == ["r1"]
    assert found["killings"]["records_in_conflict"] == 1
    assert found["killings"]["totals"]["killed"] == 3


def test_a_governorate_keeps_only_its_records() -> None:
    idlib = Source("a", "incident", killing(location={"governorate": "idlib"}))
    homs = Source("b", "incident", killing(location={"governorate": "homs"}))
    found = tally([idlib, homs], governorate="homs")
    assert found.counted == 1
    assert found.killings.breakdowns["governorate"].rows["homs"].counts["killed"] == 3


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"location": {"governorate": "\x1b[31mgaza"}}, "governorate"),
        ({"victims": {"total": "many"}}, "number of victims"),
        ({"victims": {"total": True}}, "number of victims"),
        ({"victims": {"total": -1}}, "number of victims"),
        ({"victims": {"individuals": [{"status": "killed", "age": "ten"}]}}, "age"),
        ({"victims": {"individuals": "everyone"}}, "not a list"),
        ({"perpetrator": {"parties": ["martians"], "attribution": "confirmed"}}, "party"),
        ({"perpetrator": "the army"}, "perpetrator"),
        ({"date": "yesterday"}, "date"),
        ({"date": "2024-02-30"}, "date"),
        ({"violations": "killing"}, "violations"),
        ({"violations": ["attack_on_vital_facility"], "facility_type": "castle"}, "facility"),
    ],
)
def test_answers_that_cannot_be_counted_are_listed_with_the_reason(
    change: dict[str, Any], reason: str
) -> None:
    found = tally(
        [Source("bad", "incident", killing(**change)), Source("ok", "incident", killing())]
    )
    assert found.counted == 1
    assert [r for r, _ in found.excluded] == ["bad"]
    assert reason in found.excluded[0][1]
    assert found.killings.totals["killed"] == 3


def reconciles(found: Report) -> None:
    sections = (found.killings, found.arrests, found.facility_attacks, found.weapon_attacks)
    for section in sections:
        for name, breakdown in section.breakdowns.items():
            for metric in section.metrics:
                added = sum(row.counts[metric] for row in breakdown.rows.values())
                if name == "weapon":  # an attack with two weapons counts under each
                    assert added >= section.totals[metric]
                else:
                    assert added == section.totals[metric], (name, metric)
                for row in breakdown.rows.values():
                    if row.rows:
                        inner = sum(sub.counts[metric] for sub in row.rows.values())
                        assert inner == row.counts[metric]
    monthly = sum(m["killed"] for m in found.to_json()["monthly"])
    assert monthly <= found.killings.totals["killed"]  # dates known by year have no month


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(0, 150))
def test_every_breakdown_adds_up_to_its_total_on_generated_data(seed: int, n: int) -> None:
    rng = random.Random(seed)
    sources = [
        Source(f"r{i}", "incident", generated.incident(rng))
        if rng.random() < 0.8
        else Source(f"r{i}", "disappearance", generated.disappearance(rng))
        for i in range(n)
    ]
    found = tally(sources, labels=choice_labels())
    # only incidents neither killings nor arrests, whose victims' fate is not stated
    assert all("not stated whether killed or injured" in why for _, why in found.excluded)
    reconciles(found)
    assert found.killings.totals["incidents"] == sum(
        1 for s in sources if s.form == "incident" and _kills(s.answers)
    )
    arrests = sum(1 for s in sources if s.form == "disappearance")
    assert found.arrests.totals["records"] >= arrests
    # a month's report holds exactly what the year's report says of that month
    month = tally(sources, Period.month("2024-06"), labels=choice_labels())
    reconciles(month)
    assert month.killings.totals["killed"] == found.series.get("2024-06", {}).get("killed", 0)


def _kills(answers: dict[str, Any]) -> bool:
    violations = set(answers["violations"])
    dead = [
        p
        for p in answers["victims"]["individuals"]
        if p["status"] in ("killed", "died_under_torture")
    ]
    return bool(violations & {"extrajudicial_killing", "death_under_torture", "massacre"} or dead)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(
        [
            "violations",
            "date",
            "location",
            "perpetrator",
            "victims",
            "weapons",
            "facility_type",
            "date_precision",
        ]
    ),
    value=json_values,
)
def test_any_value_in_any_field_is_counted_or_listed_never_a_crash(field: str, value: Any) -> None:
    answers = incident(**{field: value})
    found = tally([Source("r", "incident", answers)])
    assert found.counted + len(found.excluded) + len(found.uncertain) <= 1
    reconciles(found)
