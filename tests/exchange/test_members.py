"""Two analysts at once, each with a log of their own: pushing concurrently, round after round,
on SQLite and on PostgreSQL, forks nothing and quarantines nothing; edits to different records
merge, the same field becomes an ordinary conflict either settles, and every version reaches
the server and the administrator exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from fieldsync.server.tables import DeviceRow, Quarantined, StoredEntry
from fieldsync.services import members, pull, records, settling, sync
from fieldsync.services.forms import get_form
from fieldsync.services.reading import read
from fieldsync.store.db import EntryRow
from fieldsync.store.store import Store
from tests.conftest import example
from tests.exchange.conftest import World
from tests.server.postgres import fresh_postgres

ROUNDS = 4


@pytest.fixture(params=["sqlite", "postgresql"])
def team_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with ExitStack() as stack:
        url = stack.enter_context(fresh_postgres()) if request.param == "postgresql" else None
        yield World(tmp_path, stack, database_url=url)


def _pull(store: Store) -> pull.PullReport:
    return pull.pull(store)


def _push(store: Store) -> sync.PushReport:
    return sync.push(store)


def _at_once(*work: Callable[[], object]) -> None:
    """Run each in a thread of its own, all started together; re-raise the first failure."""
    failures: list[BaseException] = []
    start = threading.Barrier(len(work))

    def run(job: Callable[[], object]) -> None:
        start.wait()
        try:
            job()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def _authored(store: Store) -> set[str]:
    with store.session() as session:
        me = store.identity.device_id
        return set(session.exec(select(EntryRow.id).where(EntryRow.author == me)).all())


def test_two_analysts_pushing_at_once_fork_nothing_and_every_version_arrives_once(
    team_world: World,
) -> None:
    world = team_world
    device = world.device("laptop")
    shared = records.create(device, get_form("incident"), example("incident"))
    apart = records.create(device, get_form("incident"), example("incident"))
    _push(device)
    amal, basel = world.member("Amal"), world.member("Basel")
    with sync.signed_client(world.url, world.analyst) as client:
        certified = members.certify(world.analyst, client)
    assert certified.members == [] and certified.bundles == 0  # not before the registry is read
    report = _pull(world.analyst)
    assert sorted(report.certified) == ["Amal", "Basel"]
    for analyst in (amal, basel):
        assert _pull(analyst).received == 2

    for round_ in range(1, ROUNDS + 1):
        # the same field of one record, differently; and a record each of them alone edits
        records.edit(amal, shared, sets=[f"victims.total={10 * round_ + 1}"])
        records.edit(basel, shared, sets=[f"victims.total={10 * round_ + 2}"])
        records.edit(basel, apart, sets=[f"victims.total={3 + round_}"])
        _at_once(lambda: _push(amal), lambda: _push(basel))
        _at_once(lambda: _pull(amal), lambda: _pull(basel))
        for analyst in (amal, basel):
            assert read(analyst, shared).in_conflict
            assert not read(analyst, apart).in_conflict
        # either may settle it: Amal takes Basel's value
        taken = settling.resolve(amal, shared, [("victims.total", 2, None)])
        assert taken
        _push(amal)
        _pull(basel)
        for analyst in (amal, basel):
            view = read(analyst, shared)
            assert not view.in_conflict
            assert view.body.answers["victims"]["total"] == 10 * round_ + 2
        _push(basel)  # a merge Basel signed on pulling, if any

    engine = world.app.state.engine
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Quarantined)).one() == 0
        stored = {
            author: set(
                session.exec(select(StoredEntry.id).where(StoredEntry.author == author)).all()
            )
            for author in (amal.identity.device_id, basel.identity.device_id)
        }
        rows = {row.key: row for row in session.exec(select(DeviceRow)).all()}
    for analyst in (amal, basel):
        mine = _authored(analyst)
        assert stored[analyst.identity.device_id] == mine  # every version, once
        row = rows[analyst.identity.device_id]
        assert (row.role, row.status, row.alert) == ("analyst", "active", None)
        assert row.last_seq == len(mine)

    everything = _pull(world.analyst)
    assert everything.set_aside == 0 and not everything.problems
    with world.analyst.session() as session:
        held = set(session.exec(select(EntryRow.id)).all())
    assert stored[amal.identity.device_id] | stored[basel.identity.device_id] <= held
    assert read(world.analyst, shared).body.answers["victims"]["total"] == 10 * ROUNDS + 2
    assert _pull(device).received > 0  # the documenter sees the analysts' versions too
