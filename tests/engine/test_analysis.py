"""Block-wise analysis of long audio: the same peaks as the whole signal, windows that cover every stretch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiofp.engine.analysis import HOP_SECONDS, WINDOW_SECONDS, analyse
from audiofp.engine.audio import content_digest, decode
from audiofp.engine.blocks import PeakPicking
from audiofp.engine.fingerprint import _peaks, fingerprint_for_index, fingerprint_for_query
from audiofp.engine.params import FingerprintParams
from audiofp.engine.peaks import find_peaks
from audiofp.engine.spectrogram import spectrogram
from audiofp.engine.types import Audio, Evidence, Match
from audiofp.engine.windows import combine, placed

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PARAMS = FingerprintParams()


@pytest.fixture(scope="module")
def long_audio() -> Audio:
    """About 190 s: every sample, three times over (speech, chant, speech over chant)."""
    pieces = [decode(p, sample_rate=PARAMS.sample_rate).samples for p in sorted(SAMPLES.glob("*.ogg"))]
    return Audio(np.concatenate(pieces * 2), PARAMS.sample_rate)


def _whole_signal_peaks(audio: Audio, picking: PeakPicking):
    return find_peaks(spectrogram(audio, PARAMS), time_radius=picking.time_radius, freq_radius=picking.freq_radius,
                      floor_db=PARAMS.peak_floor_db, peaks_per_second=picking.peaks_per_second)


def _points(peaks) -> set[tuple[float, float]]:
    return set(zip(np.round(peaks.time, 2).tolist(), np.round(peaks.freq, 2).tolist()))


def test_audio_up_to_one_block_gives_exactly_the_whole_signal_peaks(long_audio):
    short = Audio(long_audio.samples[: 25 * PARAMS.sample_rate], PARAMS.sample_rate)
    for picking in (PeakPicking.for_index(PARAMS), PeakPicking.for_query(PARAMS)):
        whole, blocks = _whole_signal_peaks(short, picking), _peaks(short, PARAMS, picking)
        np.testing.assert_array_equal(blocks.time, whole.time)
        np.testing.assert_array_equal(blocks.freq, whole.freq)


def test_long_audio_in_blocks_keeps_the_whole_signal_peaks(long_audio):
    picking = PeakPicking.for_query(PARAMS)
    whole, blocks = _points(_whole_signal_peaks(long_audio, picking)), _points(_peaks(long_audio, PARAMS, picking))
    # Only the dynamic-range floor differs (a block's loudest cell, not the file's).
    assert len(whole & blocks) >= 0.99 * len(whole) and abs(len(blocks) - len(whole)) <= 0.01 * len(whole)


def test_a_short_clip_is_one_window_identical_to_the_whole_clip_query(long_audio):
    clip = Audio(long_audio.samples[: 12 * PARAMS.sample_rate], PARAMS.sample_rate)
    analysis, windows = analyse(clip, PARAMS)
    whole = fingerprint_for_query(clip, PARAMS)
    assert len(windows) == 1 and windows[0].start_frame == 0
    np.testing.assert_array_equal(windows[0].lookups.hashes, whole.lookups.hashes)
    np.testing.assert_array_equal(windows[0].triplets.t0, whole.triplets.t0)
    assert windows[0].n_frames == whole.n_frames
    index = analysis.index_fingerprint()
    np.testing.assert_array_equal(index.hashes, fingerprint_for_index(clip, PARAMS).hashes)
    assert analysis.digest == content_digest(clip)


def test_windows_overlap_so_any_stretch_up_to_ten_seconds_lies_whole_in_one(long_audio):
    analysis, windows = analyse(long_audio, PARAMS)
    fps = 1.0 / PARAMS.frame_seconds
    spans = [(w.start_frame / fps, (w.start_frame + w.n_frames) / fps) for w in windows]
    assert [round(s) for s, _ in spans[:-1]] == list(range(0, HOP_SECONDS * (len(windows) - 1), HOP_SECONDS))
    # the last window ends at the end and is a window long, like every other
    assert spans[-1][1] == pytest.approx(long_audio.duration, abs=0.01)
    assert all(WINDOW_SECONDS - 0.02 <= e - s <= WINDOW_SECONDS + 0.02 for s, e in spans)
    overlap = WINDOW_SECONDS - HOP_SECONDS
    for start in np.arange(0.0, long_audio.duration - overlap, 0.5):
        assert any(s - 0.02 <= start and start + overlap <= e + 0.02 for s, e in spans), start
    # every anchor of the whole signal is queried, with window-relative times
    anchors = np.concatenate([w.triplets.t0 + w.start_frame for w in windows])
    assert anchors.min() >= 0 and np.all(np.concatenate([w.triplets.t0 for w in windows]) < WINDOW_SECONDS * fps + 1)
    assert analysis.digest == content_digest(long_audio)
    assert analysis.duration == pytest.approx(long_audio.duration)


def _match(sound: int, q0: float, q1: float, offset: float, p: float, anchors: int = 20, speed: float = 1.0) -> Match:
    e = Evidence(query_start=q0, query_end=q1, sound_start=offset + speed * q0, sound_end=offset + speed * q1,
                 speed=speed, pitch_semitones=0.0, anchors=anchors, score=anchors / (q1 - q0), confidence=1 - p)
    return Match(sound_id=sound, evidence=e, false_match_probability=p)


def test_window_matches_are_placed_on_the_track_and_one_reuse_is_reported_once():
    first = placed([_match(7, 25.0, 29.5, 100.0 - 0.0, 1e-20, anchors=30)], start_seconds=0.0, track=1)
    # the next window (from 20 s) sees the same reuse continue, on the same line
    second = placed([_match(7, 5.0, 18.0, 100.0 + 20.0, 1e-30, anchors=60)], start_seconds=20.0, track=1)
    elsewhere = placed([_match(7, 2.0, 9.0, 300.0 + 40.0, 1e-25)], start_seconds=40.0, track=1)
    merged = combine(first + second + elsewhere, windows=3, max_false_match_probability=1e-8)
    assert len(merged) == 2 and all(m.track == 1 for m in merged)
    reuse = next(m for m in merged if m.evidence.query_start == 25.0)
    assert (reuse.evidence.query_start, reuse.evidence.query_end) == (25.0, 38.0)
    assert (reuse.evidence.sound_start, reuse.evidence.sound_end) == (125.0, 138.0)
    assert reuse.evidence.anchors == 60 and reuse.false_match_probability == pytest.approx(3e-30)


def test_each_window_is_a_try_for_chance_so_probabilities_are_restated_for_the_upload():
    weak = _match(3, 1.0, 6.0, 50.0, 1e-9)
    assert [m.sound_id for m in combine([weak], windows=1, max_false_match_probability=1e-8)] == [3]
    assert combine([weak], windows=180, max_false_match_probability=1e-8) == []
    kept = combine([weak], windows=5, max_false_match_probability=1e-8)[0]
    assert kept.false_match_probability == pytest.approx(5e-9) and kept.confidence == pytest.approx(1 - 5e-9)
