"""Random records that fit the forms, for report and export tests and the benchmarks.

Plain ``random.Random`` so a benchmark can make 100,000 quickly; tests drive it with a seed
that hypothesis chooses.
"""

from __future__ import annotations

import random
from typing import Any

from fieldsync.core import report

VIOLATIONS = [
    "extrajudicial_killing", "death_under_torture", "massacre", "arbitrary_arrest",
    "enforced_disappearance", "attack_on_vital_facility", "indiscriminate_attack",
    "outlawed_weapon", "torture", "pillage",
]  # fmt: skip
WEAPONS = ["cluster_munitions", "chemical_weapons", "barrel_bombs", "incendiary_weapons",
           "airstrike", "artillery", "drone"]  # fmt: skip
STATUSES = ["killed", "injured", "detained", "disappeared", "died_under_torture"]


def incident(rng: random.Random, year: int = 2024) -> dict[str, Any]:
    violations = rng.sample(VIOLATIONS, rng.randint(1, 3))
    attribution = rng.choice(["confirmed", "likely", "joint_undetermined", "unknown"])
    count = {"joint_undetermined": rng.randint(2, 3), "unknown": rng.randint(0, 1)}
    parties = rng.sample(report.FORM_PARTIES, count.get(attribution, rng.randint(1, 2)))
    individuals = []
    for _ in range(rng.randint(0, 4)):
        person: dict[str, Any] = {"status": rng.choice(STATUSES)}
        if rng.random() < 0.8:
            person["age"] = rng.randint(0, 80)
        if rng.random() < 0.8:
            person["sex"] = rng.choice(["male", "female", "unknown"])
        individuals.append(person)
    listed_children = sum(1 for p in individuals if p.get("age", 99) < 18)
    listed_women = sum(1 for p in individuals if p.get("sex") == "female" and p.get("age", 0) >= 18)
    children = listed_children + rng.randint(0, 3)
    women = listed_women + rng.randint(0, 3)
    total = max(len(individuals), children + women) + rng.randint(0, 5)
    answers: dict[str, Any] = {
        "violations": violations,
        "date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "date_precision": rng.choice(["exact", "exact", "approximate", "month", "year"]),
        "location": {"governorate": rng.choice(report.GOVERNORATES)},
        "perpetrator": {"parties": parties, "attribution": attribution},
        "victims": {
            "total": total,
            "children": children,
            "adult_women": women,
            "individuals": individuals,
        },
        "narrative": "generated",
    }
    if "attack_on_vital_facility" in violations:
        answers["facility_type"] = rng.choice(report.FACILITIES)
    if rng.random() < 0.5:
        answers["weapons"] = rng.sample(WEAPONS, rng.randint(1, 2))
    return answers


def disappearance(rng: random.Random, year: int = 2024) -> dict[str, Any]:
    return {
        "person": {
            "name": "generated",
            "sex": rng.choice(["male", "female", "unknown"]),
            "age": rng.randint(5, 70),
        },
        "date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "event": rng.choice(["arrest", "abduction", "last_sighting"]),
        "location": {"governorate": rng.choice(report.GOVERNORATES)},
        "perpetrator_party": rng.choice([*report.FORM_PARTIES, "unknown"]),
        "status": "missing",
    }
