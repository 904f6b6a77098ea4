"""Fingerprinting audio that arrives in pieces, in memory bounded by a block.

An upload may be an hour long. Its spectrogram at once would take gigabytes,
and one query over all of it would misplace a short reuse: the matcher's
alignment is measured from the query's middle, and a hit's speed error grows
with its distance from there. So a track is analysed as it is decoded:

- the spectrogram and its peaks are computed in blocks
  (:mod:`audiofp.engine.blocks`);
- the query is cut into overlapping windows of ``WINDOW_SECONDS`` every
  ``HOP_SECONDS``, each matched on its own, so a reused stretch of up to
  ``WINDOW_SECONDS - HOP_SECONDS`` lies whole inside one window wherever it
  sits in the upload, and meets only a window's worth of chance hits;
- the index peaks (for registering the track as a new sound) are kept, which
  is small: a few dozen numbers per second.

Audio up to a window (30 s) is one block and one window, and gives exactly
what the whole-signal functions give.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .blocks import PeakPicking, SpectralPeaks
from .fingerprint import QueryFingerprint, index_from_peaks, query_from_peaks
from .params import FingerprintParams
from .types import Audio, Fingerprint, Peaks

#: Length of a query window and the step between windows, in seconds. Windows
#: overlap by 10 s: a reuse of up to 10 s is whole in one of them, and a longer
#: one has at least 10 s in one.
WINDOW_SECONDS = 30
HOP_SECONDS = 20


class TrackAnalysis:
    """One track's fingerprints, fed block by block as it is decoded.

    :meth:`feed` and :meth:`finish` return the query windows that became
    complete; after :meth:`finish`, :meth:`index_fingerprint` gives the hashes
    that register the track as a sound and :attr:`digest` its content digest
    (equal to :func:`audiofp.engine.audio.content_digest` of the whole track).

    Parameters
    ----------
    params : FingerprintParams
    keep_index : bool
        Also pick the index peaks (only the track that may become a new sound needs them).
    """

    def __init__(self, params: FingerprintParams, *, keep_index: bool = True) -> None:
        self.params = params
        pickings = (PeakPicking.for_query(params),) + ((PeakPicking.for_index(params),) if keep_index else ())
        self._peaks = SpectralPeaks(params, pickings)
        self.keep_index = keep_index
        self.window_frames = round(WINDOW_SECONDS / params.frame_seconds)
        self.hop_frames = round(HOP_SECONDS / params.frame_seconds)
        self._next_window = 0  # start frame of the next window to emit
        self._last_end = 0  # end frame of the last window emitted
        self._n_samples = 0
        self._peak = 0.0
        self._digest = hashlib.sha256()
        self.windows = 0

    @property
    def duration(self) -> float:
        """Seconds of audio fed so far."""
        return self._n_samples / self.params.sample_rate

    @property
    def peak_level(self) -> float:
        """Largest absolute sample value fed so far."""
        return self._peak

    @property
    def digest(self) -> str:
        """SHA-256 of the samples fed so far, quantised to 16 bits."""
        return self._digest.hexdigest()

    def feed(self, samples: np.ndarray) -> list[QueryFingerprint]:
        """Add decoded samples (mono, analysis rate, in [-1, 1]); return the query windows now complete."""
        if samples.size == 0:
            return []
        self._n_samples += samples.size
        self._peak = max(self._peak, float(np.max(np.abs(samples))))
        self._digest.update(np.round(samples * 32767.0).astype("<i2").tobytes())
        self._peaks.feed(samples)
        out = []
        # A window is complete once the peaks its triplets may reach are out
        # (and audio follows it, so it is not the last one).
        ready = self._peaks.final_frame - self.window_frames - 1
        while ready - self._next_window >= self.params.max_span + 2:
            out.append(self._window(self._next_window, self._next_window + self.window_frames))
            self._last_end = self._next_window + self.window_frames
            self._next_window += self.hop_frames
        return out

    def finish(self) -> list[QueryFingerprint]:
        """Mark the end of the track; return the remaining query windows.

        The last window ends at the track's end and is a window long (it
        overlaps the one before it more than the others do): no window is
        longer than ``WINDOW_SECONDS``, so none meets more chance hits.
        """
        self._peaks.finish()
        n_frames = self._n_samples / self.params.hop_length
        out = []
        while self._next_window + self.window_frames < n_frames:
            out.append(self._window(self._next_window, self._next_window + self.window_frames))
            self._last_end = self._next_window + self.window_frames
            self._next_window += self.hop_frames
        if self._n_samples and self._last_end < n_frames:
            out.append(self._window(max(0, int(np.floor(n_frames - self.window_frames))), None))
        return out

    def _window(self, start: int, stop: int | None) -> QueryFingerprint:
        """The query of anchors in frames ``[start, stop)`` (to the end when ``stop`` is None)."""
        peaks = self._peaks.collected(0)
        total = self._n_samples / self.params.hop_length
        end = total if stop is None else min(float(stop), total)
        reach = np.searchsorted(peaks.time, end + self.params.max_span + 1, side="left")
        first = np.searchsorted(peaks.time, start, side="left")
        self.windows += 1
        return query_from_peaks(
            Peaks(time=peaks.time[first:reach], freq=peaks.freq[first:reach], strength=peaks.strength[first:reach]),
            self.params, start_frame=start, stop_frame=end,
        )

    def index_fingerprint(self) -> Fingerprint:
        """The hashes that register the whole track as a sound (after :meth:`finish`)."""
        if not (self.keep_index and self._peaks.finished):
            raise RuntimeError("index_fingerprint needs keep_index=True and a finished track")
        return index_from_peaks(self._peaks.collected(1), self.params, duration=self.duration)


def analyse(audio: Audio, params: FingerprintParams, *, keep_index: bool = True) -> tuple[TrackAnalysis, list[QueryFingerprint]]:
    """Run a whole decoded signal through :class:`TrackAnalysis` in one-second pieces.

    Returns
    -------
    (TrackAnalysis, list of QueryFingerprint)
        The finished analysis and every query window, in time order.
    """
    track = TrackAnalysis(params, keep_index=keep_index)
    windows: list[QueryFingerprint] = []
    step = params.sample_rate
    for i in range(0, len(audio.samples), step):
        windows += track.feed(audio.samples[i: i + step])
    windows += track.finish()
    return track, windows
