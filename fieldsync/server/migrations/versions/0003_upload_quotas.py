"""Which device started each upload, and when it was last appended to: unfinished uploads
count against that device's quota, and expire once abandoned (fieldsync.server.limits).
Uploads started before this revision belong to no device, and are taken as appended to at
the upgrade: they expire a full period after it if nothing resumes them.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stored_blobs") as table:
        table.add_column(sa.Column("owner", AutoString(), nullable=True))
        table.add_column(sa.Column("touched_ms", sa.BigInteger(), nullable=True))
    op.execute(
        sa.text("UPDATE stored_blobs SET touched_ms = :now").bindparams(now=int(time.time() * 1000))
    )
    with op.batch_alter_table("stored_blobs") as table:
        table.alter_column("touched_ms", existing_type=sa.BigInteger(), nullable=False)
        table.create_index("ix_stored_blobs_owner", ["owner"])


def downgrade() -> None:
    with op.batch_alter_table("stored_blobs") as table:
        table.drop_index("ix_stored_blobs_owner")
        table.drop_column("touched_ms")
        table.drop_column("owner")
