"""The store: the only code of audiofp that talks to the database.

``Store`` (``database``) owns the engine, sessions, migrations and the
fingerprint-parameter guard; ``repository`` holds the narrow functions that
read and write sounds, postings and metadata inside a caller's session.
"""

from .database import Store, current_revision, head_revisions, upgrade
from .repository import (
    IndexStats,
    SoundRecord,
    add_postings,
    add_sound,
    find_sound_by_digest,
    get_meta,
    get_sound,
    get_sounds,
    index_stats,
    list_sounds,
    lookup_postings,
    set_meta,
    setdefault_meta,
)

__all__ = [
    "IndexStats",
    "SoundRecord",
    "Store",
    "add_postings",
    "add_sound",
    "current_revision",
    "find_sound_by_digest",
    "get_meta",
    "get_sound",
    "get_sounds",
    "head_revisions",
    "index_stats",
    "list_sounds",
    "lookup_postings",
    "set_meta",
    "setdefault_meta",
    "upgrade",
]
