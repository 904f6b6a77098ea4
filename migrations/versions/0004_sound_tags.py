"""Sound tags: the many free-form tags of a sound get a table named for them.

``sounds.label`` is a sound's one display label; the table of its many tags
(entity, campaign, archive name) was also called ``sound_labels``, so code
and commands could not tell the two apart. The tags move, row for row, to
``sound_tags (sound_id, tag)``.

Revision ID: 0004_sound_tags
Revises: 0003_use_anchors
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_sound_tags"
down_revision = "0003_use_anchors"
branch_labels = None
depends_on = None

#: Same as ``audiofp.store.models.RowKey``: rowid alias on SQLite, BIGINT elsewhere.
RowKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sound_tags",
        sa.Column("sound_id", RowKey, sa.ForeignKey("sounds.id"), primary_key=True),
        sa.Column("tag", sa.String(255), primary_key=True),
    )
    op.execute("INSERT INTO sound_tags (sound_id, tag) SELECT sound_id, label FROM sound_labels")
    op.drop_table("sound_labels")


def downgrade() -> None:
    op.create_table(
        "sound_labels",
        sa.Column("sound_id", RowKey, sa.ForeignKey("sounds.id"), primary_key=True),
        sa.Column("label", sa.String(255), primary_key=True),
    )
    op.execute("INSERT INTO sound_labels (sound_id, label) SELECT sound_id, tag FROM sound_tags")
    op.drop_table("sound_tags")
