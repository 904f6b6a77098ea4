"""The inverted index, derived from the store's record of each sound's peaks.

    source    the postings of sounds, formed again from their stored peaks
    assemble  write a snapshot's arrays: bucket-sorted on disk, merged into the previous generation
    snapshot  build a snapshot generation (merged or full), open the current one, or index in memory
    reader    answer lookups from the current snapshot plus the sounds added since

The SQL store holds the record (sounds and their peaks); everything here is
derived from it and can be deleted and rebuilt without loss.
"""

from .reader import HOLE_GRACE_SECONDS, IndexReader, ReaderStatus, attach, find_postings, reader_of
from .snapshot import Snapshot, SnapshotMeta, build, build_in_memory, open_current

__all__ = ["HOLE_GRACE_SECONDS", "IndexReader", "ReaderStatus", "Snapshot", "SnapshotMeta", "attach", "build",
           "build_in_memory", "find_postings", "open_current", "reader_of"]
