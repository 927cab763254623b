"""Many devices pushing and pulling at once against one real server (issue 6, "Load").

Each simulated device is a store of its own, enrolled with an invite, running in its own thread:
every round it records a few incidents, edits one it recorded before, pushes and pulls. The
analyst pulls, edits and pushes in a thread of its own meanwhile. Every HTTP exchange goes
through a transport that records its status and duration, so a run reports any 5xx and the
latency of each batch delivery (``POST /v1/batches``).
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fieldsync.services import admin, enrol, pull, reading, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store import delivery
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests import generated
from tests.conftest import fast_store

DAY = 86_400_000


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    seconds: float


@dataclass
class LoadResult:
    devices: int
    rounds: int
    exchanges: list[Exchange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # exceptions a device or analyst raised
    pending: int = 0  # versions still unacknowledged on any device at the end
    pushed: int = 0  # versions the devices recorded
    seconds: float = 0.0

    @property
    def server_errors(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.status >= 500]

    def batch_latency(self, quantile: float) -> float:
        times = sorted(e.seconds for e in self.exchanges if e.path == "/v1/batches")
        if not times:
            return 0.0
        if len(times) == 1:
            return times[0]
        return statistics.quantiles(times, n=100, method="inclusive")[round(quantile * 100) - 1]


class RecordingTransport(httpx.HTTPTransport):
    """An ordinary HTTP transport that notes every exchange's status and duration."""

    def __init__(self, notes: list[Exchange], lock: threading.Lock) -> None:
        super().__init__()
        self._notes, self._lock = notes, lock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = super().handle_request(request)
        path = request.url.path
        path = "/v1/batches" if path == "/v1/batches" else "/".join(path.split("/")[:3])
        note = Exchange(request.method, path, response.status_code, time.perf_counter() - started)
        with self._lock:
            self._notes.append(note)
        return response


def simulate(
    url: str,
    analyst: Store,
    folder: Path,
    *,
    devices: int = 20,
    rounds: int = 3,
    per_round: int = 3,
    seed: int = 6,
) -> LoadResult:
    result = LoadResult(devices, rounds)
    lock = threading.Lock()

    def client_for(base: str, store: Store) -> SyncClient:
        transport = RecordingTransport(result.exchanges, lock)
        return SyncClient(base, signer=store.identity.signer, transport=transport, timeout=60)

    with ExitStack() as stack:
        stores = []
        for n in range(devices):
            store = stack.enter_context(fast_store(folder / f"device-{n:02d}"))
            text, shown = admin.make_invite(analyst, f"device {n}", url, valid_ms=DAY)
            enrol.enrol(store, text, expect_fingerprint=shown["organisation_fingerprint"])
            stores.append(store)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=devices + 1) as pool:
            jobs = [
                pool.submit(_device, store, rounds, per_round, random.Random(seed + n), client_for)
                for n, store in enumerate(stores)
            ]
            jobs.append(pool.submit(_analyst, analyst, rounds, client_for))
            for job in jobs:
                failure = job.exception()
                if failure is not None:
                    result.errors.append(f"{type(failure).__name__}: {failure}")
        result.seconds = time.perf_counter() - started
        for store in stores:  # one last push for what the final pulls merged
            sync.push(store, client_for=client_for)
        result.pending = sum(sync.pending(store) for store in stores)
        result.pushed = sum(delivery.own_entries_after(store, 0) for store in stores)
    return result


def _device(
    store: Store,
    rounds: int,
    per_round: int,
    rng: random.Random,
    client_for: Callable[[str, Store], SyncClient],
) -> None:
    form = get_form("incident")
    mine: list[str] = []
    for _ in range(rounds):
        for _ in range(per_round):
            mine.append(records.create(store, form, generated.incident(rng)))
        views = [reading.read(store, r) for r in mine]
        editable = [v for v in views if not v.in_conflict]
        if editable:
            chosen = rng.choice(editable)
            total = chosen.body.answers["victims"]["total"] + 1  # always a change, always valid
            records.edit(store, chosen.record, sets=[f"victims.total={total}"])
        sync.push(store, client_for=client_for)
        pull.pull(store, client_for=client_for)


def _analyst(analyst: Store, rounds: int, client_for: Callable[[str, Store], SyncClient]) -> None:
    for round_ in range(rounds):
        pull.pull(analyst, client_for=client_for)
        held = [row.record for row in analyst.index() if not row.conflict]
        if held:  # the round in the text: the same record may be the latest twice
            records.edit(analyst, held[-1], sets=[f"narrative=reviewed in round {round_}"])
            sync.push(analyst, client_for=client_for)
