"""An inverted index held as arrays: postings grouped by hash, looked up in bulk.

The SQL store keeps the index of record, one packed row per hash. A query
touches tens of thousands of those rows, and at hundreds of hours most of the
cost is the database handing each row over. The same index laid out as three
flat arrays (distinct hashes sorted, where each hash's postings start, the
postings themselves) answers the same question with one binary search per
hash and one gather, and can be memory-mapped from a file that every worker
of a machine shares through the page cache. This module is that layout and
its lookup; where the arrays live (a file, or memory) is the caller's choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..errors import ParameterError


def distinct_sorted(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of ``values``.

    ``np.unique`` without ``return_*`` arguments takes a hash-table path in
    numpy 2.3+ that is about 100 times slower than sorting for the tens of
    thousands of hashes a query looks up (50 ms against 0.5 ms for 30k).
    """
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each start ``s`` and count ``c``."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    # Each output position is its range's start plus its place within the range.
    run_offsets = np.cumsum(counts) - counts
    return np.repeat(starts - run_offsets, counts) + np.arange(total, dtype=np.int64)


@dataclass(frozen=True)
class PostingRuns:
    """Where the postings of some hashes lie in one postings array, without copying them.

    Run ``i`` holds the postings of ``hashes[i]``: ``postings[starts[i]:ends[i]]``.
    The matcher reads the runs in place, so a lookup in a memory-mapped
    snapshot costs no gather of the (mostly chance) postings it touches.
    ``freq_sorted`` says each run's postings ascend in anchor frequency,
    which lets the matcher skip the frequencies outside the searched pitch range.
    """

    postings: np.ndarray
    hashes: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    freq_sorted: bool = False

    @classmethod
    def grouped(cls, hashes: np.ndarray, postings: np.ndarray) -> "PostingRuns":
        """The runs of postings already grouped by hash (each hash's postings consecutive)."""
        hashes = np.asarray(hashes, dtype=np.uint32)
        if hashes.shape != postings.shape:
            raise ParameterError(f"hashes {hashes.shape} and postings {postings.shape} differ in shape")
        if hashes.size == 0:
            return cls(postings, hashes, np.zeros(0, np.int64), np.zeros(0, np.int64))
        starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]]).astype(np.int64)
        ends = np.append(starts[1:], hashes.size).astype(np.int64)
        return cls(postings, hashes[starts], starts, ends)

    def __len__(self) -> int:
        """Number of postings the runs hold."""
        return int((self.ends - self.starts).sum())

    def gathered(self) -> tuple[np.ndarray, np.ndarray]:
        """The runs copied out: the hash of each posting, and the postings."""
        counts = self.ends - self.starts
        return np.repeat(self.hashes, counts), self.postings[_ranges(self.starts, counts)]


@numba.njit(cache=True, nogil=True)
def radix_order(keys):  # pragma: no cover - compiled
    """The stable order of ``keys`` (uint64), by a least-significant-digit radix sort of 11 bits a pass.

    Each pass reads the (key, index) pairs in order and writes them to at most
    2,048 places, which stay in cache; a digit all keys share is skipped. On a
    bucket of a few million postings this is several times faster than
    ``np.lexsort``, and as stable.
    """
    n = keys.size
    key = keys.copy()
    index = np.arange(n)
    next_key = np.empty(n, np.uint64)
    next_index = np.empty(n, np.int64)
    count = np.empty(2049, np.int64)
    for shift in range(0, 64, 11):
        count[:] = 0
        for j in range(n):
            count[np.int64((key[j] >> np.uint64(shift)) & np.uint64(2047)) + 1] += 1
        if count.max() == n:
            continue  # every key has this digit: the order stands
        for d in range(2048):
            count[d + 1] += count[d]
        for j in range(n):
            d = np.int64((key[j] >> np.uint64(shift)) & np.uint64(2047))
            at = count[d]
            next_key[at] = key[j]
            next_index[at] = index[j]
            count[d] = at + 1
        key, next_key = next_key, key
        index, next_index = next_index, index
    return index


@numba.njit(cache=True, nogil=True, inline="always")
def lower_bound(values, lo, hi, target):  # pragma: no cover - compiled
    """The first index in ``[lo, hi)`` whose value is not below ``target`` (``values`` ascending there), or ``hi``."""
    while lo < hi:
        m = (lo + hi) // 2
        if values[m] < target:
            lo = m + 1
        else:
            hi = m
    return lo


@numba.njit(cache=True, nogil=True)
def _gather_rows(rows, order, out):  # pragma: no cover - compiled
    """``out[i] = rows[order[i]]`` for rows of raw bytes (a structured array's records)."""
    width = rows.shape[1]
    for i in range(order.size):
        src = order[i]
        for b in range(width):
            out[i, b] = rows[src, b]


