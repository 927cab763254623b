"""One enrolled device cannot stop the analysts' pull, and the server cannot hold back a version
unseen (issue 15, items 1 and 5).

A device holds a real key and can sign whatever it likes: a version whose org wrap is random
bytes, whose body does not fit its form, which builds on another record's version, or whose
attachment was never uploaded. The server refuses what it can check; the analyst's pull sets
the rest aside by name, keeps its signed bytes, stores everything else and moves on. A server
that drops a version from its feed is named by the author and seq it withheld.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete, text
from sqlmodel import Session, col, select

from fieldsync.core import batch as batch_format
from fieldsync.core import blob, crypto
from fieldsync.core import entry as entry_format
from fieldsync.core.audit import AuditReport
from fieldsync.core.body import Attachment, Body
from fieldsync.core.clock import HLC
from fieldsync.core.ids import new_record_id
from fieldsync.errors import BatchInvalid, FieldsyncError
from fieldsync.server.holdings import ServerHoldings
from fieldsync.server.tables import DeviceRow, FeedRow, StoredEntry
from fieldsync.services import admin, evidence, problems, pull, reading, records, sync, uploads
from fieldsync.services.forms import get_form
from fieldsync.store import blobs, keyvalue
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests import carving
from tests.conftest import example
from tests.exchange.conftest import World

INCIDENT = get_form("incident")


class Poisoner:
    """An enrolled device's key signing what its own store never would."""

    def __init__(self, world: World, store: Store) -> None:
        self.world, self.store = world, store
        self.signer = store.identity.signer
        self.seq, self.prev = 0, None
        self.org = bytes.fromhex(world.server.org.org_read_key)

    def seal(
        self,
        body: Body | bytes | None = None,
        *,
        record: str | None = None,
        parents: tuple[str, ...] = (),
    ) -> tuple[entry_format.Entry, bytes]:
        """The device's next entry, and its content key."""
        self.seq += 1
        plain = body if isinstance(body, bytes) else (body or incident()).encode()
        entry, key = entry_format.seal(
            self.signer,
            seq=self.seq,
            prev=self.prev,
            record=record or new_record_id(),
            parents=parents,
            hlc=HLC(self.store.now_ms(), 0),
            body=plain,
        )
        self.prev = entry.id
        return entry, key

    def wrap(self, key: bytes) -> bytes:
        return crypto.wrap_key(self.org, key)

    def attached(self, tmp_path: Path, size: int) -> tuple[Body, blob.Sealed]:
        """A body naming a photo this device's store holds and has not uploaded."""
        source = tmp_path / "photo.jpg"
        source.write_bytes(b"\xff\xd8" + crypto.random_bytes(size))
        with open(source, "rb") as handle:
            sealed = blobs.put_blob(self.store, handle)
        attachment = Attachment(
            id=new_record_id(),
            blob=sealed.blob_id,
            key=sealed.key.hex(),
            name="photo.jpg",
            media_type="image/jpeg",
            size=sealed.size,
            sha256=sealed.sha256,
        )
        return Body(INCIDENT.ref, example("incident"), (attachment,)), sealed

    def send(
        self,
        entries: list[entry_format.Entry],
        wraps: list[bytes],
        blobs: tuple[tuple[str, int], ...] = (),
        readers: list[batch_format.Readers] | None = None,
    ) -> bytes:
        built = batch_format.build(self.signer, entries, wraps, blobs, readers)
        with SyncClient(self.world.url, signer=self.signer, attempts=1) as client:
            return client.send_batch(built.raw)


def bad_seal() -> bytes:
    """Random bytes the length of a sealed content key: a wrap that opens for no one."""
    return crypto.random_bytes(crypto.SEAL_BYTES)


def incident(**changes: object) -> Body:
    return Body(INCIDENT.ref, example("incident") | changes)


def recorded(device: Store) -> str:
    record = records.create(device, INCIDENT, example("incident"))
    sync.push(device)
    return record


def held_records(store: Store) -> set[str]:
    return {entry.record for entry in store.index()}


def poisoned_then_good(world: World, poison: object) -> tuple[Store, Store, set[str]]:
    """A good device's record, then the poison (a callable given the poisoner), then two more
    good records: all on one page of the feed."""
    good, bad = world.device("good laptop"), world.device("bad laptop")
    first = recorded(good)
    assert callable(poison)
    poison(Poisoner(world, bad))
    return good, bad, {first, recorded(good), recorded(good)}


