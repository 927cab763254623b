"""Which device started each upload, whether a batch names it yet, and when it was last
appended to: uploads no batch names count against that device's quota, and unfinished ones
expire once abandoned (fieldsync.server.limits).
Uploads started before this revision belong to no device and have no time: the server gives
them a full period from the first time it looks, by its own clock (``BlobStore.expire``).
"""

from __future__ import annotations

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
        table.add_column(
            sa.Column("named", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        table.create_index("ix_stored_blobs_owner", ["owner", "named"])
        table.create_index("ix_stored_blobs_open", ["complete", "touched_ms"])


def downgrade() -> None:
    with op.batch_alter_table("stored_blobs") as table:
        table.drop_index("ix_stored_blobs_open")
        table.drop_index("ix_stored_blobs_owner")
        table.drop_column("named")
        table.drop_column("touched_ms")
        table.drop_column("owner")
