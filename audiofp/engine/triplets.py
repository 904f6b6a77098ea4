"""Peak triplets: an anchor peak and two later target peaks near it in frequency.

Targets are chosen by time order (the first ``fanout`` valid peaks after the
anchor), not by strength: time order is unchanged by the gain, equalisation
and mixing edits that reorder peak strengths. With a larger fan-out the query
forms a superset of the triplets the index holds, so an index triplet is still
found when a query peak in between is lost or added by noise.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from .types import Peaks, Triplets


def form_triplets(peaks: Peaks, *, fanout: int, min_gap: int, max_span: int, max_df: float) -> Triplets:
    """Form (anchor, target 1, target 2) triplets from a time-sorted constellation.

    Parameters
    ----------
    peaks : Peaks
        Sorted by time.
    fanout : int
        Number of targets taken per anchor; every time-ordered pair of them
        makes a triplet, so up to ``fanout * (fanout - 1) / 2`` per anchor.
    min_gap : int
        Minimum time gap (frames) anchor -> target 1 and target 1 -> target 2.
    max_span : int
        Maximum time gap (frames) anchor -> target 2.
    max_df : float
        Maximum |frequency difference| (bins) anchor -> target.

    Returns
    -------
    Triplets
    """
    if fanout < 2 or min_gap < 1 or max_span <= 2 * min_gap or max_df <= 0:
        raise ParameterError("need fanout >= 2, min_gap >= 1, max_span > 2 * min_gap, max_df > 0")
    n = len(peaks)
    t, f = peaks.time, peaks.freq
    if n < 3:
        return _empty()

    # Candidate targets of anchor i are peaks i+1 .. i+window (sorted by time);
    # the window is the most peaks any max_span interval holds.
    ends = np.searchsorted(t, t + max_span, side="right")
    window = int(np.max(ends - np.arange(n))) - 1
    if window < 1:
        return _empty()
    offsets = np.arange(1, window + 1)
    cand = np.arange(n)[:, None] + offsets[None, :]
    in_range = cand < n
    cand = np.where(in_range, cand, 0)
    dt = t[cand] - t[:, None]
    valid = in_range & (dt >= min_gap) & (dt <= max_span) & (np.abs(f[cand] - f[:, None]) <= max_df)
    rank = np.cumsum(valid, axis=1) - 1
    chosen = valid & (rank < fanout)

    # Scatter the chosen candidates into an (n, fanout) table of target indices.
    targets = np.full((n, fanout), -1, dtype=np.int64)
    rows, cols = np.nonzero(chosen)
    targets[rows, rank[rows, cols]] = cand[rows, cols]

    a_slots, b_slots = np.triu_indices(fanout, k=1)
    anchor = np.repeat(np.arange(n), a_slots.size)
    first = targets[:, a_slots].reshape(-1)
    second = targets[:, b_slots].reshape(-1)
    ok = (first >= 0) & (second >= 0)
    anchor, first, second = anchor[ok], first[ok], second[ok]
    ok = (t[second] - t[first]) >= min_gap
    anchor, first, second = anchor[ok], first[ok], second[ok]

    span = t[second] - t[anchor]
    return Triplets(
        t0=t[anchor].astype(np.float32),
        f0=f[anchor].astype(np.float32),
        span=span.astype(np.float32),
        df1=(f[first] - f[anchor]).astype(np.float32),
        df2=(f[second] - f[anchor]).astype(np.float32),
        ratio=((t[first] - t[anchor]) / span).astype(np.float32),
    )


def _empty() -> Triplets:
    z = np.zeros(0, np.float32)
    return Triplets(t0=z, f0=z, span=z, df1=z, df2=z, ratio=z)
