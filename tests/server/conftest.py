from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from fieldsync.core import batch as batch_format
from fieldsync.core import crypto, enrolment, invite
from fieldsync.core import entry as entry_format
from fieldsync.core.clock import HLC
from fieldsync.core.ids import new_record_id
from fieldsync.core.org import OrgKeys
from fieldsync.server import data
from fieldsync.server.app import create_app
from tests.live import running
from tests.server.postgres import fresh_postgres

NOW = 1_800_000_000_000


@dataclass
class Org:
    admin: crypto.SigningPair
    read: crypto.BoxPair

    @property
    def keys(self) -> OrgKeys:
        return OrgKeys(self.admin.public.hex(), self.read.public.hex())


@pytest.fixture
def org() -> Org:
    return Org(crypto.SigningPair.generate(), crypto.BoxPair.generate())


@pytest.fixture
def server(org: Org, tmp_path: Path) -> data.ServerData:
    return data.init(tmp_path / "server", org.keys.encode())


@pytest.fixture
def client(server: data.ServerData, database_url: str | None) -> Iterator[httpx.Client]:
    app = create_app(server, database_url=database_url, now_ms=lambda: NOW)
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http
    app.state.engine.dispose()


def make_invite(org: Org, server: data.ServerData, **overrides: object) -> str:
    args: dict[str, object] = dict(
        name="laptop 3",
        server="http://testserver",
        server_key=server.receipt_key.public,
        org_read_key=org.read.public,
        expires_ms=NOW + 86_400_000,
    )
    args.update(overrides)
    return invite.issue(org.admin, **args)  # type: ignore[arg-type]


def enrol_body(
    text: str, device: crypto.SigningPair | None = None, box: crypto.BoxPair | None = None
) -> bytes:
    device = device or crypto.SigningPair.generate()
    box = box or crypto.BoxPair.generate()
    shown = invite.read(text, now_ms=NOW)
    server_key = bytes.fromhex(shown.server_key)
    return enrolment.request(device, box, text, shown.token, server_key=server_key).encode()


@dataclass
class Device:
    signer: crypto.SigningPair = field(default_factory=crypto.SigningPair.generate)
    box: crypto.BoxPair = field(default_factory=crypto.BoxPair.generate)
    entries: list[entry_format.Entry] = field(default_factory=list)

    def record(
        self, count: int = 1, *, record: str | None = None, parents: tuple[str, ...] = ()
    ) -> list[entry_format.Entry]:
        made = []
        for _ in range(count):
            last = self.entries[-1] if self.entries else None
            made_entry, _ = entry_format.seal(
                self.signer,
                seq=len(self.entries) + 1,
                prev=last.id if last else None,
                record=record or new_record_id(),
                parents=parents,
                hlc=HLC(len(self.entries) + 1, 0),
                body=b'{"x":1}',
            )
            self.entries.append(made_entry)
            made.append(made_entry)
        return made

    def batch(
        self, entries: list[entry_format.Entry], blobs: tuple[tuple[str, int], ...] = ()
    ) -> bytes:
        wraps = [crypto.wrap_key(self.box.public, crypto.random_bytes(32)) for _ in entries]
        return batch_format.build(self.signer, entries, wraps, blobs).raw


@dataclass
class Live:
    http: httpx.Client
    engine: Engine
    server: data.ServerData

    def send(self, raw: bytes) -> httpx.Response:
        return self.http.post("/v1/batches", content=raw)

    def count(self, table: type) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(table)).one())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Every server test runs twice: on the embedded SQLite (None: the data folder's file) and
    on a fresh database of a real PostgreSQL (tests/server/postgres.py)."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def live(server: data.ServerData, database_url: str | None) -> Iterator[Live]:
    app = create_app(server, database_url=database_url, now_ms=lambda: NOW)
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield Live(http, app.state.engine, server)
    app.state.engine.dispose()


@pytest.fixture
def device(live: Live, org: Org) -> Device:
    enrolled = Device()
    body = enrol_body(make_invite(org, live.server), enrolled.signer, enrolled.box)
    assert live.http.post("/v1/enrol", content=body).status_code == 200
    return enrolled
