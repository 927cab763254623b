"""Convergence, as a hypothesis state machine against a real server (docs/conflicts.md).

Two documenters and an analyst edit, push and pull in random orders; some pushes lose the
server's answer after it committed (the device must retry). Invariants:

- nothing acknowledged is lost: every version a verified receipt covered is on the server, and
  no store ever holds fewer versions than before;
- concurrent edits of one field never merge silently: a signed merge takes a change only where
  the other side left the field as it was, and a record in conflict keeps every changed value;
- once everyone has exchanged everything, everyone shows the same heads and the same record.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlmodel import Session, select

from fieldsync.core import merge
from fieldsync.core.forms import get_path
from fieldsync.errors import ServerUnreachable
from fieldsync.server.tables import StoredEntry
from fieldsync.services import pull, reading, records, settling, sync
from fieldsync.services.forms import get_form
from fieldsync.store.db import EntryRow
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.exchange.conftest import World

INCIDENT = get_form("incident")
FIELDS = {  # field -> values it may be set to (every combination keeps the record valid)
    ("victims", "total"): [5, 6, 7, 8],
    ("location", "district"): ["Ariha", "Saraqib", "Jisr al-Shughur"],
    ("perpetrator", "attribution"): ["joint_undetermined", "likely", "confirmed"],
    ("narrative",): ["First account.", "Second account, corrected.", "شهادة ثالثة"],
}
PARTIES = ["analyst", "laptop-a", "laptop-b"]


class LostAnswers(httpx.HTTPTransport):
    """Delivers every request, then loses the server's answer to each batch."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path == "/v1/batches":
            response.read()
            raise httpx.ReadError("the link dropped before the answer arrived")
        return response


def losing_client(url: str, store: Store) -> SyncClient:
    return SyncClient(url, signer=store.identity.signer, attempts=1, transport=LostAnswers())


def held(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.exec(select(EntryRow.id)).all())


