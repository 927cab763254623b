#!/usr/bin/env python3
"""Measure the local store, each figure beside the raw primitive that bounds it, in one run.

    scripts/bench_store.py [--records 10000] [--json]

Machines here are shared and noisy, so every figure comes with a baseline measured in the same
run on the same machine, and the ratio is what to compare across runs:

- unlock:        Store.open  vs  one raw Argon2id derivation at the same limits
- save one:      records.create (validate, seal, sign, wrap, durable commit)  vs
                 one raw durable SQLite commit of the same number of bytes
- import N:      fieldsync import of N JSON Lines rows  vs  N x (AEAD, commitment, Ed25519
                 signature, id hash, sealed-box wrap) done directly
- list N:        Store.index() over N records  vs  N raw XChaCha20-Poly1305 decryptions;
                 and `fieldsync list --json` end to end (process start, unlock, render)
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fieldsync.core import crypto, encoding, vault  # noqa: E402
from fieldsync.services import importer, records  # noqa: E402
from fieldsync.services.forms import get_form  # noqa: E402
from fieldsync.store.store import Store  # noqa: E402
from tests.conftest import example  # noqa: E402

PASSPHRASE = "benchmark passphrase"


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Median seconds of ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench(n: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    work = Path(tempfile.mkdtemp(prefix="fieldsync-bench-"))
    home = work / "home"
    Store.create(home, PASSPHRASE).close()
    answers = example("incident")
    body = encoding.encode(
        {"answers": answers, "attachments": [], "form": "incident@1", "note": None}
    )

    # unlock
    params = vault.read_params((home / "vault").read_bytes())
    raw_kdf = timed(
        lambda: crypto.derive_from_passphrase(
            PASSPHRASE, params.salt, params.opslimit, params.memlimit
        ),
        repeat=3,
    )
    unlock = timed(lambda: Store.open(home, PASSPHRASE).close(), repeat=3)
    rows.append(
        {
            "what": "unlock",
            "value": unlock,
            "unit": "s",
            "baseline": raw_kdf,
            "baseline_what": "raw Argon2id",
            "ratio": unlock / raw_kdf,
        }
    )

    store = Store.open(home, PASSPHRASE)
    form = get_form("incident")

    # save one record
    save = timed(lambda: records.create(store, form, answers), repeat=50)
    db = sqlite3.connect(work / "raw.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("create table t (id integer primary key, raw blob)")
    payload = os.urandom(len(body) + 400)

    def raw_commit() -> None:
        db.execute("begin immediate")
        db.execute("insert into t (raw) values (?)", (payload,))
        db.execute("commit")

    commit = timed(raw_commit, repeat=50)
    rows.append(
        {
            "what": "save one record",
            "value": save,
            "unit": "s",
            "baseline": commit,
            "baseline_what": "raw durable SQLite commit",
            "ratio": save / commit,
        }
    )

    # import n records
    jsonl = work / "rows.jsonl"
    jsonl.write_text((json.dumps(answers, ensure_ascii=False) + "\n") * n, encoding="utf-8")
    fresh = work / "import-home"
    Store.create(fresh, PASSPHRASE).close()
    importing = Store.open(fresh, PASSPHRASE)
    imported = timed(
        lambda: importer.import_file(importing, form, importer.read_rows(jsonl, "jsonl", form))
    )
    signer = crypto.SigningPair.generate()
    box = crypto.BoxPair.generate()

    def raw_primitives() -> None:
        # What one saved version costs in libsodium alone: encrypt, commit, sign, hash, wrap.
        for _ in range(n):
            key, nonce = crypto.random_bytes(32), crypto.random_bytes(24)
            cipher = crypto.aead_encrypt(key, nonce, body, b"header")
            crypto.commitment(key, body)
            signature = signer.sign(crypto.LABEL_ENTRY, cipher)
            crypto.hash32(crypto.LABEL_ENTRY_ID, cipher + signature)
            crypto.wrap_key(box.public, key)

    sealing = timed(raw_primitives)
    rows.append(
        {
            "what": f"import {n} records",
            "value": imported,
            "unit": "s",
            "baseline": sealing,
            "baseline_what": f"{n} x raw AEAD+sign+hash+wrap",
            "ratio": imported / sealing,
        }
    )

    # list n records
    listing = timed(lambda: importing.index(), repeat=3)
    key = crypto.random_bytes(32)
    sealed = [crypto.seal_with_key(key, os.urandom(200), b"bench") for _ in range(n)]

    def raw_open() -> None:
        for nonce, ct in sealed:
            crypto.open_with_key(key, nonce, ct, b"bench", what="bench")

    decrypt = timed(raw_open, repeat=3)
    rows.append(
        {
            "what": f"list {n} records (service)",
            "value": listing,
            "unit": "s",
            "baseline": decrypt,
            "baseline_what": f"{n} raw AEAD decryptions",
            "ratio": listing / decrypt,
        }
    )
    importing.close()
    env = os.environ | {"FIELDSYNC_HOME": str(fresh), "FIELDSYNC_PASSPHRASE": PASSPHRASE}
    for args, what in (
        (["list", "--json"], "fieldsync list --json"),
        (["list"], "fieldsync list (plain lines)"),
        (["list", "--search", "idlib"], "fieldsync list --search idlib"),
    ):
        cli = timed(
            lambda args=args: subprocess.run(
                [sys.executable, "-m", "fieldsync", *args],
                env=env,
                check=True,
                capture_output=True,
            ),
            repeat=3,
        )
        rows.append(
            {
                "what": f"{what}, {n} records",
                "value": cli,
                "unit": "s",
                "baseline": unlock,
                "baseline_what": "unlock alone",
                "ratio": cli / unlock,
            }
        )
    store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = bench(args.records)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'measure':<38} {'value':>10}   {'baseline (same run)':<32} {'base':>9} {'ratio':>7}")
    for row in rows:
        print(
            f"{row['what']:<38} {row['value']:>9.4f}s   {row['baseline_what']:<32} "
            f"{row['baseline']:>8.4f}s {row['ratio']:>7.2f}"
        )


if __name__ == "__main__":
    main()
