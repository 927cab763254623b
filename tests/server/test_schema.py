"""The server database's schema (fieldsync.server.schema): migrations that make exactly the
tables the models describe, a server that refuses any revision but its own and says what to
run, and an upgrade of a real fieldsync 0.1.0 database with data in it, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, text
from typer.testing import CliRunner

from fieldsync.cli.main import app as cli
from fieldsync.core import audit, crypto, httpsig, orglog, receipt
from fieldsync.core import batch as batch_format
from fieldsync.core import entry as entry_format
from fieldsync.errors import SchemaMismatch
from fieldsync.server import data, schema
from fieldsync.server.app import create_app
from fieldsync.server.database import make_engine
from fieldsync.server.holdings import ServerHoldings
from fieldsync.server.tables import server_metadata
from tests.live import running
from tests.server.conftest import NOW, Device, Org
from tests.server.postgres import fresh_postgres

RELEASE = Path(__file__).parent / "release_0_1_0"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with fresh_postgres(migrated=False) as url:
        yield url


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    made = make_engine(empty_url)
    yield made
    made.dispose()


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return schema.current(connection)


def upgrade_to(engine: Engine, target: str) -> None:
    with engine.begin() as connection:
        command.upgrade(schema._config(connection), target)


def test_the_migrations_make_exactly_the_tables_the_models_describe(engine: Engine) -> None:
    assert schema.migrate(engine) == (None, schema.expected())
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), server_metadata()) == []
    assert schema.migrate(engine) == (schema.expected(), schema.expected())  # again: nothing


def test_a_server_refuses_an_empty_database_and_says_what_to_run(
    engine: Engine, empty_url: str, server: data.ServerData
) -> None:
    with pytest.raises(SchemaMismatch, match="empty") as refused:
        create_app(server, database_url=empty_url)
    assert refused.value.hint is not None
    assert (
        f"fieldsync server migrate --data {server.folder} --database-url URL" in refused.value.hint
    )
    assert inspect(engine).get_table_names() == []  # nothing was created


def test_a_server_refuses_an_older_schema_and_changes_nothing(
    engine: Engine, empty_url: str, server: data.ServerData
) -> None:
    upgrade_to(engine, schema.FIRST_RELEASE)
    with pytest.raises(SchemaMismatch, match=r"revision 0001; this fieldsync needs") as refused:
        create_app(server, database_url=empty_url)
    assert refused.value.details == {"found": "0001", "expected": schema.expected()}
    assert refused.value.hint is not None and "Back up the database" in refused.value.hint
    with pytest.raises(SchemaMismatch):  # admin verify reads it no more than the server
        ServerHoldings(server, empty_url)
    assert revision(engine) == schema.FIRST_RELEASE


def test_a_newer_schema_is_refused_by_the_server_and_by_migrate(
    engine: Engine, empty_url: str, server: data.ServerData
) -> None:
    schema.migrate(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for attempt in (
        lambda: create_app(server, database_url=empty_url),
        lambda: schema.migrate(engine),
    ):
        with pytest.raises(SchemaMismatch, match="does not know") as refused:
            attempt()
        assert refused.value.hint is not None and "upgrade this one" in refused.value.hint
    assert revision(engine) == "9999"


def test_server_run_on_an_old_database_exits_with_what_to_run(tmp_path: Path, org: Org) -> None:
    server = data.init(tmp_path / "server", org.keys.encode())
    engine = make_engine(server.database_url())
    with engine.begin() as connection:  # back to 0.1.0's schema, as an old backup would be
        command.downgrade(schema._config(connection), schema.FIRST_RELEASE)
    engine.dispose()
    result = CliRunner().invoke(cli, ["server", "run", "--data", str(server.folder)])
    assert result.exit_code == 7, result.output
    assert "schema revision 0001" in result.output
    assert f"fieldsync server migrate --data {server.folder}" in result.output
    migrated = CliRunner().invoke(cli, ["server", "migrate", "--data", str(server.folder)])
    assert migrated.exit_code == 0, migrated.output
    assert f"from revision 0001 to {schema.expected()}" in migrated.output


def test_two_migrations_at_once_on_postgresql_run_one_after_the_other() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with fresh_postgres(migrated=False) as url:
        engines = [make_engine(url) for _ in range(3)]
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(schema.migrate, engines))
        assert sorted(before or "" for before, _ in results) == [
            "",
            schema.expected(),
            schema.expected(),
        ]
        assert revision(engines[0]) == schema.expected()
        for made in engines:
            made.dispose()


# --- an upgrade from the first release ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def released(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[data.ServerData, str | None]]:
    """The data folder and database a fieldsync 0.1.0 server left (tests/server/release_0_1_0:
    its made_by.py says how), as that release made them: its tables, no Alembic."""
    folder = tmp_path / "server"
    shutil.copytree(RELEASE / "server", folder)
    server = data.load(folder)
    if request.param == "sqlite":
        with sqlite3.connect(folder / data.DB_FILE) as db:
            db.executescript((RELEASE / "server.sql").read_text())
        yield server, None
        return
    with fresh_postgres(migrated=False) as url:
        engine = make_engine(url)
        upgrade_to(engine, schema.FIRST_RELEASE)  # 0.1.0's create_all made these very tables
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
            tables = MetaData()
            tables.reflect(connection)
            rows = json.loads((RELEASE / "rows.json").read_text())
            for table in tables.sorted_tables:  # parents first
                if rows[table.name]:
                    connection.execute(table.insert(), [_decoded(r) for r in rows[table.name]])
            # 0.1.0 numbered the feed itself; rows copied in keep their numbers
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('feed', 'pos'), MAX(pos)) FROM feed")
            )
        engine.dispose()
        yield server, url


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: base64.b64decode(v["b64"]) if isinstance(v, dict) else v for k, v in row.items()}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    with engine.connect() as connection:
        tables = MetaData()
        tables.reflect(connection)
        return {
            t.name: sorted(tuple(r) for r in connection.execute(t.select()))
            for t in tables.sorted_tables
            if t.name != "alembic_version"
        }


def test_an_upgrade_from_the_first_release_keeps_everything_and_serves_on(
    released: tuple[data.ServerData, str | None],
) -> None:
    server, url = released
    engine = make_engine(url or server.database_url())
    assert revision(engine) == schema.FIRST_RELEASE
    before = snapshot(engine)
    assert sum(map(len, before.values())) > 20  # the release's journey is there

    options = ["--database-url", url] if url else []
    result = CliRunner().invoke(cli, ["server", "migrate", "--data", str(server.folder), *options])
    assert result.exit_code == 0, result.output
    assert revision(engine) == schema.expected()

    after = snapshot(engine)
    for table, rows in before.items():  # every row, every old column, byte for byte
        width = len(rows[0]) if rows else 0
        assert [r[:width] for r in after[table]] == rows, table
    with engine.connect() as connection:
        received = connection.execute(text("SELECT received_ms FROM accepted_batches")).all()
    assert [r for (r,) in received] == [NOW] * 3  # the time its entries were stored
    engine.dispose()
    serves_on(server, url)


def serves_on(server: data.ServerData, url: str | None) -> None:
    """The migrated server answers for what 0.1.0 accepted and takes what comes next."""
    keys = json.loads((RELEASE / "keys.json").read_text())
    device = Device(
        signer=crypto.SigningPair(bytes.fromhex(keys["device_seed"])),
        box=crypto.BoxPair(bytes.fromhex(keys["device_box_secret"])),
    )
    admin = crypto.SigningPair(bytes.fromhex(keys["admin_seed"]))
    app = create_app(server, database_url=url, now_ms=lambda: NOW + 1)
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as http:

        def signed(method: str, path: str, body: bytes = b"", by: Any = device.signer) -> Any:
            headers = httpsig.sign(by, method, path, body, NOW // 1000)
            answer = http.request(method, path, content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            return answer.json()

        feed = signed("GET", "/v1/feed/0", by=admin)
        stored = [entry_format.parse(base64.b64decode(e["entry"])) for e in feed["entries"]]
        assert [e.header.seq for e in stored] == [1, 2, 3, 4, 5]
        device.entries = stored
        # 0.1.0's first batch, sent again, gets 0.1.0's receipt
        wraps = [base64.b64decode(e["wrap"]) for e in feed["entries"]]
        again = batch_format.build(device.signer, stored[:3], wraps[:3]).raw
        answer = http.post("/v1/batches", content=again)
        assert answer.status_code == 200
        assert (
            receipt.verify(answer.content, pinned_server_key=server.receipt_key.public).last_seq
            == 3
        )
        assert base64.b64encode(answer.content).decode() in feed["receipts"]
        # the chain goes on, and the half-finished upload finishes
        answer = http.post("/v1/batches", content=device.batch(device.record(2)))
        assert answer.status_code == 200, answer.text
        half = (RELEASE / "half_blob.bin").read_bytes()
        state = signed("GET", f"/v1/blobs/{keys['half_blob']}")
        assert state["offset"] == 10_000
        path = f"/v1/blobs/{keys['half_blob']}/10000"
        assert signed("PATCH", path, half[10_000:])["complete"] is True
        assert signed("GET", f"/v1/blobs/{keys['blob']}")["complete"] is True
        # migration 0006: every device of the release is a documenter's, the organisation's
        # log starts empty (every reader follows the root), and the admin key can extend it
        listed = signed("GET", "/v1/admin/devices", by=admin)
        assert {row["role"] for row in listed} == {"device"}
        assert signed("GET", "/v1/org/log") == {"forks": [], "statements": []}
        root = orglog.OrgState.root(
            admin.public.hex(), server.org.org_read_key, server.receipt_key.public.hex()
        )
        fields = {"epoch": 2, "read_key": crypto.BoxPair.generate().public.hex()}
        raw = orglog.sign(admin, root, orglog.READ_KEY, fields, time_ms=NOW)
        answer = http.post("/v1/org/statements", content=raw)
        assert answer.status_code == 200, answer.text
        followed = orglog.follow(root, [base64.b64decode(s) for s in answer.json()["statements"]])
        assert followed.read_key.epoch == 2
    app.state.engine.dispose()
    holdings = ServerHoldings(server, url)
    try:
        report = audit.audit(audit.Anchors(admin.public, server.receipt_key.public), holdings)
    finally:
        holdings.close()
    assert report.ok, report.to_json()
    (author,) = [a for a in report.authors if a.status == "active"]
    assert (author.intact_through, author.quarantined) == (7, ["fork at seq 5"])


def test_a_complete_blob_from_before_owners_outlives_every_expiry(
    released: tuple[data.ServerData, str | None],
) -> None:
    """Uploads no batch names expire, complete ones too; 0.1.0 kept no record of which batch
    names which blob, so migration 0005 counts its complete ones as named: never deleted. Its
    unfinished one is given a full period from the first look, then goes."""
    server, url = released
    options = ["--database-url", url] if url else []
    result = CliRunner().invoke(cli, ["server", "migrate", "--data", str(server.folder), *options])
    assert result.exit_code == 0, result.output
    keys = json.loads((RELEASE / "keys.json").read_text())
    complete = server.blob_folder / keys["blob"][:2] / keys["blob"]
    held = complete.read_bytes()
    for hours in (1000, 2000):  # the first start adopts the unfinished one, the second expires it
        app = create_app(server, database_url=url, now_ms=lambda h=hours: NOW + h * 3_600_000)
        with app.state.engine.connect() as connection:
            kept = connection.execute(text("SELECT id FROM stored_blobs")).scalars().all()
        app.state.engine.dispose()
    assert kept == [keys["blob"]]
    assert complete.read_bytes() == held
    assert not (server.blob_folder / "partial" / keys["half_blob"]).exists()
