"""Uses: the column that counts agreeing anchor peaks is called ``anchors``.

It was named ``landmarks``, which in this codebase means peak pairs or
triplets; what it counts is distinct agreeing anchors. The HTTP documents keep
their ``landmarks`` key (the wire contract does not change).

Revision ID: 0003_use_anchors
Revises: 0002_moderation
"""

from __future__ import annotations

from alembic import op

revision = "0003_use_anchors"
down_revision = "0002_moderation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uses") as batch:
        batch.alter_column("landmarks", new_column_name="anchors")


def downgrade() -> None:
    with op.batch_alter_table("uses") as batch:
        batch.alter_column("anchors", new_column_name="landmarks")
