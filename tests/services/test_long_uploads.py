"""No way around the check: a reuse anywhere in a long upload, in any audio track, is found.

An uploader can hide a reused stretch at the start or the end of minutes of
other audio, or put it in a second audio track behind a decoy. Each test
here failed before uploads were checked track by track and window by window.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from audiofp import store as db
from audiofp.config import Limits, Settings
from audiofp.engine.audio import decode
from audiofp.errors import BadAudioError, CheckTimeoutError
from audiofp.services import catalogue, submit_upload

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SR = 8000
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
SETTINGS = Settings()


def _load(name: str) -> np.ndarray:
    return decode(SAMPLES / name, sample_rate=SR).samples


@pytest.fixture(scope="module")
def reuse() -> np.ndarray:
    """12 s of the chant from 3 s, sped up 1.1x (pitch up with it), as a resampling edit makes it."""
    return soxr.resample(_load("chant.ogg")[3 * SR: 15 * SR], SR * 1.1, SR).astype(np.float32)


@pytest.fixture(scope="module")
def other() -> np.ndarray:
    """Two minutes of audio the catalogue never holds: unrelated speech, over and over."""
    speech = np.concatenate([_load("queries/voice_unrelated.ogg"), np.zeros(SR // 2, np.float32)])
    return np.tile(speech, int(np.ceil(120 * SR / speech.size)))[: 120 * SR]


@pytest.fixture
def chant_store(store):
    catalogue.ingest(store, SAMPLES / "chant.ogg", settings=SETTINGS, label="chant")
    return store


def _wav(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, SR, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _submit(store, data: bytes, content_id: str, settings: Settings = SETTINGS):
    return submit_upload(store, data, content_id=content_id, account_id="acct", uploaded_at=NOW, settings=settings)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_reuse_anywhere_in_two_minutes_of_other_audio_is_found_with_its_own_time_range(chant_store, reuse, other,
                                                                                       where):
    at = {"start": 0, "middle": 55 * SR, "end": other.size}[where]
    upload = np.concatenate([other[:at], reuse, other[at:]])
    verdict = _submit(chant_store, _wav(upload), f"long-{where}").verdict
    assert [s["sound_id"] for s in verdict["sounds"]] == [1], verdict
    found = verdict["sounds"][0]
    start = at / SR
    assert start - 0.5 <= found["query_start"] and found["query_end"] <= start + reuse.size / SR + 0.5
    assert found["query_end"] - found["query_start"] >= 0.8 * reuse.size / SR
    assert found["speed"] == pytest.approx(1.1, abs=0.01) and found["sound_start"] == pytest.approx(3.0, abs=0.3)
    assert verdict["original_sound_id"] is None and verdict["upload"]["duration_seconds"] == pytest.approx(
        upload.size / SR, abs=0.01)


def test_a_reuse_before_ten_minutes_of_silence_is_found(chant_store, reuse):
    upload = np.concatenate([reuse, np.zeros(600 * SR, np.float32)])
    matches = catalogue.identify(chant_store, _wav(upload), settings=SETTINGS).matches
    assert [m.sound_id for m in matches] == [1] and matches[0].evidence.query_start < 1.0


def _multitrack(tracks: list[np.ndarray]) -> bytes:
    """A Matroska file with one FLAC audio track per array, in order (muxed by the ffmpeg command)."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs: list[str] = []
        for i, samples in enumerate(tracks):
            path = Path(tmp) / f"{i}.wav"
            path.write_bytes(_wav(samples))
            inputs += ["-i", str(path)]
        maps = [arg for i in range(len(tracks)) for arg in ("-map", str(i))]
        out = Path(tmp) / "out.mkv"
        subprocess.run(["ffmpeg", "-loglevel", "error", *inputs, *maps, "-c:a", "flac", str(out)], check=True)
        return out.read_bytes()


def test_a_reuse_in_a_second_track_behind_a_decoy_is_found_and_named_by_track(chant_store, reuse, other):
    decoy = other[: reuse.size + 2 * SR]
    verdict = _submit(chant_store, _multitrack([decoy, np.concatenate([np.zeros(2 * SR, np.float32), reuse])]),
                      "two-tracks").verdict
    assert [(s["sound_id"], s["track"]) for s in verdict["sounds"]] == [(1, 1)], verdict
    assert [(t["index"], t["audible"]) for t in verdict["tracks"]] == [(0, True), (1, True)]
    assert verdict["sounds"][0]["query_start"] == pytest.approx(2.0, abs=0.6)


def test_a_silent_first_track_does_not_hide_the_second(chant_store, reuse):
    verdict = _submit(chant_store, _multitrack([np.zeros(reuse.size, np.float32), reuse]), "silent-first").verdict
    assert [(s["sound_id"], s["track"]) for s in verdict["sounds"]] == [(1, 1)], verdict
    assert [(t["index"], t["audible"]) for t in verdict["tracks"]] == [(0, False), (1, True)]


def test_a_new_sound_in_a_multitrack_upload_is_its_first_audible_track(store, reuse, other):
    decoy = other[: 15 * SR]
    verdict = _submit(store, _multitrack([np.zeros(SR * 5, np.float32), decoy, reuse]), "fresh").verdict
    assert verdict["sounds"] == [] and verdict["original_sound_id"] is not None
    with store.session(readonly=True) as session:
        sound = db.get_sound(session, verdict["original_sound_id"])
    assert sound.duration_seconds == pytest.approx(15.0, abs=0.01)


def test_more_audio_tracks_than_the_limit_are_refused_and_nothing_is_recorded(chant_store, reuse):
    settings = Settings(limits=Limits(max_audio_tracks=2))
    with pytest.raises(BadAudioError, match="3 audio tracks"):
        _submit(chant_store, _multitrack([reuse, reuse, reuse]), "three", settings)
    with chant_store.session(readonly=True) as session:
        assert db.find_upload(session, content_id="three") is None


def test_the_time_budget_covers_the_whole_check_not_only_decoding(chant_store, reuse, other, monkeypatch):
    real = catalogue.match_fingerprint
    clock = {"calls": 0}

    def slow_match(*args, **kwargs):  # matching, not decoding, is what is slow here
        clock["calls"] += 1
        import time
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(catalogue, "match_fingerprint", slow_match)
    settings = Settings(limits=Limits(decode_timeout_seconds=0.5, check_seconds_per_audio_minute=0.0))
    with pytest.raises(CheckTimeoutError, match="longer than the limit"):
        _submit(chant_store, _wav(np.concatenate([other, reuse])), "slow", settings)
    assert clock["calls"] <= 3  # it stopped at the budget instead of matching every window
    with chant_store.session(readonly=True) as session:
        assert db.find_upload(session, content_id="slow") is None
