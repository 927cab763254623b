"""Uploads no batch names expire whether partial or complete (fieldsync.server.blobs): the
index that finds the abandoned ones is on (named, touched_ms), no longer on (complete,
touched_ms).

Complete blobs from before revision 0003 have no owner and were never marked named, though a
batch of that time may name them: the server kept no record of which. They are marked named
here, so that no expiry ever deletes one (they count against no device's quota either way).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    blobs = sa.table(
        "stored_blobs",
        sa.column("owner", sa.String),
        sa.column("complete", sa.Boolean),
        sa.column("named", sa.Boolean),
    )
    op.execute(
        blobs.update()
        .where(blobs.c.owner.is_(None), blobs.c.complete == sa.true())
        .values(named=True)
    )
    with op.batch_alter_table("stored_blobs") as table:
        table.drop_index("ix_stored_blobs_open")
        table.create_index("ix_stored_blobs_unnamed", ["named", "touched_ms"])


def downgrade() -> None:
    # the blobs marked named stay so: which of them a batch names is known no better than before
    with op.batch_alter_table("stored_blobs") as table:
        table.drop_index("ix_stored_blobs_unnamed")
        table.create_index("ix_stored_blobs_open", ["complete", "touched_ms"])
