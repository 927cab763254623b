"""Rotating the server's receipt key, against a real server: the server offers a new key (proved
by the key in force), the administrator names it in the organisation's log, and devices check
receipts against it from their next push, with no new invite. A receipt signed by the retired
key after that convinces no device; a batch answered again is answered under the new key."""

from __future__ import annotations

import dataclasses
from contextlib import closing
from pathlib import Path

import pytest
from sqlmodel import Session, select

from fieldsync.core import batch as batch_format
from fieldsync.core import crypto, orglog, receipt
from fieldsync.core.ids import fingerprint
from fieldsync.core.wire import ServerInfo
from fieldsync.errors import (
    AccessDenied,
    InputError,
    ServerError,
    ServerUnreachable,
    SignatureInvalid,
    StoreStateError,
)
from fieldsync.server import data
from fieldsync.server.holdings import ServerHoldings
from fieldsync.server.tables import AcceptedBatch
from fieldsync.services import admin, enrol, pull, records, rotation, sync
from fieldsync.services.forms import get_form
from fieldsync.store import orgkeys
from fieldsync.transport.client import SyncClient
from tests.conftest import example, fast_store
from tests.exchange.conftest import World
from tests.services.conftest import DAY, quick


def _receipt_keys(world: World) -> set[str]:
    with Session(world.app.state.engine) as session:
        kept = session.exec(select(AcceptedBatch.receipt)).all()
    return {receipt.parse_unverified(raw).server for raw in kept}


def _verified(world: World) -> bool:
    with closing(ServerHoldings(world.server)) as holdings:
        audited = admin.verify(world.analyst, holdings)
    assert audited.ok, [p.what for a in audited.authors for p in a.problems] + [
        p.what for p in audited.problems
    ]
    return True


def test_devices_follow_a_new_receipt_key_without_a_new_invite(world: World) -> None:
    device = world.device("laptop")
    records.create(device, get_form("incident"), example("incident"))
    sync.push(device)
    first = world.server.receipt_key.public.hex()
    with pytest.raises(StoreStateError, match="offers no new receipt key"):
        rotation.rotate_receipt_key(world.analyst)

    number, key = data.new_receipt_key(world.server.folder)
    assert number == 2
    done = rotation.rotate_receipt_key(world.analyst)
    assert done.seq == 1
    records.create(device, get_form("incident"), example("incident"))
    assert sync.push(device).sent_entries == 1  # checked against the new key
    assert _receipt_keys(world) == {first, key.public.hex()}
    state = orgkeys.followed(device)
    assert state is not None and state.server_key == key.public.hex()

    # a device enrolled now shows an invite naming the first key (where the log starts)
    late = world.device("late laptop")
    records.create(late, get_form("incident"), example("incident"))
    assert sync.push(late).sent_entries == 1
    assert pull.pull(world.analyst).received == 3
    assert _verified(world)
    # a third key, named the same way: the first two's receipts still check
    data.new_receipt_key(world.server.folder)
    assert rotation.rotate_receipt_key(world.analyst).seq == 2
    assert _verified(world)


