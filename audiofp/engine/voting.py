"""Vote cells: which hits agree on a sound, a stretch of the query, an alignment, a pitch and a speed.

At a large index a query has millions of hits, nearly all of them chance
and alone in their cell. Each hit's cell is packed into one integer key as
the pairing finds it (:func:`cell_key`, called from the compiled pairing),
so the hits themselves are never written out; :func:`count_cells` then
counts the keys in tables that stay in cache, and keeps only the cells
strong enough to be refined. :mod:`audiofp.engine.matching` refines those.
"""

from __future__ import annotations

import numba
import numpy as np

from .inverted import lower_bound
from .parallel import run_shares


def vote_reference(t_query: np.ndarray, block_frames: float, query_frames: float) -> np.ndarray:
    """The query frame each hit's alignment is measured from: the middle of its own stretch.

    A hit's speed estimate is only good to a few percent, and its alignment
    error grows with its distance from the reference point, so each stretch
    of ``block_frames`` (the last one cut at the query's end) has its own.
    """
    block = np.floor(t_query / block_frames)
    return (block * block_frames + np.minimum((block + 1) * block_frames, query_frames)) / 2.0


#: Offsets that make each vote bin non-negative inside a cell's packed key:
#: block (12 bits) | alignment (32 bits) | pitch shift (8 bits) | speed (8 bits).
_ALIGN_OFFSET = 1 << 31
_SMALL_OFFSET = 1 << 7


@numba.njit(cache=True, nogil=True, inline="always")
def cell_key(t_query, t_sound, speed, shift, query_frames, block_frames, align_cell, shift_cell,
             speed_cell):  # pragma: no cover - compiled
    """The vote cell of one hit within its sound, packed into one int64.

    The cell is the hit's stretch of the query, its alignment (the sound's
    frame at that stretch's middle, see :func:`vote_reference`), its pitch
    shift and its log2 speed, each cut into cells of the given sizes.
    """
    block = np.floor(t_query / block_frames)
    reference = (block * block_frames + min((block + 1) * block_frames, query_frames)) / 2.0
    align = t_sound - speed * (t_query - reference)
    a = np.int64(np.floor(align / align_cell)) + _ALIGN_OFFSET
    f = np.int64(np.floor(shift / shift_cell)) + _SMALL_OFFSET
    v = np.int64(np.floor(np.log2(speed) / speed_cell)) + _SMALL_OFFSET
    return (np.int64(block) << 48) | (a << 16) | (f << 8) | v


@numba.njit(cache=True, nogil=True)
def cell_keys(t_query, t_sound, speed, shift, query_frames, block_frames, align_cell, shift_cell,
              speed_cell):  # pragma: no cover - compiled
    """:func:`cell_key` of every hit of arrays of hits (int64, shape like ``t_query``)."""
    out = np.empty(t_query.size, np.int64)
    for i in range(t_query.size):
        out[i] = cell_key(t_query[i], t_sound[i], speed[i], shift[i], query_frames, block_frames, align_cell,
                          shift_cell, speed_cell)
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _mix(key, sound):  # pragma: no cover - compiled
    """A well-mixed 64-bit hash of a (sound, cell key) pair (the finaliser of splitmix64).

    Every bit of both must reach every part of the result: keys of one
    sound differ mostly in their alignment bits, and sounds in their low bits.
    """
    x = np.uint64(key) ^ (np.uint64(sound) * np.uint64(0x9E3779B97F4A7C15))
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


#: Average hits per partition of :func:`count_cells`: its table (20 bytes a slot,
#: twice as many slots as hits) then stays within a core's L2 cache.
_PARTITION_HITS = 8192


