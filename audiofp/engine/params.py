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

The bit layout is written down once, here, with its inverse.
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

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.n_fft < self.win_length:
            raise ParameterError("need positive sample_rate, hop_length and n_fft >= win_length")
        if not 0 < self.fmin < self.fmax <= self.sample_rate / 2:
            raise ParameterError("need 0 < fmin < fmax <= sample_rate / 2")
        if self.max_span * 2 > 255:
            raise ParameterError("max_span must fit the index's half-frame span byte")
        if self.n_bins > 255:
            raise ParameterError("log-frequency bins must fit the index's frequency byte")

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
        """Stable hex digest of every field; equal digests mean compatible hashes."""
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


DEFAULT_PARAMS = FingerprintParams()
