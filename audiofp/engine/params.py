"""Fingerprint parameters: the one object that defines what a hash means.

Two indexes built with different parameters hold hashes that look alike but
mean different things, so the parameters are a frozen value with a stable
digest. The store records the digest of the parameters that built it and
refuses to mix (see ``audiofp.store``).

The hash describes a *triplet* of spectral peaks (an anchor and two later
targets) by quantities that survive the edits uploaders make:

* ``df1``, ``df2``: log-frequency differences target-minus-anchor. A pitch shift
  or a speed change multiplies every frequency by one factor, which on a
  log-frequency axis is a plain shift, so differences are unchanged.
* ``ratio``: (t1 - t0) / (t2 - t0). A speed change or a time-stretch scales
  every time gap by one factor, so the ratio of two gaps is unchanged.

The bit layout is written down once, here, with its inverse; so is the
layout of the index's postings (where each hash occurs), which the matcher
reads positions and speeds back from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError


@dataclass(frozen=True)
class HashField:
    """One quantised quantity of a triplet hash.

    A value ``v`` falls in cell ``floor((v - lo) / step)``, clipped to the
    field's ``2**bits`` cells. When querying, every cell within
    ``query_tolerance`` of the measured value is looked up, which absorbs
    peak-position jitter for invariant fields and the whole plausible
    speed/pitch range for the non-invariant ones.
    """

    name: str
    bits: int
    lo: float
    step: float
    query_tolerance: float

    @property
    def cells(self) -> int:
        return 1 << self.bits

    def cell(self, values: np.ndarray) -> np.ndarray:
        """Cell index of each value, shape like ``values``, int64."""
        idx = np.floor((np.asarray(values, dtype=np.float64) - self.lo) / self.step)
        return np.clip(idx, 0, self.cells - 1).astype(np.int64)


def _default_fields() -> tuple[HashField, ...]:
    return (
        # Invariant to pitch shift and speed change: log-frequency differences.
        HashField("df1", bits=6, lo=-32.0, step=1.0, query_tolerance=0.35),
        HashField("df2", bits=6, lo=-32.0, step=1.0, query_tolerance=0.35),
        # Invariant to speed change and time-stretch: ratio of two time gaps.
        HashField("ratio", bits=5, lo=0.0, step=1.0 / 32.0, query_tolerance=0.012),
        # Not invariant: the anchor's frequency band. Coarse, and searched over
        # the whole pitch/speed range at query time; it buys specificity so
        # that a lookup returns few unrelated postings in a large index.
        HashField("band", bits=4, lo=0.0, step=12.0, query_tolerance=14.0),
    )


@dataclass(frozen=True)
class HashLayout:
    """Bit layout of a hash: its fields from the most to the least significant bits."""

    fields: tuple[HashField, ...] = field(default_factory=_default_fields)

    def __post_init__(self) -> None:
        if self.total_bits > 32:
            raise ParameterError("a hash layout must fit 32 bits")

    @property
    def total_bits(self) -> int:
        """Number of bits a hash occupies."""
        return sum(f.bits for f in self.fields)

    def field(self, name: str) -> HashField:
        for f in self.fields:
            if f.name == name:
                return f
        raise ParameterError(f"no hash field named {name!r}")

    def pack(self, cells: dict[str, np.ndarray]) -> np.ndarray:
        """Combine per-field cell indices into hashes.

        Parameters
        ----------
        cells : dict of str to np.ndarray of int, each shape (n,)
            One array per field name, values in ``[0, field.cells)``.

        Returns
        -------
        np.ndarray of uint32, shape (n,)
        """
        out: np.ndarray | None = None
        for f in self.fields:
            c = np.asarray(cells[f.name], dtype=np.int64)
            if c.size and (c.min() < 0 or c.max() >= f.cells):
                raise ParameterError(f"hash field {f.name!r} out of range for {f.bits} bits")
            out = c if out is None else (out << f.bits) | c
        assert out is not None
        return out.astype(np.uint32)

    def unpack(self, hashes: np.ndarray) -> dict[str, np.ndarray]:
        """Split hashes back into per-field cell indices; the inverse of :meth:`pack`."""
        h = np.asarray(hashes, dtype=np.int64)
        cells: dict[str, np.ndarray] = {}
        for f in reversed(self.fields):
            cells[f.name] = h & (f.cells - 1)
            h = h >> f.bits
        return {f.name: cells[f.name] for f in self.fields}


#: Columns of one posting in storage order: name and numpy type code (packed, little-endian).
_POSTING_COLUMNS: tuple[tuple[str, str], ...] = (("sound", "<u4"), ("time", "<u4"), ("freq", "u1"), ("span", "u1"))


@dataclass(frozen=True)
class PostingLayout:
    """How the index stores where a hash occurs: one fixed-width posting per hash.

    A posting holds the sound and the anchor of the triplet that made the
    hash, quantised to unsigned integers. The matcher reads the anchor's
    position and the triplet's span back from those integers (a hit's speed
    is the ratio of the sound's span to the query's), so the encoding is part
    of what an index means and is covered by :meth:`FingerprintParams.digest`.
    :meth:`encode` and its inverse :meth:`decode` are the only code that knows it.

    Attributes
    ----------
    columns : tuple of (str, str)
        Name and numpy type code of each column, in storage order; the names
        are ``sound``, ``time``, ``freq``, ``span``, the types unsigned integers.
    time_steps_per_frame : int
        Resolution of ``time`` (anchor position): steps per frame.
    freq_steps_per_bin : int
        Resolution of ``freq`` (anchor log-frequency): steps per bin.
    span_steps_per_frame : int
        Resolution of ``span`` (anchor -> second target gap): steps per frame.
        Half-frames by default: a hit's speed is a ratio of spans of a few
        to some tens of frames, which whole frames would quantise by up to
        one part in twice the span.
    """

    columns: tuple[tuple[str, str], ...] = _POSTING_COLUMNS
    time_steps_per_frame: int = 1
    freq_steps_per_bin: int = 1
    span_steps_per_frame: int = 2

    def __post_init__(self) -> None:
        if tuple(name for name, _ in self.columns) != tuple(name for name, _ in _POSTING_COLUMNS):
            raise ParameterError("posting columns must be sound, time, freq, span, in that order")
        if any(np.dtype(code).kind != "u" for _, code in self.columns):
            raise ParameterError("posting columns must be unsigned integers")
        if min(self.time_steps_per_frame, self.freq_steps_per_bin, self.span_steps_per_frame) < 1:
            raise ParameterError("posting resolutions must be at least one step per unit")

    @property
    def dtype(self) -> np.dtype:
        """The numpy structured dtype of one posting."""
        return np.dtype(list(self.columns))

    def limit(self, column: str) -> int:
        """Largest integer ``column`` can hold."""
        return int(np.iinfo(self.dtype[column]).max)

    def encode(self, sound_id: int, time: np.ndarray, freq: np.ndarray, span: np.ndarray) -> np.ndarray:
        """Postings of the hashes of one sound.

        Parameters
        ----------
        sound_id : int
            The sound every posting points to.
        time : np.ndarray of float, shape (n,)
            Anchor position of each hash, frames.
        freq : np.ndarray of float, shape (n,)
            Anchor log-frequency of each hash, bins.
        span : np.ndarray of float, shape (n,)
            Anchor -> second target gap of each hash, frames.

        Returns
        -------
        np.ndarray of ``self.dtype``, shape (n,)
            Each value rounded to the nearest step and clipped to its column.
        """
        out = np.empty(len(time), dtype=self.dtype)
        out["sound"] = sound_id
        for column, values, steps in (
            ("time", time, self.time_steps_per_frame),
            ("freq", freq, self.freq_steps_per_bin),
            ("span", span, self.span_steps_per_frame),
        ):
            out[column] = np.clip(np.rint(np.asarray(values) * steps), 0, self.limit(column))
        return out

    def decode(self, postings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Anchor time (frames), anchor frequency (bins) and span (frames) of
        each posting, as float64 arrays of shape (n,); the inverse of :meth:`encode`."""
        return self.read(postings, "time"), self.read(postings, "freq"), self.read(postings, "span")

    def read(self, postings: np.ndarray, column: str, at: np.ndarray | None = None) -> np.ndarray:
        """One column (``time``, ``freq`` or ``span``) of ``postings``, or of the
        postings at indices ``at``, in frames or bins as float64.

        Gathering one narrow column at ``at`` costs a fraction of gathering
        whole postings, which is what the matcher needs for the many pairs it
        discards.
        """
        steps = {"time": self.time_steps_per_frame, "freq": self.freq_steps_per_bin,
                 "span": self.span_steps_per_frame}[column]
        values = postings[column] if at is None else postings[column][at]
        return values.astype(np.float64) / steps


