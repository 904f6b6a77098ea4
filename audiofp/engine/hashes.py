"""Quantising triplets into hashes, for the index and for queries.

The index stores each triplet under exactly one hash. A query looks each of
its triplets up under every hash whose cells lie within the fields' query
tolerances: for the invariant fields that absorbs peak jitter at a cell
edge; for the anchor band it spans the whole pitch/speed range searched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import FingerprintParams, HashLayout, PostingLayout
from .types import Fingerprint, Peaks, Triplets


def field_values(triplets: Triplets) -> dict[str, np.ndarray]:
    """The raw value of every hash field for each triplet, keyed by field name."""
    return {"df1": triplets.df1, "df2": triplets.df2, "ratio": triplets.ratio, "band": triplets.f0}


def index_hashes(triplets: Triplets, params: FingerprintParams, *, duration: float,
                 peaks: Peaks | None = None) -> Fingerprint:
    """Hash each triplet into its one cell, for storing in the index.

    Returns
    -------
    Fingerprint
        One hash per triplet, with the anchor time, frequency and span.
    """
    layout = params.layout
    values = field_values(triplets)
    hashes = layout.pack({f.name: f.cell(values[f.name]) for f in layout.fields})
    return Fingerprint(
        hashes=hashes, time=triplets.t0, freq=triplets.f0, span=triplets.span, duration=duration,
        posting=params.posting, peaks=peaks,
    )


@dataclass(frozen=True)
class QueryHashes:
    """Hashes a query looks up, each tied back to the triplet it came from.

    Attributes
    ----------
    hashes : np.ndarray of uint32, shape (m,)
        Every cell combination within tolerance, for every triplet.
    triplet : np.ndarray of int64, shape (m,)
        Index into the query's triplets of the triplet each hash belongs to.
    posting : PostingLayout
        How the index (built with the same parameters) encodes the postings
        these hashes find; the matcher decodes them with it.
    """

    hashes: np.ndarray
    triplet: np.ndarray
    posting: PostingLayout


def query_hashes(triplets: Triplets, params: FingerprintParams) -> QueryHashes:
    """Expand every triplet into the hashes of all cells within tolerance.

    Parameters
    ----------
    triplets : Triplets
    params : FingerprintParams

    Returns
    -------
    QueryHashes
    """
    layout: HashLayout = params.layout
    values = field_values(triplets)
    owner = np.arange(len(triplets), dtype=np.int64)
    partial = np.zeros(len(triplets), dtype=np.int64)
    for f in layout.fields:
        v = np.asarray(values[f.name], dtype=np.float64)[owner]
        lo = f.cell(v - f.query_tolerance)
        hi = f.cell(v + f.query_tolerance)
        counts = hi - lo + 1
        owner = np.repeat(owner, counts)
        starts = np.repeat(lo, counts)
        # Position of each repeated row within its group: 0, 1, .. count-1.
        within = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
        partial = (np.repeat(partial, counts) << f.bits) | (starts + within)
    return QueryHashes(hashes=partial.astype(np.uint32), triplet=owner, posting=params.posting)