def only_problem(report: pull.PullReport, device: Store) -> problems.Problem:
    (found,) = report.problems
    assert found.author == device.identity.device_id
    assert "bad laptop" in found.message and device.identity.fingerprint in found.message
    return found


def moves_on(world: World, good: Store, expected: set[str], device: Store) -> None:
    """A second pull stores the next good record and still names the bad one; so does one
    from the start, storing nothing twice."""
    expected = expected | {recorded(good)}
    again = pull.pull(world.analyst)
    assert again.received == 1 and held_records(world.analyst) == expected
    assert {p.author for p in again.problems} == {device.identity.device_id}
    restart = pull.pull(world.analyst, from_start=True)
    assert restart.received == 0 and held_records(world.analyst) == expected
    assert restart.problems == again.problems and restart.set_aside == 0


def test_a_version_whose_org_wrap_is_random_bytes_is_set_aside_by_name(world: World) -> None:
    sent: list[tuple[entry_format.Entry, bytes]] = []

    def poison(device: Poisoner) -> None:
        entry, _ = device.seal()
        wrap = bad_seal()
        device.send([entry], [wrap])
        sent.append((entry, wrap))

    good, bad, expected = poisoned_then_good(world, poison)
    report = pull.pull(world.analyst)
    assert held_records(world.analyst) == expected and report.received == 3
    found = only_problem(report, bad)
    assert found.seqs == [1] and "the key wrap served with it does not open" in found.message
    assert "1 version from device 'bad laptop'" in found.message
    # nothing that verifies is lost: the signed bytes and the wrap are kept to try again
    ((entry, wrap),) = sent
    (kept,) = problems.set_aside(world.analyst)
    assert (kept.raw, kept.wrap, kept.seq) == (entry.raw, wrap, 1)
    moves_on(world, good, expected, bad)


def test_a_version_whose_answers_do_not_fit_its_form_is_set_aside(world: World) -> None:
    def poison(device: Poisoner) -> None:
        entries, wraps = [], []
        for body in (incident(victims="many"), b"not a record body"):
            entry, key = device.seal(body)
            entries.append(entry)
            wraps.append(device.wrap(key))
        device.send(entries, wraps)

    good, bad, expected = poisoned_then_good(world, poison)
    report = pull.pull(world.analyst)
    assert held_records(world.analyst) == expected
    assert sorted((p.seqs, p.why) for p in report.problems) == [
        ([1], problems.ANSWERS),
        ([2], problems.BODY),
    ]
    moves_on(world, good, expected, bad)


def test_a_parent_from_another_record_is_refused_at_ingest(world: World) -> None:
    bad = world.device("bad laptop")
    own = recorded(bad)
    device = Poisoner(world, bad)
    device.seq, device.prev = 1, reading.read(bad, own).heads[0]
    entry, key = device.seal(record=new_record_id(), parents=(device.prev,))
    with pytest.raises(BatchInvalid, match="another record"):
        device.send([entry], [device.wrap(key)])
    with Session(world.app.state.engine) as session:
        assert session.get(StoredEntry, entry.id) is None


def test_a_parent_from_another_record_already_on_the_server_is_set_aside(world: World) -> None:
    """What a server accepted before it checked parents' records (or an insider added)."""
    good, bad = world.device("good laptop"), world.device("bad laptop")
    own = recorded(bad)
    device = Poisoner(world, bad)
    device.seq, device.prev = 1, reading.read(bad, own).heads[0]
    entry, key = device.seal(record=new_record_id(), parents=(device.prev,))
    child, child_key = device.seal(record=entry.header.record, parents=(entry.id,))
    with Session(world.app.state.engine) as session:
        for position, (kept, content) in enumerate(((entry, key), (child, child_key))):
            header = kept.header
            session.add(
                StoredEntry(
                    id=kept.id,
                    author=header.author,
                    seq=header.seq,
                    record=header.record,
                    raw=kept.raw,
                    org_wrap=device.wrap(content),
                    batch=f"{position}" * 64,
                    received_ms=0,
                )
            )
            session.flush()
            session.add(FeedRow(entry=kept.id))
        session.commit()
    expected = {own, recorded(good), recorded(good)}
    report = pull.pull(world.analyst)
    assert held_records(world.analyst) == expected
    assert sorted((p.seqs, p.why) for p in report.problems) == [
        ([2], problems.OTHER_RECORD),
        ([3], problems.ON_SET_ASIDE),  # what builds on a set-aside version waits with it
    ]
    moves_on(world, good, expected, bad)


