"""Writing a snapshot's arrays: postings put in hash order on disk, merged into the previous generation.

A full build sorts every posting of the store; an incremental build merges
the postings of the sounds added since the previous generation into that
generation's (already ordered) arrays. Both stream, so memory stays about one
*bucket* whatever the size of the index:

1. the incoming postings are partitioned by the top bits of their hash (of
   the width the fingerprint layout gives it) into bucket files (one pass,
   appends only);
2. bucket by bucket, in hash order, the incoming postings are sorted, merged
   with the previous generation's postings of the same hash range (a linear
   merge: they are already sorted), and appended to the output.

An incremental build therefore costs one sequential copy of the previous
generation plus the sort of what is new, not a sort of the whole index.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..engine.inverted import InvertedIndex, order_keys, radix_order, sort_postings
from ..engine.types import POSTING_DTYPE

#: Postings per bucket aimed at: about 60 MB of working memory per bucket.
TARGET_BUCKET_POSTINGS = 4_000_000

#: At most 2**this buckets (each an open file pair while partitioning).
MAX_BUCKET_BITS = 10



def bucket_bits(expected_postings: int) -> int:
    """How many top hash bits split ``expected_postings`` into buckets of about the target size."""
    buckets = max(1, -(-int(expected_postings) // TARGET_BUCKET_POSTINGS))
    return min(MAX_BUCKET_BITS, int(np.ceil(np.log2(buckets))))


class _Partitions:
    """Incoming postings split by the top ``bits`` of their ``hash_bits``-bit hash into files under ``folder``."""

    def __init__(self, folder: Path, bits: int, hash_bits: int) -> None:
        self.folder = folder
        self.bits = bits
        self.shift = hash_bits - bits
        self.counts = np.zeros(1 << bits, dtype=np.int64)
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, bucket: int, what: str) -> Path:
        return self.folder / f"{bucket:04d}.{what}"

    def add(self, hashes: np.ndarray, postings: np.ndarray) -> None:
        if hashes.size == 0:
            return
        buckets = (hashes >> np.uint32(self.shift)).astype(np.int64)
        if buckets.size and buckets.max() >= self.counts.size:
            raise ValueError(f"a hash wider than the layout's {self.shift + self.bits} bits")
        # One stable reordering by bucket, then each bucket is a contiguous slice.
        order = radix_order(buckets.astype(np.uint64))
        bounds = np.searchsorted(buckets[order], np.arange((1 << self.bits) + 1))
        grouped_hashes = np.ascontiguousarray(hashes[order], dtype=np.uint32)
        grouped = np.ascontiguousarray(postings[order])
        for bucket in np.flatnonzero(np.diff(bounds)).tolist():
            lo, hi = int(bounds[bucket]), int(bounds[bucket + 1])
            with open(self._path(bucket, "hashes"), "ab") as out:
                out.write(grouped_hashes[lo:hi].tobytes())
            with open(self._path(bucket, "postings"), "ab") as out:
                out.write(grouped[lo:hi].tobytes())
            self.counts[bucket] += hi - lo

    def read(self, bucket: int) -> tuple[np.ndarray, np.ndarray]:
        """The bucket's postings sorted by (hash, anchor frequency), as the index keeps them."""
        if not self.counts[bucket]:
            return np.zeros(0, np.uint32), np.zeros(0, POSTING_DTYPE)
        hashes = np.fromfile(self._path(bucket, "hashes"), dtype=np.uint32)
        postings = np.fromfile(self._path(bucket, "postings"), dtype=POSTING_DTYPE)
        if hashes.size != self.counts[bucket] or postings.size != self.counts[bucket]:
            raise RuntimeError(f"bucket file {bucket} of {self.folder} holds other data than was written")
        return sort_postings(hashes, postings)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _previous_range(base: InvertedIndex, bucket: int, shift: int, *, last_bucket: bool) -> tuple[np.ndarray, np.ndarray]:
    """The previous generation's postings whose hashes fall in ``bucket`` (``hash >> shift``), with their hashes."""
    low, high = bucket << shift, (bucket + 1) << shift
    first = int(np.searchsorted(base.hashes, low))
    last = base.hashes.size if last_bucket else int(np.searchsorted(base.hashes, high))
    starts = np.asarray(base.starts[first: last + 1], dtype=np.int64)
    postings = np.asarray(base.postings[starts[0]: starts[-1]]) if starts.size else np.zeros(0, POSTING_DTYPE)
    hashes = np.repeat(np.asarray(base.hashes[first:last]), np.diff(starts))
    return hashes, postings


