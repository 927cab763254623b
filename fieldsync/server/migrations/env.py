"""Alembic's entry point for the server database (run by ``fieldsync.server.schema``, which
hands it an open connection; there is no alembic.ini)."""

from __future__ import annotations

from alembic import context
from fieldsync.server.tables import server_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=server_metadata(),  # what 'alembic revision --autogenerate' compares
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying the table
)
with context.begin_transaction():
    context.run_migrations()
