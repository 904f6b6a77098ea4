"""Former home of the index functions; kept only so older imports keep working.

``audiofp.store.database`` (``Store._check_params``) still imports
``setdefault_meta`` from here. New code imports from ``audiofp.store``; delete
this module once nothing imports it.
"""

from .meta import get_meta, set_meta, setdefault_meta
from .postings import add_postings, index_stats, lookup_postings
from .records import IndexStats, SoundRecord
from .sounds import add_sound, find_sound_by_digest, get_sound, get_sounds, list_sounds

__all__ = [
    "IndexStats", "SoundRecord", "add_postings", "add_sound", "find_sound_by_digest", "get_meta", "get_sound",
    "get_sounds", "index_stats", "list_sounds", "lookup_postings", "set_meta", "setdefault_meta",
]
