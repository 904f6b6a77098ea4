"""Core index: sounds, packed fingerprint postings, index metadata.

Revision ID: 0001_core
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

# INTEGER PRIMARY KEY on SQLite makes the column the rowid (no second index).
RowKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sounds",
        sa.Column("id", RowKey, primary_key=True, autoincrement=True),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("source_name", sa.Text(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("scheme", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sounds"),
        sa.UniqueConstraint("content_digest", name="uq_sounds_content_digest"),
    )
    op.create_index("ix_sounds_label", "sounds", ["label"])
    op.create_table(
        "fingerprints",
        sa.Column("key", RowKey, primary_key=True, autoincrement=False),
        sa.Column("postings", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_fingerprints"),
    )
    op.create_table(
        "index_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_index_meta"),
    )


def downgrade() -> None:
    op.drop_table("index_meta")
    op.drop_table("fingerprints")
    op.drop_index("ix_sounds_label", table_name="sounds")
    op.drop_table("sounds")
