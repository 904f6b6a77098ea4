"""Pairing query triplets with the postings found under their hashes (compiled).

At a large index nearly every posting a lookup returns is a chance collision,
and about nine in ten of the resulting pairs imply a speed or a pitch shift
outside the searched range. The pairing is the cost of a query that grows
with the index, so it runs as one compiled pass over the postings where they
lie (a memory-mapped snapshot or the rows SQL returned), testing speed and
pitch before anything is written. Where a run's postings ascend in anchor
frequency (snapshots and in-memory indexes store them so), a binary search
skips straight to the frequencies the searched pitch range allows: about
four chance postings in five are never read.

A pair that passes is written compactly: its sound, its vote cell
(:func:`audiofp.engine.voting.cell_key`) and where it came from (the query
triplet and the posting), 24 bytes. The few pairs the matcher refines are
read back in full with :meth:`PairedHits.columns`, by the same arithmetic
(float64, same operations in the same order), so a pair's values are the
same whichever path produced its postings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from .inverted import PostingRuns, lower_bound
from .parallel import run_shares
from .params import PostingLayout
from .voting import cell_key


@dataclass(frozen=True)
class VoteGrid:
    """The vote cells' sizes and the query they are measured on (see :func:`audiofp.engine.voting.cell_key`)."""

    query_frames: float
    block_frames: float
    align_cell: float
    shift_cell: float
    speed_cell: float

    def args(self) -> tuple[float, ...]:
        return (float(self.query_frames), float(self.block_frames), float(self.align_cell),
                float(self.shift_cell), float(self.speed_cell))


@numba.njit(cache=True, nogil=True)
def _first_true(predicate_of, k, limit, trip, steps, bound):  # pragma: no cover - compiled
    """The smallest integer in ``[0, limit + 1]`` from which ``predicate_of`` holds (it must be monotone)."""
    a = 0
    b = limit + 1
    while a < b:
        m = (a + b) // 2
        if predicate_of(m, trip[k], steps, bound):
            b = m
        else:
            a = m + 1
    return a


@numba.njit(cache=True, nogil=True, inline="always")
def _speed_at_least(span, trip_span, steps, bound):  # pragma: no cover - compiled
    return (span / steps) / trip_span >= bound


@numba.njit(cache=True, nogil=True, inline="always")
def _speed_above(span, trip_span, steps, bound):  # pragma: no cover - compiled
    return (span / steps) / trip_span > bound


@numba.njit(cache=True, nogil=True, inline="always")
def _shift_at_most(freq, trip_f0, steps, bound):  # pragma: no cover - compiled
    return trip_f0 - freq / steps <= bound


@numba.njit(cache=True, nogil=True, inline="always")
def _shift_below(freq, trip_f0, steps, bound):  # pragma: no cover - compiled
    return trip_f0 - freq / steps < bound


@numba.njit(cache=True, nogil=True)
def _windows(trip_span, trip_f0, span_steps, freq_steps, span_limit, freq_limit, min_speed, max_speed,
             max_shift):  # pragma: no cover - compiled
    """Per query triplet, the stored spans and anchor frequencies (integers) whose pairs are in range.

    A pair's speed rises with the stored span and its pitch shift falls with
    the stored frequency, each computed exactly as :func:`_pairs` computes
    them, so each in-range set is an interval of integers: the kernel then
    tests two integer intervals per posting and divides only for the pairs
    that pass.
    """
    n = trip_span.size
    span_lo = np.empty(n, np.int64)
    span_hi = np.empty(n, np.int64)
    freq_lo = np.empty(n, np.int64)
    freq_hi = np.empty(n, np.int64)
    for k in range(n):
        span_lo[k] = _first_true(_speed_at_least, k, span_limit, trip_span, span_steps, min_speed)
        span_hi[k] = _first_true(_speed_above, k, span_limit, trip_span, span_steps, max_speed) - 1
        freq_lo[k] = _first_true(_shift_at_most, k, freq_limit, trip_f0, freq_steps, max_shift)
        freq_hi[k] = _first_true(_shift_below, k, freq_limit, trip_f0, freq_steps, -max_shift) - 1
    return span_lo, span_hi, freq_lo, freq_hi


