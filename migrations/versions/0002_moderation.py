"""Moderation domain: uploads, uses, removals, sound labels, events, API keys, audit log.

Revision ID: 0002_moderation
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_moderation"
down_revision = "0001_core"
branch_labels = None
depends_on = None

#: Same as ``audiofp.store.models.RowKey``: rowid alias on SQLite, BIGINT elsewhere.
RowKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", RowKey, primary_key=True, autoincrement=True),
        sa.Column("content_id", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("uploaded_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("original_sound_id", RowKey, sa.ForeignKey("sounds.id"), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("verdict_json", sa.Text(), nullable=False),
        sa.UniqueConstraint("content_id", name="uq_uploads_content_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_uploads_idempotency_key"),
    )
    op.create_index("ix_uploads_account_id", "uploads", ["account_id"])

    op.create_table(
        "uses",
        sa.Column("id", RowKey, primary_key=True, autoincrement=True),
        sa.Column("upload_id", RowKey, sa.ForeignKey("uploads.id"), nullable=False),
        sa.Column("sound_id", RowKey, sa.ForeignKey("sounds.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("query_start", sa.Float(), nullable=False),
        sa.Column("query_end", sa.Float(), nullable=False),
        sa.Column("sound_start", sa.Float(), nullable=False),
        sa.Column("sound_end", sa.Float(), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.Column("pitch_semitones", sa.Float(), nullable=False),
        sa.Column("landmarks", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("disputed_at", TS, nullable=True),
        sa.Column("disputed_by", sa.Integer(), nullable=True),
        sa.Column("dispute_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("upload_id", "sound_id", name="uq_uses_upload_sound"),
    )
    op.create_index("ix_uses_sound_id_id", "uses", ["sound_id", "id"])

    op.create_table(
        "removals",
        sa.Column("id", RowKey, primary_key=True, autoincrement=True),
        sa.Column("upload_id", RowKey, sa.ForeignKey("uploads.id"), nullable=True),
        sa.Column("sound_id", RowKey, sa.ForeignKey("sounds.id"), nullable=True),
        sa.Column("policy_label", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("removed_at", TS, nullable=False),
        sa.Column("removed_by", sa.Integer(), nullable=True),
        sa.Column("reversed_at", TS, nullable=True),
        sa.Column("reversed_by", sa.Integer(), nullable=True),
        sa.Column("reversal_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_removals_upload_id", "removals", ["upload_id"])
    op.create_index("ix_removals_sound_id", "removals", ["sound_id"])

    op.create_table(
        "sound_labels",
        sa.Column("sound_id", RowKey, sa.ForeignKey("sounds.id"), primary_key=True),
        sa.Column("label", sa.String(255), primary_key=True),
    )

    op.create_table(
        "events",
        sa.Column("id", RowKey, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("removal_id", RowKey, sa.ForeignKey("removals.id"), nullable=True),
        sa.Column("sound_id", RowKey, sa.ForeignKey("sounds.id"), nullable=False),
        sa.Column("use_id", RowKey, sa.ForeignKey("uses.id"), nullable=False),
        sa.Column("upload_id", RowKey, sa.ForeignKey("uploads.id"), nullable=False),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", RowKey, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("detail_json", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    for table in ("audit_log", "api_keys", "events", "sound_labels", "removals", "uses"):
        op.drop_table(table)
    op.drop_index("ix_uploads_account_id", table_name="uploads")
    op.drop_table("uploads")
