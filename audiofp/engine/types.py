"""Frozen value types that flow between the pipeline stages.

Each stage of the engine returns one of these, never a bare tuple or an array
with positional columns, so that a reader always knows what a value holds and
in which unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import PostingLayout

#: One entry of the inverted index: where a hash occurs in a sound, as the
#: default :class:`~audiofp.engine.params.PostingLayout` encodes it (anchor
#: frame, anchor log-frequency bin, anchor -> second target gap in
#: half-frames). Stored packed (10 bytes, little-endian) in the index; see
#: ``audiofp.store``.
POSTING_DTYPE = PostingLayout().dtype


@dataclass(frozen=True)
class Audio:
    """Mono audio at the analysis rate.

    Attributes
    ----------
    samples : np.ndarray of float32, shape (n,)
        Samples in [-1, 1].
    sample_rate : int
        Samples per second.
    """

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Spectrogram:
    """Log-magnitude spectrogram on a log-frequency axis.

    Attributes
    ----------
    values : np.ndarray of float32, shape (n_bins, n_frames)
        Magnitude in dB.
    frame_seconds : float
        Seconds per frame.
    """

    values: np.ndarray
    frame_seconds: float

    @property
    def n_frames(self) -> int:
        return int(self.values.shape[1])


@dataclass(frozen=True)
class Peaks:
    """Spectral peaks, sorted by time.

    Attributes
    ----------
    time : np.ndarray of float32, shape (n,)
        Frame position, refined to sub-frame precision.
    freq : np.ndarray of float32, shape (n,)
        Log-frequency bin, refined to sub-bin precision.
    strength : np.ndarray of float32, shape (n,)
        Height above the local background, dB.
    """

    time: np.ndarray
    freq: np.ndarray
    strength: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def to_bytes(self) -> bytes:
        """The peaks packed for storage (:data:`STORED_PEAK_DTYPE`, 10 bytes each).

        Time and frequency keep full float32 precision, so the triplets formed
        again from stored peaks hash exactly as they did when the sound was
        added; strength (dB) needs no more than float16.
        """
        packed = np.empty(len(self), dtype=STORED_PEAK_DTYPE)
        packed["time"], packed["freq"], packed["strength"] = self.time, self.freq, self.strength
        return packed.tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Peaks":
        """The inverse of :meth:`to_bytes`.

        Raises
        ------
        ValueError
            If ``blob`` does not hold whole stored peaks.
        """
        if len(blob) % STORED_PEAK_DTYPE.itemsize:
            raise ValueError(f"{len(blob)} bytes do not hold whole {STORED_PEAK_DTYPE.itemsize}-byte peaks")
        packed = np.frombuffer(blob, dtype=STORED_PEAK_DTYPE)
        return cls(time=packed["time"].astype(np.float32), freq=packed["freq"].astype(np.float32),
                   strength=packed["strength"].astype(np.float32))


#: How a sound's peaks are stored (packed, little-endian): see :meth:`Peaks.to_bytes`.
STORED_PEAK_DTYPE = np.dtype([("time", "<f4"), ("freq", "<f4"), ("strength", "<f2")])


@dataclass(frozen=True)
class Triplets:
    """Peak triplets (anchor, target 1, target 2) and their invariant features.

    All arrays have shape (n,). ``t0``/``f0`` locate the anchor (frames, bins);
    ``span`` is t2 - t0 (frames); ``df1``, ``df2`` are target-minus-anchor
    log-frequency differences (bins); ``ratio`` is (t1 - t0) / (t2 - t0).
    """

    t0: np.ndarray
    f0: np.ndarray
    span: np.ndarray
    df1: np.ndarray
    df2: np.ndarray
    ratio: np.ndarray

    def __len__(self) -> int:
        return int(self.t0.shape[0])


@dataclass(frozen=True)
class Fingerprint:
    """Hashes of one signal with where each occurs.

    Attributes
    ----------
    hashes : np.ndarray of uint32, shape (n,)
        Triplet hashes.
    time : np.ndarray of float32, shape (n,)
        Anchor frame of each hash.
    freq : np.ndarray of float32, shape (n,)
        Anchor log-frequency bin of each hash.
    span : np.ndarray of float32, shape (n,)
        Anchor -> second target gap of each hash, frames.
    duration : float
        Seconds of audio the fingerprint was computed from.
    posting : PostingLayout
        How the index stores these hashes' positions (the parameters' ``posting``).
    peaks : Peaks or None
        The constellation the hashes were formed from: a registered sound's
        stored record, from which the index is derived (and a later
        fingerprint scheme could derive its keys).
    """

    hashes: np.ndarray
    time: np.ndarray
    freq: np.ndarray
    span: np.ndarray
    duration: float
    posting: PostingLayout
    peaks: Peaks | None = None

    def __len__(self) -> int:
        return int(self.hashes.shape[0])

    def postings(self, sound_id: int) -> np.ndarray:
        """Index entries of these hashes for ``sound_id``.

        Returns
        -------
        np.ndarray of ``self.posting.dtype`` (``POSTING_DTYPE`` by default), shape (n,)
        """
        return self.posting.encode(sound_id, self.time, self.freq, self.span)


@dataclass(frozen=True)
class Evidence:
    """Where and how a clip reuses a sound: what a match reports and a stored use keeps.

    Times are seconds. ``speed`` is the time-scale factor of the clip relative
    to the sound (1.25 = the clip plays 25% faster); ``pitch_semitones`` is the
    frequency shift of the clip relative to the sound. A plain speed-up shows
    both (speed 1.25, pitch +3.9 st); a time-stretch only speed; a pitch shift
    only pitch.
    """

    query_start: float
    """Start of the reusing stretch in the clip, s."""
    query_end: float
    sound_start: float
    """Start of the reused stretch in the sound, s."""
    sound_end: float
    speed: float
    pitch_semitones: float
    anchors: int
    """Distinct anchor peaks that agree with the fitted alignment."""
    score: float
    """Agreeing anchors per second of matched clip (length-normalised)."""
    confidence: float
    """1 - the estimated probability that unrelated audio scores this high, in [0, 1]."""


@dataclass(frozen=True)
class Match:
    """One known sound found in a query, with the evidence for it."""

    sound_id: int
    evidence: Evidence
    false_match_probability: float
    """Estimated probability that unrelated audio scores this high."""
    track: int = 0
    """Which audio track of the query it was found in (0 for the first)."""

    @property
    def confidence(self) -> float:
        """1 - estimated false-match probability, in [0, 1]."""
        return self.evidence.confidence
