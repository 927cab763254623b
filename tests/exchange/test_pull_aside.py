"""What a pull sets aside stays bounded and honest (issue 15, item 1 reviewed).

A device may push many versions no reader can use, and one that is set aside again at every
pull (its attachment never uploaded); a dishonest server may serve a wrong wrap, or a page that
does not move, or two versions at one seq of an author. None of it may stop the pull for good,
grow one row of the store without bound, or blame the device for what the server did.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import delete, text
from sqlmodel import Session, col, select

from fieldsync.core import crypto
from fieldsync.core.wire import DeviceInfo, FeedPage
from fieldsync.errors import IntegrityError, ServerError
from fieldsync.server.tables import FeedRow, StoredEntry
from fieldsync.services import problems, pull, records, sync
from fieldsync.store import keyvalue
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.conftest import example
from tests.exchange.conftest import World
from tests.exchange.test_pull_poisoned import INCIDENT, Poisoner, bad_seal, held_records, recorded


def settings_rows(store: Store) -> dict[str, str]:
    with store._engine.connect() as connection:
        # settings, and a record's settings (each version set aside)
        rows = connection.execute(text("SELECT key, value FROM meta WHERE key LIKE '%setting:%'"))
        return {str(key): str(value) for key, value in rows}


def never_uploaded(device: Poisoner, tmp_path: Path) -> None:
    """A version whose attachment the device never uploads: set aside at every pull."""
    entry, key = device.seal(device.attached(tmp_path, 100)[0])
    device.send([entry], [device.wrap(key)])


def test_versions_set_aside_are_kept_once_each_and_no_more_than_the_cap_per_device(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scaled down: a cap of 3 MB stands for 256 MiB, versions of 1 MB for 8 MiB. Kept in one
    row, rewritten at every pull, the set grew past SQLite's limit on a row and every pull
    after failed."""
    monkeypatch.setattr(problems, "KEPT_BYTES", 3_000_000)
    good = world.device("good laptop")
    bad = Poisoner(world, world.device("bad laptop"))
    never_uploaded(bad, tmp_path)
    for _ in range(5):
        junk = [bad.seal(crypto.random_bytes(1_000_000))[0]]
        bad.send(junk, [bad_seal()])
    expected = {recorded(good)}

    first = pull.pull(world.analyst)
    assert first.set_aside == 6 and held_records(world.analyst) == expected
    rows = settings_rows(world.analyst)
    assert max(len(value) for value in rows.values()) < 3_000_000  # one version a row at most
    wraps = [p for p in first.problems if p.why == problems.WRAP]
    (shown,) = wraps
    assert shown.seqs == [2, 3, 4, 5, 6] and shown.count == 5
    assert "the bytes of 3 of them are not kept here" in shown.message
    assert "--from-start" in shown.message
    assert shown.to_json()["not_kept"] == 3
    assert len(problems.set_aside(world.analyst)) == 3  # the first two junk and the photo's

    # the photo's version fails again, for the same reason, at every pull: nothing is rewritten
    for from_start in (False, True):
        expected.add(recorded(good))
        again = pull.pull(world.analyst, from_start=from_start)
        assert held_records(world.analyst) == expected
        assert again.set_aside == 0 and again.problems == first.problems
        now = settings_rows(world.analyst)
        kept = {
            k: v
            for k, v in rows.items()
            if k.startswith(("record-setting:aside", "setting:aside", "setting:problems"))
        }
        assert kept and all(now[k] == v for k, v in kept.items())


def test_status_reads_the_problems_without_the_bytes_set_aside(world: World) -> None:
    bad = Poisoner(world, world.device("bad laptop"))
    bad.send([bad.seal(crypto.random_bytes(100_000))[0]], [bad_seal()])
    pull.pull(world.analyst)
    store = world.analyst
    store.settings_cache.clear()  # as a new process would start: nothing decrypted yet
    (found,) = problems.named(store)
    assert found.seqs == [1]
    assert all(len(str(value)) < 10_000 for value in store.settings_cache.values())


def swap_wrap(world: World, record: str, wrap: bytes) -> bytes:
    with Session(world.app.state.engine) as session:
        row = session.exec(select(StoredEntry).where(col(StoredEntry.record) == record)).one()
        before = bytes(row.org_wrap)
        row.org_wrap = wrap
        session.add(row)
        session.commit()
    return before


