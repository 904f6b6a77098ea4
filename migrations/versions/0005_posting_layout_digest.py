"""Posting layout joins the parameter digest: re-stamp indexes built with the defaults.

The index records the digest of the fingerprint parameters that built it and
refuses to open under other parameters. The layout of a posting (anchor time
in frames, frequency in bins, span in half-frames) used to be hard-coded
outside ``FingerprintParams``, so it was not covered by the digest; it is now
a field of the parameters (``FingerprintParams.posting``). That changes the
digest of the default parameters although neither the hashes nor the stored
postings changed, and every index built with the defaults would be refused.

This revision rewrites the recorded scheme-1 digest from the old default to
the new default, and only when it is exactly the old default: an index built
with other parameters keeps its digest and is still refused by code that does
not use them. Both digests are written out here, not computed, because the
migration must keep meaning the same thing whatever the parameters become
later (``DEFAULT_PARAMS.digest()`` before and after the change).

Revision ID: 0005_posting_layout_digest
Revises: 0004_sound_tags
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_posting_layout_digest"
down_revision = "0004_sound_tags"
branch_labels = None
depends_on = None

#: ``index_meta`` key of the scheme-1 parameter digest (``params_meta_key(1)``).
DIGEST_KEY = "params_digest:1"

#: ``DEFAULT_PARAMS.digest()`` while the posting layout was outside the parameters.
OLD_DEFAULT_DIGEST = "b2fe88a1a73616d4"

#: ``DEFAULT_PARAMS.digest()`` with the default ``PostingLayout`` among the parameters.
NEW_DEFAULT_DIGEST = "3b0b15affc9f17c9"

index_meta = sa.table("index_meta", sa.column("key", sa.String(64)), sa.column("value", sa.Text()))


def _restamp(old: str, new: str) -> None:
    op.execute(
        index_meta.update()
        .where(index_meta.c.key == DIGEST_KEY, index_meta.c.value == old)
        .values(value=new)
    )


def upgrade() -> None:
    _restamp(OLD_DEFAULT_DIGEST, NEW_DEFAULT_DIGEST)


def downgrade() -> None:
    _restamp(NEW_DEFAULT_DIGEST, OLD_DEFAULT_DIGEST)
