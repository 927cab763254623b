"""The schema of fieldsync 0.1.0, whose server made its tables without Alembic.

A database that has these tables and no ``alembic_version`` is stamped at this revision by
``fieldsync server migrate`` before the later revisions run (``fieldsync.server.schema``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accepted_batches",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("author", AutoString(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("receipt", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_accepted_batches_author", "accepted_batches", ["author"])
    op.create_table(
        "devices",
        sa.Column("key", AutoString(), nullable=False),
        sa.Column("box_key", AutoString(), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("enrolled_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("head", AutoString(), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("alert", AutoString(), nullable=True),
        sa.Column("enrolment", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("author", AutoString(), nullable=False),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quarantine_author", "quarantine", ["author"])
    op.create_table(
        "record_heads",
        sa.Column("record", AutoString(), nullable=False),
        sa.Column("version", AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("record", "version"),
    )
    op.create_table(
        "stored_blobs",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "stored_entries",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("author", AutoString(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record", AutoString(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("org_wrap", sa.LargeBinary(), nullable=False),
        sa.Column("batch", AutoString(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("author", "seq"),
    )
    op.create_index("ix_stored_entries_author", "stored_entries", ["author"])
    op.create_index("ix_stored_entries_batch", "stored_entries", ["batch"])
    op.create_index("ix_stored_entries_record", "stored_entries", ["record"])
    op.create_table(
        "feed",
        sa.Column("pos", sa.Integer(), nullable=False),
        sa.Column("entry", AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["entry"], ["stored_entries.id"]),
        sa.PrimaryKeyConstraint("pos"),
        sa.UniqueConstraint("entry"),
    )
    op.create_table(
        "invite_uses",
        sa.Column("token_hash", AutoString(), nullable=False),
        sa.Column("device", AutoString(), nullable=False),
        sa.Column("used_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["device"], ["devices.key"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "reader_wraps",
        sa.Column("entry", AutoString(), nullable=False),
        sa.Column("reader", AutoString(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["entry"], ["stored_entries.id"]),
        sa.PrimaryKeyConstraint("entry", "reader"),
    )
    op.create_index("ix_reader_wraps_reader", "reader_wraps", ["reader"])


def downgrade() -> None:
    for table in (
        "reader_wraps",
        "invite_uses",
        "feed",
        "stored_entries",
        "stored_blobs",
        "record_heads",
        "quarantine",
        "devices",
        "accepted_batches",
    ):
        op.drop_table(table)  # its indexes go with it
