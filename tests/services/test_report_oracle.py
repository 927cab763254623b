"""An independent oracle for admin report: one month of records worked out by hand.

Every number below was counted by hand from the rules of docs/reports.md, record by record
(the working is in the comments), and written out literally: none is derived by the code under
test. If the report disagrees, check the rules before touching a number here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldsync.core.report import Period
from fieldsync.services import records, reports
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from tests.conftest import fast_store


@pytest.fixture
def analyst(tmp_path: Path) -> Iterator[Store]:
    with fast_store(tmp_path / "analyst", admin=True) as store:
        yield store


def incident(
    day: str,
    governorate: str,
    violations: list[str],
    parties: list[str],
    attribution: str,
    **more: Any,
) -> dict[str, Any]:
    return {
        "violations": violations,
        "date": day,
        "location": {"governorate": governorate},
        "perpetrator": {"parties": parties, "attribution": attribution},
        "narrative": "worked by hand",
        **more,
    }


def disappearance(day: str, governorate: str, party: str, sex: str, age: int) -> dict[str, Any]:
    return {
        "person": {"name": "withheld", "sex": sex, "age": age},
        "date": day,
        "event": "abduction",
        "location": {"governorate": governorate},
        "perpetrator_party": party,
        "status": "missing",
    }


def person(status: str, age: int | None = None, sex: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"status": status}
    if age is not None:
        found["age"] = age
    if sex is not None:
        found["sex"] = sex
    return found


MARCH = [
    # R1 killing only; 5 victims, one listed injured: killed 5-1=4; children 2 (totals, none
    # listed alive), women 1. Regime army, Aleppo.
    incident(
        "2024-03-03", "aleppo", ["extrajudicial_killing"], ["regime_army"], "confirmed",
        victims={"total": 5, "children": 2, "adult_women": 1, "individuals": [
            person("killed", 17, "male"), person("killed", 18, "female"),
            person("injured", 40, "male"),
        ]},
    ),
    # R2 attack on a market, not a killing: only the listed dead count: 18 f, 17 f, 30 f and a
    # man of unknown age = 4 killed, 1 child (17), 2 women (18, 30); the totals (9) are not
    # read as deaths. Facility: market. Weapons: cluster munitions (outlawed), airstrike (not).
    # Russian forces, Idlib.
    incident(
        "2024-03-05", "idlib", ["attack_on_vital_facility", "indiscriminate_attack"],
        ["russian_forces"], "confirmed",
        facility_type="market", weapons=["airstrike", "cluster_munitions"],
        victims={"total": 9, "children": 3, "adult_women": 2, "individuals": [
            person("killed", 18, "female"), person("killed", 17, "female"),
            person("injured", 9, "male"), person("killed", 30, "female"),
            person("killed", None, "male"),
        ]},
    ),
    # R3 massacre: 12 victims, one listed injured: killed 11, children 4, women 3 (the listed
    # dead woman has no age: neither child nor adult woman, the totals decide); massacres 1.
    # Weapons: barrel bombs and incendiary: one attack, under each weapon. Joint, undetermined
    # between regime army and Russian forces: a row of its own. Homs.
    incident(
        "2024-03-10", "homs", ["massacre", "extrajudicial_killing"],
        ["regime_army", "russian_forces"], "joint_undetermined",
        weapons=["barrel_bombs", "incendiary_weapons"],
        victims={"total": 12, "children": 4, "adult_women": 3, "individuals": [
            person("killed", None, "female"), person("injured", 50, "male"),
        ]},
    ),
    # R4 death under torture only: 3 victims, none alive: killed 3, women 1; died under
    # torture = the listed one + the 2 unnamed = 3. Regime security services, Damascus.
    incident(
        "2024-03-12", "damascus", ["death_under_torture"], ["regime_security"], "confirmed",
        victims={"total": 3, "children": 0, "adult_women": 1, "individuals": [
            person("died_under_torture", 25, "male"),
        ]},
    ),
    # R5 killings and arrests (mixed): by listed status only. Killed: the boy of 16 (1 killed,
    # 1 child). Arrested: 18 m detained, 45 f detained, 20 m disappeared = 3, 0 children (18
    # is an adult), 1 woman. Likely regime army and security: Syrian regime, "jointly". Aleppo.
    incident(
        "2024-03-15", "aleppo", ["extrajudicial_killing", "arbitrary_arrest"],
        ["regime_army", "regime_security"], "likely",
        victims={"total": 6, "children": 1, "adult_women": 1, "individuals": [
            person("killed", 16, "male"), person("detained", 18, "male"),
            person("detained", 45, "female"), person("disappeared", 20, "male"),
            person("injured", 33, "male"),
        ]},
    ),
    # R6 arrest only: 4 victims, one listed injured: arrested 3, children 1, women 1 (the
    # listed woman of 18 is within the totals' 1). Attribution unknown, naming a suspected
    # party: perpetrator not identified. Daraa.
    incident(
        "2024-03-18", "daraa", ["arbitrary_arrest"], ["regime_security"], "unknown",
        victims={"total": 4, "children": 1, "adult_women": 1, "individuals": [
            person("detained", 18, "female"), person("injured", 30, "male"),
        ]},
    ),
    # R7 a disappearance: one person, a woman of 18 (an adult woman, not a child). ISIS, Raqqa.
    disappearance("2024-03-20", "raqqa", "isis", "female", 18),
    # R8 a disappearance: a boy of 15 (a child). Party unknown: not identified. Aleppo.
    disappearance("2024-03-22", "aleppo", "unknown", "male", 15),
    # R9 attack on a school, nobody listed: one facility attack. Unknown, naming only an
    # "other" party (bombing by unidentified perpetrators): Other parties, that row. Idlib.
    incident(
        "2024-03-25", "idlib", ["attack_on_vital_facility"], ["unidentified_bombing"],
        "unknown", facility_type="school", weapons=["explosive_device"],
    ),
    # R10 outlawed weapon, none of the four named (artillery): weapon not specified. Not a
    # killing: the listed dead count: a man of 60 and a girl of 8 = 2 killed, 1 child.
    # Confirmed regime army and Iranian-backed militias: "Jointly", a row of its own. Hama.
    incident(
        "2024-03-31", "hama", ["outlawed_weapon"], ["regime_army", "iranian_backed_militias"],
        "confirmed", weapons=["artillery"],
        victims={"individuals": [person("killed", 60, "male"), person("killed", 8, "female")]},
    ),
    # R11 the next month: not counted at all.
    incident(
        "2024-04-01", "aleppo", ["massacre"], ["regime_army"], "confirmed",
        victims={"total": 40, "children": 10, "adult_women": 10},
    ),
    # R12 an enforced disappearance known only to the month, March: wholly inside, counted.
    # 2 arrested, no children or women known. SDF, Latakia.
    incident(
        "2024-03-01", "latakia", ["enforced_disappearance"], ["sdf"], "confirmed",
        date_precision="month", victims={"total": 2, "children": 0, "adult_women": 0},
    ),
    # R13 known only to the year 2024: only partly inside March, listed, not counted.
    incident(
        "2024-06-15", "homs", ["extrajudicial_killing"], ["isis"], "confirmed",
        date_precision="year", victims={"total": 7, "children": 0, "adult_women": 0},
    ),
]  # fmt: skip


def table(rows: list[dict[str, Any]], metrics: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """A breakdown as (key, counts...) lines, its finer rows indented under their row."""
    lines: list[tuple[Any, ...]] = []
    for row in rows:
        lines.append((row["key"], *(row[m] for m in metrics)))
        for finer in row.get("rows", []):
            lines.append(("  " + finer["key"], *(finer[m] for m in metrics)))
    return lines


KILLED = ("killed", "children", "adult_women", "died_under_torture", "massacres", "incidents")
ARRESTED = ("arrested", "children", "adult_women", "records")
ZERO_GOVERNORATES = (
    "damascus", "rif_dimashq", "aleppo", "idlib", "homs", "hama", "latakia", "tartus", "daraa",
    "as_suwayda", "quneitra", "deir_ez_zor", "raqqa", "al_hasakah",
)  # fmt: skip


def test_a_month_worked_by_hand(analyst: Store) -> None:
    ids = []
    for answers in MARCH:
        form = "disappearance" if "person" in answers else "incident"
        ids.append(records.create(analyst, get_form(form), answers))
    found = reports.monthly(analyst, Period.month("2024-03")).to_json()

    assert found["period"] == {"label": "2024-03", "from": "2024-03-01", "to": "2024-03-31"}
    assert found["governorate"] is None
    assert found["records_counted"] == 11  # R1-R10 and R12
    assert found["records_in_conflict"] == []
    assert found["mixed_incidents"] == 1  # R5
    assert found["not_counted"] == []
    assert found["dates_partly_in_period"] == [{"record": ids[12], "date": "2024-06-15 (year)"}]

    killings = found["killings"]
    # killed 4+4+11+3+1+2, children 2+1+4+0+1+1, women 1+2+3+1+0+0 (R1, R2, R3, R4, R5, R10)
    assert killings["totals"] == {
        "killed": 25, "children": 9, "adult_women": 7, "died_under_torture": 3,
        "massacres": 1, "incidents": 6,
    }  # fmt: skip
    assert killings["records_in_conflict"] == 0
    assert table(killings["by_party"], KILLED) == [
        ("syrian_regime", 8, 3, 2, 3, 0, 3),  # R1 + R4 + R5
        ("  regime_army", 4, 2, 1, 0, 0, 1),  # R1
        ("  regime_army+regime_security", 1, 1, 0, 0, 0, 1),  # R5
        ("  regime_security", 3, 0, 1, 3, 0, 1),  # R4
        ("russian_forces", 4, 1, 2, 0, 0, 1),  # R2
        ("  russian_forces", 4, 1, 2, 0, 0, 1),
        ("iranian_backed_militias", 0, 0, 0, 0, 0, 0),
        ("extremist_groups", 0, 0, 0, 0, 0, 0),
        ("armed_opposition", 0, 0, 0, 0, 0, 0),
        ("sdf", 0, 0, 0, 0, 0, 0),
        ("us_led_coalition", 0, 0, 0, 0, 0, 0),
        ("turkish_forces", 0, 0, 0, 0, 0, 0),
        ("other_parties", 0, 0, 0, 0, 0, 0),
        ("joint:syrian_regime+russian_forces", 11, 4, 3, 0, 1, 1),  # R3
        ("  regime_army+russian_forces", 11, 4, 3, 0, 1, 1),
        ("jointly:syrian_regime+iranian_backed_militias", 2, 1, 0, 0, 0, 1),  # R10
        ("  regime_army+iranian_backed_militias", 2, 1, 0, 0, 0, 1),
    ]
    by_governorate = {
        "aleppo": (5, 3, 1, 0, 0, 2),  # R1 + R5
        "idlib": (4, 1, 2, 0, 0, 1),  # R2
        "homs": (11, 4, 3, 0, 1, 1),  # R3
        "damascus": (3, 0, 1, 3, 0, 1),  # R4
        "hama": (2, 1, 0, 0, 0, 1),  # R10
    }
    assert table(killings["by_governorate"], KILLED) == [
        (g, *by_governorate.get(g, (0, 0, 0, 0, 0, 0))) for g in ZERO_GOVERNORATES
    ]

    arrests = found["arrests"]
    # arrested 3+3+1+1+2, children 0+1+0+1+0, women 1+1+1+0+0 (R5, R6, R7, R8, R12)
    assert arrests["totals"] == {"arrested": 10, "children": 2, "adult_women": 3, "records": 5}
    assert arrests["records_in_conflict"] == 0
    assert table(arrests["by_party"], ARRESTED) == [
        ("syrian_regime", 3, 0, 1, 1),  # R5
        ("  regime_army+regime_security", 3, 0, 1, 1),
        ("russian_forces", 0, 0, 0, 0),
        ("iranian_backed_militias", 0, 0, 0, 0),
        ("extremist_groups", 1, 0, 1, 1),  # R7
        ("  isis", 1, 0, 1, 1),
        ("armed_opposition", 0, 0, 0, 0),
        ("sdf", 2, 0, 0, 1),  # R12
        ("  sdf", 2, 0, 0, 1),
        ("us_led_coalition", 0, 0, 0, 0),
        ("turkish_forces", 0, 0, 0, 0),
        ("other_parties", 4, 2, 1, 2),  # R6 + R8
        ("  not_identified", 4, 2, 1, 2),
    ]
    by_governorate_arrests = {
        "aleppo": (4, 1, 1, 2),  # R5 + R8
        "daraa": (3, 1, 1, 1),  # R6
        "raqqa": (1, 0, 1, 1),  # R7
        "latakia": (2, 0, 0, 1),  # R12
    }
    assert table(arrests["by_governorate"], ARRESTED) == [
        (g, *by_governorate_arrests.get(g, (0, 0, 0, 0))) for g in ZERO_GOVERNORATES
    ]

    facilities = found["facility_attacks"]
    assert facilities["totals"] == {"attacks": 2}  # R2, R9
    assert facilities["records_in_conflict"] == 0
    assert table(facilities["by_facility"], ("attacks",)) == [
        ("medical_facility", 0),
        ("school", 1),  # R9
        ("market", 1),  # R2
        ("place_of_worship", 0),
        ("power_station", 0),
        ("water_facility", 0),
        ("idp_camp", 0),
        ("bakery", 0),
        ("civil_defence_centre", 0),
        ("cultural_property", 0),
    ]
    assert table(facilities["by_party"], ("attacks",)) == [
        ("syrian_regime", 0),
        ("russian_forces", 1),  # R2
        ("  russian_forces", 1),
        ("iranian_backed_militias", 0),
        ("extremist_groups", 0),
        ("armed_opposition", 0),
        ("sdf", 0),
        ("us_led_coalition", 0),
        ("turkish_forces", 0),
        ("other_parties", 1),  # R9
        ("  unidentified_bombing", 1),
    ]

    weapons = found["weapon_attacks"]
    assert weapons["totals"] == {"attacks": 3}  # R2, R3, R10
    assert weapons["records_in_conflict"] == 0
    assert table(weapons["by_weapon"], ("attacks",)) == [
        ("cluster_munitions", 1),  # R2
        ("chemical_weapons", 0),
        ("barrel_bombs", 1),  # R3
        ("incendiary_weapons", 1),  # R3 again: by weapon, an attack counts under each
        ("unspecified", 1),  # R10
    ]
    assert table(weapons["by_party"], ("attacks",)) == [
        ("syrian_regime", 0),
        ("russian_forces", 1),  # R2
        ("  russian_forces", 1),
        ("iranian_backed_militias", 0),
        ("extremist_groups", 0),
        ("armed_opposition", 0),
        ("sdf", 0),
        ("us_led_coalition", 0),
        ("turkish_forces", 0),
        ("other_parties", 0),
        ("joint:syrian_regime+russian_forces", 1),  # R3
        ("  regime_army+russian_forces", 1),
        ("jointly:syrian_regime+iranian_backed_militias", 1),  # R10
        ("  regime_army+iranian_backed_militias", 1),
    ]

    assert found["monthly"] == [
        {
            "month": "2024-03",
            "killed": 25,
            "children_killed": 9,
            "women_killed": 7,
            "died_under_torture": 3,
            "massacres": 1,
            "arrested": 10,
            "facility_attacks": 2,
            "weapon_attacks": 3,
        }
    ]


def test_the_same_month_for_one_governorate_worked_by_hand(analyst: Store) -> None:
    for answers in MARCH:
        form = "disappearance" if "person" in answers else "incident"
        records.create(analyst, get_form(form), answers)
    found = reports.monthly(analyst, Period.month("2024-03"), "aleppo").to_json()
    assert found["governorate"] == "aleppo"
    assert found["records_counted"] == 3  # R1, R5, R8 (R11 is April)
    assert found["mixed_incidents"] == 1  # R5
    assert found["dates_partly_in_period"] == []  # R13 is in Homs
    assert found["killings"]["totals"] == {
        "killed": 5, "children": 3, "adult_women": 1, "died_under_torture": 0,
        "massacres": 0, "incidents": 2,
    }  # fmt: skip
    assert found["arrests"]["totals"] == {
        "arrested": 4, "children": 1, "adult_women": 1, "records": 2,
    }  # fmt: skip
    assert found["facility_attacks"]["totals"] == {"attacks": 0}
    assert found["weapon_attacks"]["totals"] == {"attacks": 0}
    assert found["monthly"] == [
        {
            "month": "2024-03",
            "killed": 5,
            "children_killed": 3,
            "women_killed": 1,
            "died_under_torture": 0,
            "massacres": 0,
            "arrested": 4,
            "facility_attacks": 0,
            "weapon_attacks": 0,
        }
    ]
