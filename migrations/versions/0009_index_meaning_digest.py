"""The parameter digest covers what the index stores, not how queries search it: re-stamp default indexes.

The index records the digest of the fingerprint parameters that built it and
refuses to open under other parameters. The digest used to cover every
parameter, including those only a query uses (its peak picking, its fan-out,
and how far around each measured hash field it looks). Changing any of them,
for instance to search slowed and sped-up edits further, made every existing
index refuse to open although nothing stored had changed. The digest now
covers only what decides the stored peaks, hashes and postings
(``FingerprintParams.digest``), which changes the digest of the default
parameters.

This revision rewrites the recorded scheme-1 digest from the old default to
the new default, and only when it is exactly the old default: an index built
with other parameters keeps its digest and is still refused by code that does
not use them. Both digests are written out here, not computed, so that the
migration keeps meaning the same thing whatever the parameters become later.
Index snapshots record the digest too; they are derived data, and a worker
replaces one whose digest differs at its first lookup.

Revision ID: 0009_index_meaning_digest
Revises: 0008_peaks_are_the_record
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_index_meaning_digest"
down_revision = "0008_peaks_are_the_record"
branch_labels = None
depends_on = None

#: ``index_meta`` key of the scheme-1 parameter digest (``params_meta_key(1)``).
DIGEST_KEY = "params_digest:1"

#: ``DEFAULT_PARAMS.digest()`` when it covered every parameter (revisions 0005-0008).
OLD_DEFAULT_DIGEST = "3b0b15affc9f17c9"

#: ``DEFAULT_PARAMS.digest()`` covering what the index stores only.
NEW_DEFAULT_DIGEST = "b3930e529bb89b40"

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
