"""The read side of the index: snapshots of the SQL index, and the reader workers look hashes up in.

    snapshot  build a snapshot of a store's index as memory-mappable arrays; open the current one
    reader    answer lookups from the current snapshot plus the sounds added since

The SQL store stays the index of record: a snapshot is derived from it, and a
lookup the reader cannot answer for the whole store is read from SQL.
"""

from .reader import IndexReader, ReaderStatus, attach, find_postings, reader_of
from .snapshot import Snapshot, SnapshotMeta, build, open_current

__all__ = ["IndexReader", "ReaderStatus", "Snapshot", "SnapshotMeta", "attach", "build", "find_postings",
           "open_current", "reader_of"]
