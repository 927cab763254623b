#!/usr/bin/env python3
"""Measure pull and merge, each figure beside the raw primitives that bound it, in one run.

    scripts/bench_pull.py [--versions 10000] [--json]

A documenter's laptop holds N incident records, delivered. The analyst pulls them all (timed:
``admin pull``), makes one version of each (a re-attribution), and pushes; meanwhile the
laptop, offline, changes another field of every record. Then the laptop pulls the N analysts'
versions and merges every record (timed: ``pull`` + merge, which signs N merge versions).

The server runs as its own process on loopback. Baseline, same run, same machine: the raw
work a pull cannot avoid per version, one Ed25519 verification plus one sealed-box open plus
one XChaCha20-Poly1305 decryption of a body of the same size.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fieldsync.core import crypto  # noqa: E402
from fieldsync.core import entry as entry_format  # noqa: E402
from fieldsync.core.body import Body  # noqa: E402
from fieldsync.core.clock import HLC  # noqa: E402
from fieldsync.server import data  # noqa: E402
from fieldsync.services import admin, enrol, importer, pull, reading, records, sync  # noqa: E402
from fieldsync.services.forms import get_form  # noqa: E402
from fieldsync.store.store import Store  # noqa: E402
from tests.conftest import example  # noqa: E402
from tests.live import ServerProcess  # noqa: E402

PASSPHRASE = "benchmark passphrase"


def raw_baseline(count: int) -> float:
    """Versions per second: verify + unwrap + decrypt, nothing else."""
    signer, reader = crypto.SigningPair.generate(), crypto.BoxPair.generate()
    body = Body("incident@1", example("incident")).encode()
    sealed = []
    for n in range(min(count, 2000)):
        entry, key = entry_format.seal(
            signer,
            seq=1,
            prev=None,
            record="0190a0a0-0000-7000-8000-000000000000",
            parents=[],
            hlc=HLC(n, 0),
            body=body,
        )
        sealed.append((entry.raw, crypto.wrap_key(reader.public, key)))
    started = time.perf_counter()
    for raw, wrap in sealed:
        entry = entry_format.parse(raw)
        entry.open(reader.unwrap(wrap, what="bench"))
    return len(sealed) / (time.perf_counter() - started)


def bulk_edit(store: Store, field_sets: list[str]) -> None:
    """One new version of every record in one transaction (setup, not measured)."""
    views = [reading.read(store, row.record) for row in store.index()]
    readers = [records.readers_for(store, view) for view in views]
    with store.writer() as writer:
        for view, sealed_for in zip(views, readers, strict=True):
            answers = json.loads(json.dumps(view.body.answers))
            for assignment in field_sets:
                records.apply_set(view.form, answers, assignment)
            body = Body(view.form.ref, answers, view.body.attachments)
            writer.append(
                view.record,
                list(view.heads),
                body,
                view.form.summary(answers),
                readers=sealed_for,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = args.versions
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = admin.create_org(folder / "admin", PASSPHRASE, folder / "org.json")
        data.init(folder / "server", keys.encode())
        server = ServerProcess(folder / "server")
        server.start()
        try:
            with (
                Store.open(folder / "admin", PASSPHRASE) as analyst,
                Store.create(folder / "laptop", PASSPHRASE) as laptop,
            ):
                text, shown = admin.make_invite(analyst, "laptop", server.url, valid_ms=86_400_000)
                enrol.enrol(laptop, text, expect_fingerprint=shown["organisation_fingerprint"])
                source = folder / "incidents.jsonl"
                line = json.dumps(example("incident"), ensure_ascii=False)
                source.write_text((line + "\n") * n, encoding="utf-8")
                form = get_form("incident")
                rows = importer.read_rows(source, importer.detect_format(source, "jsonl"), form)
                importer.import_file(laptop, form, rows)
                sync.push(laptop)

                started = time.perf_counter()
                got = pull.pull(analyst)
                figures["admin_pull_s"] = time.perf_counter() - started
                assert got.received == n, got

                bulk_edit(
                    analyst,
                    ['perpetrator.parties=["russian_forces"]', "perpetrator.attribution=confirmed"],
                )
                sync.push(analyst)
                bulk_edit(laptop, ["victims.total=6"])

                started = time.perf_counter()
                got = pull.pull(laptop)
                figures["pull_and_merge_s"] = time.perf_counter() - started
                assert got.received == n, got.received
                assert len(got.merged) == n, len(got.merged)
        finally:
            server.stop()
    baseline = raw_baseline(n)
    figures["versions"] = n
    figures["admin_pull_per_s"] = n / figures["admin_pull_s"]
    figures["pull_and_merge_per_s"] = n / figures["pull_and_merge_s"]
    figures["raw_verify_open_per_s"] = baseline
    figures["admin_pull_ratio"] = figures["admin_pull_per_s"] / baseline
    figures["pull_and_merge_ratio"] = figures["pull_and_merge_per_s"] / baseline
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"admin pull of {n} versions: {figures['admin_pull_s']:.1f} s "
        f"({figures['admin_pull_per_s']:.0f}/s)"
    )
    print(
        f"pull of {n} analysts' versions + merge of {n} records (signing {n} merges): "
        f"{figures['pull_and_merge_s']:.1f} s ({figures['pull_and_merge_per_s']:.0f}/s)"
    )
    print(f"baseline, same run: verify + unwrap + decrypt {baseline:.0f} versions/s")
    print(
        f"ratios: admin pull {figures['admin_pull_ratio']:.2f}, "
        f"pull + merge {figures['pull_and_merge_ratio']:.2f}"
    )


if __name__ == "__main__":
    main()
