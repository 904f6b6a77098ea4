"""Voting and verification on hits whose geometry is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiofp.config import Settings
from audiofp.engine.fingerprint import fingerprint_for_index, fingerprint_for_query
from audiofp.engine.inverted import PostingRuns
from audiofp.engine.matching import Hits, MatchSettings, find_matches, join_hits
from audiofp.engine.params import DEFAULT_PARAMS, FingerprintParams, PostingLayout
from audiofp.engine.types import Audio
from audiofp.errors import ParameterError

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


def test_pitch_is_reported_in_semitones_of_the_parameters_octave():
    # 12 bins is a third of an octave at 36 bins per octave but half of one at 24.
    hits = line_hits(12, 3, speed=1.0, offset=300.0, shift=12.0)
    coarse = FingerprintParams(bins_per_octave=24)
    m = find_matches(hits, coarse, MatchSettings(), query_frames=QUERY_FRAMES)[0]
    assert abs(m.evidence.pitch_semitones - 6.0) < 0.15
    m = find_matches(hits, DEFAULT_PARAMS, MatchSettings(), query_frames=QUERY_FRAMES)[0]
    assert abs(m.evidence.pitch_semitones - 4.0) < 0.15


def two_band_hits() -> Hits:
    """8 anchors of one true match, alternately 2 frames before and after the
    alignment line (within the 2.5-frame time tolerance), in a sign pattern
    that leaves the fitted line exactly on the true one."""
    per_anchor = 3
    signs = np.repeat([1, -1, -1, 1, -1, 1, 1, -1], per_anchor)
    n = signs.size
    t_query = 20.0 + 30.0 * (np.arange(n) // per_anchor)
    t_sound = t_query + 305.5 + 2.0 * signs
    return Hits(
        sound=np.full(n, 7, np.uint32), triplet=np.arange(n), t_query=t_query, t_sound=t_sound,
        speed=np.ones(n), shift=np.zeros(n),
    )


def test_alignment_cell_size_decides_what_a_candidate_gathers():
    hits = two_band_hits()
    matches = find_matches(hits, DEFAULT_PARAMS, MatchSettings(), query_frames=QUERY_FRAMES)
    assert [m.evidence.anchors for m in matches] == [8]
    # One-frame cells gather the hits within 1.5 frames of a cell's centre:
    # each band alone (4 anchors) is short of min_anchors.
    narrow = MatchSettings(align_cell_frames=1.0)
    assert find_matches(hits, DEFAULT_PARAMS, narrow, query_frames=QUERY_FRAMES) == []


@pytest.mark.parametrize(
    "nonsense",
    [
        dict(min_speed=1.2, max_speed=0.8),
        dict(min_speed=0.0),
        dict(align_cell_frames=0.0),
        dict(shift_cell_bins=-3.0),
        dict(speed_cell_log2=0.0),
        dict(background_band_frames=2.0),  # inside the 2.5-frame inlier window it leaves out
        dict(min_anchors=0),
        dict(max_false_match_probability=1.5),
        dict(time_tolerance=0.0),
    ],
)
def test_match_settings_refuse_nonsense(nonsense):
    with pytest.raises(ParameterError):
        MatchSettings(**nonsense)


def test_vote_cells_are_settings_read_from_the_environment():
    settings = Settings.load(environ={"AUDIOFP_ALIGN_CELL_FRAMES": "12", "AUDIOFP_BACKGROUND_BAND_FRAMES": "90"})
    assert settings.matching.align_cell_frames == 12
    assert settings.matching.background_band_frames == 90
    assert Settings.load(environ={}).matching == MatchSettings()
    with pytest.raises(ParameterError):
        Settings.load(environ={"AUDIOFP_SPEED_CELL_LOG2": "0"})


def test_postings_are_read_back_with_the_layout_they_were_written_with():
    """A clip matches its own index entries at speed 1 under a non-default posting layout."""
    rng = np.random.default_rng(5)
    sr = DEFAULT_PARAMS.sample_rate
    note = int(0.25 * sr)
    t = np.arange(note) / sr
    notes = 200.0 * 2 ** (rng.integers(0, 24, 40) / 12)
    audio = np.concatenate(
        [np.exp(-6.0 * t) * sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3)) for f in notes]
    ).astype(np.float32)
    params = FingerprintParams(posting=PostingLayout(span_steps_per_frame=4))
    index = fingerprint_for_index(Audio(audio, sr), params)
    query = fingerprint_for_query(Audio(audio, sr), params)
    hits = join_hits(query.triplets, query.lookups, [PostingRuns.grouped(index.hashes, index.postings(1))],
                     MatchSettings(), query_frames=query.n_frames)
    speed = hits.columns(hits.indices())[4]
    assert len(hits) > 0 and abs(np.median(speed) - 1.0) < 0.02
    matches = find_matches(hits, params, MatchSettings(), query_frames=query.n_frames)
    assert [m.sound_id for m in matches] == [1]
    assert abs(matches[0].evidence.speed - 1.0) < 0.01


def _jittered_reuse(start: float, *, rng: np.random.Generator, n: int = 40) -> Hits:
    """A 4 s reuse at ``start`` frames into a query: exact positions, per-hit speed estimates off by up to 4%
    (as spans measured between jittered peaks are), the way real hits come."""
    t_query = start + np.sort(rng.uniform(0.0, 250.0, n))
    t_sound = 3000.0 + (t_query - start)
    speed = 2.0 ** rng.uniform(-0.055, 0.055, n)
    return Hits(sound=np.full(n, 9, np.uint32), triplet=np.arange(n), t_query=t_query, t_sound=t_sound,
                speed=speed, shift=rng.normal(0.0, 0.3, n))


def test_a_reuse_far_from_the_middle_of_a_long_query_is_found_as_near_it():
    # In a 30 s window (1875 frames), a hit's alignment measured from the window's middle
    # carries its speed error times up to 900 frames: the votes of a reuse at the window's
    # start scattered over dozens of cells. Measured from its own 5 s stretch, they gather.
    window = 1875.0
    for start in (0.0, 800.0, window - 260.0):
        hits = _jittered_reuse(start, rng=np.random.default_rng(int(start)))
        matches = find_matches(hits, DEFAULT_PARAMS, MatchSettings(), query_frames=window)
        assert [m.sound_id for m in matches] == [9], start
        e = matches[0].evidence
        frame = DEFAULT_PARAMS.frame_seconds
        assert abs(e.speed - 1.0) < 0.02 and abs(e.query_start - start * frame) < 0.3
        assert e.anchors >= 30


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60))
def test_the_refinements_median_is_numpys(values) -> None:
    from audiofp.engine.matching import _median

    array = np.array(values)
    assert _median(array) == float(np.median(array))
