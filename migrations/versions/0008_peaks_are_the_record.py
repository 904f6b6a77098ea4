"""A sound's peaks are its fingerprint record; the packed per-hash rows become legacy.

From this revision on, adding a sound writes its row and its peaks only: the
inverted index is derived from the peaks (``audiofp.index``), so ingest no
longer rewrites one packed row per hash it touches (which slowed as rows grew
and bloated PostgreSQL with dead row versions).

Sounds added before revision 0007 have no peaks; their postings exist only in
the packed ``fingerprints`` rows, which are kept for them. This revision
records the largest sound id whose postings those rows hold
(``index_meta.legacy_postings_upto``), so that an index build reads the rows
for sounds up to it and the peaks for every later one. When every sound
already has peaks (any store created at 0007), the rows are redundant and are
removed: the store shrinks to its record.

Revision ID: 0008_peaks_are_the_record
Revises: 0007_sound_peaks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_peaks_are_the_record"
down_revision = "0007_sound_peaks"
branch_labels = None
depends_on = None

_KEY = "legacy_postings_upto"


def upgrade() -> None:
    bind = op.get_bind()
    peakless = bind.execute(sa.text(
        "SELECT COUNT(*) FROM sounds s WHERE NOT EXISTS (SELECT 1 FROM sound_peaks p WHERE p.sound_id = s.id)"
    )).scalar_one()
    if peakless:
        # Every sound existing now has its postings in the rows (0007 wrote both).
        upto = bind.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM sounds")).scalar_one()
    else:
        upto = 0
        if bind.dialect.name == "postgresql":
            op.execute("TRUNCATE fingerprints")  # returns the space at once, unlike DELETE
        else:
            op.execute("DELETE FROM fingerprints")
    bind.execute(sa.text("DELETE FROM index_meta WHERE key = :key"), {"key": _KEY})
    bind.execute(sa.text("INSERT INTO index_meta (key, value) VALUES (:key, :value)"), {"key": _KEY, "value": str(upto)})


def downgrade() -> None:
    bind = op.get_bind()
    upto = int(bind.execute(sa.text("SELECT value FROM index_meta WHERE key = :key"), {"key": _KEY}).scalar_one_or_none()
               or 0)
    newer = bind.execute(sa.text("SELECT COUNT(*) FROM sounds WHERE id > :upto"), {"upto": upto}).scalar_one()
    if newer:
        raise RuntimeError(
            f"cannot downgrade below 0008: {newer} sounds have only their peaks, and the code of earlier "
            "revisions reads their postings from packed rows that were never written; restore a backup "
            "taken before the upgrade instead"
        )
    bind.execute(sa.text("DELETE FROM index_meta WHERE key = :key"), {"key": _KEY})
