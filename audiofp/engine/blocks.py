"""Spectral peaks of a long signal, one block at a time.

The spectrogram of an hour of audio would take gigabytes. The peaks are local
(a peak dominates a neighbourhood of a few dozen frames), so the signal is
analysed in blocks of ``BLOCK_SECONDS``, each with a second of context on
both sides; the peaks of a block are then those the whole signal would give,
with one difference: the dynamic-range floor is relative to the block's
loudest cell, not the file's. A signal up to one block long (about 31 s) is
one block, exactly as the whole-signal functions see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import FingerprintParams
from .peaks import find_peaks
from .spectrogram import framed_spectrogram
from .types import Peaks, Spectrogram

#: Length of a spectral block, in seconds of the density cap (whole seconds).
BLOCK_SECONDS = 30


@dataclass(frozen=True)
class PeakPicking:
    """How densely and over which neighbourhood peaks are picked."""

    time_radius: int
    freq_radius: int
    peaks_per_second: float

    @classmethod
    def for_index(cls, params: FingerprintParams) -> "PeakPicking":
        return cls(params.peak_time_radius, params.peak_freq_radius, params.ref_peaks_per_second)

    @classmethod
    def for_query(cls, params: FingerprintParams) -> "PeakPicking":
        return cls(params.query_peak_time_radius, params.query_peak_freq_radius, params.query_peaks_per_second)

    def pick(self, spec: Spectrogram, params: FingerprintParams, frames: tuple[int, int]) -> Peaks:
        return find_peaks(spec, time_radius=self.time_radius, freq_radius=self.freq_radius,
                          floor_db=params.peak_floor_db, peaks_per_second=self.peaks_per_second, frames=frames)


def second_frames(params: FingerprintParams) -> int:
    """Frames in one block of the peak density cap (about a second)."""
    return max(1, round(1.0 / params.frame_seconds))


def _concat(parts: list[Peaks]) -> Peaks:
    if not parts:
        z = np.zeros(0, np.float32)
        return Peaks(time=z, freq=z, strength=z)
    if len(parts) == 1:
        return parts[0]
    return Peaks(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("time", "freq", "strength")))


class SpectralPeaks:
    """Peaks of a signal fed in pieces, computed one spectral block at a time.

    Parameters
    ----------
    params : FingerprintParams
    pickings : sequence of PeakPicking
        Each picking gets its own peak list; they share the spectrogram.
    """

    def __init__(self, params: FingerprintParams, pickings: tuple[PeakPicking, ...]) -> None:
        self.params = params
        self.pickings = pickings
        second = second_frames(params)
        self.block_frames = second * BLOCK_SECONDS
        # The context must cover the peak filters' reach (the background mean
        # spans 2 radii each side) and start on a density-cap second.
        self.context_frames = second
        reach = max(2 * p.time_radius + 2 for p in pickings)
        if reach > self.context_frames:
            raise ValueError(f"peak neighbourhoods reach {reach} frames; block context is {self.context_frames}")
        self.peaks: list[list[Peaks]] = [[] for _ in pickings]
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # absolute index of self._buffer[0]
        self._n_samples = 0
        self._next_frame = 0  # first frame whose peaks are not out yet
        self.finished = False

    @property
    def final_frame(self) -> int:
        """Frames before this one have all their peaks out."""
        return self._next_frame

    def feed(self, samples: np.ndarray) -> None:
        """Add samples; compute every block whose context has arrived."""
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, np.float32)])
        self._n_samples += samples.size
        hop, half = self.params.hop_length, self.params.win_length // 2
        while True:
            stop = self._next_frame + self.block_frames
            context_end = (stop + self.context_frames - 1) * hop - half + self.params.win_length
            if context_end > self._n_samples:
                return
            self._compute(self._next_frame, stop, stop + self.context_frames)

    def finish(self) -> None:
        """Compute the last block, up to the signal's last frame."""
        if self.finished:
            return
        n_frames = self._n_samples // self.params.hop_length + 1 if self._n_samples else 0
        if self._next_frame < n_frames:
            self._compute(self._next_frame, n_frames, n_frames)
        self.finished = True

    def _compute(self, start: int, stop: int, context_stop: int) -> None:
        hop, half, win = self.params.hop_length, self.params.win_length // 2, self.params.win_length
        lo = max(start - self.context_frames, 0)
        seg_start, seg_end = lo * hop - half, (context_stop - 1) * hop - half + win
        have_lo, have_hi = max(seg_start, 0), min(seg_end, self._n_samples)
        piece = self._buffer[have_lo - self._buffer_start: have_hi - self._buffer_start]
        # Beyond the signal's ends the frames see zeros, as the whole-signal spectrogram pads.
        segment = np.concatenate([np.zeros(have_lo - seg_start, np.float32), piece,
                                  np.zeros(seg_end - have_hi, np.float32)])
        spec = framed_spectrogram(segment, self.params)
        for picking, out in zip(self.pickings, self.peaks):
            found = picking.pick(spec, self.params, (start - lo, stop - lo))
            if len(found):
                out.append(Peaks(time=found.time + np.float32(lo), freq=found.freq, strength=found.strength))
        self._next_frame = stop
        keep_from = max((stop - self.context_frames) * hop - half, 0)
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[keep_from - self._buffer_start:]
            self._buffer_start = keep_from

    def collected(self, which: int) -> Peaks:
        """Every peak out so far of picking ``which``, in time order."""
        parts = self.peaks[which]
        if len(parts) > 1:
            parts[:] = [_concat(parts)]
        return _concat(parts)