class Exchange(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        folder = Path(self.stack.enter_context(tempfile.TemporaryDirectory()))
        self.world = World(folder, self.stack)
        self.stores = {"analyst": self.world.analyst}
        self.records: dict[str, str] = {}  # record -> the device that recorded it
        for name in PARTIES[1:]:
            device = self.world.device(name)
            self.stores[name] = device
            record = records.create(device, INCIDENT, example("incident"))
            self.records[record] = name
        self.acknowledged: set[str] = set()
        self.counts = {name: len(held(store)) for name, store in self.stores.items()}
        # Versions whose values a person chose: resolutions, and edits (an edit of a record with
        # two heads that agree names both as parents). Only the others are automatic merges.
        self.chosen: set[str] = set()

    def teardown(self) -> None:
        try:
            self.everyone_exchanges_everything()  # every run ends converged, whatever came before
        finally:
            self.stack.close()

    def readable(self, party: str) -> list[str]:
        if party == "analyst":
            known = {row.record for row in self.world.analyst.index()}
            return sorted(r for r in self.records if r in known)
        return sorted(r for r, owner in self.records.items() if owner == party)

    @rule(
        party=st.sampled_from(PARTIES),
        pick=st.integers(0, 10),
        field=st.sampled_from(sorted(FIELDS)),
        value=st.integers(0, 3),
    )
    def edit(self, party: str, pick: int, field: tuple[str, ...], value: int) -> None:
        choices = self.readable(party)
        if not choices:
            return
        store, record = self.stores[party], choices[pick % len(choices)]
        view = reading.read(store, record)
        if view.in_conflict:  # a person settles it first: the oldest value of each field
            settled = [(c.path, 1, None) for c in view.conflicts]
            self.chosen.add(settling.resolve(store, record, settled))
            return
        options = FIELDS[field]
        wanted = options[value % len(options)]
        answers = view.body.answers
        if get_path(answers, field) == wanted:
            return
        text = wanted if isinstance(wanted, str) else str(wanted)
        self.chosen.add(records.edit(store, record, sets=[f"{'.'.join(field)}={text}"]))

    @rule(party=st.sampled_from(PARTIES), lose_answer=st.booleans())
    def push(self, party: str, lose_answer: bool) -> None:
        store = self.stores[party]
        try:
            sync.push(store, client_for=losing_client if lose_answer else sync.signed_client)
        except ServerUnreachable:
            assert lose_answer
        delivered = sync.delivered_seq(store)
        with store.session() as session:
            mine = session.exec(
                select(EntryRow.id).where(
                    EntryRow.author == store.identity.device_id, EntryRow.seq <= delivered
                )
            ).all()
        self.acknowledged.update(mine)

    @rule(party=st.sampled_from(PARTIES))
    def pull(self, party: str) -> None:
        pull.pull(self.stores[party])

    @invariant()
    def nothing_acknowledged_is_lost(self) -> None:
        with Session(self.world.app.state.engine) as session:
            on_server = set(session.exec(select(StoredEntry.id)).all())
        assert self.acknowledged <= on_server
        for name, store in self.stores.items():
            now = len(held(store))
            assert now >= self.counts[name]
            self.counts[name] = now

    @invariant()
    def merges_never_settle_a_field_both_sides_changed(self) -> None:
        for name, store in self.stores.items():
            for record in self.readable(name):
                check_merges(store, record, self.chosen)

    @rule()
    def everyone_exchanges_everything(self) -> None:
        exchange_all(self.stores)
        for record, owner in self.records.items():
            views = [reading.read(self.stores[p], record) for p in ("analyst", owner)]
            if not any(row.record == record for row in self.world.analyst.index()):
                continue
            first, second = views
            assert first.heads == second.heads
            assert first.body == second.body
            assert [c.path for c in first.conflicts] == [c.path for c in second.conflicts]


def exchange_all(stores: dict[str, Store]) -> None:
    """Push and pull all round until nobody has anything new (merges make new versions)."""
    for _ in range(6):
        before = {name: len(held(store)) for name, store in stores.items()}
        for store in stores.values():
            sync.push(store)
        for store in stores.values():
            pull.pull(store)
        for store in stores.values():
            sync.push(store)
        if {name: len(held(store)) for name, store in stores.items()} == before:
            return
    raise AssertionError("the stores did not stop exchanging new versions")


def check_merges(store: Store, record: str, chosen: set[str]) -> None:
    versions = {v.id: v for v in store.versions(record)}
    parents = {v.id: v.entry.header.parents for v in versions.values()}
    for version in versions.values():
        heads = version.entry.header.parents
        if len(heads) < 2 or version.id in chosen or version.body is None:
            continue
        base_id = merge.common_ancestor(parents, list(heads))
        base = versions[base_id].body if base_id else None
        for field in FIELDS:
            before = get_path(base.answers, field) if base else None
            sides = [get_path(_answers(versions[h]), field) for h in heads]
            changed = {repr(v) for v in sides if v != before}
            assert len(changed) <= 1, f"{'.'.join(field)} merged silently in {version.id[:12]}"
            if changed:
                assert repr(get_path(version.body.answers, field)) in changed
    view = reading.read(store, record)
    for conflict in view.conflicts:
        heads = [versions[h] for h in view.heads]
        field = tuple(conflict.path.split("."))
        base_id = merge.common_ancestor(parents, list(view.heads))
        base = versions[base_id].body if base_id else None
        before = get_path(base.answers, field) if base else None
        changed = {repr(get_path(_answers(h), field)) for h in heads} - {repr(before)}
        assert {repr(c.value) for c in conflict.values} == changed


def _answers(version: Any) -> dict[str, Any]:
    assert version.body is not None
    return dict(version.body.answers)


TestExchange = Exchange.TestCase
TestExchange.settings = settings(
    max_examples=12,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
