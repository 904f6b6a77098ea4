"""Several clients uploading at once lose nothing and duplicate nothing.

Threads share one app (as gunicorn threads do) and race on the cases that can
go wrong: the same content id sent by several retrying clients, several new
uploads of one recording never seen before (which must become one sound, not
several), and reuses recorded while the original is being registered.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from sqlalchemy import func, select

from api_fixtures import harness  # noqa: F401
from audiofp.store.models import Sound
from audiofp.store.moderation_models import Upload, Use

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _wav(x: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_concurrent_uploads_lose_nothing_and_duplicate_nothing(harness):
    h = harness
    chant, sr = sf.read(SAMPLES / "chant.ogg", dtype="float32")
    speech = (SAMPLES / "speech_en.ogg").read_bytes()
    variants = {  # distinct content ids: the chant re-uploaded as is and sped up by various factors
        f"reuse-{i}": _wav(soxr.resample(chant[sr * i: sr * (i + 12)], sr * f, sr).astype(np.float32), sr)
        for i, f in enumerate((1.0, 1.05, 0.95, 1.1), start=1)
    }
    jobs = []
    for attempt in range(4):  # four retrying clients sending the same upload
        jobs.append(("orig", (SAMPLES / "chant.ogg").read_bytes(), "acct-orig"))
    for attempt in range(3):
        jobs.append(("speech", speech, "acct-speech"))
    jobs += [(cid, data, f"acct-{cid}") for cid, data in variants.items()]
    jobs = jobs[::2] + jobs[1::2]  # interleave duplicates with the rest

    def send(job):
        content_id, data, account = job
        client = h.app.test_client()
        r = client.post("/v1/uploads", headers=h.auth("pipeline"), data={
            "file": (io.BytesIO(data), "clip.wav"), "content_id": content_id, "account_id": account,
            "uploaded_at": "2024-05-01T12:00:00Z"})
        return content_id, r.status_code, r.data

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(send, jobs))

    assert {status for _, status, _ in results} <= {200, 201}, results
    by_id: dict[str, set[bytes]] = {}
    created: dict[str, int] = {}
    for content_id, status, body in results:
        by_id.setdefault(content_id, set()).add(body)
        created[content_id] = created.get(content_id, 0) + (status == 201)
    assert all(len(bodies) == 1 for bodies in by_id.values()), "retries got different answers"
    assert all(n == 1 for n in created.values()), created

    with h.store.session() as session:
        uploads = session.scalar(select(func.count(Upload.id)))
        uses = session.execute(select(Use.upload_id, Use.sound_id)).all()
        sounds = session.scalar(select(func.count(Sound.id)))
    assert uploads == len(by_id)  # 2 + 4 distinct content ids, each once
    assert len(uses) == len(set(uses)) == uploads  # one use per upload, none doubled
    # the chant became one sound whichever of its uploads won the race, the speech another
    assert sounds == 2
