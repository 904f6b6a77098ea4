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
from audiofp.store.models import Sound, Upload, Use

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


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


def test_an_upload_racing_a_removal_is_flagged_or_in_its_feed(store, monkeypatch):
    """A removal pauses between reading the live uses it reports and committing;
    an upload of the same sound arrives meanwhile. It must not slip through both
    nets: either its verdict shows the link or the removal's events list it."""
    import threading
    from datetime import datetime, timezone

    from audiofp.services import CLI_ACTOR, Settings, events_since, record_removal, submit_upload
    from audiofp import store as db

    settings = Settings()
    now = datetime(2024, 5, 1, tzinfo=timezone.utc)
    chant = (SAMPLES / "chant.ogg").read_bytes()
    submit_upload(store, chant, content_id="orig", account_id="a", uploaded_at=now, settings=settings)
    y, sr = sf.read(SAMPLES / "chant.ogg", dtype="float32")
    reuse, racer = _wav(y[sr * 2: sr * 14], sr), _wav(y[sr * 12: sr * 24], sr)
    submit_upload(store, reuse, content_id="to-remove", account_id="b", uploaded_at=now, settings=settings)

    paused, go = threading.Event(), threading.Event()
    real_insert_events = db.insert_events

    def slow_insert_events(*args, **kwargs):
        paused.set()
        assert go.wait(30)
        return real_insert_events(*args, **kwargs)

    monkeypatch.setattr(db, "insert_events", slow_insert_events)
    outcome: dict = {}
    remover = threading.Thread(target=lambda: outcome.update(removal=record_removal(
        store, content_id="to-remove", policy_label="p", reason=None, actor=CLI_ACTOR)))
    uploader = threading.Thread(target=lambda: outcome.update(upload=submit_upload(
        store, racer, content_id="racer", account_id="c", uploaded_at=now, settings=settings)))
    remover.start()
    assert paused.wait(30)
    uploader.start()
    uploader.join(3)  # without ordering, the upload finishes here, unflagged, before the removal commits
    go.set()
    remover.join(60)
    uploader.join(60)

    flagged = outcome["upload"].verdict["linked_to_removed_content"]
    events = events_since(store, outcome["removal"].events_cursor).events
    assert flagged or "racer" in [e.content_id for e in events]


def _excerpt(start: float, seconds: float) -> bytes:
    chant, sr = sf.read(SAMPLES / "chant.ogg", dtype="float32")
    return _wav(chant[int(sr * start): int(sr * (start + seconds))], sr)


def _send_all(h, forms: list[dict], key: str) -> list[tuple[int, bytes, str | None]]:
    def send(form):
        client = h.app.test_client()
        r = client.post("/v1/uploads", headers={**h.auth("pipeline"), "Idempotency-Key": key}, data={
            **form, "file": (io.BytesIO(form["file"]), "clip.wav"), "uploaded_at": "2024-05-01T12:00:00Z"})
        return r.status_code, r.data, (r.get_json() or {}).get("type")

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(send, forms))


def test_one_key_sent_with_16_different_payloads_at_once_records_one_and_refuses_15(harness):
    h = harness
    clip = _excerpt(2.0, 8.0)
    forms = [{"file": clip, "content_id": f"vid-{i}", "account_id": "acct"} for i in range(16)]
    results = _send_all(h, forms, "shared-key")
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201] + [422] * 15, results
    assert {kind for status, _, kind in results if status == 422} == {"/problems/idempotency-mismatch"}
    with h.store.session() as session:
        assert session.scalar(select(func.count(Upload.id))) == 1


def test_one_key_sent_with_the_same_payload_16_times_at_once_replays_byte_for_byte(harness):
    h = harness
    form = {"file": _excerpt(2.0, 8.0), "content_id": "vid-1", "account_id": "acct"}
    results = _send_all(h, [form] * 16, "same-key")
    assert sorted(status for status, _, _ in results) == [200] * 15 + [201], results
    assert len({body for _, body, _ in results}) == 1
    with h.store.session() as session:
        assert session.scalar(select(func.count(Upload.id))) == 1
        assert session.scalar(select(func.count(Use.id))) == 1