def test_an_attachment_never_uploaded_is_refused_when_named_and_set_aside_when_hidden(
    world: World, tmp_path: Path
) -> None:
    parked: list[tuple[str, int]] = []

    def poison(device: Poisoner) -> None:
        body, sealed = device.attached(tmp_path, 5000)
        entry, key = device.seal(body)
        with pytest.raises(BatchInvalid, match="not fully uploaded"):  # the server can check
            device.send([entry], [device.wrap(key)], ((sealed.blob_id, sealed.stored_size),))
        device.send([entry], [device.wrap(key)])  # a manifest that does not name it
        parked.append((sealed.blob_id, sealed.stored_size))

    good, bad, expected = poisoned_then_good(world, poison)
    report = pull.pull(world.analyst)
    assert held_records(world.analyst) == expected
    found = only_problem(report, bad)
    assert found.seqs == [1] and found.why == problems.BLOB_MISSING
    moves_on(world, good, expected, bad)

    # the device uploads the blob after all: the next pull tries again, and stores it
    ((blob_id, size),) = parked
    with SyncClient(world.url, signer=bad.identity.signer) as client:
        path = blobs.blob_path(bad, blob_id)

        def read_at(offset: int, count: int) -> bytes:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read(count)

        uploads.upload(client, blob_id, size, read_at)
    recovered = pull.pull(world.analyst)
    assert recovered.recovered == 1 and recovered.problems == []
    assert len(held_records(world.analyst)) == len(expected) + 2
    with open(blobs.blob_path(world.analyst, blob_id), "rb") as fetched:
        assert blob.blob_id_of(fetched) == blob_id


def test_versions_set_aside_over_several_pages_are_named_as_one_span(world: World) -> None:
    def poison(device: Poisoner) -> None:
        for _ in range(2):  # 600 versions: more than a page of the feed
            entries = [device.seal()[0] for _ in range(300)]
            device.send(entries, [bad_seal()] * len(entries))

    good, bad, expected = poisoned_then_good(world, poison)
    report = pull.pull(world.analyst)
    assert held_records(world.analyst) == expected and report.set_aside == 600
    found = only_problem(report, bad)
    assert found.seqs == list(range(1, 601)) and "(seq 1–600)" in found.message
    moves_on(world, good, expected, bad)


def test_a_device_sets_aside_an_analysts_version_it_cannot_open(world: World) -> None:
    laptop = world.device("laptop")
    own = recorded(laptop)
    analysts = Poisoner(world, world.analyst)
    entry, key = analysts.seal()
    box = laptop.identity.box.public.hex()
    analysts.send([entry], [analysts.wrap(key)], readers=[((box, bad_seal()),)])
    report = pull.pull(laptop)
    assert report.received == 0 and held_records(laptop) == {own}
    (found,) = report.problems
    assert found.why == problems.WRAP and found.seqs == [1]
    assert found.message.startswith("1 version from the administrator")
    assert pull.pull(world.analyst).problems == []  # the organisation's own wrap opens


def test_an_analysts_batch_naming_a_blob_never_uploaded_is_refused(world: World) -> None:
    """The administrator's own log goes through the same checks as a device's."""
    analysts = Poisoner(world, world.analyst)
    entry, key = analysts.seal()
    with pytest.raises(BatchInvalid, match="not fully uploaded"):
        analysts.send([entry], [analysts.wrap(key)], (("ab" * 32, 100),))
    with Session(world.app.state.engine) as session:
        assert session.get(StoredEntry, entry.id) is None


def test_the_named_problem_is_in_every_json_output(world: World) -> None:
    def poison(device: Poisoner) -> None:
        entry, _ = device.seal()
        device.send([entry], [bad_seal()])

    _good, bad, _ = poisoned_then_good(world, poison)
    report = pull.pull(world.analyst)
    (shown,) = [p.to_json() for p in report.problems]
    assert shown["device"] == bad.identity.device_id and shown["seqs"] == [1]
    assert json.loads(json.dumps(shown)) == shown
    assert [p.to_json() for p in problems.named(world.analyst)] == [shown]


# --- item 5: a version held back by the server ------------------------------------------------


def five_versions(world: World) -> tuple[Store, list[str]]:
    laptop = world.device("laptop")
    for _ in range(5):
        records.create(laptop, INCIDENT, example("incident"))
    sync.push(laptop)
    with Session(world.app.state.engine) as session:
        ids = session.exec(
            select(StoredEntry.id)
            .where(StoredEntry.author == laptop.identity.device_id)
            .order_by(col(StoredEntry.seq))
        ).all()
    return laptop, list(ids)


