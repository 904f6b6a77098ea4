"""How surely a candidate match is not chance: the null model of agreeing anchors.

A candidate's evidence is the number of distinct anchors whose hits agree
with its fitted alignment (within a time and a pitch tolerance, its
*window*). Unrelated audio also puts hits in that window; these functions
estimate how many it would put there, from the candidate's sound as a whole
and from the band around the candidate's line, and turn the count into a
false-match probability for the whole query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class ChanceWindow:
    """Where an agreeing hit may lie around a fitted line: frames off the line, bins off its pitch."""

    time_tolerance: float
    shift_tolerance: float


def global_expected(n_sound_hits: int, align_range: float, window: ChanceWindow, max_shift_bins: float) -> float:
    """Chance hits expected in the window if the sound's hits scattered uniformly.

    Parameters
    ----------
    n_sound_hits : int
        Hits of the candidate's sound.
    align_range : float
        Frames of alignment those hits spread over.
    window : ChanceWindow
    max_shift_bins : float
        Largest pitch shift searched, bins (the hits spread over twice that).
    """
    share = (
        (2.0 * window.time_tolerance / max(align_range, 2.0 * window.time_tolerance))
        * (2.0 * window.shift_tolerance / (2.0 * max_shift_bins))
    )
    return n_sound_hits * share


def local_expected(t_query: np.ndarray, t_sound: np.ndarray, shift: np.ndarray, window: ChanceWindow, *,
                   line_speed: float, line_offset: float, line_shift: float, band_frames: float) -> float:
    """Chance hits expected in the window, from the sound's hits around it.

    Music repeats itself, so hits of unrelated audio are not uniform over a
    sound: they cluster where a pattern recurs. The rate of the sound's hits in
    a wide band around the fitted line (the window itself left out), at the
    fitted pitch, measures that local background, as a radar detector
    measures the noise around the cell under test.

    Parameters
    ----------
    t_query, t_sound, shift : np.ndarray, shape (n,)
        The candidate's sound's hits: query frame, sound frame, pitch shift (bins).
    window : ChanceWindow
    line_speed, line_offset : float
        The fitted line ``t_sound = line_speed * t_query + line_offset``.
    line_shift : float
        The fitted pitch shift, bins.
    band_frames : float
        Half-width, frames, of the band the background is measured in (more than
        ``window.time_tolerance``).
    """
    same = np.abs(shift - line_shift) <= window.shift_tolerance
    if not same.any():
        return 0.0
    resid = t_sound[same] - (line_speed * t_query[same] + line_offset)
    in_band = np.abs(resid) <= band_frames
    outside_window = np.abs(resid) > window.time_tolerance
    background = np.unique(t_query[same][in_band & outside_window]).size
    return background * (2.0 * window.time_tolerance) / (2.0 * band_frames - 2.0 * window.time_tolerance)


def false_match_probability(anchors: int, *, global_expected: float, local_expected: float, n_tests: int) -> float:
    """Chance that unrelated audio lines up ``anchors`` anchors this well.

    The count of agreeing anchors under the null hypothesis is taken as
    Poisson with the larger of the global and the local background
    expectations; the tail probability is multiplied by the number of vote
    cells examined (a Bonferroni bound), so the figure stands for the query.
    """
    expected = max(global_expected, local_expected, 1e-9)
    tail = float(special.pdtrc(anchors - 1, expected))  # P(X >= anchors)
    return float(min(1.0, tail * max(n_tests, 1)))
