"""Sounds keep the spectral peaks their postings were formed from.

Workers answer lookups from a memory-mapped snapshot of the index plus an
in-memory index of the sounds added since; they form the latter's postings
from these peaks rather than reading back the packed rows the new sounds were
appended to. Sounds added before this revision have no peaks: they are in
every snapshot built from the packed rows, and only a sound added later needs
its peaks.

Revision ID: 0007_sound_peaks
Revises: 0006_upload_payload_digest
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sound_peaks"
down_revision = "0006_upload_payload_digest"
branch_labels = None
depends_on = None

_ROW_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sound_peaks",
        sa.Column("sound_id", _ROW_KEY, sa.ForeignKey("sounds.id"), primary_key=True, autoincrement=False),
        sa.Column("peaks", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sound_peaks")
