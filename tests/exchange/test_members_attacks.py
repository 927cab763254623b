"""The adversarial review's findings on the organisation's team, each performed as the attack
(every one passed against the code before its fix): a server naming whom a revocation is for,
a member revoked before it was certified, a rotation announced without its backup, a forked log
blocking every pull, a stale copy replacing the backup."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from fieldsync.core import crypto, orglog
from fieldsync.core.wire import RevokeAnswer
from fieldsync.errors import (
    ChainFork,
    ChainGap,
    ServerError,
    ServerUnreachable,
    StoreBusy,
    StoreStateError,
)
from fieldsync.server.tables import MemberBundle, OrgForkRow, OrgStatementRow
from fieldsync.services import admin, backup, members, pull, records, rotation, sync
from fieldsync.services.forms import get_form
from fieldsync.store import orgkeys
from fieldsync.store.db import DB_FILE, make_engine
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.exchange.conftest import World

AGAIN = "another passphrase, for the store made again"


def test_a_revocation_is_for_the_member_chosen_whatever_the_server_answers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    mallory, honest = world.member("Mallory"), world.member("Honest")
    pull.pull(world.analyst)
    m, h = mallory.identity.device_id, honest.identity.device_id

    def hostile(self: SyncClient, device: str) -> RevokeAnswer:
        return RevokeAnswer(h if device == m else device, "revoked", 1)

    monkeypatch.setattr(SyncClient, "revoke", hostile)
    with pytest.raises(ServerError, match="names another key"):
        admin.revoke(world.analyst, world.url, m)
    monkeypatch.undo()
    state = orgkeys.followed(world.analyst)
    assert state is not None
    assert not any(member.revoked for member in state.members)  # nobody named revoked
    admin.revoke(world.analyst, world.url, m)  # an honest answer: Mallory, and only Mallory
    state = orgkeys.followed(world.analyst)
    assert state is not None and state.member(m).revoked and not state.member(h).revoked  # type: ignore[union-attr]
    rotation.rotate_read_key(world.analyst)
    with Session(world.app.state.engine) as session:
        kept = session.get(MemberBundle, m)
    assert kept is not None and b"org_seq" in kept.raw
    with sync.signed_client(world.url, world.analyst) as client:
        assert members.give_bundles(world.analyst, client) == 0  # Mallory gets no more


def test_a_member_revoked_before_it_was_certified_is_never_certified(world: World) -> None:
    impostor = world.member("Impostor")
    assert admin.revoke(world.analyst, world.url, impostor.identity.device_id).status == "revoked"
    report = pull.pull(world.analyst)
    assert report.certified == []
    state = orgkeys.followed(world.analyst)
    assert state is not None and state.member(impostor.identity.device_id) is None
    with Session(world.app.state.engine) as session:
        assert session.get(MemberBundle, impostor.identity.device_id) is None
    assert impostor.identity.device_id not in state.analysts


def test_a_rotation_is_never_announced_before_the_backup_holds_its_key(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = world.device("laptop")
    made = backup.make_backup(world.analyst, 3, 2, server_url=world.url)

    def dropped(*_: object, **__: object) -> None:
        raise ServerUnreachable("the link dropped")

    with monkeypatch.context() as patched:
        patched.setattr(backup, "refresh", dropped)
        with pytest.raises(ServerUnreachable):
            rotation.rotate_read_key(world.analyst)
    assert orgkeys.pending(world.analyst) is not None
    report = pull.pull(world.analyst)  # does not send the announcement, and says why
    assert report.held_back == members.UNFINISHED_ROTATION
    with pytest.raises(StoreStateError, match="signed but not announced"):
        admin.revoke(world.analyst, world.url, device.identity.device_id)
    state = orgkeys.followed(world.analyst)
    assert state is not None and state.read_key.epoch == 1  # nobody wraps for key 2 yet
    done = rotation.rotate_read_key(world.analyst)  # the backup first, then the announcement
    assert (done.epoch, done.resent, done.backed_up) == (2, True, True)
    record = records.create(device, get_form("incident"), example("incident"))
    sync.push(device)
    recovered = backup.recover(tmp_path / "again", AGAIN, made.shares[:2], server_url=world.url)
    assert recovered.read_keys == 2
    with Store.open(tmp_path / "again", AGAIN) as again:
        got = pull.pull(again)
        assert got.set_aside == 0 and record in again.record_ids()


def test_a_forked_log_does_not_stop_the_administrator_pulling_everything(world: World) -> None:
    device = world.device("laptop")
    records.create(device, get_form("incident"), example("incident"))
    sync.push(device)
    state = orgkeys.followed(world.analyst)
    assert state is not None
    signer = world.analyst.identity.signer

    def rotation_by_thief(time_ms: int) -> bytes:
        fields = {"epoch": 2, "read_key": crypto.BoxPair.generate().public.hex()}
        return orglog.sign(signer, state, orglog.READ_KEY, fields, time_ms=time_ms)

    with SyncClient(world.url) as client:
        client.send_statement(rotation_by_thief(1))
        with pytest.raises(ChainFork):
            client.send_statement(rotation_by_thief(2))
    world.member("enrolled by anyone with an analyst's invite")
    for _ in range(2):
        report = pull.pull(world.analyst)
        assert report.received >= 0 and report.alerts
        assert report.held_back is not None and "forks" in report.held_back
    assert orgkeys.pending(world.analyst) is None
    assert len(world.analyst.record_ids()) == 1


def test_a_stale_copy_of_the_administrators_store_cannot_replace_the_backup(
    world: World, tmp_path: Path
) -> None:
    admin_store = world.analyst
    backup.make_backup(admin_store, 3, 2, server_url=world.url)
    shutil.copytree(admin_store.home, tmp_path / "stale")
    stale = Store(
        tmp_path / "stale",
        make_engine(tmp_path / "stale" / DB_FILE),
        admin_store._vault_key,
        admin_store.identity,
    )
    rotation.rotate_read_key(admin_store)
    with SyncClient(world.url) as client:
        before = client.backup()
        with pytest.raises(StoreStateError, match="does not hold read key 2"):
            backup.make_backup(stale, 3, 2, server_url=world.url)
        assert client.backup() == before


def test_a_recovered_store_refuses_a_server_that_lost_what_the_lost_store_followed(
    world: World, tmp_path: Path
) -> None:
    """Recovery follows the log as far as the backup says the lost store had (a server
    restored from before a rotation is refused, nothing made), and sends a rotation the lost
    store sealed into the backup but never delivered, rather than signing that seq again."""
    device = world.device("laptop")
    made = backup.make_backup(world.analyst, 3, 2, server_url=world.url)
    rotation.rotate_read_key(world.analyst)
    rotation.rotate_read_key(world.analyst)
    sync.push(device)
    with Session(world.app.state.engine) as session:  # a server restored from before both
        rows = [session.get(OrgStatementRow, seq) for seq in (1, 2)]
        lost = [OrgStatementRow(**row.model_dump()) for row in rows if row is not None]
        for row in rows:
            session.delete(row)
        session.commit()
    with pytest.raises((orglog.RolledBack, ChainGap)):
        backup.recover(tmp_path / "again", AGAIN, made.shares[:2], server_url=world.url)
    assert not (tmp_path / "again").exists()
    with Session(world.app.state.engine) as session:
        for row in lost:
            session.add(row)
        session.commit()
    # a rotation signed and backed up, its announcement never delivered (the link dropped)

    def dropped(self: SyncClient, raw: bytes) -> object:
        raise ServerUnreachable("the link dropped")

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(SyncClient, "send_statement", dropped)
        with pytest.raises(ServerUnreachable):
            rotation.rotate_read_key(world.analyst)
    done = backup.recover(tmp_path / "again", AGAIN, made.shares[:2], server_url=world.url)
    assert done.read_keys == 4
    with Store.open(tmp_path / "again", AGAIN) as again:
        state = orgkeys.followed(again)
        assert state is not None and (state.seq, state.read_key.epoch) == (3, 4)
    sync.push(device)  # the device follows the very statement the lost store signed
    followed = orgkeys.followed(device)
    assert followed is not None and followed.read_key.epoch == 4


def test_two_commands_signing_at_once_never_fork_the_log(world: World) -> None:
    """A rotation while another command holds the administrator's store: it is refused as
    busy before anything is signed, rather than both signing at one seq."""
    admin_store = world.analyst
    other = Store(  # a second command with the same store open
        admin_store.home,
        make_engine(admin_store.home / DB_FILE),
        admin_store._vault_key,
        admin_store.identity,
    )
    try:
        with pytest.raises(StoreBusy, match="signing a statement"):
            rotation.rotate_read_key(admin_store)
    finally:
        other.close()
    assert orgkeys.pending(admin_store) is None
    assert rotation.rotate_read_key(admin_store).epoch == 2
    with Session(world.app.state.engine) as session:
        assert session.get(OrgStatementRow, 1) is not None
        assert session.exec(select(func.count()).select_from(OrgForkRow)).one() == 0
