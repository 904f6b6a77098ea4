"""The whole extraction chain, audio to hashes, for indexing and for querying.

Indexing and querying run the same chain with two differences, both so that
the query forms a superset of the index's triplets: the query keeps a denser
constellation and a larger fan-out, and it expands every triplet into all the
hash cells within tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from .blocks import PeakPicking, SpectralPeaks
from .hashes import QueryHashes, index_hashes, query_hashes
from .params import FingerprintParams
from .triplets import form_triplets
from .types import Audio, Fingerprint, Peaks, Triplets


def _peaks(audio: Audio, params: FingerprintParams, picking: PeakPicking) -> Peaks:
    """The peaks of a whole signal, computed block by block (bounded memory)."""
    if audio.sample_rate != params.sample_rate:
        raise ParameterError(f"audio is at {audio.sample_rate} Hz, analysis needs {params.sample_rate} Hz")
    blocks = SpectralPeaks(params, (picking,))
    step = params.sample_rate * 10
    for i in range(0, len(audio.samples), step):
        blocks.feed(audio.samples[i: i + step])
    blocks.finish()
    return blocks.collected(0)


def fingerprint_for_index(audio: Audio, params: FingerprintParams) -> Fingerprint:
    """Hashes of ``audio`` to store in the index (one per triplet).

    Parameters
    ----------
    audio : Audio
        Mono, at ``params.sample_rate``.
    params : FingerprintParams

    Returns
    -------
    Fingerprint
    """
    return index_from_peaks(_peaks(audio, params, PeakPicking.for_index(params)), params, duration=audio.duration)


def index_from_peaks(peaks: Peaks, params: FingerprintParams, *, duration: float) -> Fingerprint:
    """The index hashes of a constellation picked with :meth:`PeakPicking.for_index`."""
    triplets = form_triplets(peaks, fanout=params.ref_fanout, min_gap=params.min_gap, max_span=params.max_span,
                             max_df=params.max_df)
    return index_hashes(triplets, params, duration=duration, peaks=peaks)


@dataclass(frozen=True)
class QueryFingerprint:
    """What a query needs for matching: its triplets and the hashes to look up.

    A long track is queried in windows (see :mod:`audiofp.engine.analysis`):
    ``triplets`` then holds the anchors of one window, timed from the window's
    start, which lies ``start_frame`` frames into the track.
    """

    triplets: Triplets
    lookups: QueryHashes
    n_frames: float
    duration: float
    start_frame: int = 0

    def start_seconds(self, params: FingerprintParams) -> float:
        """Where the window starts in its track, seconds."""
        return self.start_frame * params.frame_seconds


def query_from_peaks(peaks: Peaks, params: FingerprintParams, *, start_frame: int, stop_frame: float) -> QueryFingerprint:
    """The query of the triplets anchored in frames ``[start_frame, stop_frame)``.

    Parameters
    ----------
    peaks : Peaks
        The query constellation from ``start_frame`` to at least ``max_span``
        frames past ``stop_frame`` (or the signal's end), sorted by time.
    params : FingerprintParams
    start_frame : int
    stop_frame : float

    Returns
    -------
    QueryFingerprint
        Anchor times counted from ``start_frame``.
    """
    triplets = form_triplets(peaks, fanout=params.query_fanout, min_gap=params.min_gap, max_span=params.max_span,
                             max_df=params.max_df)
    keep = (triplets.t0 >= start_frame) & (triplets.t0 < stop_frame)
    if not keep.all() or start_frame:
        triplets = Triplets(
            t0=triplets.t0[keep] - np.float32(start_frame), f0=triplets.f0[keep], span=triplets.span[keep],
            df1=triplets.df1[keep], df2=triplets.df2[keep], ratio=triplets.ratio[keep],
        )
    n_frames = stop_frame - start_frame
    return QueryFingerprint(
        triplets=triplets,
        lookups=query_hashes(triplets, params),
        n_frames=n_frames,
        duration=n_frames * params.frame_seconds,
        start_frame=start_frame,
    )


def fingerprint_for_query(audio: Audio, params: FingerprintParams) -> QueryFingerprint:
    """Triplets of ``audio`` and every hash they are looked up under, as one query.

    For a clip up to a window long (30 s); longer audio is queried in windows
    (:func:`audiofp.engine.analysis.analyse`), as uploads are.

    Parameters
    ----------
    audio : Audio
        Mono, at ``params.sample_rate``.
    params : FingerprintParams

    Returns
    -------
    QueryFingerprint
    """
    peaks = _peaks(audio, params, PeakPicking.for_query(params))
    return query_from_peaks(peaks, params, start_frame=0, stop_frame=audio.duration / params.frame_seconds)
