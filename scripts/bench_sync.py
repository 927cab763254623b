#!/usr/bin/env python3
"""Measure sync, each figure beside the raw primitive that bounds it, in one run.

    scripts/bench_sync.py [--entries 5000] [--attachment-mb 100] [--link-mb 32] [--json]

The server runs as its own process (``fieldsync server run``) on loopback, as it would in use.
Machines here are shared and noisy, so each figure has a baseline from the same run:

- ingest:       entries per second the server verifies and commits, sent as batches of 500
                entries of about 1 KB over HTTP  vs  raw Ed25519 verifications per second of
                the same entries
- attachment:   MB/s of one large file from ``attach`` through ``push`` to a verified blob on
                the server  vs  raw secretstream encryption MB/s of the same bytes
- links:        bytes sent over payload bytes for a push through the fault-injecting proxy
                resetting the connection every 1 MiB  vs  the same push through the proxy with
                no faults (HTTP framing, signatures and JSON answers included in both)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fieldsync.core import batch as batch_format  # noqa: E402
from fieldsync.core import crypto, enrolment, invite  # noqa: E402
from fieldsync.core import entry as entry_format  # noqa: E402
from fieldsync.core.clock import HLC  # noqa: E402
from fieldsync.core.ids import new_record_id  # noqa: E402
from fieldsync.core.org import OrgKeys  # noqa: E402
from fieldsync.core.settings import Enrolment  # noqa: E402
from fieldsync.server import data  # noqa: E402
from fieldsync.services import admin, attachments, enrol, records, sync  # noqa: E402
from fieldsync.services.forms import get_form  # noqa: E402
from fieldsync.store import delivery, settings  # noqa: E402
from fieldsync.store.store import Store  # noqa: E402
from fieldsync.transport.client import SyncClient  # noqa: E402
from tests.conftest import example  # noqa: E402
from tests.faults.proxy import FaultProxy  # noqa: E402
from tests.live import ServerProcess  # noqa: E402

PASSPHRASE = "benchmark passphrase"
BATCH = 500
MB = 1024 * 1024


@contextmanager
def server_process(
    folder: Path, *, database_url: str | None = None, workers: int = 1
) -> Iterator[str]:
    server = ServerProcess(folder, database_url=database_url, workers=workers)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@dataclass
class Sender:
    """A device of the ingest benchmark: its keys and its batches, made before the clock runs."""

    signer: crypto.SigningPair
    box: crypto.BoxPair
    entries: list[entry_format.Entry]
    batches: list[bytes]


def senders(org_read: crypto.BoxPair, devices: int, count: int) -> list[Sender]:
    """``devices`` devices with ``count`` entries between them (of about 1 KB, in batches of
    500)."""
    made = []
    for _ in range(devices):
        device = crypto.SigningPair.generate()
        entries, wraps, previous = [], [], None
        for seq in range(1, count // devices + 1):
            entry, key = entry_format.seal(
                device,
                seq=seq,
                prev=previous,
                record=new_record_id(),
                parents=(),
                hlc=HLC(seq, 0),
                body=os.urandom(700).hex().encode()[:1000],
            )
            entries.append(entry)
            wraps.append(crypto.wrap_key(org_read.public, key))
            previous = entry.id
        batches = [
            batch_format.build(device, entries[i : i + BATCH], wraps[i : i + BATCH]).raw
            for i in range(0, len(entries), BATCH)
        ]
        made.append(Sender(device, crypto.BoxPair.generate(), entries, batches))
    return made


def raw_verify_rate(entries: list[entry_format.Entry]) -> float:
    started = time.perf_counter()
    for made in entries:
        entry_format.parse(made.raw)  # the Ed25519 verification, with the framing around it
    return len(entries) / (time.perf_counter() - started)


def ingest(
    work: Path,
    count: int,
    *,
    devices: int = 1,
    database_url: str | None = None,
    workers: int = 1,
    label: str = "",
) -> dict[str, object]:
    """Entries/s a server process (or ``workers`` of them) verifies and commits, from
    ``devices`` devices sending at once, each its batches in order."""
    admin_key, org_read = crypto.SigningPair.generate(), crypto.BoxPair.generate()
    org = OrgKeys(admin_key.public.hex(), org_read.public.hex())
    folder = work / f"ingest-server-{uuid.uuid4().hex[:8]}"
    server = data.init(folder, org.encode(), database_url)
    sending = senders(org_read, devices, count)
    raw_rate = raw_verify_rate([e for s in sending for e in s.entries])
    served = server_process(folder, database_url=database_url, workers=workers)
    with served as url, httpx.Client(base_url=url, timeout=120) as http:
        for sender in sending:
            text = invite.issue(
                admin_key,
                name="bench",
                server=url,
                server_key=server.receipt_key.public,
                org_read_key=org_read.public,
                expires_ms=int(time.time() * 1000) + 3_600_000,
            )
            token = invite.read(text, now_ms=None).token
            request = enrolment.request(
                sender.signer, sender.box, text, token, server_key=server.receipt_key.public
            )
            http.post("/v1/enrol", content=request.encode()).raise_for_status()

        def send(sender: Sender) -> None:
            with httpx.Client(base_url=url, timeout=120) as own:
                for raw in sender.batches:
                    own.post("/v1/batches", content=raw).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(devices) as pool:
            list(pool.map(send, sending))
        rate = sum(len(s.entries) for s in sending) / (time.perf_counter() - started)
    entry_bytes = sum(len(e.raw) for s in sending for e in s.entries) / count
    what = label or f"server ingest, {count} entries of {entry_bytes:.0f} B in batches of {BATCH}"
    return {
        "what": what,
        "value": rate,
        "unit": "entries/s",
        "baseline": raw_rate,
        "baseline_what": "raw Ed25519 verify (entry.parse)",
        "ratio": rate / raw_rate,
    }


def ingest_by_database(work: Path, count: int, postgres_url: str) -> list[dict[str, object]]:
    """Ingest on SQLite and on PostgreSQL (a database of its own, made and dropped at
    ``postgres_url``'s server), with one and two workers, four devices sending at once."""
    import pytest

    from tests.server.postgres import fresh_postgres

    rows = [ingest(work, count, devices=4, label="ingest, 4 devices at once, SQLite, 1 worker")]
    for workers in (1, 2):
        try:
            with fresh_postgres(migrated=False, admin_url=postgres_url) as url:
                label = f"ingest, 4 devices at once, PostgreSQL, {workers} worker(s)"
                rows.append(
                    ingest(work, count, devices=4, database_url=url, workers=workers, label=label)
                )
        except pytest.skip.Exception as exc:  # fresh_postgres's way of saying there is none
            raise RuntimeError(str(exc)) from None
    return rows


def enrolled_store(work: Path, name: str, url: str, admin_store: Store) -> Store:
    store = Store.create(work / name, PASSPHRASE)
    text, shown = admin.make_invite(admin_store, name, url, valid_ms=3_600_000)
    enrol.enrol(store, text, expect_fingerprint=shown["organisation_fingerprint"])
    return store


def pusher(url: str, store: Store) -> SyncClient:
    return SyncClient(url, signer=store.identity.signer, attempts=20, timeout=60, backoff=0.01)


def attachment(work: Path, url: str, admin_store: Store, size_mb: int) -> dict[str, object]:
    store = enrolled_store(work, "attachment", url, admin_store)
    record = records.create(store, get_form("incident"), example("incident"))
    big = work / "big.bin"
    with open(big, "wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(MB))
    started = time.perf_counter()
    with open(big, "rb") as handle:
        for _ in crypto.stream_encrypt(crypto.random_bytes(32), handle):
            pass
    raw_rate = size_mb / (time.perf_counter() - started)
    started = time.perf_counter()
    attachments.attach(store, record, [big])
    report = sync.push(store, client_for=pusher)
    rate = size_mb / (time.perf_counter() - started)
    assert report.blobs == 1
    assert sync.pending(store) == 0
    store.close()
    big.unlink()
    return {
        "what": f"attach + push of a {size_mb} MB file",
        "value": rate,
        "unit": "MB/s",
        "baseline": raw_rate,
        "baseline_what": "raw secretstream encryption",
        "ratio": rate / raw_rate,
    }


def links(work: Path, url: str, admin_store: Store, size_mb: int) -> list[dict[str, object]]:
    """Bytes sent over payload for a push through the proxy resetting every 1 MiB, beside a
    clean link. Two models of the reset: the server sees its side end after the bytes that
    crossed (a link that dies near the device: the usual case), or gets the reset too, which
    makes its kernel discard what it had received but not yet read."""
    port = int(url.rsplit(":", 1)[1])
    models = (
        ("clean", None, "reset"),
        ("server sees the link end", MB, "end"),
        ("server gets the reset too", MB, "reset"),
    )
    results = {}
    for label, reset_every, server_sees in models:
        store = enrolled_store(work, f"link-{len(results)}", url, admin_store)
        record = records.create(store, get_form("incident"), example("incident"))
        video = work / "video.bin"
        video.write_bytes(os.urandom(size_mb * MB))
        attachments.attach(store, record, [video])
        for _ in range(20):
            records.create(store, get_form("interview"), example("interview"))
        joined = settings.load(store, Enrolment)
        assert joined is not None
        versions = sum(
            len(item.entry.raw) + 84  # an entry, its org wrap and its length in the batch
            for item in delivery.outbox(store, 0, [bytes.fromhex(joined.org_read_key)])
        )
        with FaultProxy(port, reset_every=reset_every, server_sees=server_sees) as proxy:
            report = sync.push(store, client_for=lambda _u, s: pusher(proxy.url, s))
        assert sync.pending(store) == 0
        results[label] = (proxy.upstream_bytes / (report.blob_bytes + versions), proxy.resets)
        store.close()
    clean = results["clean"][0]
    return [
        {
            "what": f"push {size_mb} MB + 22 versions, reset every 1 MiB, {label} "
            f"({results[label][1]} resets)",
            "value": results[label][0],
            "unit": "sent/payload",
            "baseline": clean,
            "baseline_what": "same push, clean link",
            "ratio": results[label][0] / clean,
        }
        for label in ("server sees the link end", "server gets the reset too")
    ]


def bench(entries: int, attachment_mb: int, link_mb: int) -> list[dict[str, object]]:
    work = Path(tempfile.mkdtemp(prefix="fieldsync-bench-sync-"))
    try:
        rows = [ingest(work, entries)]
        admin.create_org(work / "admin", PASSPHRASE, work / "org.json")
        server = data.init(work / "server", (work / "org.json").read_bytes())
        with (
            Store.open(work / "admin", PASSPHRASE) as admin_store,
            server_process(server.folder) as url,
        ):
            rows.append(attachment(work, url, admin_store, attachment_mb))
            rows += links(work, url, admin_store, link_mb)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--attachment-mb", type=int, default=100)
    parser.add_argument("--link-mb", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = bench(args.entries, args.attachment_mb, args.link_mb)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print_table(rows)


def print_table(rows: list[dict[str, object]]) -> None:
    """The rows of any fieldsync benchmark: measure, value with unit, baseline, ratio."""
    what = max((len(str(r["what"])) for r in rows), default=7)
    print(
        f"{'measure':<{what}} {'value':>18}   {'baseline (same run)':<34} {'base':>10} {'ratio':>7}"
    )
    for row in rows:
        value = f"{row['value']:.2f} {row['unit']}"
        print(
            f"{row['what']:<{what}} {value:>18}   {row['baseline_what']:<34} "
            f"{row['baseline']:>10.2f} {row['ratio']:>7.2f}"
        )


if __name__ == "__main__":
    main()
