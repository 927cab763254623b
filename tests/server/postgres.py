"""A fresh PostgreSQL database per test, dropped afterwards.

``FIELDSYNC_TEST_POSTGRES`` names the server (a SQLAlchemy URL; default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``, trust auth). Where none answers, the
tests that need one are skipped, except under CI (``CI`` set), where they fail: CI machines
have one. To get one: ``docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust
postgres:16`` (then ``createdb -h 127.0.0.1 -U postgres test``) or the distribution's
``postgresql`` package.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from fieldsync.server import schema

ADMIN_URL = os.environ.get(
    "FIELDSYNC_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_postgres(*, migrated: bool = True, admin_url: str = ADMIN_URL) -> Iterator[str]:
    """The URL of a new database on ``admin_url``'s server, with the server's tables unless not
    ``migrated`` (then empty), dropped (connections and all) when done."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"fieldsync_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {admin_url} ({type(exc).__name__}); see {__file__}")
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        if migrated:
            schema.migrate_url(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