@dataclass(frozen=True)
class FingerprintParams:
    """Everything that determines the fingerprints of a signal.

    Units: ``frames`` are analysis hops (``hop_length / sample_rate`` seconds);
    ``bins`` are log-frequency bins (``1 / bins_per_octave`` octave).
    """

    scheme: int = 1
    """Hash family version; stored in the index key so families can coexist."""

    # Analysis
    sample_rate: int = 8000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 128
    fmin: float = 130.0
    fmax: float = 3700.0
    bins_per_octave: int = 36

    # Peaks
    peak_time_radius: int = 12
    """Half-width, in frames, of the neighbourhood a peak must dominate."""
    peak_freq_radius: int = 9
    """Half-height, in bins, of the neighbourhood a peak must dominate."""
    query_peak_time_radius: int = 10
    """Neighbourhood half-width (frames) for query peaks. A peak that dominates
    the index's larger neighbourhood also dominates a smaller one, so a smaller
    query neighbourhood keeps the index's peaks and adds the ones that a
    talked-over or noisy query hides behind louder added sound."""
    query_peak_freq_radius: int = 7
    """Neighbourhood half-height (bins) for query peaks."""
    peak_floor_db: float = 6.0
    """How far above the local median level (dB) a peak must stand."""
    ref_peaks_per_second: float = 18.0
    """Peak density cap when indexing (strongest peaks kept per second)."""
    query_peaks_per_second: float = 30.0
    """Peak density cap when querying; denser than the index so that the
    reference's triplets are still formed when some query peaks are lost."""

    # Triplets
    min_gap: int = 3
    """Minimum time gap (frames) anchor->target and target->target."""
    max_span: int = 62
    """Maximum time span (frames) anchor -> second target."""
    max_df: float = 30.0
    """Maximum |log-frequency difference| (bins) anchor -> target."""
    ref_fanout: int = 4
    """Triplets formed per anchor when indexing."""
    query_fanout: int = 8
    """Triplets formed per anchor when querying (a superset of the index's)."""

    layout: HashLayout = field(default_factory=HashLayout)
    posting: PostingLayout = field(default_factory=PostingLayout)
    """How the index stores where each hash occurs."""

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.n_fft < self.win_length:
            raise ParameterError("need positive sample_rate, hop_length and n_fft >= win_length")
        if not 0 < self.fmin < self.fmax <= self.sample_rate / 2:
            raise ParameterError("need 0 < fmin < fmax <= sample_rate / 2")
        if self.max_span * self.posting.span_steps_per_frame > self.posting.limit("span"):
            raise ParameterError("max_span must fit the index's span column")
        if self.n_bins * self.posting.freq_steps_per_bin > self.posting.limit("freq"):
            raise ParameterError("log-frequency bins must fit the index's frequency column")

    # Derived quantities -------------------------------------------------
    @property
    def frame_seconds(self) -> float:
        """Duration of one analysis hop, in seconds."""
        return self.hop_length / self.sample_rate

    @property
    def n_bins(self) -> int:
        """Number of log-frequency bins between fmin and fmax."""
        return int(np.floor(self.bins_per_octave * np.log2(self.fmax / self.fmin))) + 1

    def digest(self) -> str:
        """Stable hex digest of what the index stores; equal digests mean compatible indexes.

        Covers every field that decides a sound's stored peaks, hashes and
        postings, and none that only a query uses (:data:`QUERY_ONLY_FIELDS`
        and each hash field's ``query_tolerance``): the searched range of a
        query can widen, say to slowed and sped-up edits, against the same
        stored index.
        """
        meaning = dataclasses.asdict(self)
        for name in QUERY_ONLY_FIELDS:
            del meaning[name]
        for hash_field in meaning["layout"]["fields"]:
            del hash_field["query_tolerance"]
        payload = json.dumps(meaning, sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


#: Parameters of :class:`FingerprintParams` that only shape a query (its peaks and
#: triplets), never what the index stores; :meth:`FingerprintParams.digest` leaves them out.
QUERY_ONLY_FIELDS = ("query_peak_time_radius", "query_peak_freq_radius", "query_peaks_per_second", "query_fanout")


DEFAULT_PARAMS = FingerprintParams()