def test_a_receipt_signed_by_the_retired_key_convinces_no_device(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = world.device("laptop")
    data.new_receipt_key(world.server.folder)
    rotation.rotate_receipt_key(world.analyst)
    sync.push(device)  # the device follows the log
    records.create(device, get_form("incident"), example("incident"))
    retired = world.server.receipt_key  # leaked, say: a thief answers in the server's place

    def forged(self: SyncClient, raw: bytes) -> bytes:
        built = batch_format.parse(raw)
        last = built.entries[-1]
        return receipt.sign(
            retired,
            device=built.manifest.author,
            last_seq=last.header.seq,
            head=last.id,
            batch=built.id,
            time_ms=1,
        )

    monkeypatch.setattr(SyncClient, "send_batch", forged)
    with pytest.raises(ServerError, match="not a valid receipt"):
        sync.push(device, wipe_after=True)
    assert sync.pending(device) == 1  # nothing marked delivered, nothing wiped


def test_a_batch_answered_again_is_answered_under_the_key_in_force(world: World) -> None:
    device = world.device("laptop")
    records.create(device, get_form("incident"), example("incident"))
    sent: list[bytes] = []
    real = SyncClient.send_batch

    def keep(self: SyncClient, raw: bytes) -> bytes:
        sent.append(raw)
        return real(self, raw)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(SyncClient, "send_batch", keep)
        sync.push(device)
    _, key = data.new_receipt_key(world.server.folder)
    rotation.rotate_receipt_key(world.analyst)
    with SyncClient(world.url, signer=device.identity.signer) as client:
        again = client.send_batch(sent[0])
    assert receipt.verify(again, pinned_server_key=key.public).last_seq == 1


def test_an_offer_the_key_in_force_did_not_sign_and_a_key_the_server_lacks_are_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    data.new_receipt_key(world.server.folder)
    real = SyncClient.info
    stranger = crypto.SigningPair.generate()

    def swapped(self: SyncClient) -> ServerInfo:  # a man in the middle offers its own key
        shown = real(self)
        proof = stranger.sign(crypto.LABEL_NEXT_RECEIPT_KEY, stranger.public).hex()
        return dataclasses.replace(
            shown, next_receipt_key=stranger.public.hex(), next_receipt_key_proof=proof
        )

    with monkeypatch.context() as patched:
        patched.setattr(SyncClient, "info", swapped)
        with pytest.raises(SignatureInvalid, match="not signed by its receipt key in force"):
            rotation.rotate_receipt_key(world.analyst)
    state = orgkeys.followed(world.analyst)
    assert state is not None and state.seq == 0  # nothing was announced
    fields = {"server_key": stranger.public.hex()}
    raw = orglog.sign(world.analyst.identity.signer, state, orglog.RECEIPT_KEY, fields, time_ms=1)
    with SyncClient(world.url) as client, pytest.raises(AccessDenied, match="does not hold"):
        client.send_statement(raw)


def test_a_device_enrolled_after_the_rotation_checks_the_new_key(
    world: World, tmp_path: Path
) -> None:
    data.new_receipt_key(world.server.folder)
    rotation.rotate_receipt_key(world.analyst)
    with fast_store(tmp_path / "late") as store:
        text, shown = admin.make_invite(
            world.analyst, "late", world.url, valid_ms=DAY, client_for=quick
        )
        enrol.enrol(
            store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick
        )
        records.create(store, get_form("incident"), example("incident"))
        assert sync.push(store).sent_entries == 1


def test_a_rotation_whose_statement_was_dropped_is_finished_by_running_it_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review F7: a second run said "a statement is pending", for ever."""
    _, key = data.new_receipt_key(world.server.folder)

    def dropped(*_: object, **__: object) -> None:
        raise ServerUnreachable("the link dropped")

    with monkeypatch.context() as patched:
        patched.setattr(SyncClient, "send_statement", dropped)
        with pytest.raises(ServerUnreachable):
            rotation.rotate_receipt_key(world.analyst)
    done = rotation.rotate_receipt_key(world.analyst)
    assert done.seq == 1 and orgkeys.pending(world.analyst) is None
    state = orgkeys.followed(world.analyst)
    assert state is not None and state.server_key == key.public.hex()


def test_a_server_that_lost_its_receipt_key_gets_a_new_one_confirmed_by_fingerprint(
    world: World,
) -> None:
    """Review F4: with the key in force lost, no push could succeed and no new key could be
    proved, for ever."""
    device = world.device("laptop")
    number, _ = data.new_receipt_key(world.server.folder)
    rotation.rotate_receipt_key(world.analyst)
    (world.server.folder / f"server-key-{number}").unlink()  # the host rebuilt without it
    records.create(device, get_form("incident"), example("incident"))
    with pytest.raises(ServerError):
        sync.push(device)
    assert sync.pending(device) == 1  # nothing lost
    _, again = data.new_receipt_key(world.server.folder)
    with pytest.raises(SignatureInvalid, match="or it lost that key") as unproved:
        rotation.rotate_receipt_key(world.analyst)
    assert "--confirm" in (unproved.value.hint or "")
    with pytest.raises(InputError, match="not the one given"):
        rotation.rotate_receipt_key(world.analyst, confirm="1" * 40)
    done = rotation.rotate_receipt_key(world.analyst, confirm=fingerprint(again.public))
    assert done.fingerprint == fingerprint(again.public)
    assert sync.push(device).sent_entries == 1
