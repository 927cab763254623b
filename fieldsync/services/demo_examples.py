"""The built-in examples: one answer set per form, as the demo records them and the tests
use them (a name, a testimony in Arabic, victims, sources)."""

from __future__ import annotations

import copy
from typing import Any

EXAMPLES: dict[str, dict[str, Any]] = {
    "incident": {
        "violations": ["attack_on_vital_facility", "outlawed_weapon"],
        "date": "2024-03-05",
        "date_precision": "exact",
        "location": {"governorate": "idlib", "district": "Maarrat al-Nu'man", "place": "كفرنبل"},
        "perpetrator": {
            "parties": ["regime_army", "russian_forces"],
            "attribution": "joint_undetermined",
        },
        "victims": {
            "total": 5,
            "children": 2,
            "adult_women": 1,
            "individuals": [
                {"name": "سارة", "age": 7, "sex": "female", "status": "killed"},
                {
                    "name": "محمد",
                    "age": 34,
                    "sex": "male",
                    "status": "injured",
                    "role": "medical_personnel",
                },
            ],
        },
        "facility_type": "medical_facility",
        "weapons": ["cluster_munitions"],
        "sources": [{"type": "eyewitness", "certainty": "high", "description": "nurse on duty"}],
        "narrative": "At dawn the hospital was struck twice. الطابق الأرضي دُمّر.",
    },
    "interview": {
        "interviewer": "R. K.",
        "interview_date": "2024-04-01",
        "interview_place": "Gaziantep",
        "language": "arabic",
        "interviewee_role": "survivor",
        "consent": {"record": True, "quote": True, "share": False, "anonymity_required": True},
        "topics": ["arbitrary_arrest", "torture"],
        "testimony": "اعتُقلت عند الحاجز في تشرين الأول.",
        "quotes": ["They took our names."],
    },
    "disappearance": {
        "person": {"name": "خالد", "sex": "male", "age": 27},
        "date": "2013-10-12",
        "event": "arrest",
        "location": {"governorate": "damascus", "place": "Mezzeh"},
        "perpetrator_party": "regime_security",
        "status": "missing",
    },
}


def example(form: str) -> dict[str, Any]:
    """A fresh copy of a complete, valid set of answers for a built-in form."""
    return copy.deepcopy(EXAMPLES[form])
