"""Running the server: several worker processes on PostgreSQL, the health endpoint a load
balancer watches, and the JSON log lines (fieldsync.server.logs)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from fieldsync.cli.main import app as cli
from fieldsync.server import data, logs
from fieldsync.server.tables import StoredEntry
from tests.live import ServerProcess
from tests.server.conftest import Device, Live, Org, enrol_body, make_invite
from tests.server.postgres import ADMIN_URL, fresh_postgres


@pytest.fixture
def postgres() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


@pytest.mark.slow
def test_two_workers_on_postgresql_share_the_work(
    postgres: str, server: data.ServerData, org: Org, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    process = ServerProcess(server.folder, database_url=postgres, workers=2, log=log)
    process.start()
    try:
        devices = [Device() for _ in range(4)]
        for device in devices:
            body = enrol_body(make_invite(org, server), device.signer, device.box)
            assert httpx.post(f"{process.url}/v1/enrol", content=body).status_code == 200

        def push(device: Device) -> list[int]:
            raws = [device.batch(device.record(20)) for _ in range(5)]
            return [httpx.post(f"{process.url}/v1/batches", content=r).status_code for r in raws]

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(push, devices)) == [[200] * 5] * 4
    finally:
        process.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    accepted = [line for line in lines if line["event"] == "batch accepted"]
    assert len(accepted) == 20
    assert len({line["pid"] for line in accepted}) == 2  # both workers took batches
    engine = create_engine(postgres)
    with engine.connect() as connection:
        stored = connection.execute(text(f"SELECT count(*) FROM {StoredEntry.__tablename__}"))
        assert stored.scalar_one() == 400
    engine.dispose()


def test_several_workers_on_sqlite_are_refused(server: data.ServerData) -> None:
    result = CliRunner().invoke(
        cli, ["server", "run", "--data", str(server.folder), "--workers", "2"]
    )
    assert result.exit_code == 5, result.output
    assert "several workers need PostgreSQL" in result.output


def test_an_unreachable_database_is_named_with_what_to_check(server: data.ServerData) -> None:
    nowhere = "postgresql+psycopg://fieldsync:s3cret-pw@127.0.0.1:1/fieldsync"
    for command in ("run", "migrate"):
        result = CliRunner().invoke(
            cli, ["server", command, "--data", str(server.folder), "--database-url", nowhere]
        )
        assert result.exit_code == 8, result.output
        assert "cannot reach the server's database" in result.output
        assert "FIELDSYNC_DATABASE_URL" in result.output
        assert "s3cret-pw" not in result.output


def test_health_says_ok_and_which_part_fails(live: Live, database_url: str | None) -> None:
    assert live.http.get("/v1/health").json() == {"status": "ok"}
    (live.server.blob_folder / "partial").rename(live.server.blob_folder / "moved")
    answer = live.http.get("/v1/health")
    assert (answer.status_code, answer.json()["failing"]) == (503, ["blob storage"])
    (live.server.blob_folder / "moved").rename(live.server.blob_folder / "partial")
    if database_url is None:
        return  # SQLite: the file is opened by the process itself; nothing to take away
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        name = make_url(database_url).database
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
    answer = live.http.get("/v1/health")
    assert (answer.status_code, answer.json()["failing"]) == (503, ["database"])


def test_a_log_line_is_one_json_object_of_chosen_fields(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("fieldsync.server.test")
    with caplog.at_level(logging.INFO, logger="fieldsync.server.test"):
        logs.event(logger, "batch accepted", device="ab" * 32, entries=3)
        try:
            raise ValueError("the request said \x1b[31mRED and 'secret'")
        except ValueError:
            logger.exception("failed")
    formatted = [logs.JsonLines().format(record) for record in caplog.records]
    first, second = (json.loads(line) for line in formatted)
    assert first["event"] == "batch accepted" and first["entries"] == 3
    assert set(first) == {"time", "level", "logger", "pid", "event", "device", "entries"}
    assert second["exception"] == "ValueError"  # the class, never the message
    assert all("secret" not in line and "\x1b" not in line for line in formatted)
