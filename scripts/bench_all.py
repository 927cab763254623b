#!/usr/bin/env python3
"""Every figure fieldsync promises, in one run, each beside the limit that bounds it (``scripts/bench``).

    scripts/bench [--quick] [--json] [--only ingest,attachment,links,store,load]
                  [--database-url postgresql+psycopg://USER@HOST/DB]

Machines here are shared and noisy, so each figure comes with a baseline measured in the same
run, and the ratio is what to compare across machines (the targets of docs/performance.md in brackets):

- ingest      entries/s the server verifies and commits (batches of 500 entries of about 1 KB,
              loopback HTTP, a real uvicorn process)  vs  raw Ed25519 verifications/s  [>= 0.5];
              with --database-url, also four devices sending at once to SQLite with one
              worker and to PostgreSQL with one and two (each in a database of its own, made
              and dropped on that URL's server)
- attachment  MB/s of a 500 MB file from attach through push to a verified blob  vs  raw
              secretstream encryption MB/s  [>= 0.33]; and the peak RSS of the pushing client
              and of the server, beside the same for a file a tenth the size  [about 1.0]
- links       bytes sent over payload bytes for a 200 MB push through the fault proxy resetting
              every 1 MiB  vs  a clean link  [<= 1.05]; and the naive way (one request per file,
              retried from the start), which never completes on such a link
- store       import 10,000 records; list 100,000  vs  raw AEAD decryptions  [list < 2 s]
- load        20 devices and an analyst pushing and pulling at once against a server process:
              p50 and p99 latency of a batch delivery, and that every version was acknowledged
              with no 5xx

``--quick`` shrinks every size (for checking the script, not for figures).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_store  # noqa: E402
import bench_sync  # noqa: E402

from fieldsync.server import data  # noqa: E402
from fieldsync.services import admin, pull  # noqa: E402
from fieldsync.store.store import Store  # noqa: E402
from tests.conftest import fast_store  # noqa: E402
from tests.faults.proxy import FaultProxy  # noqa: E402
from tests.load.simulate import simulate  # noqa: E402

MB = 1024 * 1024
PASSPHRASE = bench_sync.PASSPHRASE
Row = dict[str, object]


def row(what: str, value: float, unit: str, baseline: float, baseline_what: str) -> Row:
    return {
        "what": what,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_what": baseline_what,
        "ratio": value / baseline if baseline else float("inf"),
    }


def memory(work: Path, size_mb: int, small_mb: int) -> list[Row]:
    """Peak RSS of `fieldsync attach` + `fieldsync push` as processes, and of the server
    process, for a large and a small file: memory must not grow with the attachment."""
    peaks: dict[int, tuple[int, int]] = {}
    for size in (small_mb, size_mb):
        folder = work / f"memory-{size}"
        admin.create_org(folder / "admin", PASSPHRASE, folder / "org.json")
        server = data.init(folder / "server", (folder / "org.json").read_bytes())
        with (
            Store.open(folder / "admin", PASSPHRASE) as analyst,
            bench_sync.server_process(server.folder) as url,
        ):
            text, shown = admin.make_invite(analyst, "memory", url, valid_ms=3_600_000)
            env = os.environ | {"FIELDSYNC_HOME": str(folder / "device")}
            env |= {"FIELDSYNC_PASSPHRASE": PASSPHRASE}
            big = folder / "big.bin"
            with open(big, "wb") as handle:
                for _ in range(size):
                    handle.write(os.urandom(MB))
            answers = folder / "incident.json"
            answers.write_text(json.dumps(bench_sync.example("incident")), encoding="utf-8")

            def fieldsync(*args: str, env: dict[str, str] = env) -> str:
                done = subprocess.run(
                    [sys.executable, "-m", "fieldsync", *args],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                return done.stdout

            fieldsync("init")
            fieldsync("enroll", text, "--expect-fingerprint", shown["organisation_fingerprint"])
            record = json.loads(fieldsync("new", "incident", "--from-file", str(answers), "--json"))
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            fieldsync("attach", record["record"], str(big))
            fieldsync("push")
            client_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            server_kb = _server_peak_kb(url)
            peaks[size] = (max(client_kb, before), server_kb)
    (client_small, server_small), (client_big, server_big) = peaks[small_mb], peaks[size_mb]
    return [
        row(f"peak RSS of attach+push, {size_mb} MB file", client_big / 1024, "MiB",
            client_small / 1024, f"same for a {small_mb} MB file"),
        row(f"peak RSS of the server, {size_mb} MB file", server_big / 1024, "MiB",
            server_small / 1024, f"same for a {small_mb} MB file"),
    ]  # fmt: skip


def _server_peak_kb(url: str) -> int:
    port = int(url.rsplit(":", 1)[1])
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"--port" in command and str(port).encode() in command:
                status = Path(f"/proc/{pid}/status").read_text()
                return int(
                    next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM"))
                )
        except (OSError, StopIteration):
            continue
    return 0


def naive(url: str, size_mb: int, attempts: int = 10) -> Row:
    """The naive way: the whole file in one request, retried from the start, through the same
    proxy resetting every 1 MiB. It never completes; what it sends is the measure."""
    port = int(url.rsplit(":", 1)[1])
    payload = os.urandom(MB)
    delivered = 0
    with FaultProxy(port, reset_every=MB) as proxy:
        for _ in range(attempts):
            try:
                with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
                    head = (
                        f"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {size_mb * MB}\r\n\r\n"
                    )
                    sock.sendall(head.encode())
                    for _ in range(size_mb):
                        sock.sendall(payload)
                    delivered = size_mb * MB
                    break
            except OSError:
                continue
        sent = proxy.upstream_bytes
    done = "completed" if delivered else f"never completed in {attempts} tries"
    return row(f"naive upload of {size_mb} MB, reset every 1 MiB ({done})",
               sent / MB, "MB sent", delivered / MB, "MB delivered")  # fmt: skip


def load(work: Path, devices: int, rounds: int) -> list[Row]:
    server_folder = work / "load-server"
    with fast_store(work / "load-analyst", admin=True) as analyst:
        server = data.init(server_folder, admin.org_keys(analyst).encode())
        with bench_sync.server_process(server.folder) as url:
            result = simulate(url, analyst, work / "load", devices=devices, rounds=rounds)
            pull.pull(analyst)
    assert result.errors == [], result.errors[:3]
    assert result.server_errors == []
    assert result.pending == 0
    batches = sum(1 for e in result.exchanges if e.path == "/v1/batches")
    what = f"load: {devices} devices x {rounds} rounds, {batches} batches, no 5xx"
    return [
        row(what + ", p50 batch", result.batch_latency(0.5) * 1000, "ms",
            result.seconds / max(batches, 1) * 1000, "run time / batches"),
        row(what + ", p99 batch", result.batch_latency(0.99) * 1000, "ms",
            result.batch_latency(0.5) * 1000, "p50"),
    ]  # fmt: skip


def store_figures(list_records: int) -> list[Row]:
    rows = bench_store.bench(list_records)
    return [r for r in rows if "import" in str(r["what"]) or "list" in str(r["what"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default="ingest,attachment,links,store,load")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FIELDSYNC_BENCH_POSTGRES"),
        help="a PostgreSQL server on which to make (and drop) databases for the ingest figures",
    )
    args = parser.parse_args()
    quick, only = args.quick, set(args.only.split(","))
    sizes = {
        "entries": 1000 if quick else 5000,
        "attachment_mb": 20 if quick else 500,
        "link_mb": 8 if quick else 200,
        "records": 2000 if quick else 100_000,
        "devices": 20,
        "rounds": 2 if quick else 10,
    }
    work = Path(tempfile.mkdtemp(prefix="fieldsync-bench-"))
    rows: list[Row] = []
    try:
        _measure(work, sizes, only, rows, args.database_url)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps({"sizes": sizes, "rows": rows}, indent=2))
        return
    bench_sync.print_table(rows)


def _measure(
    work: Path, sizes: dict[str, int], only: set[str], rows: list[Row], postgres: str | None
) -> None:
    """Every section in turn; one that fails is reported on stderr and the others still run."""
    for name, section in (
        ("ingest", lambda: [bench_sync.ingest(work, sizes["entries"])]),
        (
            "ingest",
            lambda: (
                bench_sync.ingest_by_database(work, sizes["entries"], postgres) if postgres else []
            ),
        ),
        ("attachment", lambda: _transfer(work, sizes, only)),
        ("memory", lambda: memory(work, sizes["attachment_mb"], sizes["attachment_mb"] // 10)),
        ("store", lambda: store_figures(sizes["records"])),
        ("load", lambda: load(work, sizes["devices"], sizes["rounds"])),
    ):
        wanted = name in only or (name == "memory" and "attachment" in only)
        wanted = wanted or (name == "attachment" and "links" in only)
        if not wanted:
            continue
        try:
            rows += section()
        except Exception as exc:
            print(f"{name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def _transfer(work: Path, sizes: dict[str, int], only: set[str]) -> list[Row]:
    rows: list[Row] = []
    admin.create_org(work / "admin", PASSPHRASE, work / "org.json")
    server = data.init(work / "server", (work / "org.json").read_bytes())
    with (
        Store.open(work / "admin", PASSPHRASE) as analyst,
        bench_sync.server_process(server.folder) as url,
    ):
        if "attachment" in only:
            rows.append(bench_sync.attachment(work, url, analyst, sizes["attachment_mb"]))
        if "links" in only:
            rows += bench_sync.links(work, url, analyst, sizes["link_mb"])
            rows.append(naive(url, sizes["link_mb"]))
    return rows


if __name__ == "__main__":
    main()