def order_keys(hashes: np.ndarray, postings: np.ndarray) -> np.ndarray:
    """Each posting's place in index order as one integer: its hash, then its anchor frequency (uint64)."""
    freq_bits = 8 * postings.dtype["freq"].itemsize
    return (hashes.astype(np.uint64) << np.uint64(freq_bits)) | postings["freq"].astype(np.uint64)


def sort_postings(hashes: np.ndarray, postings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Postings (with their hashes) in index order: by hash, then anchor frequency, ties as given.

    Parameters
    ----------
    hashes : np.ndarray of uint32, shape (n,)
    postings : np.ndarray of a posting dtype with an unsigned ``freq`` column, shape (n,)

    Returns
    -------
    hashes, postings : np.ndarray
        Reordered copies (the same order ``np.lexsort((postings["freq"], hashes))`` gives).
    """
    if hashes.size == 0:
        return hashes, postings
    order = radix_order(order_keys(hashes, postings))
    ordered = np.empty_like(postings)
    width = postings.dtype.itemsize
    _gather_rows(np.ascontiguousarray(postings).view(np.uint8).reshape(-1, width), order,
                 ordered.view(np.uint8).reshape(-1, width))
    return hashes[order], ordered



@dataclass(frozen=True)
class InvertedIndex:
    """Postings grouped by hash.

    Attributes
    ----------
    hashes : np.ndarray of uint32, shape (k,)
        Distinct hashes, ascending.
    starts : np.ndarray of int64, shape (k + 1,)
        The postings of ``hashes[i]`` are ``postings[starts[i]:starts[i + 1]]``.
    postings : np.ndarray of a posting dtype with a ``span`` column, shape (n,)
        Every posting, grouped by hash; within a hash by ascending anchor
        frequency (ties in the order added), which the matcher's range search
        relies on.
    """

    hashes: np.ndarray
    starts: np.ndarray
    postings: np.ndarray

    def __post_init__(self) -> None:
        if self.starts.shape != (self.hashes.size + 1,):
            raise ParameterError(f"starts must have {self.hashes.size + 1} entries, got {self.starts.shape}")
        if int(self.starts[0]) != 0 or int(self.starts[-1]) != self.postings.size:
            raise ParameterError("starts must run from 0 to the number of postings")

    @classmethod
    def build(cls, hashes: np.ndarray, postings: np.ndarray) -> "InvertedIndex":
        """Group postings by hash, each group by ascending anchor frequency.

        Parameters
        ----------
        hashes : np.ndarray of uint32, shape (n,)
            Hash of each posting.
        postings : np.ndarray, shape (n,)
            The postings, in the order they were added.
        """
        hashes = np.asarray(hashes, dtype=np.uint32)
        if hashes.shape != postings.shape:
            raise ParameterError(f"hashes {hashes.shape} and postings {postings.shape} differ in shape")
        grouped, ordered = sort_postings(hashes, postings)
        first = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if grouped.size else np.zeros(0, np.int64)
        starts = np.append(first, grouped.size).astype(np.int64)
        return cls(hashes=grouped[first], starts=starts, postings=ordered)

    @classmethod
    def empty(cls, posting_dtype: np.dtype) -> "InvertedIndex":
        """An index with no postings."""
        return cls(np.zeros(0, np.uint32), np.zeros(1, np.int64), np.zeros(0, dtype=posting_dtype))

    def __len__(self) -> int:
        return int(self.postings.size)

    def find(self, wanted: np.ndarray) -> PostingRuns:
        """Where the postings of the hashes in ``wanted`` lie (one binary search per hash, nothing copied).

        Parameters
        ----------
        wanted : np.ndarray of uint32
            Hashes to look up, sorted and distinct (:func:`distinct_sorted`).
        """
        if self.hashes.size == 0 or wanted.size == 0:
            none = np.zeros(0, np.int64)
            return PostingRuns(self.postings, np.zeros(0, np.uint32), none, none, freq_sorted=True)
        row = np.searchsorted(self.hashes, wanted)
        row = np.minimum(row, self.hashes.size - 1)
        found = self.hashes[row] == wanted
        row = row[found]
        return PostingRuns(self.postings, wanted[found], self.starts[row], self.starts[row + 1], freq_sorted=True)

    def lookup(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every posting of the hashes in ``wanted``, copied out: :meth:`find`, gathered.

        Returns
        -------
        hashes : np.ndarray of uint32, shape (m,)
            The hash each returned posting belongs to.
        postings : np.ndarray, shape (m,)
            The postings, in runs of one hash.
        """
        return self.find(wanted).gathered()
