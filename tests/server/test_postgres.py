"""The server on a real PostgreSQL: enrolment, ingest, replay, fork and the audit.

It needs a PostgreSQL server: ``FIELDSYNC_TEST_POSTGRES`` (a SQLAlchemy URL; default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``, trust auth). Each test makes its own
database and drops it. Where no PostgreSQL answers the test is skipped, except under CI
(``CI`` set), where it fails: CI machines have one. To get one:
``docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`` (then
``createdb -h 127.0.0.1 -U postgres test``) or the distribution's ``postgresql`` package.
Beside it, every other test of tests/server runs on both SQLite and PostgreSQL
(tests/server/conftest.py); this file keeps the end-to-end check, audit included.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, select

from fieldsync.core import audit, receipt
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.holdings import ServerHoldings
from fieldsync.server.tables import Quarantined, StoredEntry
from tests.live import running
from tests.server.conftest import NOW, Device, Org, enrol_body, make_invite
from tests.server.postgres import fresh_postgres


@pytest.fixture
def database_url() -> Iterator[str]:
    """This file's tests are PostgreSQL's alone (the rest of tests/server runs on both)."""
    with fresh_postgres() as url:
        yield url


def test_the_server_verifies_stores_and_audits_on_postgresql(
    database_url: str, server: data.ServerData, org: Org
) -> None:
    app = create_app(server, database_url=database_url, now_ms=lambda: NOW)
    device = Device()
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        body = enrol_body(make_invite(org, server), device.signer, device.box)
        assert http.post("/v1/enrol", content=body).status_code == 200
        first = device.record(3)
        record = first[0].header.record
        first += device.record(2, record=record, parents=(first[0].id,))
        raw = device.batch(first)
        answer = http.post("/v1/batches", content=raw)
        assert answer.status_code == 200, answer.text
        assert http.post("/v1/batches", content=raw).content == answer.content  # a replay
        signed = receipt.verify(answer.content, pinned_server_key=server.receipt_key.public)
        assert (signed.last_seq, signed.head) == (5, first[-1].id)
        forked = Device(signer=device.signer, box=device.box, entries=first[:4])
        assert http.post("/v1/batches", content=forked.batch(forked.record(1))).status_code == 409
    with Session(app.state.engine) as session:
        assert len(session.exec(select(StoredEntry)).all()) == 5
        assert session.exec(select(Quarantined)).one().reason == "fork at seq 5"
    app.state.engine.dispose()
    holdings = ServerHoldings(server, database_url)
    try:
        report = audit.audit(audit.Anchors(org.admin.public, server.receipt_key.public), holdings)
    finally:
        holdings.close()
    assert report.ok, report.to_json()
    (audited,) = [a for a in report.authors if a.status == "active"]
    assert (audited.intact_through, audited.receipts, audited.quarantined) == (
        5,
        1,
        ["fork at seq 5"],
    )
