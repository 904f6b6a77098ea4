"""Voting and verification on hits whose geometry is known exactly."""

from __future__ import annotations

import numpy as np

from audiofp.engine.matching import Hits, MatchSettings, find_matches
from audiofp.engine.params import DEFAULT_PARAMS

QUERY_FRAMES = 400.0


def line_hits(anchors: int, per_anchor: int, *, speed: float, offset: float, shift: float, sound: int = 7) -> Hits:
    """Hits of one true match, t_sound = speed * t_query + offset, each coordinate
    nudged across a vote-cell edge in turn so that they scatter over 8 cells."""
    n = anchors * per_anchor
    j = np.arange(n)
    t_query = 20.0 + 30.0 * (j // per_anchor)
    middle = QUERY_FRAMES / 2
    # Alternate just below / above the cell edges of alignment (10 frames), shift (3 bins), log2 speed (0.06).
    align_edge = np.round((speed * middle + offset) / 10.0) * 10.0
    align = align_edge + np.where(j % 2, 0.3, -0.3)
    hit_shift = shift + np.where((j // 2) % 2, 0.2, -0.2)
    hit_speed = speed * 2.0 ** np.where((j // 4) % 2, 0.004, -0.004)
    t_sound = align + hit_speed * (t_query - middle)
    return Hits(
        sound=np.full(n, sound, np.uint32), triplet=j, t_query=t_query, t_sound=t_sound,
        speed=hit_speed, shift=hit_shift,
    )


def test_match_split_across_vote_cells_is_still_found():
    # 9 anchors x 4 triplets over 8 cells: no single cell reaches min_landmarks votes.
    hits = line_hits(9, 4, speed=1.0, offset=500.0, shift=0.0)
    matches = find_matches(hits, DEFAULT_PARAMS, MatchSettings(), query_frames=QUERY_FRAMES)
    assert len(matches) == 1
    m = matches[0]
    assert m.sound_id == 7 and m.evidence.anchors == 9
    assert abs(m.evidence.speed - 1.0) < 0.01
    frame = DEFAULT_PARAMS.frame_seconds
    assert abs(m.evidence.sound_start - (500.0 + 20.0) * frame) < 0.05


def test_speed_and_pitch_are_recovered_from_the_alignment():
    hits = line_hits(12, 3, speed=1.25, offset=-40.0, shift=11.6)
    m = find_matches(hits, DEFAULT_PARAMS, MatchSettings(), query_frames=QUERY_FRAMES)[0]
    assert abs(m.evidence.speed - 1.25) < 0.01
    assert abs(m.evidence.pitch_semitones - 11.6 / 3) < 0.15


def test_too_few_agreeing_anchors_is_no_match():
    hits = line_hits(4, 4, speed=1.0, offset=500.0, shift=0.0)
    assert find_matches(hits, DEFAULT_PARAMS, MatchSettings(), query_frames=QUERY_FRAMES) == []


def test_scattered_hits_do_not_match():
    rng = np.random.default_rng(0)
    n = 3000
    hits = Hits(
        sound=rng.integers(1, 30, n).astype(np.uint32), triplet=np.arange(n),
        t_query=rng.uniform(0, QUERY_FRAMES, n), t_sound=rng.uniform(0, 20000, n),
        speed=2.0 ** rng.uniform(-0.4, 0.4, n), shift=rng.uniform(-15, 15, n),
    )
    assert find_matches(hits, DEFAULT_PARAMS, MatchSettings(), query_frames=QUERY_FRAMES) == []
