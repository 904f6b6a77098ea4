"""Two API workers answering from one index snapshot: an upload registered on one is matched on the other."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from api_fixtures import ApiHarness, make_harness
from audiofp.services.operations import build_index_snapshot, index_status

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def upload(h: ApiHarness, data: bytes, content_id: str, minute: int):
    form = {"file": (io.BytesIO(data), "clip.wav"), "content_id": content_id, "account_id": f"acct-{content_id}",
            "uploaded_at": f"2024-05-01T12:{minute:02d}:00Z"}
    response = h.client.post("/v1/uploads", data=form, headers=h.auth("pipeline"))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def sped_up(name: str, factor: float, start: float, seconds: float) -> bytes:
    y, sr = sf.read(SAMPLES / name, dtype="float32")
    fast = soxr.resample(y[int(start * sr): int((start + seconds) * sr)], sr * factor, sr).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, fast, sr, format="WAV")
    return buf.getvalue()


def test_an_upload_registered_on_one_worker_is_matched_by_the_next_upload_on_another(store_url, tmp_path):
    index_dir = tmp_path / "index"
    first = make_harness(store_url, INDEX_DIR=str(index_dir))
    second = make_harness(store_url, INDEX_DIR=str(index_dir))
    try:
        speech = upload(first, (SAMPLES / "speech_en.ogg").read_bytes(), "speech", 0)
        build_index_snapshot(first.store, index_dir)  # holds the speech; the chant comes after it
        chant = upload(first, (SAMPLES / "chant.ogg").read_bytes(), "chant", 1)
        assert chant["original_sound_id"] is not None and chant["sounds"] == []

        reuse = upload(second, sped_up("chant.ogg", 1.12, 8.0, 10.0), "reuse", 2)
        old = upload(second, sped_up("speech_en.ogg", 0.9, 5.0, 8.0), "old-reuse", 3)

        assert [s["sound_id"] for s in reuse["sounds"]] == [chant["original_sound_id"]]
        assert reuse["sounds"][0]["speed"] == pytest.approx(1.12, abs=0.02)
        assert [s["sound_id"] for s in old["sounds"]] == [speech["original_sound_id"]]
        status = index_status(second.store)
        assert status is not None and status.snapshot_sounds == 1 and status.recent_sounds >= 1
    finally:
        first.app.extensions["audiofp"].close()
        second.app.extensions["audiofp"].close()