@numba.njit(cache=True, nogil=True)
def _pairs(qfirst, qcount, starts, ends, freq_sorted, p_sound, p_time, p_span, p_freq, query_triplet, trip_t0,
           trip_span, trip_f0, span_lo, span_hi, freq_lo, freq_hi, time_steps, span_steps, freq_steps,
           query_frames, block_frames, align_cell, shift_cell, speed_cell,
           out_sound, out_cell, out_triplet, out_posting):  # pragma: no cover - compiled
    """Write the in-range pairs into the ``out_*`` arrays; return how many there are.

    The arrays must have room for every pair the runs could give (each query
    triplet's count times its run's length); a pair beyond them would be
    counted, not written.
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
            f_lo = freq_lo[k]
            f_hi = freq_hi[k]
            s_lo = span_lo[k]
            s_hi = span_hi[k]
            first = lo
            if freq_sorted:
                # Frequencies ascend within the run: skip the postings pitched
                # too far below, and stop at the first pitched too far above.
                first = lower_bound(p_freq, lo, hi, f_lo)
            for p in range(first, hi):
                f = p_freq[p]
                if f < f_lo:
                    continue
                if f > f_hi:
                    if freq_sorted:
                        break
                    continue
                s = p_span[p]
                if s < s_lo or s > s_hi:
                    continue
                if n < capacity:
                    shift = trip_f0[k] - f / freq_steps
                    speed = (s / span_steps) / trip_span[k]
                    out_sound[n] = p_sound[p]
                    out_cell[n] = cell_key(trip_t0[k], p_time[p] / time_steps, speed, shift, query_frames,
                                           block_frames, align_cell, shift_cell, speed_cell)
                    out_triplet[n] = k
                    out_posting[n] = p
                n += 1
    return n


#: Postings a share of a split lookup should hold at least: below this, a
#: thread's start-up costs more than the pairing it takes over.
_MIN_SHARE_POSTINGS = 200_000


def _split(work: np.ndarray, threads: int) -> list[tuple[int, int]]:
    """Cut runs ``[0, len(work))`` into at most ``threads`` contiguous shares of about equal work.

    ``work`` is the cumulative count of postings the runs will have read.
    """
    total = int(work[-1]) if work.size else 0
    shares = max(1, min(threads, total // _MIN_SHARE_POSTINGS))
    if shares == 1:
        return [(0, work.size)]
    cuts = np.searchsorted(work, total * np.arange(1, shares) / shares, side="right")
    bounds = np.unique(np.r_[0, cuts, work.size])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


_PAIR_COLUMNS = (np.uint32, np.int64, np.int32, np.int64)  # sound, cell, triplet, posting


def _empty_pairs(n: int) -> tuple[np.ndarray, ...]:
    return tuple(np.empty(n, dtype) for dtype in _PAIR_COLUMNS)


@dataclass(frozen=True)
class Segment:
    """Pairs ``[start, stop)`` of a :class:`PairedHits` buffer, whose postings index ``postings``."""

    start: int
    stop: int
    postings: np.ndarray

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class PairedHits:
    """The in-range pairs of a query with the postings under its hashes, written compactly.

    The pairs lie in segments of one buffer, one per share of the pairing
    (a thread's share of one lookup's runs), in order; the buffer's slots
    between segments were room a share did not need, and hold nothing.

    Attributes
    ----------
    sound : np.ndarray of uint32, shape (buffer,)
        Each pair's sound.
    cell : np.ndarray of int64, shape (buffer,)
        Each pair's vote cell within its sound.
    triplet : np.ndarray of int32, shape (buffer,)
        The query triplet of each pair.
    posting : np.ndarray of int64, shape (buffer,)
        The posting of each pair, an index into its segment's postings.
    segments : tuple of Segment
        Where the pairs are, in order.
    trip_t0, trip_span, trip_f0 : np.ndarray of float64
        The query triplets' anchor frame, span (frames) and anchor bin.
    layout : PostingLayout
    """

    sound: np.ndarray
    cell: np.ndarray
    triplet: np.ndarray
    posting: np.ndarray
    segments: tuple[Segment, ...]
    trip_t0: np.ndarray
    trip_span: np.ndarray
    trip_f0: np.ndarray
    layout: PostingLayout

    def __len__(self) -> int:
        return sum(len(segment) for segment in self.segments)

    def ranges(self) -> np.ndarray:
        """The segments' ``[start, stop)`` in the buffer, shape (segments, 2), int64."""
        return np.array([(seg.start, seg.stop) for seg in self.segments], dtype=np.int64).reshape(-1, 2)

    def indices(self) -> np.ndarray:
        """Where every pair is in the buffer, in order (int64)."""
        return np.concatenate([np.arange(seg.start, seg.stop) for seg in self.segments] or [np.zeros(0, np.int64)])

    def columns(self, at: np.ndarray) -> tuple[np.ndarray, ...]:
        """The pairs at buffer indices ``at`` (ascending) in full.

        Returns
        -------
        sound, triplet, t_query, t_sound, speed, shift : np.ndarray
            uint32, int64, then float64 (frames, frames, factor, bins).
        """
        at = np.asarray(at, dtype=np.int64)
        steps = self.layout
        parts: list[tuple[np.ndarray, ...]] = []
        for seg in self.segments:
            mine = at[(at >= seg.start) & (at < seg.stop)]
            k = self.triplet[mine].astype(np.int64)
            p = seg.postings[self.posting[mine]]
            # The kernel's arithmetic, operation for operation.
            shift = self.trip_f0[k] - p["freq"].astype(np.float64) / float(steps.freq_steps_per_bin)
            speed = (p["span"].astype(np.float64) / float(steps.span_steps_per_frame)) / self.trip_span[k]
            t_sound = p["time"].astype(np.float64) / float(steps.time_steps_per_frame)
            parts.append((self.sound[mine], k, self.trip_t0[k], t_sound, speed, shift))
        if not parts:
            return (np.zeros(0, np.uint32), np.zeros(0, np.int64), *(np.zeros(0) for _ in range(4)))
        return tuple(np.concatenate(column) for column in zip(*parts))


