"""Spectral peak picking: the constellation the hashes are built from.

A peak is a spectrogram cell that is the maximum of its time-frequency
neighbourhood and stands clearly above the local background level. Peaks are
the points most likely to survive noise, voice-over and re-encoding, because
the loudest local components dominate whatever is added on top.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import ParameterError
from .types import Peaks, Spectrogram

#: Peaks quieter than this below the loudest cell of the signal are noise floor.
_DYNAMIC_RANGE_DB = 70.0


def find_peaks(
    spec: Spectrogram,
    *,
    time_radius: int,
    freq_radius: int,
    floor_db: float,
    peaks_per_second: float,
    frames: tuple[int, int] | None = None,
) -> Peaks:
    """Pick the dominant local maxima of a spectrogram.

    Parameters
    ----------
    spec : Spectrogram
        Log-frequency dB spectrogram, shape (n_bins, n_frames).
    time_radius, freq_radius : int
        Half-sizes (frames, bins) of the neighbourhood a peak must dominate.
    floor_db : float
        Minimum height of a peak above the local mean level, dB.
    peaks_per_second : float
        Density cap: within each second only the strongest peaks are kept.
    frames : (int, int), optional
        Keep only peaks in frames ``[start, stop)``: a caller analysing a long
        signal in blocks passes each block with context frames on both sides
        and keeps the block's own. ``start`` should be a multiple of the
        density cap's second (``round(1 / frame_seconds)`` frames) so the cap
        counts the same frames as it would over the whole signal.

    Returns
    -------
    Peaks
        Sorted by time; positions refined by parabolic interpolation.
    """
    if time_radius < 1 or freq_radius < 1 or peaks_per_second <= 0:
        raise ParameterError("peak neighbourhood radii and density must be positive")
    s = spec.values
    n_bins, n_frames = s.shape
    if n_frames < 3 or n_bins < 3:
        return _empty()

    local_max = ndimage.maximum_filter(s, size=(2 * freq_radius + 1, 2 * time_radius + 1), mode="nearest")
    background = ndimage.uniform_filter(s, size=(4 * freq_radius + 1, 4 * time_radius + 1), mode="nearest")
    strength = s - background
    is_peak = (s == local_max) & (strength > floor_db) & (s > s.max() - _DYNAMIC_RANGE_DB)
    # Peaks on the border cannot be refined and are often artefacts of padding.
    is_peak[[0, -1], :] = False
    is_peak[:, [0, -1]] = False
    if frames is not None:
        is_peak[:, : max(frames[0], 0)] = False
        is_peak[:, max(frames[1], 0):] = False
    f_idx, t_idx = np.nonzero(is_peak)
    if f_idx.size == 0:
        return _empty()
    peak_strength = strength[f_idx, t_idx]

    keep = _cap_density(t_idx, peak_strength, frames_per_block=max(1, round(1.0 / spec.frame_seconds)),
                        per_block=max(1, round(peaks_per_second)))
    f_idx, t_idx, peak_strength = f_idx[keep], t_idx[keep], peak_strength[keep]

    f_ref = f_idx + _parabolic_offset(s[f_idx - 1, t_idx], s[f_idx, t_idx], s[f_idx + 1, t_idx])
    t_ref = t_idx + _parabolic_offset(s[f_idx, t_idx - 1], s[f_idx, t_idx], s[f_idx, t_idx + 1])
    order = np.lexsort((f_ref, t_ref))
    return Peaks(
        time=t_ref[order].astype(np.float32),
        freq=f_ref[order].astype(np.float32),
        strength=peak_strength[order].astype(np.float32),
    )


def _cap_density(t_idx: np.ndarray, strength: np.ndarray, *, frames_per_block: int, per_block: int) -> np.ndarray:
    """Indices of the ``per_block`` strongest peaks within each block of frames."""
    block = t_idx // frames_per_block
    order = np.lexsort((-strength, block))
    sorted_block = block[order]
    first_of_block = np.r_[0, np.flatnonzero(np.diff(sorted_block)) + 1]
    block_start = np.repeat(first_of_block, np.diff(np.r_[first_of_block, sorted_block.size]))
    rank = np.arange(sorted_block.size) - block_start
    return np.sort(order[rank < per_block])


def _parabolic_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Sub-sample offset in [-0.5, 0.5] of the vertex of the parabola through three points."""
    denom = left - 2.0 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = 0.5 * (left - right) / denom
    return np.clip(np.nan_to_num(offset, nan=0.0, posinf=0.0, neginf=0.0), -0.5, 0.5)


def _empty() -> Peaks:
    z = np.zeros(0, np.float32)
    return Peaks(time=z, freq=z, strength=z)
