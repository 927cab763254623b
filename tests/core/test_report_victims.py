"""No victim counts nowhere in silence, and no row shows more children or women than people
(issue 16, items 4 and 5)."""

from __future__ import annotations

from typing import Any

import pytest

from fieldsync.cli import report_cmds
from fieldsync.cli.render import out
from fieldsync.core.report import Period, Report, Source, tally
from fieldsync.services.reports import choice_labels
from tests.core.test_report import incident, killing, reconciles

UNSTATED = "not stated whether killed or injured"


def only(violation: str, **victims: Any) -> dict[str, Any]:
    """An incident recorded only as ``violation``, by a party nobody identified."""
    answers = incident(
        violations=[violation],
        perpetrator={"parties": ["landmines_unknown_origin"], "attribution": "unknown"},
        victims={"total": 4, **victims},
    )
    for field in ("weapons", "facility_type"):
        answers.pop(field)
    return answers


def counted(*answers: dict[str, Any]) -> Report:
    found = tally(
        [Source(f"r{n}", "incident", a) for n, a in enumerate(answers, 1)], labels=choice_labels()
    )
    reconciles(found)
    return found


@pytest.mark.parametrize(
    ("violation", "named"),
    [
        ("landmine_erw", "landmine or explosive remnant of war"),
        ("indiscriminate_attack", "indiscriminate attack"),
    ],
)
def test_victims_of_an_incident_neither_killings_nor_arrests_are_counted_or_listed(
    violation: str, named: str
) -> None:
    unstated = counted(only(violation)).to_json()
    assert unstated["records_counted"] == 0
    assert unstated["not_counted"] == [
        {"record": "r1", "reason": f"4 victims ({named}), {UNSTATED}"}
    ]

    killed = counted(only(violation, outcome="killed", children=1)).to_json()
    assert killed["records_counted"] == 1 and killed["not_counted"] == []
    assert killed["killings"]["totals"] | {"incidents": 1} == {
        "killed": 4, "children": 1, "adult_women": 0, "died_under_torture": 0,
        "massacres": 0, "incidents": 1,
    }  # fmt: skip
    other = next(r for r in killed["killings"]["by_party"] if r["key"] == "other_parties")
    assert other["killed"] == 4 and killed["monthly"][0]["killed"] == 4

    injured = counted(only(violation, outcome="injured")).to_json()
    assert injured["records_counted"] == 0 and injured["killings"]["totals"]["killed"] == 0
    (listed,) = injured["not_counted"]
    assert (
        listed["reason"] == f"4 victims ({named}), none killed: the report counts the killed only"
    )


def test_an_attack_counted_elsewhere_lists_the_victims_it_could_not_read() -> None:
    market = incident(
        violations=["attack_on_vital_facility"],
        facility_type="market",
        victims={"total": 6, "individuals": [{"status": "killed", "age": 40}]},
    )
    market.pop("weapons")
    found = counted(market).to_json()
    assert found["records_counted"] == 1 and found["not_counted"] == []
    assert found["killings"]["totals"]["killed"] == 1  # the one listed as killed
    assert found["counted_in_part"] == [
        {"record": "r1", "reason": f"5 victims (attack on a vital civilian facility), {UNSTATED}"}
    ]
    market["victims"]["outcome"] = "injured"  # said, so nothing is left unread
    assert counted(market).to_json()["counted_in_part"] == []
    market["victims"]["outcome"] = "killed"
    assert counted(market).to_json()["killings"]["totals"]["killed"] == 6


def test_a_breakdown_larger_than_its_total_is_not_added_and_is_listed() -> None:
    stored = killing(total=5, children=14, women=0)  # from an older version: no entry check
    found = counted(stored, killing())
    document = found.to_json()
    for section in ("by_party", "by_governorate"):
        for row in document["killings"][section]:
            assert row["children"] + row["adult_women"] <= row["killed"], row
    assert document["killings"]["totals"]["killed"] == 8  # 5 counted for its total, and 3
    assert document["killings"]["totals"]["children"] == 1
    assert document["counted_in_part"] == [
        {
            "record": "r1",
            "reason": "its killed break down into more than their total (14 children and 0 "
            "adult women of 5): counted for the total only",
        }
    ]
    assert all(m["children_killed"] <= m["killed"] for m in document["monthly"])


def test_the_terminal_names_what_was_counted_only_in_part_in_words() -> None:
    found = counted(killing(total=5, children=14, women=0), only("landmine_erw"))
    with out.capture() as shown:
        report_cmds._render(found)
    text = " ".join(shown.get().split())
    assert text.startswith("Incidents of all dates: 1 records counted")
    assert "1 record(s) could not be counted: r2: 4 victims" in text
    assert "1 record(s) were counted only in part: r1: its killed break down" in text
    assert Period.month("2024-03").heading == "Incidents dated 2024-03"
