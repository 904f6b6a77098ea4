"""The null model: chance hits expected around a candidate, and the false-match probability."""

from __future__ import annotations

import numpy as np
import pytest

from audiofp.engine.significance import ChanceWindow, false_match_probability, global_expected, local_expected

WINDOW = ChanceWindow(time_tolerance=2.5, shift_tolerance=1.5)


def test_local_background_counts_distinct_anchors_near_the_line_but_outside_the_window() -> None:
    t_query = np.array([10.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    resid = np.array([20.0, 20.0, -40.0, 1.0, 400.0, 30.0, 30.0])  # off the line t_sound = t_query + 100
    shift = np.array([0.0, 0.0, 0.5, 0.0, 0.0, 9.0, 0.0])  # the hit at 50 is at another pitch
    t_sound = t_query + 100.0 + resid
    expected = local_expected(t_query, t_sound, shift, WINDOW, line_speed=1.0, line_offset=100.0, line_shift=0.0,
                              band_frames=150.0)
    # Anchors 10 (twice), 20 and 60 are in the band; 30 is in the window, 40 beyond the band, 50 off pitch.
    assert expected == 3 * (2 * 2.5) / (2 * 150.0 - 2 * 2.5)


def test_a_repeating_background_is_seen_locally_where_the_global_rate_misses_it() -> None:
    rng = np.random.default_rng(0)
    t_query = rng.uniform(0, 300, 200)
    # Most of the sound's hits crowd a band around the line (a loop), none in the window.
    resid = np.where(rng.random(200) < 0.8, rng.choice([-1, 1], 200) * rng.uniform(5, 60, 200),
                     rng.uniform(-5000, 5000, 200))
    t_sound = 2000.0 + t_query + resid
    shift = np.zeros(200)
    local = local_expected(t_query, t_sound, shift, WINDOW, line_speed=1.0, line_offset=2000.0, line_shift=0.0,
                           band_frames=150.0)
    spread = float(np.ptp(t_sound - t_query) + 300)
    assert local > 3 * global_expected(200, spread, WINDOW, max_shift_bins=15.0)


def test_false_match_probability_falls_with_evidence_and_rises_with_the_cells_examined() -> None:
    p = [false_match_probability(a, global_expected=0.5, local_expected=0.2, n_tests=1000) for a in (3, 5, 8, 12)]
    assert all(x > y for x, y in zip(p, p[1:]))
    assert false_match_probability(6, global_expected=0.5, local_expected=0.2, n_tests=10**6) == pytest.approx(
        min(1.0, 1000 * false_match_probability(6, global_expected=0.5, local_expected=0.2, n_tests=1000)))
    # The larger background is the one used.
    assert false_match_probability(6, global_expected=0.1, local_expected=2.0, n_tests=1) == \
        false_match_probability(6, global_expected=2.0, local_expected=0.1, n_tests=1)
