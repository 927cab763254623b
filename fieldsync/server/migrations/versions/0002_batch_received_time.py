"""When the server accepted each batch, kept for custody records and monitoring (nothing in
fieldsync reads it yet; the receipt carries the same time, signed). Batches accepted before
this revision take the time their entries were stored, which the same transaction wrote.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accepted_batches") as table:
        table.add_column(sa.Column("received_ms", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE accepted_batches SET received_ms = (SELECT MIN(stored_entries.received_ms) "
        "FROM stored_entries WHERE stored_entries.batch = accepted_batches.id)"
    )
    op.execute("UPDATE accepted_batches SET received_ms = 0 WHERE received_ms IS NULL")
    with op.batch_alter_table("accepted_batches") as table:
        table.alter_column("received_ms", existing_type=sa.BigInteger(), nullable=False)
        table.create_index("ix_accepted_batches_received_ms", ["received_ms"])


def downgrade() -> None:
    with op.batch_alter_table("accepted_batches") as table:
        table.drop_index("ix_accepted_batches_received_ms")
        table.drop_column("received_ms")
