"""Uploads keep a digest of the bytes submitted, so a retry can be told from another upload.

A content id or ``Idempotency-Key`` seen before used to replay the stored
verdict whatever came with it, so an upload sent under a reused key (another
content id, account or file) was answered with someone else's verdict and
never recorded. The services now compare the retry's content id, account id
and the SHA-256 of its bytes with the first submission's; this column keeps
the last of those. Uploads recorded before it have none, and are compared on
their ids only.

Revision ID: 0006_upload_payload_digest
Revises: 0005_posting_layout_digest
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_upload_payload_digest"
down_revision = "0005_posting_layout_digest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("payload_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("payload_digest")
