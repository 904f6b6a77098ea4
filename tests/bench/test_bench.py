"""Fast checks of the benchmark's own helpers: if a transform lies, every figure lies."""

from __future__ import annotations

import random

import av
import numpy as np
import pytest

from bench.manifest import Negative, Query, read_jsonl, write_jsonl
from bench.metrics import score_query
from bench.sources import SR, split_pools
from bench.transforms import TRANSFORMS, Banks, apply, change_speed, mix_at_snr, pink_noise, rms, sox, write_clip


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * SR / len(x))


@pytest.fixture
def banks() -> Banks:
    gen = np.random.default_rng(0)
    return Banks(voices=0.1 * gen.standard_normal(SR * 20).astype(np.float32), music=tone(220, 20))


def test_pink_noise_has_unit_rms_and_falls_3db_per_octave() -> None:
    noise = pink_noise(SR * 8, random.Random(1))
    assert rms(noise) == pytest.approx(1.0, rel=1e-3)
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / SR)
    low = power[(freqs >= 250) & (freqs < 500)].mean()
    high = power[(freqs >= 4000) & (freqs < 8000)].mean()
    # Four octaves up: 1/f power density drops 16x (12 dB).
    assert 10 * np.log10(low / high) == pytest.approx(12.0, abs=1.5)


@pytest.mark.parametrize("snr_db", [10.0, 0.0, -6.0])
def test_mix_at_snr_sets_the_requested_ratio(snr_db: float) -> None:
    signal = tone(440, 2)
    other = pink_noise(len(signal), random.Random(2))
    mixed = mix_at_snr(signal, other, snr_db)
    added = mixed - signal
    assert 20 * np.log10(rms(signal) / rms(added)) == pytest.approx(snr_db, abs=0.01)


def test_speed_change_moves_pitch_and_shortens_by_the_factor() -> None:
    out = change_speed(tone(440, 5), 1.25)
    assert len(out) == pytest.approx(4 * SR, abs=2)
    assert dominant_hz(out) == pytest.approx(550, abs=2)


def test_pitch_shift_keeps_duration() -> None:
    out = sox(tone(440, 3), "pitch", "-300")
    assert len(out) == pytest.approx(3 * SR, rel=0.01)
    assert dominant_hz(out) == pytest.approx(440 * 2 ** (-3 / 12), abs=3)


def test_tempo_change_keeps_pitch() -> None:
    out = sox(tone(440, 4.6), "tempo", "1.15")
    assert len(out) == pytest.approx(4 * SR, rel=0.02)
    assert dominant_hz(out) == pytest.approx(440, abs=3)


def test_apply_consumes_speed_times_length_and_returns_exact_length(banks: Banks) -> None:
    for t in TRANSFORMS.values():
        segment = tone(440, 3 * t.speed)
        out = apply(t, segment, 3.0, random.Random(3), banks)
        assert len(out) == 3 * SR, t.name
        assert np.max(np.abs(out)) <= 0.95 + 1e-6, t.name
        assert rms(out) > 0.01, t.name


def test_telephone_removes_high_frequencies(banks: Banks) -> None:
    out = apply(TRANSFORMS["telephone"], tone(5000, 2) + tone(1000, 2), 2.0, random.Random(0), banks)
    spectrum = np.abs(np.fft.rfft(out))
    freqs = np.fft.rfftfreq(len(out), 1 / SR)
    at = lambda f: spectrum[np.argmin(np.abs(freqs - f))]  # noqa: E731
    assert at(5000) < at(1000) / 100


@pytest.mark.parametrize("container", ["wav", "mp3", "mp4", "ulaw"])
def test_written_clips_decode_to_the_same_duration(tmp_path, container: str) -> None:
    path = write_clip(tone(440, 5), tmp_path / "clip", container)
    with av.open(str(path)) as f:
        stream = f.streams.audio[0]
        samples = sum(frame.samples for frame in f.decode(stream))
        rate = stream.rate
    # Lossy codecs add priming samples; a few tens of ms at most.
    assert samples / rate == pytest.approx(5.0, abs=0.08)


def test_split_pools_is_disjoint_exhaustive_and_seeded() -> None:
    items = list(range(100))
    pools = split_pools(items, {"a": 0.5, "b": 0.3, "c": 0.2}, seed=7)
    assert sorted(sum(pools.values(), [])) == items
    assert [len(pools[k]) for k in "abc"] == [50, 30, 20]
    assert pools == split_pools(items, {"a": 0.5, "b": 0.3, "c": 0.2}, seed=7)
    assert pools != split_pools(items, {"a": 0.5, "b": 0.3, "c": 0.2}, seed=8)


def _match(sound_id: int, query_start: float, sound_start: float, speed: float = 1.0) -> dict:
    return {"sound_id": sound_id, "query_start": query_start, "sound_start": sound_start, "speed": speed}


def test_recall_needs_the_right_reference_at_the_right_place() -> None:
    q = Query("q1", "q.wav", "ref-a", offset=30.0, speed=1.25, pitch=3.86, transform="speed_1.25", length=5.0)
    refs = {1: "ref-a", 2: "ref-b"}
    # The match starts 2 s into the query: 2 s of query is 2.5 s of reference.
    assert score_query(q, [_match(1, 2.0, 32.5, 1.25)], refs, 0.01).found
    late = score_query(q, [_match(1, 2.0, 34.0, 1.25)], refs, 0.01)
    assert not late.found and late.offset_error == pytest.approx(1.5)
    wrong = score_query(q, [_match(2, 0.0, 30.0), _match(1, 0.0, 30.0, 1.25)], refs, 0.01)
    assert not wrong.found and wrong.right_ref_anywhere
    assert not score_query(q, [], refs, 0.01).found


def test_manifest_round_trip(tmp_path) -> None:
    records = [Negative("n1", "negatives/n1.wav", "src", "music", 1.5, "clean", 3.0, "heldout")]
    assert write_jsonl(tmp_path / "n.jsonl", records) == 1
    assert read_jsonl(tmp_path / "n.jsonl", Negative) == records


def test_calibration_threshold_rejects_every_negative_and_reports_recall_kept() -> None:
    from bench.calibration import thresholds

    def clip(anchors: float | None) -> dict:
        if anchors is None:
            return {"best_candidate": None}
        return {"best_candidate": {"anchors": anchors, "score": anchors, "false_match_probability": 10.0 ** -anchors}}

    negatives = [clip(None), clip(3), clip(4)]
    queries = [clip(5), clip(10), clip(4), clip(None)]
    rows = {row[0]: row for row in thresholds(negatives, queries)}
    assert rows["anchors"][1] == "2/3"
    assert rows["anchors"][4] == "> 4"
    assert rows["anchors"][5] == "50.0%"  # 5 and 10 pass; 4 and no candidate do not
    assert rows["false_match_probability"][4] == "< 0.0001"
    assert rows["false_match_probability"][5] == "50.0%"


def test_cut_clip_avoids_silent_stretches(banks: Banks) -> None:
    from bench.corpus import cut_clip

    audio = np.concatenate([np.zeros(SR * 60, np.float32), tone(440, 15)])
    for seed in range(5):
        offset, clip = cut_clip(audio, TRANSFORMS["clean"], 3.0, random.Random(seed), banks)
        assert offset >= 57.0
        assert rms(clip) > 0.1


def test_prompt_pools_hold_no_duplicate_recordings() -> None:
    import hashlib

    from bench.sources import find_prompts

    prompts = find_prompts()
    if not prompts:
        pytest.skip("no asterisk prompt packages installed")
    for files in prompts.values():
        digests = [hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files]
        assert len(digests) == len(set(digests))
