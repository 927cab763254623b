"""The server database's schema: which revision it is at, and bringing it to this fieldsync's.

The revisions are Alembic migrations in ``fieldsync/server/migrations/versions``; there is no
alembic.ini, and no other code creates or alters a table. The server runs only on a database
at exactly its own revision: an older one needs ``fieldsync server migrate`` (which a person
runs, after a backup, never a server at start-up), and a newer one needs a newer fieldsync.

fieldsync 0.1.0 made its tables without Alembic. Such a database is at revision 0001, the
first release's schema, and ``migrate`` stamps it so before going on.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError

from fieldsync.errors import DatabaseUnreachable, SchemaMismatch
from fieldsync.server.database import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"
FIRST_RELEASE = "0001"
FIRST_RELEASE_TABLE = "devices"  # present in every fieldsync server database
# Any number, the same in every process: PostgreSQL holds it while a migration runs, so two
# 'migrate' commands at once run one after the other and the second finds nothing to do.
MIGRATION_LOCK = 0x6669656C64  # "field"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    """The migrations, read once per process (each check at start-up asks for them)."""
    return ScriptDirectory.from_config(_config())


def expected() -> str:
    """The revision this fieldsync runs on (the newest it knows)."""
    head = _script().get_current_head()
    assert head is not None
    return head


def known() -> list[str]:
    """Every revision this fieldsync knows, oldest first."""
    return [r.revision for r in reversed(list(_script().walk_revisions()))]


def current(connection: Connection) -> str | None:
    """The database's revision; None for an empty database."""
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None and inspect(connection).has_table(FIRST_RELEASE_TABLE):
        return FIRST_RELEASE  # made by fieldsync 0.1.0, before Alembic
    return revision


def current_engine(url: str, what_to_run: str) -> Engine:
    """An engine on the database at ``url``, which must be at this fieldsync's revision (the
    engine is let go if it is not)."""
    engine = make_engine(url)
    try:
        require_current(engine, what_to_run)
    except BaseException:
        engine.dispose()
        raise
    return engine


def migrate_url(url: str) -> tuple[str | None, str]:
    """``migrate`` the database at ``url``, with an engine of its own."""
    engine = make_engine(url)
    try:
        return migrate(engine)
    finally:
        engine.dispose()


def require_current(engine: Engine, what_to_run: str) -> None:
    """Refuse a database at any revision but this fieldsync's, saying what to do instead."""
    with _reaching(), engine.connect() as connection:
        found = current(connection)
    wanted = expected()
    if found == wanted:
        return
    if found is None:
        raise SchemaMismatch(
            "the server's database is empty: it has no fieldsync tables",
            hint=f"Run '{what_to_run}' to create them.",
        )
    if found in known():
        raise SchemaMismatch(
            f"the server's database is at schema revision {found}; this fieldsync needs {wanted}",
            hint=f"Nothing was changed. Back up the database, then run '{what_to_run}'.",
            details={"found": found, "expected": wanted},
        )
    raise _too_new(found)


def _too_new(found: str) -> SchemaMismatch:
    return SchemaMismatch(
        f"the server's database is at schema revision {found}, which this fieldsync does not "
        f"know (it needs {expected()}): a newer fieldsync has migrated it",
        hint="Nothing was changed. Run the fieldsync that migrated it, or upgrade this one.",
        details={"found": found, "expected": expected()},
    )


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to this fieldsync's revision, all or nothing; returns the revisions
    before and after. An empty database gets every table; one already there is left alone."""
    with _reaching(), _transaction(engine) as connection:
        stamped = MigrationContext.configure(connection).get_current_revision()
        before = current(connection)
        if before is not None and before not in known():
            raise _too_new(before)
        config = _config(connection)
        if stamped is None and before == FIRST_RELEASE:
            command.stamp(config, FIRST_RELEASE)
        command.upgrade(config, "head")
        return before, expected()


@contextmanager
def _reaching() -> Iterator[None]:
    """A database that cannot be reached is the operator's to fix, and said so plainly (the
    driver's first line names the host and port, never the password)."""
    try:
        yield
    except OperationalError as exc:
        first_line = str(exc.orig).strip().splitlines()[0][:200] if exc.orig else ""
        raise DatabaseUnreachable(f"cannot reach the server's database: {first_line}") from exc


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction around the whole migration. PostgreSQL's DDL is transactional as it is;
    pysqlite would commit before each CREATE or ALTER, so SQLite gets its own engine that
    begins explicitly (SQLAlchemy's recipe for SQLite transactions)."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            yield connection
        return
    own = create_engine(engine.url, connect_args={"timeout": 30})

    @event.listens_for(own, "connect")
    def _no_implicit_transactions(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(own, "begin")
    def _begin_immediately(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock first: one migrator

    try:
        with own.begin() as connection:
            yield connection
    finally:
        own.dispose()