def test_a_wrap_the_server_swapped_is_not_blamed_on_the_device_and_the_right_one_recovers(
    world: World,
) -> None:
    laptop = world.device("laptop")
    record = records.create(laptop, INCIDENT, example("incident"))
    sync.push(laptop)
    good = swap_wrap(world, record, os.urandom(crypto.SEAL_BYTES))
    (found,) = pull.pull(world.analyst).problems
    assert "the device or the server may be at fault" in found.message
    assert record not in held_records(world.analyst)

    swap_wrap(world, record, good)  # the server serves the right wrap again
    recovered = pull.pull(world.analyst, from_start=True)
    assert recovered.recovered == 1 and recovered.problems == []
    assert record in held_records(world.analyst)
    assert problems.set_aside(world.analyst) == []


def test_a_bad_wrap_served_later_does_not_replace_one_that_opens(world: World) -> None:
    """The body does not fit its form, so the version is set aside with a wrap that opens; a
    wrong wrap served on the next pull from the start is not kept in its place."""
    bad = Poisoner(world, world.device("bad laptop"))
    entry, key = bad.seal(b"not a record body")
    wrap = bad.wrap(key)
    bad.send([entry], [wrap])
    (found,) = pull.pull(world.analyst).problems
    assert found.why == problems.BODY
    swap_wrap(world, entry.header.record, os.urandom(crypto.SEAL_BYTES))
    (again,) = pull.pull(world.analyst, from_start=True).problems
    assert again.why == problems.BODY
    ((kept),) = problems.set_aside(world.analyst)
    assert kept.wrap == wrap


def test_a_set_aside_version_and_another_at_its_seq_are_a_fork_refused(world: World) -> None:
    """The server's ingest keeps one version per seq of an author: two served are its doing."""
    bad = Poisoner(world, world.device("bad laptop"))
    poisoned, _ = bad.seal()
    bad.send([poisoned], [bad_seal()])
    assert [p.seqs for p in pull.pull(world.analyst).problems] == [[1]]
    bad.seq, bad.prev = 0, None
    other, key = bad.seal()
    with Session(world.app.state.engine) as session:  # an insider puts another seq 1 in its place
        session.exec(delete(FeedRow).where(col(FeedRow.entry) == poisoned.id))  # type: ignore[call-overload]
        session.exec(delete(StoredEntry).where(col(StoredEntry.id) == poisoned.id))  # type: ignore[call-overload]
        header = other.header
        session.add(
            StoredEntry(
                id=other.id,
                author=header.author,
                seq=header.seq,
                record=header.record,
                raw=other.raw,
                org_wrap=bad.wrap(key),
                batch="f" * 64,
                received_ms=0,
            )
        )
        session.flush()
        session.add(FeedRow(entry=other.id))
        session.commit()
    with pytest.raises(IntegrityError, match="fork"):
        pull.pull(world.analyst)
    assert other.header.record not in held_records(world.analyst)


class StuckFeed(SyncClient):
    """A server whose page names itself as the next one, with versions and more to come."""

    served = 0

    def feed(self, after: int) -> FeedPage:
        self.served += 1
        assert self.served < 50, "the pull keeps asking for the same page"
        page = super().feed(after)
        return replace(page, next=after, more=True)


def test_a_page_that_does_not_move_forward_is_refused(world: World) -> None:
    recorded(world.device("laptop"))

    def stuck(url: str, store: Store) -> SyncClient:
        return StuckFeed(url, signer=store.identity.signer, attempts=1)

    with pytest.raises(ServerError, match="does not move forward"):
        pull.pull(world.analyst, client_for=stuck)


class RespelledRegistry(SyncClient):
    """A server that spells each enrolment's base64 with a line break in it."""

    def devices(self) -> tuple[DeviceInfo, ...]:
        return tuple(
            replace(device, enrolment=device.enrolment[:8] + "\n" + device.enrolment[8:])
            for device in super().devices()
        )


def test_an_enrolment_spelled_otherwise_by_the_server_is_not_vouched_for(world: World) -> None:
    """One spelling: the registry's enrolment, kept verbatim for evidence packages, is read as
    canonical base64 only (a line break in it was skipped, and kept)."""
    recorded(world.device("laptop"))

    def respelled(url: str, store: Store) -> SyncClient:
        return RespelledRegistry(url, signer=store.identity.signer, attempts=1)

    with pytest.raises(IntegrityError, match="does not trust"):
        pull.pull(world.analyst, client_for=respelled)
    kept = (keyvalue.setting(world.analyst, "registry") or {}).get("devices", {})
    assert not any("\n" in device["enrolment"] for device in kept.values())