def count_cells(sound: np.ndarray, key: np.ndarray, min_votes: int, threads: int = 1,
                ranges: np.ndarray | None = None) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Count the hits of every vote cell; return the number of cells and the strong ones.

    A cell is a (sound, key) pair. The hits are first split into partitions
    by a hash of their cell (one pass, writing to a few thousand places), so
    that each partition's cells are counted in an open-addressing table that
    stays in cache; at a large index nearly every cell holds one hit, and a
    single table over all of them missed the cache on nearly every hit.
    With several threads, each partitions a contiguous share of the hits,
    then counts a share of the partitions over every share's hits.

    Parameters
    ----------
    sound : np.ndarray of uint32, shape (n,)
    key : np.ndarray of int64, shape (n,)
        Each hit's cell within its sound (:func:`cell_key`).
    min_votes : int
        Fewest hits a cell needs to be returned.
    threads : int
        Threads to split the work over (below a million hits, one).
    ranges : np.ndarray of int64, shape (k, 2), optional
        The ``[start, stop)`` stretches of the arrays that hold hits (the rest
        is ignored); all of them by default.

    Returns
    -------
    cells : int
        Number of distinct cells.
    strong_sound, strong_key, strong_votes : np.ndarray of int64
        The cells with at least ``min_votes`` hits, in no particular order.
    """
    if ranges is None:
        ranges = np.array([[0, sound.size]], dtype=np.int64)
    n = int((ranges[:, 1] - ranges[:, 0]).sum())
    bits = 0
    while (n >> bits) > _PARTITION_HITS:
        bits += 1
    threads = max(1, min(threads, n // _MIN_SHARE_HITS))
    shares = _shares(ranges, threads)
    starts = np.empty((len(shares), (1 << bits) + 1), np.int64)
    part_sound = np.empty(sound.size, np.uint32)
    part_key = np.empty(sound.size, np.int64)
    run_shares(lambda c: _partition(sound, key, shares[c][0], shares[c][1], bits, starts[c], part_sound, part_key),
               range(len(shares)), threads)
    cuts = np.linspace(0, 1 << bits, len(shares) + 1).astype(np.int64)
    counted = run_shares(lambda c: _count_partitions(cuts[c], cuts[c + 1], bits, starts, part_sound, part_key,
                                                     min_votes), range(len(shares)), threads)
    return (sum(int(c[0]) for c in counted), *(np.concatenate([c[i] for c in counted]) for i in (1, 2, 3)))


def _shares(ranges: np.ndarray, threads: int) -> list[tuple[int, int]]:
    """The stretches ``ranges``, the larger ones cut so that there are about ``threads`` shares of equal size."""
    sizes = ranges[:, 1] - ranges[:, 0]
    total = max(int(sizes.sum()), 1)
    out: list[tuple[int, int]] = []
    for (start, stop), size in zip(ranges.tolist(), sizes.tolist()):
        pieces = max(1, round(threads * size / total))
        cuts = np.linspace(start, stop, pieces + 1).astype(np.int64)
        out.extend((int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]))
    return out


#: Hits a share of :func:`count_cells` should hold at least, for a second thread to pay.
_MIN_SHARE_HITS = 500_000


@numba.njit(cache=True, nogil=True)
def _partition(sound, key, lo, hi, bits, start, part_sound, part_key):  # pragma: no cover - compiled
    """Scatter hits ``[lo, hi)`` by partition into ``part_*[lo:hi]``; ``start[p]`` is where partition ``p`` begins."""
    parts = 1 << bits
    part_mask = np.uint64(parts - 1)
    start[:] = 0
    for i in range(lo, hi):
        start[np.int64(_mix(key[i], sound[i]) & part_mask) + 1] += 1
    start[0] = lo
    for p in range(parts):
        start[p + 1] += start[p]
    fill = start[:-1].copy()
    for i in range(lo, hi):
        p = np.int64(_mix(key[i], sound[i]) & part_mask)
        at = fill[p]
        part_sound[at] = sound[i]
        part_key[at] = key[i]
        fill[p] = at + 1


@numba.njit(cache=True, nogil=True)
def _count_partitions(p0, p1, bits, starts, part_sound, part_key, min_votes):  # pragma: no cover - compiled
    """Count the cells of partitions ``[p0, p1)``, gathered from every share's hits (rows of ``starts``)."""
    largest = 1
    for p in range(p0, p1):
        size = 0
        for c in range(starts.shape[0]):
            size += starts[c, p + 1] - starts[c, p]
        largest = max(largest, size)
    size = 16
    while size < 2 * largest:
        size *= 2
    table_key = np.empty(size, np.int64)
    table_sound = np.empty(size, np.uint32)
    table_votes = np.zeros(size, np.int64)  # 0 marks a free slot
    total = 0
    for c in range(starts.shape[0]):
        total += starts[c, p1] - starts[c, p0]
    capacity = total // max(min_votes, 1) + 1
    strong_sound = np.empty(capacity, np.int64)
    strong_key = np.empty(capacity, np.int64)
    strong_votes = np.empty(capacity, np.int64)
    strong = 0
    cells = 0
    for p in range(p0, p1):
        held = 0
        for c in range(starts.shape[0]):
            held += starts[c, p + 1] - starts[c, p]
        slots = 16
        while slots < 2 * held:
            slots *= 2
        mask = np.uint64(slots - 1)
        for c in range(starts.shape[0]):
            for j in range(starts[c, p], starts[c, p + 1]):
                k = part_key[j]
                s = part_sound[j]
                # The partition took the hash's low bits; the slot takes higher ones.
                h = np.int64((_mix(k, s) >> np.uint64(bits)) & mask)
                while table_votes[h] != 0 and (table_key[h] != k or table_sound[h] != s):
                    h = np.int64((np.uint64(h) + np.uint64(1)) & mask)
                if table_votes[h] == 0:
                    table_key[h] = k
                    table_sound[h] = s
                    cells += 1
                table_votes[h] += 1
        for h in range(slots):
            if table_votes[h] >= min_votes:
                strong_sound[strong] = table_sound[h]
                strong_key[strong] = table_key[h]
                strong_votes[strong] = table_votes[h]
                strong += 1
            table_votes[h] = 0
    return cells, strong_sound[:strong], strong_key[:strong], strong_votes[:strong]


@numba.njit(cache=True, nogil=True, inline="always")
def _filter_bit(sound):  # pragma: no cover - compiled
    """Which of 4,096 bits a sound id sets in :func:`hits_of_sounds`'s filter (Fibonacci hashing)."""
    return np.int64((np.uint64(sound) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(52))


@numba.njit(cache=True, nogil=True)
def hits_of_sounds(sound, wanted, ranges):  # pragma: no cover - compiled
    """Indices (ascending, int64) of the hits whose sound is in ``wanted`` (sorted, a few dozen at most).

    Only the ``[start, stop)`` stretches of ``ranges`` (shape (k, 2), in order)
    hold hits. A 4,096-bit filter of the wanted sounds turns nearly every
    other hit away with one predictable test; the rest are checked exactly.
    """
    bits = np.zeros(64, np.uint64)
    for w in wanted:
        b = _filter_bit(w)
        bits[b >> 6] |= np.uint64(1) << np.uint64(b & 63)
    total = 0
    for r in range(ranges.shape[0]):
        total += ranges[r, 1] - ranges[r, 0]
    out = np.empty(total, np.int64)
    n = 0
    for r in range(ranges.shape[0]):
        for i in range(ranges[r, 0], ranges[r, 1]):
            b = _filter_bit(sound[i])
            if bits[b >> 6] & (np.uint64(1) << np.uint64(b & 63)) == 0:
                continue
            s = np.int64(sound[i])
            a = lower_bound(wanted, 0, wanted.size, s)
            if a < wanted.size and wanted[a] == s:
                out[n] = i
                n += 1
    return out[:n]
