"""Pairing query triplets with the postings found under their hashes (compiled).

At a large index nearly every posting a lookup returns is a chance collision,
and about nine in ten of the resulting pairs imply a speed or a pitch shift
outside the searched range. The pairing is the cost of a query that grows
with the index, so it runs as one compiled pass over the postings where they
lie (a memory-mapped snapshot or the rows SQL returned), testing speed and
pitch before anything is written, and writing only the pairs that pass. Where
a run's postings ascend in anchor frequency (snapshots and in-memory indexes
store them so), a binary search skips straight to the frequencies the searched
pitch range allows: about four chance postings in five are never read.

Each pair's arithmetic is the one the matcher has always used (float64, same
operations in the same order), so the hits are the same whichever path
produced the postings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from .inverted import PostingRuns
from .params import PostingLayout


@numba.njit(cache=True, nogil=True)
def _pairs(qfirst, qcount, starts, ends, freq_sorted, p_sound, p_time, p_span, p_freq, query_triplet, trip_t0,
           trip_span, trip_f0, time_steps, span_steps, freq_steps, min_speed, max_speed, max_shift,
           out_sound, out_triplet, out_t_query, out_t_sound, out_speed, out_shift):  # pragma: no cover - compiled
    """Write the in-range pairs into the ``out_*`` arrays; return how many there are.

    When more pairs pass than the arrays hold, the extra ones are counted but
    not written: the caller allocates the returned number and runs again.
    """
    capacity = out_sound.size
    n = 0
    for r in range(starts.size):
        c = qcount[r]
        if c == 0:
            continue
        q0 = qfirst[r]
        lo = starts[r]
        hi = ends[r]
        for j in range(q0, q0 + c):
            k = query_triplet[j]
            first = lo
            if freq_sorted:
                # Frequencies ascend within the run: skip the postings pitched
                # too far below, and stop at the first pitched too far above.
                a = lo
                b = hi
                while a < b:
                    m = (a + b) // 2
                    if trip_f0[k] - p_freq[m] / freq_steps > max_shift:
                        a = m + 1
                    else:
                        b = m
                first = a
            for p in range(first, hi):
                shift = trip_f0[k] - p_freq[p] / freq_steps
                if shift > max_shift:
                    continue
                if shift < -max_shift:
                    if freq_sorted:
                        break
                    continue
                speed = (p_span[p] / span_steps) / trip_span[k]
                if speed < min_speed or speed > max_speed:
                    continue
                if n < capacity:
                    out_sound[n] = p_sound[p]
                    out_triplet[n] = k
                    out_t_query[n] = trip_t0[k]
                    out_t_sound[n] = p_time[p] / time_steps
                    out_speed[n] = speed
                    out_shift[n] = shift
                n += 1
    return n


def _empty_pairs(n: int) -> tuple[np.ndarray, ...]:
    return (np.empty(n, np.uint32), np.empty(n, np.int64), np.empty(n, np.float64), np.empty(n, np.float64),
            np.empty(n, np.float64), np.empty(n, np.float64))


def pair_postings(
    query_hashes: np.ndarray,
    query_triplet: np.ndarray,
    trip_t0: np.ndarray,
    trip_span: np.ndarray,
    trip_f0: np.ndarray,
    runs: Sequence[PostingRuns],
    layout: PostingLayout,
    *,
    min_speed: float,
    max_speed: float,
    max_shift: float,
) -> tuple[np.ndarray, ...]:
    """Every (query triplet, posting) pair under one hash whose speed and pitch are in range.

    Parameters
    ----------
    query_hashes, query_triplet : np.ndarray, shape (m,)
        The hashes the query looked up and the triplet each belongs to.
    trip_t0, trip_span, trip_f0 : np.ndarray, shape (n_triplets,)
        The query triplets' anchor frame, span (frames) and anchor bin.
    runs : sequence of PostingRuns
        Where the index's postings of those hashes lie.
    layout : PostingLayout
        How the postings encode time, span and frequency.
    min_speed, max_speed, max_shift : float
        The searched range: a pair outside it is chance and is not written.

    Returns
    -------
    sound, triplet, t_query, t_sound, speed, shift : np.ndarray
        One entry per pair (uint32, int64, then float64), in run, query triplet, posting order.
    """
    order = np.argsort(query_hashes, kind="stable")
    sorted_hashes = np.ascontiguousarray(query_hashes[order], dtype=np.uint32)
    sorted_triplet = np.ascontiguousarray(query_triplet[order], dtype=np.int64)
    t0 = np.ascontiguousarray(trip_t0, dtype=np.float64)
    span = np.ascontiguousarray(trip_span, dtype=np.float64)
    f0 = np.ascontiguousarray(trip_f0, dtype=np.float64)
    steps = (float(layout.time_steps_per_frame), float(layout.span_steps_per_frame), float(layout.freq_steps_per_bin))
    limits = (float(min_speed), float(max_speed), float(max_shift))
    parts: list[tuple[np.ndarray, ...]] = []
    for run in runs:
        if run.hashes.size == 0:
            continue
        qfirst = np.searchsorted(sorted_hashes, run.hashes, side="left").astype(np.int64)
        qcount = np.searchsorted(sorted_hashes, run.hashes, side="right").astype(np.int64) - qfirst
        starts = np.ascontiguousarray(run.starts, dtype=np.int64)
        ends = np.ascontiguousarray(run.ends, dtype=np.int64)
        p = run.postings
        columns = (p["sound"], p["time"], p["span"], p["freq"])
        # On real audio about half of the postings pass the range test (up to about 0.8 on
        # dense clips), so room for as many pairs as postings avoids a second pass almost
        # always; memory the kernel never writes is never committed (large arrays are
        # mapped lazily), so the spare room costs address space, not RAM.
        bound = int(np.dot(qcount, ends - starts))
        out = _empty_pairs(min(bound, len(run)) + 16)
        n = _pairs(qfirst, qcount, starts, ends, run.freq_sorted, *columns, sorted_triplet, t0, span, f0,
                   *steps, *limits, *out)
        if n > out[0].size:
            out = _empty_pairs(n)
            _pairs(qfirst, qcount, starts, ends, run.freq_sorted, *columns, sorted_triplet, t0, span, f0,
                   *steps, *limits, *out)
        parts.append(tuple(column[:n] for column in out))
    if not parts:
        return (np.zeros(0, np.uint32), np.zeros(0, np.int64), *(np.zeros(0) for _ in range(4)))
    return tuple(np.concatenate(column) for column in zip(*parts))
