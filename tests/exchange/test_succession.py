"""Admin key succession against a real server, on SQLite and PostgreSQL: a device and an analyst
follow it, the administrator's own log starts again under the new key, and an interrupted
succession (the link dropped before the statement arrived, or its answer was lost) is finished
by sending the same statement again, never by signing another. A store recovered from the
custodians' shares after a succession, or while one was on its way, signs with the new key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from fieldsync.core import invite, orglog
from fieldsync.errors import AccessDenied, ServerUnreachable, StoreStateError
from fieldsync.server import orglog as server_orglog
from fieldsync.server.tables import DeviceRow, OrgStatementRow, Quarantined
from fieldsync.services import admin, backup, enrol, members, pull, records, succession, sync
from fieldsync.services.forms import get_form
from fieldsync.services.reading import read
from fieldsync.store import orgkeys
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example, fast_store
from tests.exchange.conftest import World
from tests.server.postgres import fresh_postgres
from tests.services.conftest import DAY, quick

AGAIN = "another passphrase, for the store made again"


@pytest.fixture(params=["sqlite", "postgresql"])
def either_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with ExitStack() as stack:
        url = stack.enter_context(fresh_postgres()) if request.param == "postgresql" else None
        yield World(tmp_path, stack, database_url=url)


def _successions(world: World) -> int:
    with Session(world.app.state.engine) as session:
        raws = session.exec(select(OrgStatementRow.raw)).all()
    return sum(orglog.parse(raw).kind == orglog.SUCCESSION for raw in raws)


def test_a_device_and_an_analyst_follow_a_succession(either_world: World) -> None:
    world = either_world
    device, amal = world.device("laptop"), world.member("Amal")
    first = records.create(device, get_form("incident"), example("incident"))
    sync.push(device)
    pull.pull(world.analyst)  # Amal certified, given the keys
    pull.pull(amal)
    old = world.analyst.identity.signer.public.hex()
    records.edit(world.analyst, first, sets=["victims.total=8"])  # the first key's own log
    sync.push(world.analyst)

    done = succession.rotate_admin_key(world.analyst)
    new = world.analyst.identity.signer.public.hex()
    assert new != old and (done.seq, done.bundles, done.resent) == (2, 1, False)
    records.edit(world.analyst, first, sets=["victims.total=9"])
    assert sync.push(world.analyst).sent_entries == 1  # seq 1 of the new key's own log
    later = records.create(device, get_form("incident"), example("incident"))
    sync.push(device)
    assert pull.pull(device).received == 2  # both admin keys' versions, trusted by the log
    assert read(device, first).body.answers["victims"]["total"] == 9
    assert pull.pull(amal).received >= 2
    assert orgkeys.admin_keys_trusted(amal) == (old, new)
    records.edit(amal, later, sets=["victims.total=10"])
    sync.push(amal)
    report = pull.pull(world.analyst)
    assert report.alerts == [] and report.set_aside == 0
    assert {first, later} <= set(world.analyst.record_ids())
    with Session(world.app.state.engine) as session:
        logs = session.exec(select(DeviceRow).where(DeviceRow.status == "admin")).all()
        assert {row.key: row.last_seq for row in logs} == {old: 1, new: 1}
        assert session.exec(select(func.count()).select_from(Quarantined)).one() == 0


def test_an_interrupted_succession_is_finished_with_the_same_statement(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = backup.make_backup(world.analyst, 3, 2, server_url=world.url)
    device = world.device("laptop")
    old = world.analyst.identity.signer.public

    def dropped(*_: object, **__: object) -> None:
        raise ServerUnreachable("the link dropped")

    with monkeypatch.context() as patched:
        patched.setattr(SyncClient, "send_statement", dropped)
        with pytest.raises(ServerUnreachable):
            succession.rotate_admin_key(world.analyst)
    signed = orgkeys.pending(world.analyst)
    assert signed is not None and orglog.parse(signed).kind == orglog.SUCCESSION
    assert world.analyst.identity.signer.public == old  # in force until it is announced
    assert pull.pull(world.analyst).held_back == members.UNFINISHED_SUCCESSION
    with pytest.raises(StoreStateError, match="succession was signed but not announced"):
        admin.revoke(world.analyst, world.url, device.identity.device_id)

    # the custodians' backup already holds the new key and the statement: recovering now
    # announces it, and the recovered store signs with the new key
    recovered = backup.recover(tmp_path / "again", AGAIN, made.shares[:2], server_url=world.url)
    assert recovered.org.admin_key == old.hex()  # the organisation is the same one
    with Store.open(tmp_path / "again", AGAIN) as again:
        new = again.identity.signer.public
        assert new != old and orgkeys.admin_keys_trusted(again) == (old.hex(), new.hex())
    done = succession.rotate_admin_key(world.analyst)  # the lost laptop found again: finished
    assert done.resent and _successions(world) == 1
    assert world.analyst.identity.signer.public == new
    admin.make_invite(world.analyst, "laptop 2", world.url, valid_ms=DAY, client_for=quick)


def test_a_succession_whose_answer_was_lost_is_followed_on_the_next_pull(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = world.analyst.identity.signer.public
    device = world.device("laptop")
    real = SyncClient.send_statement

    def answer_lost(self: SyncClient, raw: bytes) -> object:
        real(self, raw)
        raise ServerUnreachable("the answer was lost")

    with monkeypatch.context() as patched:
        patched.setattr(SyncClient, "send_statement", answer_lost)
        with pytest.raises(ServerUnreachable):
            succession.rotate_admin_key(world.analyst)
    assert _successions(world) == 1
    assert world.analyst.identity.signer.public == old  # the store has not seen it arrive
    # nothing is signed meanwhile: the old key's version could never be delivered now
    incident = (get_form("incident"), example("incident"))
    with pytest.raises(AccessDenied, match="succession was signed but not announced"):
        records.create(world.analyst, *incident)
    assert sync.push(world.analyst).sent_entries == 0  # the log shows it: the new key now
    assert world.analyst.identity.signer.public != old
    records.create(world.analyst, *incident)
    assert sync.push(world.analyst).sent_entries == 1  # seq 1 of the new key's log
    records.create(device, *incident)
    sync.push(device)
    report = pull.pull(world.analyst)
    assert report.alerts == [] and orgkeys.pending(world.analyst) is None
    assert world.analyst.identity.signer.public != old
    done = succession.rotate_admin_key(world.analyst)  # a second succession, on purpose
    assert (done.seq, done.resent) == (2, False) and _successions(world) == 2


def test_a_succession_waits_for_the_old_keys_versions_to_be_delivered(world: World) -> None:
    device = world.device("laptop")
    record = records.create(device, get_form("incident"), example("incident"))
    sync.push(device)
    pull.pull(world.analyst)
    records.edit(world.analyst, record, sets=["victims.total=8"])
    with pytest.raises(StoreStateError, match="not acknowledged") as refused:
        succession.rotate_admin_key(world.analyst)
    assert "fieldsync push" in (refused.value.hint or "")
    assert _successions(world) == 0
    sync.push(world.analyst)
    assert succession.rotate_admin_key(world.analyst).seq == 1


def test_a_member_the_retired_key_invited_through_a_dishonest_server_is_never_certified(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review F3: the retired key's holder signs an analyst's invite, a dishonest server
    enrols it anyway, and the administrator's next pull certified the spy and sealed every
    read key to them. Only a member whose invite this store made is certified now."""
    honest = world.member("Amal")  # invited by this store: certified as before
    old = world.analyst.identity.signer
    before = orgkeys.followed(world.analyst)
    assert before is not None
    succession.rotate_admin_key(world.analyst)
    with SyncClient(world.url) as client:
        info = client.info()
    text = invite.issue(
        old,
        name="spy",
        server=world.url,
        server_key=bytes.fromhex(str(info.server_key)),
        org_read_key=bytes.fromhex(str(info.org_read_key)),
        expires_ms=world.analyst.now_ms() + DAY,
        role="analyst",
        org_log=(before.seq, str(before.head)) if before.head else None,
    )
    with fast_store(tmp_path / "spy") as spy:
        with monkeypatch.context() as dishonest:  # the server lets the retired key's invite in
            dishonest.setattr(server_orglog, "admin_key", lambda *_: old.public.hex())
            enrol.enrol(
                spy,
                text,
                expect_fingerprint=admin.org_keys(world.analyst).fingerprint,
                client_for=quick,
            )
        report = pull.pull(world.analyst)
        assert report.certified == ["Amal"] and report.strangers == ["spy"]
        state = orgkeys.followed(world.analyst)
        assert state is not None and state.member(spy.identity.device_id) is None
        with pytest.raises(StoreStateError, match="not yet given this store"):
            pull.pull(spy)
    assert pull.pull(honest).set_aside == 0
