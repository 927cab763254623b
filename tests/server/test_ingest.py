"""Batches against a real server: the verification order of docs/protocol.md, case by case."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from sqlmodel import Session, select

from fieldsync.core import batch as batch_format
from fieldsync.core import crypto, receipt
from fieldsync.core.ids import new_record_id
from fieldsync.server.tables import DeviceRow, Quarantined, RecordHead, StoredEntry
from tests.server.conftest import Device, Live, Org, enrol_body, make_invite


def test_a_batch_is_stored_and_answered_with_a_verifiable_receipt(
    live: Live, device: Device
) -> None:
    entries = device.record(3)
    raw = device.batch(entries)
    response = live.send(raw)
    assert response.status_code == 200, response.text
    got = receipt.verify(response.content, pinned_server_key=live.server.receipt_key.public)
    assert (got.last_seq, got.head, got.batch) == (3, entries[-1].id, batch_format.batch_id(raw))
    assert got.device == device.signer.public.hex()
    assert live.count(StoredEntry) == 3
    with Session(live.engine) as session:
        stored = session.get(StoredEntry, entries[0].id)
        assert stored is not None
        assert stored.raw == entries[0].raw  # the very bytes that were signed


def test_a_replayed_batch_gets_the_same_receipt_and_no_new_rows(live: Live, device: Device) -> None:
    raw = device.batch(device.record(2))
    first, again = live.send(raw), live.send(raw)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert live.count(StoredEntry) == 2


def test_a_gap_is_refused_and_the_real_next_batch_still_accepted(
    live: Live, device: Device
) -> None:
    first, second, third = device.record(2), device.record(2), device.record(2)
    assert live.send(device.batch(first)).status_code == 200
    gap = live.send(device.batch(third))
    assert gap.status_code == 409
    assert gap.json()["error"] == "ChainGap"
    assert "Send from seq 3" in gap.json()["hint"]
    assert live.count(StoredEntry) == 2
    assert live.send(device.batch(second)).status_code == 200
    assert live.send(device.batch(third)).status_code == 200
    assert live.count(StoredEntry) == 6


def test_a_fork_is_quarantined_flagged_and_overwrites_nothing(live: Live, device: Device) -> None:
    original = device.record(2)
    assert live.send(device.batch(original)).status_code == 200
    rewritten = Device(signer=device.signer, box=device.box)  # same key, other history
    other = rewritten.record(2)
    response = live.send(rewritten.batch(other))
    assert response.status_code == 409
    assert response.json()["error"] == "ChainFork"
    with Session(live.engine) as session:
        assert session.get(StoredEntry, original[0].id) is not None
        assert session.get(StoredEntry, other[0].id) is None
        assert session.exec(select(Quarantined)).one().reason == "fork at seq 1"
        registered = session.get(DeviceRow, device.signer.public.hex())
        assert registered is not None
        assert registered.alert == "fork at seq 1"


def test_a_rebuilt_batch_overlapping_stored_entries_adds_only_the_new_ones(
    live: Live, device: Device
) -> None:
    first = device.record(2)
    assert live.send(device.batch(first)).status_code == 200
    both = first + device.record(2)
    response = live.send(device.batch(both))
    assert response.status_code == 200
    assert (
        receipt.verify(response.content, pinned_server_key=live.server.receipt_key.public).last_seq
        == 4
    )
    assert live.count(StoredEntry) == 4


def test_an_unknown_device_is_refused_before_anything_else(live: Live) -> None:
    stranger = Device()
    response = live.send(stranger.batch(stranger.record(1)))
    assert response.status_code == 403
    assert live.count(StoredEntry) == 0


def test_bit_flips_anywhere_store_nothing_and_the_device_keeps_its_queue(
    live: Live, device: Device
) -> None:
    raw = device.batch(device.record(2))
    for offset in range(0, len(raw), 29):
        damaged = bytearray(raw)
        damaged[offset] ^= 0x20
        response = live.send(bytes(damaged))
        assert 400 <= response.status_code < 500, offset
    assert live.count(StoredEntry) == 0
    assert live.send(raw).status_code == 200  # the intact batch, resent, is accepted


def test_unknown_parents_and_missing_blobs_are_refused(live: Live, device: Device) -> None:
    orphan = device.record(1, parents=("ab" * 32,))
    response = live.send(device.batch(orphan))
    assert response.status_code == 400
    assert "parent" in response.json()["message"]
    other = Device(signer=device.signer, box=device.box)
    with_blob = other.record(1)
    response = live.send(other.batch(with_blob, blobs=(("cd" * 32, 100),)))
    assert response.status_code == 400
    assert "not fully uploaded" in response.json()["message"]
    assert live.count(StoredEntry) == 0


def test_versions_of_one_record_move_its_head(live: Live, device: Device) -> None:
    record = new_record_id()
    (first,) = device.record(1, record=record)
    (second,) = device.record(1, record=record, parents=(first.id,))
    assert live.send(device.batch([first, second])).status_code == 200
    with Session(live.engine) as session:
        heads = session.exec(select(RecordHead).where(RecordHead.record == record)).all()
    assert [h.version for h in heads] == [second.id]


def test_an_oversized_batch_is_refused_before_it_is_buffered(live: Live) -> None:
    response = live.http.post("/v1/batches", content=b"F" * (batch_format.MAX_BATCH_BYTES + 1))
    assert response.status_code == 413


def test_an_entry_moved_into_another_devices_batch_is_refused(
    live: Live, device: Device, org: Org
) -> None:
    other = Device()
    body = enrol_body(make_invite(org, live.server), other.signer, other.box)
    assert live.http.post("/v1/enrol", content=body).status_code == 200
    (stolen,) = device.record(1)
    manifest = batch_format.Manifest(other.signer.public.hex(), 1, 1, None, (stolen.id,), ())
    forged = batch_format.encode(other.signer, manifest, [stolen], [bytes(crypto.SEAL_BYTES)])
    response = live.send(forged)
    assert response.status_code == 400
    assert response.json()["error"] == "BatchInvalid"
    assert live.count(StoredEntry) == 0


def test_a_batch_with_a_dropped_entry_is_refused_and_stores_nothing(
    live: Live, device: Device
) -> None:
    entries = device.record(3)
    kept = [entries[0], entries[2]]
    wraps = [crypto.wrap_key(device.box.public, crypto.random_bytes(32)) for _ in kept]
    manifest = batch_format.Manifest(
        device.signer.public.hex(), 1, 3, None, tuple(e.id for e in entries), ()
    )
    response = live.send(batch_format.encode(device.signer, manifest, kept, wraps))
    assert response.status_code == 400
    assert "manifest names 3" in response.json()["message"]
    assert live.count(StoredEntry) == 0
    assert live.send(device.batch(entries)).status_code == 200  # the real batch still goes


def test_a_lower_seq_after_a_higher_adds_nothing_and_rewrites_nothing(
    live: Live, device: Device
) -> None:
    entries = device.record(3)
    assert live.send(device.batch(entries)).status_code == 200
    # the same entry 2 again, alone: a replay of what is stored, answered for the head
    again = live.send(device.batch([entries[1]]))
    assert again.status_code == 200
    got = receipt.verify(again.content, pinned_server_key=live.server.receipt_key.public)
    assert (got.last_seq, got.head) == (3, entries[2].id)
    # a different entry 2 (another record, re-signed): a fork, kept aside, nothing overwritten
    rewritten = Device(signer=device.signer, box=device.box, entries=[entries[0]])
    response = live.send(rewritten.batch(rewritten.record(1)))
    assert response.status_code == 409
    with Session(live.engine) as session:
        stored = session.exec(select(StoredEntry).where(StoredEntry.seq == 2)).one()
        assert stored.id == entries[1].id
        assert session.exec(select(Quarantined)).one().reason == "fork at seq 2"
    assert live.count(StoredEntry) == 3


def test_a_request_cut_mid_body_is_routine_not_a_server_fault(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = live.http.base_url.host, live.http.base_url.port
    assert port is not None
    with socket.create_connection((host, port)) as raw:
        raw.sendall(
            b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"F" * 100
        )
    time.sleep(0.3)  # the server notices the closed connection
    assert live.http.get("/v1/health").status_code == 200
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert live.count(StoredEntry) == 0


def test_only_the_administrator_may_name_further_readers(live: Live, device: Device) -> None:
    entries = device.record(1)
    wraps = [crypto.wrap_key(device.box.public, crypto.random_bytes(32))]
    other = crypto.BoxPair.generate().public
    readers = [((other.hex(), crypto.wrap_key(other, crypto.random_bytes(32))),)]
    raw = batch_format.build(device.signer, entries, wraps, (), readers).raw
    response = live.send(raw)
    assert response.status_code == 400
    assert "only the organisation's administrator" in response.json()["message"]
    assert live.count(StoredEntry) == 0


def test_a_batch_of_format_1_is_refused_clearly(live: Live, device: Device) -> None:
    raw = bytearray(device.batch(device.record(1)))
    raw[4] = 1
    response = live.send(bytes(raw))
    assert response.status_code == 400
    assert "format version 1 is not supported" in response.json()["message"]


def test_a_batch_whose_seq_continues_but_whose_prev_is_another_entry_is_refused(
    live: Live, device: Device
) -> None:
    entries = device.record(2)
    assert live.send(device.batch(entries)).status_code == 200
    # Another history of the same key: its seq 3 follows a seq 2 the server never stored, so
    # the seq continues the stored chain and only the link says it does not.
    rewritten = Device(signer=device.signer, box=device.box, entries=[entries[0]])
    _, elsewhere = rewritten.record(2)
    assert elsewhere.header.seq == 3 and elsewhere.header.prev != entries[1].id
    response = live.send(rewritten.batch([elsewhere]))
    assert response.status_code == 400
    assert response.json()["error"] == "BatchInvalid"
    assert "does not continue the chain the server holds" in response.json()["message"]
    assert live.count(StoredEntry) == 2
    assert live.count(Quarantined) == 0
    with Session(live.engine) as session:
        registered = session.get(DeviceRow, device.signer.public.hex())
        assert registered is not None
        assert (registered.last_seq, registered.head) == (2, entries[1].id)
    assert live.send(device.batch(device.record(1))).status_code == 200  # the real seq 3