def pair_postings(
    query_hashes: np.ndarray,
    query_triplet: np.ndarray,
    trip_t0: np.ndarray,
    trip_span: np.ndarray,
    trip_f0: np.ndarray,
    runs: Sequence[PostingRuns],
    layout: PostingLayout,
    grid: VoteGrid,
    *,
    min_speed: float,
    max_speed: float,
    max_shift: float,
    threads: int = 1,
) -> PairedHits:
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
    grid : VoteGrid
        The vote cells each pair is counted in.
    min_speed, max_speed, max_shift : float
        The searched range: a pair outside it is chance and is not written.
    threads : int
        Threads to split a large lookup's runs over; the pairs are the same,
        in the same order, whatever the number.

    Returns
    -------
    PairedHits
        In run, query triplet, posting order.
    """
    order = np.argsort(query_hashes, kind="stable")
    sorted_hashes = np.ascontiguousarray(query_hashes[order], dtype=np.uint32)
    sorted_triplet = np.ascontiguousarray(query_triplet[order], dtype=np.int64)
    t0 = np.ascontiguousarray(trip_t0, dtype=np.float64)
    span = np.ascontiguousarray(trip_span, dtype=np.float64)
    f0 = np.ascontiguousarray(trip_f0, dtype=np.float64)
    steps = (float(layout.time_steps_per_frame), float(layout.span_steps_per_frame), float(layout.freq_steps_per_bin))
    windows = _windows(span, f0, steps[1], steps[2], layout.limit("span"), layout.limit("freq"),
                       float(min_speed), float(max_speed), float(max_shift))
    # Every share of every lookup's runs gets its own room in one buffer, as much as the
    # (query triplet, posting) pairs it reads: no share can overflow it. On real audio about
    # half of them pass the range test (up to about 0.8 on dense clips); memory the kernel
    # never writes is never committed (large arrays are mapped lazily), so the spare room
    # costs address space, not RAM.
    jobs = []
    for run in runs:
        if run.hashes.size == 0:
            continue
        qfirst = np.searchsorted(sorted_hashes, run.hashes, side="left").astype(np.int64)
        qcount = np.searchsorted(sorted_hashes, run.hashes, side="right").astype(np.int64) - qfirst
        starts = np.ascontiguousarray(run.starts, dtype=np.int64)
        ends = np.ascontiguousarray(run.ends, dtype=np.int64)
        work = np.cumsum(qcount * (ends - starts))
        done = np.r_[0, work]
        for r0, r1 in _split(work, threads):
            room = int(done[r1] - done[r0])
            jobs.append((run, qfirst[r0:r1], qcount[r0:r1], starts[r0:r1], ends[r0:r1], room))
    offsets = np.r_[0, np.cumsum([job[-1] for job in jobs])].astype(np.int64)
    buffer = _empty_pairs(int(offsets[-1]))

    def pair_share(i: int) -> int:
        """Pair job ``i`` into its room of the buffer; return how many pairs it wrote."""
        run, *ranges, _ = jobs[i]
        p = run.postings
        mine = tuple(column[offsets[i]:offsets[i + 1]] for column in buffer)
        n = int(_pairs(*ranges, run.freq_sorted, p["sound"], p["time"], p["span"], p["freq"], sorted_triplet, t0,
                       span, f0, *windows, *steps, *grid.args(), *mine))
        if n > offsets[i + 1] - offsets[i]:
            raise RuntimeError(f"pairing wrote past its room ({n} pairs, room for {offsets[i + 1] - offsets[i]})")
        return n

    written = run_shares(pair_share, range(len(jobs)), threads)
    segments = tuple(Segment(int(offsets[i]), int(offsets[i]) + n, job[0].postings)
                     for i, (job, n) in enumerate(zip(jobs, written)))
    return PairedHits(
        sound=buffer[0], cell=buffer[1], triplet=buffer[2], posting=buffer[3], segments=segments,
        trip_t0=t0, trip_span=span, trip_f0=f0, layout=layout,
    )