def audit(world: World) -> AuditReport:
    holdings = ServerHoldings(world.server)
    try:
        return admin.verify(world.analyst, holdings)
    finally:
        holdings.close()


def test_a_version_dropped_from_the_feed_is_named_by_pull_and_verify(world: World) -> None:
    laptop, ids = five_versions(world)
    with Session(world.app.state.engine) as session:
        session.exec(delete(FeedRow).where(col(FeedRow.entry) == ids[2]))  # type: ignore[call-overload]
        session.commit()
    report = pull.pull(world.analyst)
    assert report.received == 4
    (withheld,) = report.problems
    assert withheld.author == laptop.identity.device_id and withheld.seqs == [3]
    assert withheld.why == problems.WITHHELD and "seq 3" in withheld.message
    assert "laptop" in withheld.message
    assert [p.to_json() for p in problems.named(world.analyst)] == [withheld.to_json()]

    checked = audit(world)
    assert not checked.ok
    (author,) = [a for a in checked.authors if a.key == laptop.identity.device_id]
    assert [(p.seq, "not in the feed" in p.what) for p in author.problems] == [(3, True)]


def test_the_last_version_dropped_from_the_feed_is_named_from_the_receipt(world: World) -> None:
    laptop, ids = five_versions(world)
    with Session(world.app.state.engine) as session:
        session.exec(delete(FeedRow).where(col(FeedRow.entry) == ids[4]))  # type: ignore[call-overload]
        session.commit()
    report = pull.pull(world.analyst)
    assert report.received == 4
    (withheld,) = report.problems
    assert withheld.seqs == [5] and withheld.author == laptop.identity.device_id


def test_a_registry_claiming_versions_never_served_is_named_as_one_span(world: World) -> None:
    """However large the server's claim, it costs one span, not a list of every seq."""
    laptop, _ = five_versions(world)
    with Session(world.app.state.engine) as session:
        device = session.get(DeviceRow, laptop.identity.device_id)
        assert device is not None
        device.last_seq = 10**15
        session.add(device)
        session.commit()
    (withheld,) = pull.pull(world.analyst).problems
    assert withheld.spans == ((6, 10**15),) and withheld.to_json()["seqs"] is None
    assert f"(seq 6–{10**15})" in withheld.message


def test_a_feed_row_served_twice_is_named_by_verify(world: World) -> None:
    laptop, ids = five_versions(world)
    with Session(world.app.state.engine) as session:
        # an insider can rebuild the table without its constraint, then add a second row
        session.execute(text("ALTER TABLE feed RENAME TO old_feed"))
        session.execute(text("CREATE TABLE feed (pos INTEGER PRIMARY KEY, entry VARCHAR)"))
        session.execute(text("INSERT INTO feed SELECT pos, entry FROM old_feed"))
        session.execute(text("DROP TABLE old_feed"))
        session.execute(text("INSERT INTO feed (entry) VALUES (:entry)"), {"entry": ids[1]})
        session.commit()
    assert audit(world).ok is False
    (author,) = [a for a in audit(world).authors if a.key == laptop.identity.device_id]
    assert [(p.seq, "twice" in p.what) for p in author.problems] == [(2, True)]
    pulled = pull.pull(world.analyst)  # a reader takes it once and finds nothing missing
    assert pulled.received == 5 and pulled.problems == []


def test_a_version_set_aside_still_links_its_neighbours_evidence(
    world: World, tmp_path: Path
) -> None:
    """The chain from a record's version to the receipt may run through a version set aside:
    its signed bytes are kept, so the evidence package still proves custody."""
    bad = world.device("bad laptop")
    device = Poisoner(world, bad)
    fine, key = device.seal()
    poisoned, _ = device.seal()
    device.send([fine, poisoned], [device.wrap(key), bad_seal()])
    report = pull.pull(world.analyst)
    assert report.received == 1 and [p.seqs for p in report.problems] == [[2]]
    built = evidence.build(world.analyst, fine.header.record, tmp_path / "case.zip")
    verdict = evidence.verify_file(built.path, admin.org_keys(world.analyst).admin_key)
    assert verdict.holds and built.receipts == 1


