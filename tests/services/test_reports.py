"""admin report over a real store: provisional values of records in conflict, flagged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldsync.core.report import Period
from fieldsync.errors import InputError
from fieldsync.services import reading, records, reports
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from tests.conftest import example, fast_store
from tests.services.conftest import in_conflict


@pytest.fixture
def analyst(tmp_path: Path) -> Iterator[Store]:
    with fast_store(tmp_path / "analyst", admin=True) as store:
        yield store


def test_a_record_in_conflict_counts_once_with_its_provisional_value(analyst: Store) -> None:
    record = records.create(analyst, get_form("incident"), example("incident"))
    in_conflict(analyst, record, "date", ("2024-03-07", "2024-04-02"))
    shown = reading.read(analyst, record).body.answers["date"]  # the same on every device
    found = reports.monthly(analyst, Period.month(shown[:7]))
    assert found.in_conflict == [record]
    assert found.killings.in_conflict == 1
    assert found.killings.totals["killed"] == 1  # the one listed as killed, counted once
    other = "2024-04" if shown.startswith("2024-03") else "2024-03"
    assert reports.monthly(analyst, Period.month(other)).counted == 0


def test_an_unknown_governorate_is_refused_with_the_choices(analyst: Store) -> None:
    with pytest.raises(InputError, match="not a governorate") as raised:
        reports.monthly(analyst, governorate="gaza")
    assert "aleppo" in (raised.value.hint or "")
