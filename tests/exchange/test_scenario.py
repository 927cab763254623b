"""The worked example of docs/conflicts.md, end to end through a real server: an analyst
re-attributes an attack while the documenter, offline, adds victims and a source."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import pytest

from fieldsync.errors import InputError, StoreStateError
from fieldsync.server.holdings import ServerHoldings
from fieldsync.services import admin, pull, reading, record_history, records, settling, sync
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from tests.conftest import example
from tests.exchange.conftest import World

INCIDENT = get_form("incident")


def recorded(device: Store) -> str:
    record = records.create(device, INCIDENT, example("incident"))
    sync.push(device)
    return record


def shown(store: Store, record: str) -> dict[str, Any]:
    return reading.read(store, record).body.answers


def test_re_attribution_and_added_victims_merge_into_one_version_everywhere(
    world: World,
) -> None:
    documenter = world.device("laptop-a")
    record = recorded(documenter)
    pull.pull(world.analyst)
    analyst_version = records.edit(
        world.analyst,
        record,
        sets=['perpetrator.parties=["russian_forces"]', "perpetrator.attribution=confirmed"],
    )
    sync.push(world.analyst)

    # offline meanwhile: two more victims, one more source
    answers = shown(documenter, record)
    answers["victims"]["individuals"] += [
        {"name": "ليلى", "age": 9, "sex": "female", "status": "killed"},
        {"name": "Omar", "age": 40, "sex": "male", "status": "injured"},
    ]
    answers["victims"]["total"] = 7
    answers["victims"]["children"] = 3
    answers["sources"].append({"type": "satellite_imagery", "certainty": "medium"})
    documenter_version = records.edit(documenter, record, answers=answers)

    report = pull.pull(documenter)
    assert report.received == 1 and report.merged == [record] and not report.conflicts
    merged = reading.read(documenter, record)
    assert len(merged.heads) == 1 and not merged.in_conflict
    parents = merged.current.entry.header.parents
    assert set(parents) == {analyst_version, documenter_version}
    assert merged.body.answers["perpetrator"] == {
        "parties": ["russian_forces"],
        "attribution": "confirmed",
    }
    assert merged.body.answers["victims"]["total"] == 7
    assert len(merged.body.answers["victims"]["individuals"]) == 4
    assert len(merged.body.answers["sources"]) == 2

    sync.push(documenter)
    pull.pull(world.analyst)
    on_server_side = reading.read(world.analyst, record)
    assert on_server_side.heads == merged.heads
    assert on_server_side.body == merged.body
    assert pull.pull(documenter).received == 0  # nothing new for it: it wrote the merge

    with closing(ServerHoldings(world.server)) as holdings:
        audited = admin.verify(world.analyst, holdings)
    assert audited.ok, [p.what for a in audited.authors for p in a.problems]
    analysts = next(a for a in audited.authors if a.status == "admin")
    assert analysts.versions == 1 and analysts.intact_through == 1


def test_both_changing_the_perpetrator_is_a_conflict_that_resolve_settles(world: World) -> None:
    documenter = world.device("laptop-a")
    record = recorded(documenter)
    pull.pull(world.analyst)
    confirmed = "perpetrator.attribution=confirmed"  # the same change on both sides merges
    records.edit(world.analyst, record, sets=['perpetrator.parties=["russian_forces"]', confirmed])
    sync.push(world.analyst)
    records.edit(documenter, record, sets=['perpetrator.parties=["regime_army"]', confirmed])

    report = pull.pull(documenter)
    assert report.conflicts == [record] and not report.merged
    view = reading.read(documenter, record)
    assert view.in_conflict and len(view.heads) == 2
    (conflict,) = view.conflicts
    assert conflict.path == "perpetrator.parties"
    assert sorted(c.value[0] for c in conflict.values) == ["regime_army", "russian_forces"]
    listed = {row.record: row.conflict for row in documenter.index()}
    assert listed[record] is True
    with pytest.raises(StoreStateError, match="in conflict"):  # no edit on provisional values
        records.edit(documenter, record, sets=["victims.total=9"])
    with pytest.raises(InputError, match="no number 3"):
        settling.resolve(documenter, record, [("perpetrator.parties", 3, None)])

    analysts = next(n for n, c in enumerate(conflict.values, 1) if c.value == ["russian_forces"])
    resolution = settling.resolve(documenter, record, [("perpetrator.parties", analysts, None)])
    settled = reading.read(documenter, record)
    assert settled.heads == (resolution,) and not settled.in_conflict
    assert settled.body.answers["perpetrator"]["parties"] == ["russian_forces"]
    history = record_history.history(documenter, record)
    assert len(history) == 4
    assert history[-1].merged == tuple(sorted(view.heads))

    sync.push(documenter)
    pull.pull(world.analyst)
    assert reading.read(world.analyst, record).heads == (resolution,)
    assert len(record_history.history(world.analyst, record)) == 4
