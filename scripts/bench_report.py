#!/usr/bin/env python3
"""Measure reports, exports and evidence packages, each beside a baseline from the same run.

    scripts/bench_report.py [--records 100000] [--store DIR] [--json]

The records (90% incidents, 10% disappearances, generated to fit the forms) are imported into
an administrator's store once; ``--store DIR`` keeps that store to re-use on the next run (its
making is not what is measured). Then:

- report:   reports.monthly over every record  vs  N x (sealed-box unwrap + AEAD decryption
            + JSON decoding of a body of the same size): the least any report must do
- CLI:      `fieldsync admin report --json` end to end (start, unlock, report, print)
            vs  unlock alone
- export:   `admin export --format csv` of every record  vs  the report (both decrypt
            everything; the difference is flattening and writing)
- evidence: `admin evidence` of one record with a 20 MB attachment  vs  reading and
            SHA-256-hashing that file
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_store import timed  # noqa: E402  (beside this script)
from bench_sync import print_table  # noqa: E402

from fieldsync.core import crypto, encoding  # noqa: E402
from fieldsync.services import admin, attachments, evidence, export, importer, records, reports  # noqa: E402
from fieldsync.services.forms import get_form  # noqa: E402
from fieldsync.store.store import Store  # noqa: E402
from tests import generated  # noqa: E402

PASSPHRASE = "benchmark passphrase"


def make_store(home: Path, n: int) -> None:
    if (home / "vault").exists():
        return
    admin.create_org(home, PASSPHRASE, home.parent / f"org-public-{home.name}.json")
    rng = random.Random(2024)
    with Store.open(home, PASSPHRASE) as store:
        for form_id, count, make in (
            ("incident", n - n // 10, generated.incident),
            ("disappearance", n // 10, generated.disappearance),
        ):
            form = get_form(form_id)
            rows = ((i, make(rng, 2020 + i % 5)) for i in range(1, count + 1))
            done = importer.import_file(store, form, rows)
            assert not done.refused, done.refused[:3]


def bench(n: int, home: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    started = time.perf_counter()
    make_store(home, n)
    print(f"(store of {n} records ready in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
    store = Store.open(home, PASSPHRASE)

    report_s = timed(lambda: reports.monthly(store), repeat=2)
    found = reports.monthly(store)
    assert found.counted >= n * 0.9, found.counted
    assert not found.excluded, found.excluded[:3]
    box = crypto.BoxPair.generate()
    body = encoding.encode(
        {"answers": generated.incident(random.Random(1)), "attachments": [], "form": "incident@1",
         "note": None}
    )  # fmt: skip
    key, nonce = crypto.random_bytes(32), crypto.random_bytes(24)
    sealed = crypto.aead_encrypt(key, nonce, body, b"header")
    wrapped = crypto.wrap_key(box.public, key)

    def raw_open() -> None:
        for _ in range(n):
            opened = box.unwrap(wrapped, what="bench")
            json.loads(crypto.aead_decrypt(opened, nonce, sealed, b"header", what="bench"))

    raw = timed(raw_open)
    rows.append(_row(f"report over {n} records", report_s, raw,
                     f"{n} x raw unwrap + AEAD + JSON"))  # fmt: skip

    unlock = timed(lambda: Store.open(home, PASSPHRASE).close())
    env = os.environ | {"FIELDSYNC_HOME": str(home), "FIELDSYNC_PASSPHRASE": PASSPHRASE}
    command = [sys.executable, "-m", "fieldsync", "admin", "report", "--json"]
    cli = timed(lambda: subprocess.run(command, env=env, check=True, capture_output=True))
    rows.append(_row(f"fieldsync admin report --json, {n}", cli, unlock, "unlock alone"))

    out = Path(tempfile.mkdtemp(prefix="fieldsync-bench-export-"))
    exported = timed(lambda: export.export_records(store, out, "csv", force=True))
    rows.append(_row(f"admin export --format csv, {n}", exported, report_s, "the report"))

    work = Path(tempfile.mkdtemp(prefix="fieldsync-bench-evidence-"))
    big = work / "video.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))
    record = records.create(store, get_form("incident"), generated.incident(random.Random(3)))
    attachments.attach(store, record, [big])

    def package() -> None:
        evidence.build(store, record, work / "case.zip", force=True)

    built = timed(package)
    hashing = timed(lambda: hashlib.sha256(big.read_bytes()).hexdigest())
    rows.append(_row("admin evidence, 20 MB attachment", built, hashing, "read + SHA-256 of it"))
    store.close()
    return rows


def _row(what: str, value: float, baseline: float, baseline_what: str) -> dict[str, object]:
    return {
        "what": what,
        "value": value,
        "unit": "s",
        "baseline": baseline,
        "baseline_what": baseline_what,
        "ratio": value / baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--store", type=Path, help="keep the generated store here, re-use it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = args.store or Path(tempfile.mkdtemp(prefix="fieldsync-bench-report-"))
    rows = bench(args.records, folder / f"admin-{args.records}")
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print_table(rows)


if __name__ == "__main__":
    main()
