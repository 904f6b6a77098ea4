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

from .errors import ParameterError


@dataclass(frozen=True)
class HashLayout:
    """Bit layout of a triplet hash: ``df1 | df2 | ratio`` from high to low bits.

    Each field is a quantisation cell index (an unsigned integer). ``df`` cells
    are centred so that a difference of 0 sits in the middle of a cell.
    """

    df_bits: int = 7
    ratio_bits: int = 6

    @property
    def total_bits(self) -> int:
        """Number of bits a hash occupies."""
        return 2 * self.df_bits + self.ratio_bits

    @property
    def df_cells(self) -> int:
        return 1 << self.df_bits

    @property
    def ratio_cells(self) -> int:
        return 1 << self.ratio_bits

    def pack(self, df1_cell: np.ndarray, df2_cell: np.ndarray, ratio_cell: np.ndarray) -> np.ndarray:
        """Combine cell indices into hashes.

        Parameters
        ----------
        df1_cell, df2_cell : np.ndarray of int, shape (n,)
            Cell indices in ``[0, df_cells)``.
        ratio_cell : np.ndarray of int, shape (n,)
            Cell indices in ``[0, ratio_cells)``.

        Returns
        -------
        np.ndarray of uint32, shape (n,)
        """
        df1 = np.asarray(df1_cell, dtype=np.uint32)
        df2 = np.asarray(df2_cell, dtype=np.uint32)
        ratio = np.asarray(ratio_cell, dtype=np.uint32)
        if (df1 >= self.df_cells).any() or (df2 >= self.df_cells).any() or (ratio >= self.ratio_cells).any():
            raise ParameterError("hash field out of range for its bit width")
        return (df1 << (self.df_bits + self.ratio_bits)) | (df2 << self.ratio_bits) | ratio

    def unpack(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split hashes back into ``(df1_cell, df2_cell, ratio_cell)``; the inverse of :meth:`pack`."""
        h = np.asarray(hashes, dtype=np.uint32)
        ratio = h & np.uint32(self.ratio_cells - 1)
        df2 = (h >> self.ratio_bits) & np.uint32(self.df_cells - 1)
        df1 = h >> (self.df_bits + self.ratio_bits)
        return df1, df2, ratio


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
    max_df: float = 27.0
    """Maximum |log-frequency difference| (bins) anchor -> target."""
    ref_fanout: int = 4
    """Triplets formed per anchor when indexing."""
    query_fanout: int = 10
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

    @property
    def df_step(self) -> float:
        """Quantisation step (bins) of the frequency-difference fields."""
        return 2 * self.max_df / self.layout.df_cells

    @property
    def ratio_step(self) -> float:
        """Quantisation step of the time-ratio field."""
        return 1.0 / self.layout.ratio_cells

    def digest(self) -> str:
        """Stable hex digest of every field; equal digests mean compatible hashes."""
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


DEFAULT_PARAMS = FingerprintParams()
