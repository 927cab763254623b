"""One device per box key: a UNIQUE index on ``devices.box_key``, so that two enrolments at
once (at two server processes) cannot both register one key (fieldsync.server.enrol).

A database in which two devices already share a box key cannot take it: the upgrade fails,
changing nothing, and the devices named by ``admin verify`` must be revoked and removed first.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as table:
        table.create_unique_constraint("uq_devices_box_key", ["box_key"])


def downgrade() -> None:
    with op.batch_alter_table("devices") as table:
        table.drop_constraint("uq_devices_box_key", type_="unique")