def test_a_wipe_drops_what_is_set_aside_of_the_records_it_forgets(world: World) -> None:
    """A version set aside on a device keeps its wrap, which there opens with the device's own
    key: a wipe that left it would leave a way into the record it forgot."""
    laptop = world.device("laptop")
    own = recorded(laptop)
    analysts = Poisoner(world, world.analyst)
    head = laptop.versions(own)[-1].id
    entry, key = analysts.seal(incident(), record=own, parents=(head,))
    box = laptop.identity.box.public.hex()
    analysts.send([entry], [analysts.wrap(key)], readers=[((box, bad_seal()),)])
    assert [item.record for item in problems.listed(laptop)] == []
    pull.pull(laptop)
    assert [item.record for item in problems.listed(laptop)] == [own]
    assert sync.push(laptop, wipe_after=True).wiped_records == 1
    assert problems.listed(laptop) == [] and problems.set_aside(laptop) == []
    assert pull.pull(laptop).problems == []  # and a later pull keeps nothing of it again


LABEL_SETTINGS = b"fieldsync/settings/v1"  # docs/format.md, section 7: settings, vault key
LABEL_RECORD_SETTING = b"fieldsync/record-setting/v1"  # a record's settings, epoch key
LABEL_OPTIONS = (LABEL_SETTINGS, LABEL_RECORD_SETTING)


def every_byte(home: Path) -> bytes:
    """The store's files as they lie: the database with its freed pages, and the WAL."""
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


@dataclass(frozen=True)
class Carver:
    """What someone holding the passphrase has: the vault key and the device's box key from the
    vault, and each epoch key left in HOME/epochs."""

    held: tuple[bytes, ...]
    box: crypto.BoxPair

    @classmethod
    def of(cls, device: Store) -> Carver:
        epoch_keys = tuple(e.key for e in device._epoch_file.read() if e)
        return cls((device._vault_key, *epoch_keys), device.identity.box)


def carved_aside(raw: bytes, device: Store | Carver, version: str, record: str) -> list[bytes]:
    """What a carver opens of a set-aside version's kept bytes: after each occurrence of its
    setting's name, the hex that follows, under every subkey of every key it holds; each find
    opened to its plaintext with the device's box key."""
    carver = device if isinstance(device, Carver) else Carver.of(device)
    name = f"aside:{version}".encode()
    keys = [crypto.derive_key(k, label) for k in carver.held for label in LABEL_OPTIONS]
    labels = [LABEL_SETTINGS + name, LABEL_RECORD_SETTING + name + b"\x00" + record.encode()]
    found = []
    for hit in re.finditer(re.escape(name) + rb"(?:[0-9a-f-]+:)?((?:[0-9a-f]{2})+)", raw):
        sealed = bytes.fromhex(hit.group(1).decode())
        nonce, ct = sealed[: crypto.NONCE_BYTES], sealed[crypto.NONCE_BYTES :]
        for key in keys:
            for label in labels:
                with contextlib.suppress(FieldsyncError):
                    plain = crypto.open_with_key(key, nonce, ct, label, what="a carved row")
                    kept = json.loads(plain)
                    content_key = carver.box.unwrap(
                        base64.b64decode(kept["wrap"]), what="a carved wrap"
                    )
                    entry = entry_format.parse(base64.b64decode(kept["raw"]))
                    found.append(entry.open(content_key))
    return found


def test_after_a_wipe_the_passphrase_opens_nothing_of_a_version_set_aside(world: World) -> None:
    """A version set aside keeps its signed bytes and a wrap the device's own box key opens.
    Sealed under the vault key, its copies in the database file and WAL opened with the
    passphrase after the wipe of its record; under the epoch key, they go with the wipe."""
    laptop = world.device("laptop")
    home = world.folder / "laptop"
    own = recorded(laptop)
    analysts = Poisoner(world, world.analyst)
    head = laptop.versions(own)[-1].id
    box = laptop.identity.box.public
    secret, other = "the witness who named the unit", "a record this device never held"
    wiped, wiped_key = analysts.seal(unknown_form(secret), record=own, parents=(head,))
    kept, kept_key = analysts.seal(unknown_form(other))
    analysts.send(
        [wiped, kept],
        [analysts.wrap(wiped_key), analysts.wrap(kept_key)],
        readers=[((box.hex(), crypto.wrap_key(box, k)),) for k in (wiped_key, kept_key)],
    )
    pull.pull(laptop)
    assert [(i.record, i.why) for i in problems.listed(laptop)] == [
        (own, problems.FORM),
        (kept.header.record, problems.FORM),
    ]
    before = carved_aside(every_byte(home), laptop, wiped.id, own)
    assert before and all(secret.encode() in plain for plain in before)  # the search works
    assert sync.push(laptop, wipe_after=True).wiped_records == 1
    assert carved_aside(every_byte(home), laptop, wiped.id, own) == []
    # what is set aside of a record the wipe did not forget is kept, under the new epoch key
    assert [item.id for item in problems.set_aside(laptop)] == [kept.id]
    assert carved_aside(every_byte(home), laptop, kept.id, kept.header.record)
    laptop.close()  # SQLite checkpoints the WAL into the database as the last connection goes
    assert carved_aside(every_byte(home), laptop, wiped.id, own) == []


