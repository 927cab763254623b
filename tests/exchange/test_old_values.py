"""Records an older version let through (issue 16, item 4): a longitude of 200, a date in 2099,
children 14 of a total of 5. The entry checks refuse them now, but one already signed must still
pull (not be set aside), be resolved when in conflict, and be counted without the impossible."""

from __future__ import annotations

from typing import Any

from fieldsync.core import report
from fieldsync.services import pull, reading, reports, settling, sync
from fieldsync.store.store import Store
from tests.conftest import as_an_older_version_recorded, example
from tests.exchange.conftest import World
from tests.services.conftest import in_conflict


def older_answers() -> dict[str, Any]:
    answers = example("incident")
    answers["violations"] = ["extrajudicial_killing"]
    answers["date"] = "2099-03-05"
    answers["location"]["coordinates"] = {"latitude": "95", "longitude": "200"}
    answers["victims"] = {"total": 5, "children": 14}
    return answers


def recorded_by_an_older_version(device: Store) -> str:
    record = as_an_older_version_recorded(device, "incident", older_answers())
    sync.push(device)
    return record


def test_an_older_versions_record_is_pulled_not_set_aside_and_resolves(world: World) -> None:
    device = world.device("old laptop")
    record = recorded_by_an_older_version(device)
    found = pull.pull(world.analyst)
    assert found.set_aside == 0 and not found.problems
    assert reading.read(world.analyst, record).body.answers["victims"]["children"] == 14

    in_conflict(world.analyst, record, "narrative", ("first telling", "second telling"))
    settled = settling.resolve(world.analyst, record, [("narrative", 1, None)])
    view = reading.read(world.analyst, record)
    assert view.current.id == settled and not view.in_conflict
    assert view.body.answers["location"]["coordinates"]["longitude"] == "200"  # kept as signed


def test_a_pulled_record_with_more_children_than_killed_is_counted_for_its_total(
    world: World,
) -> None:
    device = world.device("old laptop")
    answers = older_answers()
    answers["date"] = "2024-03-05"
    record = as_an_older_version_recorded(device, "incident", answers)
    sync.push(device)
    pull.pull(world.analyst)
    found = reports.monthly(world.analyst, report.Period.month("2024-03")).to_json()
    for row in found["killings"]["by_party"]:
        assert row["children"] <= row["killed"], row
    assert found["killings"]["totals"] | {"killed": 5, "children": 0} == found["killings"]["totals"]
    assert [item["record"] for item in found["counted_in_part"]] == [record]
