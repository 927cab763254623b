"""Alembic's entry point for the server database (run by ``fieldsync.server.schema``, which
hands it an open connection; there is no alembic.ini)."""

from __future__ import annotations

from alembic import context
from fieldsync.server import tables  # noqa: F401 - the models fill SQLModel's metadata
from sqlmodel import SQLModel

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying the table
)
with context.begin_transaction():
    context.run_migrations()
