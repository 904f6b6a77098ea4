"""End-to-end stories through the API with real audio (samples/), on SQLite and PostgreSQL.

An original chant is uploaded, reused sped up and talked over by other
accounts, one reuse is removed, the next altered reuse is flagged, the earlier
uses appear in the event feed, the investigator sees the whole history, and a
reversed removal clears the flag. Plus retries, dry runs, search by clip, and
hostile files that must never produce a 500.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from api_fixtures import ApiHarness, harness, make_harness  # noqa: F401
from crafted_media import UNDECODABLE_HEADERS

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def read(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def wav(x: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def sped_up_excerpt(factor: float, start: float, seconds: float) -> bytes:
    """An excerpt of the chant played ``factor`` times faster (pitch and tempo together)."""
    y, sr = sf.read(SAMPLES / "chant.ogg", dtype="float32")
    excerpt = y[int(start * sr): int((start + seconds) * sr)]
    return wav(soxr.resample(excerpt, sr * factor, sr).astype(np.float32), sr)


def upload(h: ApiHarness, data: bytes, content_id: str, account_id: str, minute: int, *, name: str = "clip.ogg",
           headers: dict[str, str] | None = None):
    form = {"file": (io.BytesIO(data), name), "content_id": content_id, "account_id": account_id,
            "uploaded_at": f"2024-05-01T12:{minute:02d}:00Z", "metadata": '{"caption": "test"}'}
    return h.client.post("/v1/uploads", data=form, headers={**h.auth("pipeline"), **(headers or {})})


def clip_form(data: bytes, name: str = "clip.ogg") -> dict:
    return {"file": (io.BytesIO(data), name)}


def test_reuse_removal_flag_feed_history_and_reversal(harness):
    h = harness
    c = h.client

    first = upload(h, read("chant.ogg"), "vid-orig", "acct-origin", 0)
    assert first.status_code == 201
    timing = dict(part.split(";dur=") for part in first.headers["Server-Timing"].split(", "))
    assert set(timing) == {"decode", "match", "record"} and all(float(v) >= 0 for v in timing.values())
    original = first.get_json()
    chant_id = original["original_sound_id"]
    assert chant_id is not None and original["sounds"] == [] and original["action"] == "allow"

    fast = upload(h, sped_up_excerpt(1.15, 8.0, 12.0), "vid-fast", "acct-fresh-1", 5).get_json()
    assert [s["sound_id"] for s in fast["sounds"]] == [chant_id]
    reuse = fast["sounds"][0]
    assert reuse["speed"] == pytest.approx(1.15, abs=0.02)
    assert reuse["sound_start"] == pytest.approx(8.0, abs=1.0)
    assert fast["action"] == "allow" and fast["original_sound_id"] is None

    talked = upload(h, read("speech_over_chant.ogg"), "vid-talk", "acct-fresh-2", 10).get_json()
    assert chant_id in [s["sound_id"] for s in talked["sounds"]]
    assert talked["action"] == "allow"

    unrelated = upload(h, read("speech_en.ogg"), "vid-other", "acct-bystander", 15).get_json()
    assert chant_id not in [s["sound_id"] for s in unrelated["sounds"]]

    # The talked-over video is removed: the chant is now linked to removed content.
    removal = c.post("/v1/removals", json={"content_id": "vid-talk", "policy_label": "violent-extremism",
                                           "reason": "nasheed of a designated group"}, headers=h.auth("pipeline"))
    assert removal.status_code == 201
    removed = removal.get_json()
    assert chant_id in removed["sound_ids"]
    assert removed["affected_live_uploads"] == 2  # the original and the sped-up reuse
    feed = c.get(f"/v1/events?cursor={removed['events_cursor']}", headers=h.auth("pipeline")).get_json()
    assert sorted(e["upload"]["content_id"] for e in feed["events"]) == ["vid-fast", "vid-orig"]

    # The next altered reuse (sped up, talked over again, AAC in mp4) is flagged.
    flagged = upload(h, read("queries/altered_reuse.m4a"), "vid-next", "acct-fresh-3", 20, name="v.m4a").get_json()
    hit = next(s for s in flagged["sounds"] if s["sound_id"] == chant_id)
    assert hit["linked_to_removed_content"] and flagged["linked_to_removed_content"]
    assert flagged["action"] in ("block", "review")
    assert [(r["content_id"], r["policy_label"]) for r in flagged["removals"]] == [("vid-talk", "violent-extremism")]

    # The investigator sees the whole history.
    sound = c.get(f"/v1/sounds/{chant_id}", headers=h.auth("investigator")).get_json()
    assert sound["status"] == "linked_to_removed_content"
    assert sound["uses"] == 4 and sound["removed_uses"] == 1 and sound["accounts"] == 4
    history = c.get(f"/v1/sounds/{chant_id}/uses", headers=h.auth("investigator")).get_json()["uses"]
    assert [u["upload"]["content_id"] for u in history] == ["vid-orig", "vid-fast", "vid-talk", "vid-next"]
    assert [u["upload"]["state"] for u in history] == ["live", "live", "removed", "live"]
    assert history[2]["removal"]["policy_label"] == "violent-extremism"
    assert history[1]["upload"]["metadata"] == {"caption": "test"}
    shared = c.get("/v1/accounts/acct-fresh-3/shared-accounts", headers=h.auth("investigator")).get_json()
    assert {a["account_id"] for a in shared["accounts"]} == {"acct-origin", "acct-fresh-1", "acct-fresh-2"}

    # Search by clip: a short excerpt finds the chant with its history.
    found = c.post("/v1/search", data=clip_form(sped_up_excerpt(1.0, 3.0, 6.0), "q.wav"),
                   headers=h.auth("investigator")).get_json()["matches"]
    assert chant_id in [m["sound"]["id"] for m in found]
    assert next(m for m in found if m["sound"]["id"] == chant_id)["history"]["uses"][0]["upload"]["content_id"] == "vid-orig"

    searches = c.get("/v1/audit?action=search.clip", headers=h.auth("admin")).get_json()["entries"]
    assert [(e["actor"], e["detail"]["sounds"][:1]) for e in searches] == [("key:test-investigator", [chant_id])]

    # An appeal reverses the removal: the same clip is no longer flagged.
    reversed_ = c.post(f"/v1/removals/{removed['removal']['id']}/reversal", json={"reason": "appeal upheld"},
                       headers=h.auth("reviewer"))
    assert reversed_.status_code == 200
    dry = c.post("/v1/match", data=clip_form(read("queries/altered_reuse.m4a"), "v.m4a"), headers=h.auth("pipeline"))
    verdict = dry.get_json()
    assert chant_id in [s["sound_id"] for s in verdict["sounds"]]
    assert verdict["action"] == "allow" and not verdict["linked_to_removed_content"]
    assert verdict["recorded"] is False and verdict["upload"] is None
    assert c.get(f"/v1/sounds/{chant_id}", headers=h.auth("investigator")).get_json()["status"] == "clear"


def test_retries_never_record_twice_and_dry_runs_record_nothing(harness):
    h = harness
    c = h.client
    data = read("chant.ogg")
    first = upload(h, data, "vid-1", "acct", 0)
    again = upload(h, data, "vid-1", "acct", 0)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Server-Timing" not in again.headers
    assert again.data == first.data  # byte for byte the stored verdict
    chant_id = first.get_json()["original_sound_id"]

    keyed = upload(h, sped_up_excerpt(1.1, 2.0, 10.0), "vid-2", "acct", 1, headers={"Idempotency-Key": "req-42"})
    retried = upload(h, sped_up_excerpt(1.1, 2.0, 10.0), "vid-2", "acct", 1, headers={"Idempotency-Key": "req-42"})
    assert keyed.status_code == 201 and retried.status_code == 200 and retried.data == keyed.data

    for _ in range(2):
        dry = c.post("/v1/match", data=clip_form(sped_up_excerpt(1.0, 5.0, 8.0), "q.wav"), headers=h.auth("pipeline"))
        assert dry.status_code == 200 and dry.get_json()["sounds"][0]["sound_id"] == chant_id
    sound = c.get(f"/v1/sounds/{chant_id}", headers=h.auth("investigator")).get_json()
    assert sound["uses"] == 2  # the original and vid-2; no retry, no dry run recorded


def test_a_key_or_content_id_sent_again_with_another_payload_is_422_and_loses_nothing_silently(harness):
    h = harness
    c = h.client
    clip = sped_up_excerpt(1.1, 2.0, 10.0)
    first = upload(h, clip, "vid-1", "acct", 1, headers={"Idempotency-Key": "req-42"})
    assert first.status_code == 201
    other_clip = sped_up_excerpt(1.0, 12.0, 10.0)
    reused = {
        "another content id": (clip, "vid-2", "acct", {"Idempotency-Key": "req-42"}),
        "another account": (clip, "vid-1", "acct-other", {"Idempotency-Key": "req-42"}),
        "another file": (other_clip, "vid-1", "acct", {"Idempotency-Key": "req-42"}),
        "another file under the same content id": (other_clip, "vid-1", "acct", {}),
        "another account under the same content id": (clip, "vid-1", "acct-other", {}),
    }
    for case, (data, content_id, account_id, headers) in reused.items():
        r = upload(h, data, content_id, account_id, 1, headers=headers)
        assert r.status_code == 422, (case, r.get_json())
        problem = r.get_json()
        assert problem["type"] == "/problems/idempotency-mismatch", case
        assert "another" in problem["title"] or "different" in problem["title"]
    # the first payload is still answered from its record, byte for byte, with or without its key
    for headers in ({"Idempotency-Key": "req-42"}, {}):
        again = upload(h, clip, "vid-1", "acct", 1, headers=headers)
        assert again.status_code == 200 and again.data == first.data
    # nothing was recorded for the refused submissions: vid-2 is unknown
    assert c.post("/v1/removals", json={"content_id": "vid-2", "policy_label": "p"},
                  headers=h.auth("pipeline")).status_code == 404


def _chant_excerpt(start: float, seconds: float) -> bytes:
    y, sr = sf.read(SAMPLES / "chant.ogg", dtype="float32")
    return wav(y[int(start * sr): int((start + seconds) * sr)], sr)


UNFINGERPRINTABLE = {
    "one_sample": wav(np.array([0.5], np.float32), 8000),
    "200_ms_of_the_chant": _chant_excerpt(3.0, 0.2),
    "dc_offset_only": wav(np.full(22050 * 5, 0.5, np.float32), 22050),
}


@pytest.mark.parametrize("name", sorted(UNFINGERPRINTABLE))
def test_audio_too_short_or_flat_to_fingerprint_is_recorded_but_becomes_no_sound(harness, name):
    from sqlalchemy import func, select

    from audiofp.store.models import Sound, Upload, Use

    h = harness
    r = upload(h, UNFINGERPRINTABLE[name], f"tiny-{name}", "acct", 0, name="tiny.wav")
    assert r.status_code == 201, r.get_json()
    verdict = r.get_json()
    assert verdict["fingerprinted"] is False and verdict["original_sound_id"] is None
    assert verdict["sounds"] == [] and verdict["recorded"] is True and verdict["upload"]["content_id"] == f"tiny-{name}"
    with h.store.session() as session:
        counts = [session.scalar(select(func.count(m.id))) for m in (Sound, Upload, Use)]
    assert counts == [0, 1, 0]  # the upload is recorded; no sound with 0 fingerprints, no use of one
    again = upload(h, UNFINGERPRINTABLE[name], f"tiny-{name}", "acct", 0, name="tiny.wav")
    assert again.status_code == 200 and again.data == r.data
    dry = h.client.post("/v1/match", data=clip_form(UNFINGERPRINTABLE[name]), headers=h.auth("pipeline"))
    assert dry.status_code == 200 and dry.get_json()["fingerprinted"] is False
    normal = upload(h, read("chant.ogg"), "normal", "acct", 1).get_json()
    assert normal["fingerprinted"] is True and normal["original_sound_id"] is not None


def test_a_bit_identical_reupload_of_short_removed_content_is_flagged_as_its_use_is_recorded(harness):
    h = harness
    c = h.client
    short = _chant_excerpt(3.0, 1.0)  # a few fingerprints: too few for a fingerprint match of itself
    first = upload(h, short, "short-1", "acct-a", 0).get_json()
    sound_id = first["original_sound_id"]
    assert sound_id is not None and first["fingerprinted"] is True
    assert c.post("/v1/removals", json={"content_id": "short-1", "policy_label": "violent-extremism"},
                  headers=h.auth("pipeline")).status_code == 201

    for dry_run in (True, False):
        if dry_run:
            verdict = c.post("/v1/match", data=clip_form(short), headers=h.auth("pipeline")).get_json()
        else:
            verdict = upload(h, short, "short-2", "acct-b", 1).get_json()
        assert [s["sound_id"] for s in verdict["sounds"]] == [sound_id], verdict
        listed = verdict["sounds"][0]
        assert listed["linked_to_removed_content"] and listed["confidence"] == 1.0
        assert verdict["action"] == "block" and verdict["linked_to_removed_content"]
        assert [r["content_id"] for r in verdict["removals"]] == ["short-1"]
        assert listed["removal_ids"] == [verdict["removals"][0]["id"]]

    # the verdict and the records agree: the use the verdict names is the one in the history
    history = c.get(f"/v1/sounds/{sound_id}/uses", headers=h.auth("investigator")).get_json()["uses"]
    assert [(u["upload"]["content_id"], u["kind"]) for u in history] == [("short-1", "original"), ("short-2", "reuse")]
    assert history[1]["id"] == listed["use_id"]


def _silence() -> bytes:
    return wav(np.zeros(22050 * 5, np.float32), 22050)


HOSTILE = {
    "empty": b"",
    "text": b"hello, this is not audio at all\n" * 50,
    "random": np.random.default_rng(3).integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
    "truncated_ogg": read("chant.ogg")[:3000],
    "truncated_m4a": read("queries/altered_reuse.m4a")[:5000],
    "ogg_header_then_garbage": read("chant.ogg")[:200] + bytes(30_000),
    "wav_header_lies": b"RIFF\xff\xff\xff\x7fWAVEfmt " + bytes(40),
    **{f"wav_{name}": data for name, data in UNDECODABLE_HEADERS.items()},
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_422_never_500(harness, name):
    h = harness
    r = upload(h, HOSTILE[name], f"hostile-{name}", "acct-x", 0, name="upload.bin")
    assert r.status_code == 422, r.get_json()
    problem = r.get_json()
    assert problem["type"] == "/problems/bad-media" and problem["detail"]
    r = h.client.post("/v1/search", data=clip_form(HOSTILE[name]), headers=h.auth("investigator"))
    assert r.status_code == 422
    r = h.client.post("/v1/match", data=clip_form(HOSTILE[name]), headers=h.auth("pipeline"))
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    # a rejected upload records nothing, so the content id is still free
    assert h.client.post("/v1/removals", json={"content_id": f"hostile-{name}", "policy_label": "p"},
                         headers=h.auth("pipeline")).status_code == 404


def test_an_upload_with_no_audible_track_gets_a_verdict_that_says_so(harness):
    from sqlalchemy import func, select

    from audiofp.store.models import Sound, Upload, Use

    h = harness
    r = upload(h, _silence(), "quiet-1", "acct-q", 0, name="quiet.wav")
    assert r.status_code == 201, r.get_json()
    verdict = r.get_json()
    assert verdict["audible"] is False and verdict["fingerprinted"] is False and verdict["action"] == "allow"
    assert verdict["tracks"] == [{"index": 0, "duration_seconds": 5.0, "decodable": True, "audible": False}]
    assert verdict["sounds"] == [] and verdict["original_sound_id"] is None
    with h.store.session() as session:
        assert [session.scalar(select(func.count(m.id))) for m in (Sound, Upload, Use)] == [0, 1, 0]
    dry = h.client.post("/v1/match", data=clip_form(_silence()), headers=h.auth("pipeline"))
    assert dry.status_code == 200 and dry.get_json()["audible"] is False
    # an investigator searching by a silent clip has nothing to search with
    r = h.client.post("/v1/search", data=clip_form(_silence()), headers=h.auth("investigator"))
    assert r.status_code == 422 and r.get_json()["type"] == "/problems/silent-audio"


def test_audio_longer_than_the_limit_is_413(sqlite_url):
    h = make_harness(sqlite_url, MAX_AUDIO_SECONDS=5.0)
    try:
        r = upload(h, read("chant.ogg"), "long", "acct", 0)
        assert r.status_code == 413 and r.get_json()["type"] == "/problems/audio-too-long"
    finally:
        h.app.extensions["audiofp"].close()
