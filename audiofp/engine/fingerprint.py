"""The whole extraction chain, audio to hashes, for indexing and for querying.

Indexing and querying run the same chain with two differences, both so that
the query forms a superset of the index's triplets: the query keeps a denser
constellation and a larger fan-out, and it expands every triplet into all the
hash cells within tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hashes import QueryHashes, index_hashes, query_hashes
from .triplets import form_triplets
from .params import FingerprintParams
from .peaks import find_peaks
from .spectrogram import spectrogram
from .types import Audio, Fingerprint, Peaks, Triplets


def _triplets(
    audio: Audio, params: FingerprintParams, *, radii: tuple[int, int], peaks_per_second: float, fanout: int
) -> tuple[Peaks, Triplets]:
    spec = spectrogram(audio, params)
    peaks = find_peaks(
        spec,
        time_radius=radii[0],
        freq_radius=radii[1],
        floor_db=params.peak_floor_db,
        peaks_per_second=peaks_per_second,
    )
    triplets = form_triplets(peaks, fanout=fanout, min_gap=params.min_gap, max_span=params.max_span, max_df=params.max_df)
    return peaks, triplets


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
    radii = (params.peak_time_radius, params.peak_freq_radius)
    _, triplets = _triplets(audio, params, radii=radii, peaks_per_second=params.ref_peaks_per_second, fanout=params.ref_fanout)
    return index_hashes(triplets, params, duration=audio.duration)


@dataclass(frozen=True)
class QueryFingerprint:
    """What a query needs for matching: its triplets and the hashes to look up."""

    triplets: Triplets
    lookups: QueryHashes
    n_frames: float
    duration: float


def fingerprint_for_query(audio: Audio, params: FingerprintParams) -> QueryFingerprint:
    """Triplets of ``audio`` and every hash they are looked up under.

    Parameters
    ----------
    audio : Audio
        Mono, at ``params.sample_rate``.
    params : FingerprintParams

    Returns
    -------
    QueryFingerprint
    """
    radii = (params.query_peak_time_radius, params.query_peak_freq_radius)
    _, triplets = _triplets(audio, params, radii=radii, peaks_per_second=params.query_peaks_per_second, fanout=params.query_fanout)
    return QueryFingerprint(
        triplets=triplets,
        lookups=query_hashes(triplets, params),
        n_frames=audio.duration / params.frame_seconds,
        duration=audio.duration,
    )