@pytest.mark.slow
def test_after_a_wipe_nothing_of_a_version_set_aside_opens_from_an_ext4_image(
    world: World, tmp_path: Path
) -> None:
    """The same on a real ext4 file system, where the WAL's frames from before its checkpoint
    lie in freed blocks after it is emptied, and the carver searches every block."""
    with carving.loop_filesystem(tmp_path) as (mount, image):
        laptop = world.device_at("laptop", mount / "laptop")
        own = recorded(laptop)
        analysts = Poisoner(world, world.analyst)
        head = laptop.versions(own)[-1].id
        box = laptop.identity.box.public
        entry, key = analysts.seal(unknown_form("the witness"), record=own, parents=(head,))
        wrap = crypto.wrap_key(box, key)
        analysts.send([entry], [analysts.wrap(key)], readers=[((box.hex(), wrap),)])
        for _ in range(3):  # each pull retries it: more copies in more frames
            assert pull.pull(laptop).problems[0].why == problems.FORM
        before = Carver.of(laptop)
        assert sync.push(laptop, wipe_after=True).wiped_records == 1
        after = Carver.of(laptop)
        laptop.close()
        carving.unmount(mount)
        raw = image.read_bytes()
    assert carved_aside(raw, before, entry.id, own)  # with the key the wipe destroyed: found
    assert carved_aside(raw, after, entry.id, own) == []


def unknown_form(narrative: str) -> Body:
    """A body the device's key opens, of a form it does not know: set aside, wrap and all."""
    return Body("nosuch@1", {"narrative": narrative})


def set_aside_as_before(world: World) -> tuple[Store, str, entry_format.Entry]:
    """A device with its record and an analyst's version of it set aside, kept as fieldsync
    kept it before record settings: a setting under the vault key."""
    laptop = world.device("laptop")
    own = recorded(laptop)
    analysts = Poisoner(world, world.analyst)
    box = laptop.identity.box.public
    head = laptop.versions(own)[-1].id
    entry, key = analysts.seal(unknown_form("typed on the laptop"), record=own, parents=(head,))
    analysts.send(
        [entry], [analysts.wrap(key)], readers=[((box.hex(), crypto.wrap_key(box, key)),)]
    )
    pull.pull(laptop)
    name = problems.ASIDE + entry.id
    value = keyvalue.record_settings(laptop, [name])[name]
    keyvalue.delete_record_settings(laptop, [name])
    with laptop.session() as session, session.begin():
        session.merge(keyvalue.sealed_setting(laptop, name, value))
    return laptop, own, entry


def meta_keys(store: Store, version: str) -> set[str]:
    with store._engine.connect() as connection:
        rows = connection.execute(
            text("SELECT key FROM meta WHERE key LIKE :k"), {"k": f"%{version}"}
        )
        return {str(key) for (key,) in rows}


def test_a_version_set_aside_by_an_earlier_fieldsync_is_moved_under_the_epoch_key(
    world: World,
) -> None:
    laptop, own, entry = set_aside_as_before(world)
    assert meta_keys(laptop, entry.id) == {f"setting:aside:{entry.id}"}
    (loaded,) = problems.set_aside(laptop)
    assert loaded.raw == entry.raw and loaded.record == own
    assert meta_keys(laptop, entry.id) == {f"record-setting:aside:{entry.id}"}
    assert pull.pull(laptop).problems[0].why == problems.FORM  # retried as before
    assert sync.push(laptop, wipe_after=True).wiped_records == 1
    assert problems.listed(laptop) == [] and meta_keys(laptop, entry.id) == set()


def test_a_version_set_aside_by_an_earlier_fieldsync_and_never_moved_goes_with_the_wipe(
    world: World,
) -> None:
    laptop, _, entry = set_aside_as_before(world)
    assert sync.push(laptop, wipe_after=True).wiped_records == 1
    assert problems.listed(laptop) == [] and meta_keys(laptop, entry.id) == set()
