"""The organisation's log (its statements, and those refused as forks), members' key bundles,
the sealed backup of its secrets, and each enrolment's role (docs/protocol.md, "The
organisation's log"). A server of an earlier release has an empty log, which every reader
follows as the root alone, and every device it registered is a documenter's ("device")."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_statements",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_table(
        "org_forks",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("devices") as table:
        table.add_column(sa.Column("role", sa.String(), nullable=False, server_default="device"))
    op.create_table(
        "member_bundles",
        sa.Column("member", sa.String(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("stored_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["member"], ["devices.key"]),
        sa.PrimaryKeyConstraint("member"),
    )
    op.create_table(
        "org_backup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("stored_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("org_backup")
    op.drop_table("member_bundles")
    with op.batch_alter_table("devices") as table:
        table.drop_column("role")
    op.drop_table("org_forks")
    op.drop_table("org_statements")
