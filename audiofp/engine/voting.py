"""Vote cells: which hits agree on a sound, a stretch of the query, an alignment, a pitch and a speed.

At a large index a query has a million hits, nearly all of them chance and
alone in their cell; counting them is the matcher's largest cost after the
pairing, so it is compiled (numba) and works sound by sound in a table that
stays in cache. :mod:`audiofp.engine.matching` refines the strongest cells.
"""

from __future__ import annotations

import numba
import numpy as np


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
def _slot(key, mask):  # pragma: no cover - compiled
    """A well-mixed hash of a packed cell key (the finaliser of splitmix64), cut to ``mask``.

    Every bit of the key must reach the low bits: keys of one sound differ
    mostly in their alignment bits, which a plain multiply leaves out of them.
    """
    x = np.uint64(key)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return np.int64(x & np.uint64(mask))


@numba.njit(cache=True, nogil=True)
def count_votes(sound, t_query, t_sound, speed, shift, log_speed, query_frames, block_frames, align_cell,
                 shift_cell, speed_cell, n_sound_ids):  # pragma: no cover - compiled
    """Count the hits in each vote cell: (sound, query stretch, alignment, pitch shift, speed).

    At a large index a query has a million hits, nearly all alone in their
    cell. The hits are bucketed by sound (a counting sort), and each sound's
    cells are counted in a small hash table that stays in cache.

    Returns
    -------
    cell_of : np.ndarray of int64, shape (n,)
        The cell of each hit (an id in ``range(cells)``).
    votes, cell_sound, cell_key : np.ndarray of int64, shape (cells,)
        Per cell: its hit count, its sound and its bins packed into one key.
    cells : int
    """
    n = sound.size
    # Bucket the hits by sound (a stable counting sort), computing each hit's
    # cell key on the way: the per-sound pass below then reads the keys in
    # order, where reading them through the sort's permutation missed the
    # cache on nearly every hit.
    start = np.zeros(n_sound_ids + 1, np.int64)
    for i in range(n):
        start[sound[i] + 1] += 1
    for s in range(n_sound_ids):
        start[s + 1] += start[s]
    fill = start.copy()
    order = np.empty(n, np.int64)
    sorted_key = np.empty(n, np.int64)
    for i in range(n):
        block = np.floor(t_query[i] / block_frames)
        reference = (block * block_frames + min((block + 1) * block_frames, query_frames)) / 2.0
        align = t_sound[i] - speed[i] * (t_query[i] - reference)
        a = np.int64(np.floor(align / align_cell)) + _ALIGN_OFFSET
        f = np.int64(np.floor(shift[i] / shift_cell)) + _SMALL_OFFSET
        v = np.int64(np.floor(log_speed[i] / speed_cell)) + _SMALL_OFFSET
        at = fill[sound[i]]
        order[at] = i
        sorted_key[at] = (np.int64(block) << 48) | (a << 16) | (f << 8) | v
        fill[sound[i]] += 1
    cell_of = np.empty(n, np.int64)
    votes = np.empty(n, np.int64)
    cell_sound = np.empty(n, np.int64)
    cell_key = np.empty(n, np.int64)
    cells = 0
    largest = 1
    for s in range(n_sound_ids):
        largest = max(largest, start[s + 1] - start[s])
    size = 16
    while size < 2 * largest:
        size *= 2
    table_key = np.full(size, -1, np.int64)
    table_cell = np.empty(size, np.int64)
    for s in range(n_sound_ids):
        lo = start[s]
        hi = start[s + 1]
        if lo == hi:
            continue
        mask = 16
        while mask < 2 * (hi - lo):
            mask *= 2
        mask -= 1
        first_cell = cells
        for j in range(lo, hi):
            k = sorted_key[j]
            h = _slot(k, mask)
            while table_key[h] != -1 and table_key[h] != k:
                h = (h + 1) & mask
            if table_key[h] == -1:
                table_key[h] = k
                table_cell[h] = cells
                votes[cells] = 0
                cell_sound[cells] = s
                cell_key[cells] = k
                cells += 1
            c = table_cell[h]
            votes[c] += 1
            sorted_key[j] = c  # the key is read; its slot now holds the hit's cell
        # Empty the slots this sound used, for the next one.
        for c in range(first_cell, cells):
            k = cell_key[c]
            h = _slot(k, mask)
            while table_key[h] != k:
                h = (h + 1) & mask
            table_key[h] = -1
    for j in range(n):
        cell_of[order[j]] = sorted_key[j]
    return cell_of, votes[:cells], cell_sound[:cells], cell_key[:cells], cells
