"""Log-magnitude spectrogram on a log-frequency axis.

On a log-frequency axis a pitch shift, and the frequency half of a speed
change, is a plain translation, which is what lets the hashes be invariant to
it. A true constant-Q transform is several times slower than an FFT; an STFT
whose bins are pooled onto log-spaced centres through one sparse matrix keeps
that property at FFT cost, which matters at 500x realtime ingest.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.sparse

from ..errors import ParameterError
from .params import FingerprintParams
from .types import Audio, Spectrogram

_FLOOR_DB = -100.0


@lru_cache(maxsize=8)
def log_frequency_filterbank(params: FingerprintParams) -> scipy.sparse.csr_matrix:
    """Sparse matrix pooling STFT power onto log-spaced bins.

    Each log bin is a triangle centred on ``fmin * 2**(k / bins_per_octave)``
    whose half-width is the larger of the FFT bin spacing and the log-bin
    spacing, so low bins interpolate between FFT bins and high bins average the
    band they cover. Rows are normalised to sum to one.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_bins, n_fft // 2 + 1)
    """
    n_fft_bins = params.n_fft // 2 + 1
    fft_freqs = np.arange(n_fft_bins) * params.sample_rate / params.n_fft
    fft_spacing = params.sample_rate / params.n_fft
    centres = params.fmin * 2.0 ** (np.arange(params.n_bins) / params.bins_per_octave)
    log_spacing = centres * (2.0 ** (1.0 / params.bins_per_octave) - 1.0)
    half_width = np.maximum(fft_spacing, log_spacing)
    weights = 1.0 - np.abs(fft_freqs[None, :] - centres[:, None]) / half_width[:, None]
    weights = np.clip(weights, 0.0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    return scipy.sparse.csr_matrix(weights.astype(np.float32))


def spectrogram(audio: Audio, params: FingerprintParams) -> Spectrogram:
    """Compute the log-frequency dB spectrogram of ``audio``.

    Parameters
    ----------
    audio : Audio
        Mono samples at ``params.sample_rate``.
    params : FingerprintParams

    Returns
    -------
    Spectrogram
        ``values`` of shape (params.n_bins, n_frames), dB re. full scale power.
    """
    if audio.sample_rate != params.sample_rate:
        raise ParameterError(f"audio is at {audio.sample_rate} Hz, analysis needs {params.sample_rate} Hz")
    x = np.asarray(audio.samples, dtype=np.float32)
    # Centre frame k on sample k * hop, from the first sample to the last.
    pad = params.win_length // 2
    return framed_spectrogram(np.pad(x, (pad, pad)), params)


def framed_spectrogram(segment: np.ndarray, params: FingerprintParams) -> Spectrogram:
    """The spectrogram of the frames that start every hop in ``segment``.

    Frame ``j`` covers ``segment[j * hop : j * hop + win_length]``. A caller that
    analyses a long signal in blocks passes each block with the samples around
    it (zeros beyond the signal's ends, as :func:`spectrogram` pads), so the
    frames are the very ones the whole signal would give.

    Parameters
    ----------
    segment : np.ndarray of float32
        At least ``win_length`` samples at ``params.sample_rate``.
    params : FingerprintParams

    Returns
    -------
    Spectrogram
    """
    frames = np.lib.stride_tricks.sliding_window_view(segment, params.win_length)[:: params.hop_length]
    window = np.hanning(params.win_length + 2)[1:-1].astype(np.float32)
    # scipy keeps float32 end to end; numpy would convert to float64 (several times slower).
    spectrum = scipy.fft.rfft(frames * window, n=params.n_fft, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    pooled = log_frequency_filterbank(params) @ power.T
    values = 10.0 * np.log10(np.maximum(pooled, 1e-10))
    return Spectrogram(values=np.maximum(values, _FLOOR_DB).astype(np.float32), frame_seconds=params.frame_seconds)
