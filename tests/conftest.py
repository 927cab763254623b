"""Shared fixtures.

Creating or unlocking a store costs one Argon2id derivation at MODERATE limits (about 0.7 s),
and the floor forbids anything cheaper. So the session creates one real store, and each test
gets a copy of it, opened with the keys the session already derived: the same code path as
``Store.open`` after the KDF.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldsync.store.db import make_engine
from fieldsync.store.store import DB_FILE, Store

PASSPHRASE = "correct horse battery staple"
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    home = tmp_path_factory.mktemp("template") / "home"
    store = Store.create(home, PASSPHRASE)
    keys = (store._vault_key, store.identity)
    store.close()
    return home, keys[0], keys[1]


@pytest.fixture
def store_home(template_store: tuple[Path, Any, Any], tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(template_store[0], home)
    return home


@pytest.fixture
def store(template_store: tuple[Path, Any, Any], store_home: Path) -> Iterator[Store]:
    _, vault_key, identity = template_store
    opened = Store(store_home, make_engine(store_home / DB_FILE), vault_key, identity)
    yield opened
    opened.close()


def example(form: str) -> dict[str, Any]:
    """A complete, valid set of answers for a built-in form."""
    return json.loads(json.dumps(EXAMPLES[form]))


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