def merge_sorted(old: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two (hashes, postings) runs sorted by (hash, anchor frequency), merged; ties keep ``old`` first."""
    old_hashes, old_postings = old
    new_hashes, new_postings = new
    if new_hashes.size == 0:
        return old_hashes, old_postings
    if old_hashes.size == 0:
        return new_hashes, new_postings
    # Each new posting lands after every old one with a key not above its own.
    places = np.searchsorted(order_keys(old_hashes, old_postings), order_keys(new_hashes, new_postings),
                             side="right") + np.arange(new_hashes.size)
    from_old = np.ones(old_hashes.size + new_hashes.size, dtype=bool)
    from_old[places] = False
    hashes = np.empty(from_old.size, dtype=np.uint32)
    postings = np.empty(from_old.size, dtype=POSTING_DTYPE)
    hashes[places], postings[places] = new_hashes, new_postings
    hashes[from_old], postings[from_old] = old_hashes, old_postings
    return hashes, postings


def write_index(folder: Path, chunks: Iterable[tuple[np.ndarray, np.ndarray]], *, base: InvertedIndex | None,
                expected_postings: int, hash_bits: int, say: Callable[[str], None] = lambda _line: None) -> int:
    """Write ``hashes.npy``, ``starts.npy`` and ``postings.npy`` of a snapshot into ``folder``.

    Parameters
    ----------
    folder : Path
        The generation being built (empty).
    chunks : iterable of (np.ndarray of uint32, np.ndarray of POSTING_DTYPE)
        The postings to add, in any order, with their hashes.
    base : InvertedIndex or None
        The previous generation to merge them into (None: a full build).
    expected_postings : int
        About how many postings ``chunks`` yields (sizes the buckets).
    hash_bits : int
        How many bits the hashes occupy (the fingerprint layout's): buckets
        split that range, so that they hold similar shares of the postings.

    Returns
    -------
    int
        Postings written (the previous generation's plus the new ones).
    """
    previous = 0 if base is None else len(base.postings)
    bits = min(bucket_bits(previous + expected_postings), hash_bits)
    parts = _Partitions(folder / "parts", bits, hash_bits)
    try:
        for hashes, postings in chunks:
            parts.add(hashes, postings)
        total = previous + int(parts.counts.sum())
        say(f"{int(parts.counts.sum()):,} new postings in {1 << bits} buckets; writing {total:,}")
        out = np.lib.format.open_memmap(folder / "postings.npy", mode="w+", dtype=POSTING_DTYPE, shape=(total,))
        # The distinct hashes and their run lengths go into arrays sized for the worst case
        # (every posting its own hash): only the part written is ever committed, and no
        # small array outlives a bucket, which would pin the heap and keep every bucket's
        # freed working memory from going back to the system.
        distinct = np.empty(total, np.uint32)
        counts = np.empty(total, np.int64)
        runs = 0
        written = 0
        for bucket in range(1 << bits):
            merged_hashes, merged = parts.read(bucket)
            if base is not None:
                previous_part = _previous_range(base, bucket, parts.shift, last_bucket=bucket == (1 << bits) - 1)
                merged_hashes, merged = merge_sorted(previous_part, (merged_hashes, merged))
            if merged.size == 0:
                continue
            out[written: written + merged.size] = merged
            written += merged.size
            firsts = np.flatnonzero(np.r_[True, merged_hashes[1:] != merged_hashes[:-1]])
            distinct[runs: runs + firsts.size] = merged_hashes[firsts]
            counts[runs: runs + firsts.size] = np.diff(np.r_[firsts, merged.size])
            runs += firsts.size
            del merged_hashes, merged, firsts
        if written != total:
            raise RuntimeError(f"wrote {written} postings where {total} were expected")
        out.flush()
        del out
    finally:
        parts.remove()
    np.save(folder / "hashes.npy", distinct[:runs])
    np.save(folder / "starts.npy", np.r_[0, np.cumsum(counts[:runs])].astype(np.int64))
    return total
