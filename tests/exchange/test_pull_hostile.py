"""Pull trusts nothing the server says: who reads what, and versions that are not as signed.

The hostile server here is the real one whose database was changed underneath it, as a person
who seized or broke into it could: a version's bytes altered, the order of the feed swapped, a
version signed by a key nobody enrolled slipped in.
"""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from fieldsync.core import crypto
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.clock import HLC
from fieldsync.errors import AccessDenied, DeviceRevoked, IntegrityError
from fieldsync.server.tables import FeedRow, ReaderWrap, StoredEntry
from fieldsync.services import admin, pull, reading, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.exchange.conftest import World

INCIDENT = get_form("incident")


def fingerprint_of(store: Store) -> str:
    """Every byte of the store's database, to show a refused pull changed nothing."""
    store.close()
    digest = hashlib.sha256((store.home / "store.db").read_bytes()).hexdigest()
    wal = store.home / "store.db-wal"
    return digest + (hashlib.sha256(wal.read_bytes()).hexdigest() if wal.exists() else "")


def analyst_edits(world: World, device: Store, times: int = 1) -> str:
    record = records.create(device, INCIDENT, example("incident"))
    sync.push(device)
    pull.pull(world.analyst)
    for n in range(times):
        records.edit(world.analyst, record, sets=[f"victims.total={6 + n}"])
    sync.push(world.analyst)
    return record


def slip_in(world: World, forged: entry_format.Entry, key: bytes, reader: Store | None) -> None:
    """Write a version straight into the server's database, as an intruder could."""
    with Session(world.app.state.engine) as session:
        header = forged.header
        session.add(
            StoredEntry(
                id=forged.id,
                author=header.author,
                seq=header.seq,
                record=header.record,
                raw=forged.raw,
                org_wrap=crypto.wrap_key(bytes.fromhex(world.server.org.org_read_key), key),
                batch="f" * 64,
                received_ms=0,
            )
        )
        session.flush()
        session.add(FeedRow(entry=forged.id))
        if reader is not None:
            box = reader.identity.box.public
            session.add(
                ReaderWrap(entry=forged.id, reader=box.hex(), wrapped=crypto.wrap_key(box, key))
            )
        session.commit()


def test_a_device_is_served_only_versions_sealed_for_it(world: World) -> None:
    laptop_a, laptop_b = world.device("laptop-a"), world.device("laptop-b")
    record_a = analyst_edits(world, laptop_a)
    record_b = records.create(laptop_b, INCIDENT, example("incident"))
    sync.push(laptop_b)

    assert pull.pull(laptop_b).received == 0  # the analyst's version of A's record is not B's
    assert {r.record for r in laptop_b.index()} == {record_b}
    with SyncClient(world.url, signer=laptop_b.identity.signer) as client:
        page = client.feed(0)
    assert page.entries == ()  # not even as ciphertext
    with SyncClient(world.url, signer=laptop_a.identity.signer) as client:
        assert len(client.feed(0).entries) == 1  # A gets just the analyst's version
    assert pull.pull(laptop_a).received == 1
    assert reading.read(laptop_a, record_a).body.answers["victims"]["total"] == 6


def test_an_unenrolled_or_revoked_key_cannot_pull(world: World) -> None:
    laptop = world.device("laptop")
    stranger = crypto.SigningPair.generate()
    with SyncClient(world.url, signer=stranger, attempts=1) as client, pytest.raises(AccessDenied):
        client.feed(0)
    admin.revoke(world.analyst, world.url, laptop.identity.device_id)
    with pytest.raises(DeviceRevoked):
        pull.pull(laptop)


def test_an_altered_version_from_the_server_is_refused_and_nothing_is_stored(
    world: World,
) -> None:
    laptop = world.device("laptop")
    analyst_edits(world, laptop)
    with Session(world.app.state.engine) as session:
        row = session.exec(
            select(StoredEntry).where(StoredEntry.author == world.analyst.identity.device_id)
        ).one()
        changed = bytearray(row.raw)
        changed[len(changed) // 2] ^= 0x01
        session.exec(
            update(StoredEntry).where(col(StoredEntry.id) == row.id).values(raw=bytes(changed))
        )  # type: ignore[call-overload]
        session.commit()
    before = fingerprint_of(laptop)
    with pytest.raises(IntegrityError, match="does not verify") as refused:
        pull.pull(laptop)
    assert "Nothing from that page was stored" in (refused.value.hint or "")
    assert fingerprint_of(laptop) == before


def test_versions_served_out_of_order_are_refused(world: World) -> None:
    laptop = world.device("laptop")
    analyst_edits(world, laptop, times=2)
    with Session(world.app.state.engine) as session:
        feed = session.exec(select(FeedRow).order_by(col(FeedRow.pos))).all()
        parent = feed[-2]  # the analyst's first version; the last is built on it
        moved = update(FeedRow).where(col(FeedRow.pos) == parent.pos).values(pos=10_000)
        session.exec(moved)  # type: ignore[call-overload]
        session.commit()
    before = fingerprint_of(laptop)
    with pytest.raises(IntegrityError, match="before a version it builds on"):
        pull.pull(laptop)
    assert fingerprint_of(laptop) == before


def test_a_version_signed_by_a_key_nobody_enrolled_is_refused(world: World) -> None:
    laptop = world.device("laptop")
    record = analyst_edits(world, laptop)
    impostor = crypto.SigningPair.generate()
    head = reading.read(laptop, record).heads[0]
    body = Body(INCIDENT.ref, example("incident")).encode()
    forged, key = entry_format.seal(
        impostor, seq=1, prev=None, record=record, parents=[head], hlc=HLC(2**41, 0), body=body
    )
    slip_in(world, forged, key, laptop)
    before = fingerprint_of(laptop)
    with pytest.raises(IntegrityError, match="does not trust"):
        pull.pull(laptop)  # the analyst's real version shares the page: it waits too
    assert fingerprint_of(laptop) == before


def test_an_analyst_refuses_a_version_whose_author_no_enrolment_vouches_for(world: World) -> None:
    laptop = world.device("laptop")
    record = records.create(laptop, INCIDENT, example("incident"))
    sync.push(laptop)
    impostor = crypto.SigningPair.generate()
    body = Body(INCIDENT.ref, example("incident")).encode()
    forged, key = entry_format.seal(
        impostor, seq=1, prev=None, record=record, parents=[], hlc=HLC(2**41, 0), body=body
    )
    slip_in(world, forged, key, None)
    with pytest.raises(IntegrityError, match="does not trust"):
        pull.pull(world.analyst)
    assert world.analyst.index() == []  # not even the device's real version on that page
