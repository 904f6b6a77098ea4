"""Fast checks of the embedded family and the memory benchmark's helpers (no corpus needed)."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from bench.embedded import (
    Embedded,
    assemble,
    cut_chunks,
    embed,
    level,
    positions_in,
    render,
    score,
    select_clips,
    summarize,
)
from bench.manifest import Query, read_jsonl, write_jsonl
from bench.memory import Sampler, run_measured, status_kib
from bench.sources import SR
from bench.transforms import rms


def noise(seconds: float, seed: int, scale: float = 0.1) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def record(role: str = "embedded", *, at: float = 60.0, length: float = 5.0, offset: float = 30.0, speed: float = 1.0,
           position: str = "middle", host: float = 120.0, query_id: str = "q1", ref_id: str = "ref-a") -> Embedded:
    return Embedded(f"{query_id}-{role}-{position}", "embedded/x.flac", role, query_id, ref_id, "clean", length, offset,
                    speed, 0.0, host, position, at, host)


def match(sound_id: int, query_start: float, query_end: float, sound_start: float, anchors: int = 20) -> dict:
    return {"sound_id": sound_id, "query_start": query_start, "query_end": query_end, "sound_start": sound_start,
            "speed": 1.0, "anchors": anchors}


REFS = {1: "ref-a", 2: "ref-b"}


@pytest.mark.parametrize("host_seconds", [120.0, 600.0])
def test_embedding_puts_the_clip_where_the_manifest_says(tmp_path, host_seconds: float) -> None:
    clip = noise(5.0, 1, scale=0.15)
    filler = noise(host_seconds - 5.0, 2)
    for position, at in positions_in(len(filler)).items():
        samples = embed(filler, clip, at)
        assert len(samples) == len(filler) + len(clip)
        # Written and read back as the builder does (FLAC, 16 bit): the clip is at `at`, nowhere else.
        path = tmp_path / f"{position}.flac"
        sf.write(path, samples, SR, subtype="PCM_16")
        back, rate = sf.read(path, dtype="float32")
        assert rate == SR
        np.testing.assert_allclose(back[at:at + len(clip)], clip, atol=1 / 32768 + 1e-6)
        np.testing.assert_allclose(np.delete(back, np.s_[at:at + len(clip)]), filler, atol=1 / 32768 + 1e-6)
        corr = np.correlate(back[max(0, at - SR):at + SR + len(clip)], clip[: SR // 2], mode="valid")
        assert int(np.argmax(corr)) + max(0, at - SR) == at
    assert positions_in(len(filler)) == {"start": 0, "middle": len(filler) // 2, "end": len(filler)}
    with pytest.raises(ValueError):
        embed(filler, clip, len(filler) + 1)


def test_filler_is_levelled_to_the_clip_and_peak_limited() -> None:
    loud = noise(30, 3, scale=0.5)
    quiet = noise(30, 4, scale=0.01)
    target = 0.05
    assert rms(level(quiet, target)) == pytest.approx(target, rel=1e-3)
    spiky = quiet.copy()
    spiky[100] = 0.9  # a click: lifting the RMS to target would clip it
    limited = level(spiky, 0.3)
    assert np.max(np.abs(limited)) == pytest.approx(0.95, rel=1e-4)
    filler, used = assemble([loud, quiet, spiky], [2, 0, 1], 1, int(70 * SR), target)
    assert len(filler) == 70 * SR
    assert used == [0, 1, 2]  # starts at order[1], wraps around, never repeats within the pool
    assert rms(filler[: 30 * SR]) == pytest.approx(target, rel=1e-2)


def test_chunks_skip_silence_and_short_tails() -> None:
    audio = np.concatenate([noise(30, 5), np.zeros(30 * SR, np.float32), noise(35, 6)])
    chunks = cut_chunks(audio)
    assert [start for start, _ in chunks] == [0.0, 60.0]  # the silent 30 s and the 5 s tail are dropped
    assert all(len(c) == 30 * SR for _, c in chunks)


def test_clip_selection_spans_the_transforms_and_is_seeded() -> None:
    queries = [Query(f"q{t}{n}{i}", "", "r", 0.0, 1.0, 0.0, t, n) for t in "abcd" for n in (3.0, 5.0, 10.0) for i in range(3)]
    chosen = select_clips(queries, 6, random.Random(1))
    assert [q.length for q in chosen] == [5.0] * 6 + [10.0] * 6
    for length in (5.0, 10.0):
        picked = [q.transform for q in chosen if q.length == length]
        assert sorted(set(picked)) == list("abcd")  # every edit before any gets a second clip
    assert len({q.id for q in chosen}) == len(chosen)
    assert [q.id for q in chosen] == [q.id for q in select_clips(queries, 6, random.Random(1))]


def test_found_and_covered_when_the_match_is_the_clip_where_it_is() -> None:
    rec = record(at=60.0, length=5.0, offset=30.0)
    # The match begins 0.4 s into the clip: 30.4 s into the reference.
    out = score(rec, [match(1, 60.4, 64.6, 30.4)], REFS)
    assert out["found"] and out["found_any"] and out["covers"] and out["inside"]
    assert out["start_error"] == pytest.approx(0.4) and out["end_error"] == pytest.approx(-0.4)
    assert out["others"] == 0


def test_a_match_range_reaching_into_the_filler_does_not_cover() -> None:
    rec = record(at=60.0, length=5.0, offset=30.0)
    # Right reference, right alignment, but the range spills 10 s before the clip.
    out = score(rec, [match(1, 50.0, 65.0, 20.0)], REFS)
    assert out["found"] and not out["covers"] and not out["inside"]
    # Right place, but only a second of the clip: found, not covered, inside.
    short = score(rec, [match(1, 62.0, 63.0, 32.0)], REFS)
    assert short["found"] and not short["covers"] and short["inside"]


def test_sound_position_is_checked_through_the_clip_offset_and_speed() -> None:
    rec = record(at=100.0, length=10.0, offset=40.0, speed=1.25)
    # 2 s into the clip = 2.5 s of reference: 42.5.
    assert score(rec, [match(1, 102.0, 109.0, 42.5)], REFS)["found"]
    # Placed as if the clip started at the top of the upload (the bug this catches): wrong.
    assert not score(rec, [match(1, 102.0, 109.0, 40.0 + 102.0 * 1.25)], REFS)["found_any"]
    assert not score(rec, [match(1, 102.0, 109.0, 44.0)], REFS)["found_any"]


def test_another_sound_first_is_not_recall_at_1_but_is_found() -> None:
    rec = record(at=0.0, length=5.0, offset=10.0, position="start")
    out = score(rec, [match(2, 30.0, 40.0, 0.0), match(1, 0.2, 4.8, 10.2)], REFS)
    assert not out["found"] and out["found_any"] and out["covers"] and out["others"] == 1
    assert not score(rec, [], REFS)["found_any"]


def test_any_match_in_a_host_alone_is_a_false_positive() -> None:
    host = record("host", position="")
    assert score(host, [match(1, 3.0, 9.0, 50.0)], REFS)["others"] == 1
    assert score(host, [], REFS)["others"] == 0


def test_summary_pairs_each_row_with_the_clip_alone() -> None:
    recs = [
        record("alone", at=0.0, host=0.0, position="", query_id="q1"),
        record("alone", at=0.0, host=0.0, position="", query_id="q2"),
        record(at=60.0, query_id="q1"),
        record(at=60.0, query_id="q2"),
        record("host", position="", query_id="q1"),
    ]
    outs = [
        {**score(recs[0], [match(1, 0.1, 4.9, 30.1)], REFS), "latency": 0.1},
        {**score(recs[1], [], REFS), "latency": 0.1},
        {**score(recs[2], [], REFS), "latency": 2.0},  # lost in the host
        {**score(recs[3], [match(1, 60.1, 64.9, 30.1)], REFS), "latency": 3.0},  # gained
        {**score(recs[4], [match(2, 1.0, 9.0, 5.0)], REFS), "latency": 1.0},
    ]
    summary = summarize(recs, outs)
    rows = {(r["host_seconds"], r["position"]): r for r in summary["rows"]}
    assert rows[(0.0, "alone")]["found_any"] == 0.5
    middle = rows[(120.0, "middle")]
    assert (middle["lost_vs_alone"], middle["gained_vs_alone"], middle["covers"]) == (1, 1, 0.5)
    assert summary["hosts"] == [pytest.approx({"host_seconds": 120.0, "n": 1, "hours": 120 / 3600, "with_matches": 1,
                                               "matches": 1, "latency_p50": 1.0, "latency_p95": 1.0, "errors": 0})]
    text = render({"started": "t", "db": "sqlite", "corpus": "c", "machine": "m", "code": "x", "params_digest": "d",
                   "build": {"clips": 2, "clips_by_length": {"5": 2}, "hosts": [120.0], "chunks": 3, "chunks_kept": 2,
                             "filler_hours": 0.1, "dropped": []}, **summary})
    assert "| 5 s | 2 min, middle | 2 | 50% | 50% | 50% |" in text


def test_manifest_round_trip_keeps_the_filler_list(tmp_path) -> None:
    rec = Embedded("e", "embedded/e.flac", "embedded", "q1", "r", "clean", 5.0, 1.0, 1.0, 0.0, 120.0, "end", 115.0,
                   120.0, [3, 1, 4])
    write_jsonl(tmp_path / "e.jsonl", [rec])
    assert read_jsonl(tmp_path / "e.jsonl", Embedded) == [rec]


def test_status_fields_are_read_in_kib() -> None:
    text = "Name:\tpython\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n"
    assert status_kib(text, "VmHWM") == 123456
    assert status_kib(text, "VmRSS") == 100000
    assert status_kib(text, "VmSwap") is None


def test_peak_rss_of_a_child_sees_what_it_allocated() -> None:
    code = "import numpy as np; a = np.ones(300 * 2**20 // 8); print(a.sum())"
    rc, wall, peak_mb, out, _, samples = run_measured([sys.executable, "-c", code], env={}, max_bytes=None, timeout=60)
    assert rc == 0 and out.strip()
    assert 300 <= peak_mb < 600
    assert wall > 0
    assert Sampler.peak_between(samples, 0, float("inf")) is None or Sampler.peak_between(samples, 0, float("inf")) <= peak_mb + 1


def test_the_address_space_cap_fails_the_child_not_the_machine() -> None:
    code = "import numpy as np; a = np.ones(2 * 2**30 // 8); print('allocated')"
    rc, _, _, out, err, _ = run_measured([sys.executable, "-c", code], env={}, max_bytes=1 * 2**30, timeout=60)
    assert rc != 0 and "allocated" not in out and "MemoryError" in err


def test_wait4_peak_is_the_childs_not_the_parents() -> None:
    # A tiny child: its peak is tens of MB, whatever this test process holds.
    ballast = np.ones(200 * 2**20 // 8)
    rc, _, peak_mb, _, _, _ = run_measured([sys.executable, "-c", "pass"], env={}, max_bytes=None, timeout=30)
    assert rc == 0 and peak_mb < 100
    assert ballast.sum() > 0
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0


def test_matched_sounds_are_split_into_the_uploads_references_and_others() -> None:
    from bench.memory import classify

    sound_to_ref = {1: "music-0000", 2: "music-0001", 3: "prompts-0090"}
    out = classify([2, 1, 2, 3, 9], sound_to_ref, ["music-0000", "music-0001"])
    assert out == {"sounds": 4, "sounds_in_upload": 2, "other_sounds": ["prompts-0090", "sound 9"]}
