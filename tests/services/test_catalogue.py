"""Ingest and identify through the real store, on SQLite and PostgreSQL, with real audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiofp import services
from audiofp.engine.audio import decode
from audiofp.config import Limits, Settings
from audiofp.errors import BadAudioError, SilentAudioError
from audiofp import store as db

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SR = 22050
SETTINGS = Settings(limits=Limits(max_upload_bytes=50_000_000, max_audio_seconds=600.0))


def load(name: str) -> np.ndarray:
    return decode(SAMPLES / name, sample_rate=SR).samples


def write(path: Path, x: np.ndarray) -> Path:
    sf.write(path, x, SR)
    return path


@pytest.fixture
def indexed(store):
    """The store with the four shipped recordings ingested; returns name -> sound id."""
    ids = {}
    for name in ("chant.ogg", "speech_en.ogg", "speech_ar.ogg", "speech_over_chant.ogg"):
        ids[name] = services.ingest(store, SAMPLES / name, label=Path(name).stem, settings=SETTINGS).sound_id
    return ids


def test_excerpt_matches_its_sound_at_its_offset(store, indexed, tmp_path):
    x = load("speech_en.ogg")
    clip = write(tmp_path / "clip.wav", x[int(7.0 * SR):int(12.0 * SR)])
    result = services.identify(store, clip, settings=SETTINGS)
    best = result.matches[0]
    assert best.sound_id == indexed["speech_en.ogg"]
    assert result.labels[best.sound_id] == "speech_en"
    # Where the matched stretch starts in the clip, plus 7 s, is where it starts in the sound.
    assert best.evidence.sound_start == pytest.approx(7.0 + best.evidence.query_start, abs=0.1)
    assert best.evidence.speed == pytest.approx(1.0, abs=0.02)
    assert abs(best.evidence.pitch_semitones) < 0.3
    assert best.confidence > 0.999


def test_sped_up_reuse_is_found_with_its_speed_and_pitch(store, indexed, tmp_path):
    x = load("chant.ogg")[int(10 * SR):int(16.5 * SR)]
    sped = soxr.resample(x, SR * 1.2, SR)  # plays 1.2x faster: tempo and pitch together
    result = services.identify(store, write(tmp_path / "fast.wav", sped), settings=SETTINGS)
    best = result.matches[0]
    assert best.sound_id in (indexed["chant.ogg"], indexed["speech_over_chant.ogg"])
    assert best.evidence.speed == pytest.approx(1.2, abs=0.03)
    assert best.evidence.pitch_semitones == pytest.approx(12 * np.log2(1.2), abs=0.5)
    assert best.evidence.sound_start == pytest.approx(10.0 + 1.2 * best.evidence.query_start, abs=0.3)


def test_clip_holding_two_sounds_in_sequence_reports_both_in_order(store, indexed, tmp_path):
    en = load("speech_en.ogg")[int(2 * SR):int(8 * SR)]
    ar = load("speech_ar.ogg")[int(3 * SR):int(9 * SR)]
    result = services.identify(store, write(tmp_path / "both.wav", np.concatenate([en, ar])), settings=SETTINGS)
    by_sound = {m.sound_id: m for m in result.matches}
    first, second = by_sound[indexed["speech_en.ogg"]], by_sound[indexed["speech_ar.ogg"]]
    assert first.evidence.query_end <= 6.5 and second.evidence.query_start >= 5.5
    assert second.evidence.sound_start == pytest.approx(3.0 + second.evidence.query_start - 6.0, abs=0.3)


def test_unrelated_speech_does_not_match(store, indexed):
    result = services.identify(store, SAMPLES / "queries" / "voice_unrelated.ogg", settings=SETTINGS)
    assert result.matches == []


def test_altered_demo_clip_matches_the_reused_sound(store, indexed):
    result = services.identify(store, SAMPLES / "queries" / "altered_reuse.m4a", settings=SETTINGS)
    assert result.matches, "sped-up, talked-over, AAC re-encoded reuse must be found"
    best = result.matches[0]
    assert best.sound_id in (indexed["speech_over_chant.ogg"], indexed["chant.ogg"])
    assert best.evidence.speed == pytest.approx(1.15, abs=0.03)


@given(seed=st.integers(0, 2**31 - 1), seconds=st.floats(3.0, 10.0))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_noise_never_matches(store, indexed, seed, seconds):
    rng = np.random.default_rng(seed)
    noise = (rng.standard_normal(int(seconds * SR)) * 0.2).astype(np.float32)
    audio = decode(_wav_bytes(noise), sample_rate=store.params.sample_rate)
    assert services.identify_audio(store, audio).matches == []


def _wav_bytes(x: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV")
    return buf.getvalue()


def test_same_audio_is_not_ingested_twice(store, indexed):
    with store.session() as s:
        before = db.index_stats(s)
    again = services.ingest(store, SAMPLES / "chant.ogg", settings=SETTINGS)
    assert not again.created and again.sound_id == indexed["chant.ogg"]
    with store.session() as s:
        after = db.index_stats(s)
    assert (after.sounds, after.postings) == (before.sounds, before.postings)


def test_bad_input_writes_nothing(store, indexed, tmp_path):
    with store.session() as s:
        before = db.index_stats(s)
    bad = tmp_path / "notaudio.mp3"
    bad.write_text("definitely not audio\n" * 100)
    with pytest.raises(BadAudioError):
        services.ingest(store, bad, settings=SETTINGS)
    silent = write(tmp_path / "silent.wav", np.zeros(SR * 3, np.float32))
    with pytest.raises(SilentAudioError):
        services.ingest(store, silent, settings=SETTINGS)
    with store.session() as s:
        after = db.index_stats(s)
    assert (after.sounds, after.postings, after.rows) == (before.sounds, before.postings, before.rows)


def test_failure_after_fingerprinting_rolls_the_whole_sound_back(store, monkeypatch):
    audio = decode(SAMPLES / "speech_en.ogg", sample_rate=store.params.sample_rate)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(db, "add_sound_peaks", broken)
    with pytest.raises(RuntimeError):
        with store.session() as s:
            services.add_sound_audio(s, store, audio, label="x")
    with store.session() as s:
        assert db.index_stats(s).sounds == 0
