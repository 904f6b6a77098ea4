"""The scale test's filler: real peaks cut into stretches, played backwards, moved in pitch.

If the filler could match, every false-positive figure at scale would be the
filler's; if it were not built like real audio, every latency figure would be
of another index.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiofp import services
from audiofp.config import Settings
from audiofp.engine.params import DEFAULT_PARAMS
from audiofp.engine.types import Peaks
from audiofp.store import Store, get_sounds, peaks_of_sounds
from bench.filler import (
    FILLER_LABEL,
    FILLER_SECONDS,
    SEGMENT_SECONDS,
    SHIFT_BINS,
    FillerModel,
    add_filler,
    filler_count,
    filler_sounds,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
FRAME = DEFAULT_PARAMS.frame_seconds


def synthetic_model(*, band: tuple[float, float] = (0.0, 200.0)) -> FillerModel:
    """Two sources whose peaks carry their own index as strength, so a filler peak tells where it came from."""
    gen = np.random.default_rng(5)
    sources = []
    offset = 0
    for seconds in (60.0, 45.0):
        n = int(seconds * 15)  # about the real audio's 15 peaks a second
        time = np.sort(gen.uniform(0, seconds / FRAME, n)).astype(np.float32)
        freq = gen.uniform(60.0, 110.0, n).astype(np.float32)
        sources.append(Peaks(time=time, freq=freq, strength=np.arange(offset, offset + n, dtype=np.float32)))
        offset += n
    return FillerModel(sound_ids=(1, 2), sources=tuple(sources), frames=np.array([60.0 / FRAME, 45.0 / FRAME]),
                       freq_low=band[0], freq_high=band[1], frame_seconds=FRAME, real_seconds=105.0,
                       real_postings=0)


def test_a_filler_sound_is_backwards_pitch_moved_stretches_of_real_peaks() -> None:
    model = synthetic_model()
    originals = Peaks(time=np.concatenate([s.time for s in model.sources]),
                      freq=np.concatenate([s.freq for s in model.sources]),
                      strength=np.concatenate([s.strength for s in model.sources]))
    peaks = model.sound_peaks(np.random.default_rng(1), FILLER_SECONDS)
    assert np.all(np.diff(peaks.time) >= 0)
    assert 0 < peaks.time.min() and peaks.time.max() <= FILLER_SECONDS / FRAME + 1e-3
    source = peaks.strength.astype(np.int64)
    # A stretch: filler time + original time constant (played backwards), frequency moved by one whole shift.
    # Stretches are laid in time order, so one is a run of consecutive filler peaks (float32 times: a tolerance).
    mirror = peaks.time.astype(np.float64) + originals.time[source]
    shift = np.round(peaks.freq - originals.freq[source], 3)
    cuts = np.flatnonzero((np.abs(np.diff(mirror)) > 0.05) | (np.diff(shift) != 0)) + 1
    groups = np.split(np.arange(len(peaks)), cuts)
    assert FILLER_SECONDS / SEGMENT_SECONDS[1] <= len(groups) <= FILLER_SECONDS / SEGMENT_SECONDS[0] + 1
    last_end = 0.0
    for members in groups:
        s = float(shift[members[0]])
        ids = np.sort(source[members])
        assert SHIFT_BINS[0] <= abs(s) <= SHIFT_BINS[1] and s == round(s)
        # Every original peak of the stretch is there (nothing dropped inside the band), in reverse order.
        assert np.array_equal(ids, np.arange(ids[0], ids[-1] + 1))
        assert np.all(np.diff(source[members]) == -1)
        times = peaks.time[members]
        assert (times.max() - times.min()) * FRAME <= SEGMENT_SECONDS[1] + 1e-3
        assert times.min() >= last_end - 1e-3  # laid end to end, never overlapping
        last_end = float(times.max())
    # Stretches of about 7.5 s of 15 peaks a second: the density of the real peaks.
    assert len(peaks) / FILLER_SECONDS == pytest.approx(15.0, rel=0.15)


def test_peaks_moved_past_the_band_are_reflected_back_into_it() -> None:
    model = synthetic_model(band=(60.0, 110.0))
    peaks = model.sound_peaks(np.random.default_rng(2), FILLER_SECONDS)
    assert peaks.freq.min() >= 60.0 and peaks.freq.max() <= 110.0
    # Moves of 6-24 bins on a 50-bin band push many peaks past an edge; none is lost, so the
    # filler keeps the sources' 15 peaks a second.
    assert len(peaks) / FILLER_SECONDS == pytest.approx(15.0, rel=0.15)


def test_filler_of_a_seed_is_the_same_every_time() -> None:
    model = synthetic_model()
    first = list(filler_sounds(model, DEFAULT_PARAMS, 7, 10, 3))
    again = list(filler_sounds(model, DEFAULT_PARAMS, 7, 10, 3))
    other = list(filler_sounds(model, DEFAULT_PARAMS, 8, 10, 3))
    assert [i for i, _ in first] == [10, 11, 12]
    assert [s.digest for _, s in first] == [hashlib.sha256(f"filler:7:{i}".encode()).hexdigest() for i in (10, 11, 12)]
    for (_, a), (_, b), (_, c) in zip(first, again, other):
        assert a.fingerprint.peaks.to_bytes() == b.fingerprint.peaks.to_bytes()
        assert np.array_equal(a.fingerprint.hashes, b.fingerprint.hashes)
        assert a.fingerprint.peaks.to_bytes() != c.fingerprint.peaks.to_bytes()
        assert a.duration == FILLER_SECONDS and len(a.fingerprint) > 0


def _excerpt(path: Path, start: float, seconds: float, speed: float = 1.0) -> bytes:
    """``seconds`` of ``path`` from ``start``, sped up by ``speed`` (resampled: pitch moves too), as WAV."""
    audio, rate = sf.read(path, dtype="float32")
    audio = audio[int(start * rate): int((start + seconds * speed) * rate)]
    if speed != 1.0:
        audio = np.interp(np.arange(0, len(audio), speed), np.arange(len(audio)), audio).astype(np.float32)
    out = io.BytesIO()
    sf.write(out, audio, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


@pytest.fixture
def chant_store(tmp_path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'scale.sqlite'}")
    yield store
    store.dispose()


def test_filler_is_registered_through_the_service_and_never_matches_a_real_query(chant_store: Store) -> None:
    store = chant_store
    chant = services.ingest(store, SAMPLES / "chant.ogg", settings=Settings()).sound_id
    model = FillerModel.from_store(store, [chant])
    assert model.peaks_per_second > 5 and model.freq_low < model.freq_high
    # 8 filler sounds from 30 s of chant: every second of it is in the filler about 60 times, backwards.
    figures = add_filler(store, model, 8 * FILLER_SECONDS / 3600, chunk_hours=3 * FILLER_SECONDS / 3600, seed=4,
                         log=lambda _line: None)
    assert figures["filler_sounds"] == 8 and [c["sounds"] for c in figures["chunks"]] == [3, 3, 2]
    assert filler_count(store) == 8
    with store.session(readonly=True) as session:
        sounds = get_sounds(session, range(chant + 1, chant + 9))
        stored = peaks_of_sounds(session, list(sounds))
    assert {s.label for s in sounds.values()} == {FILLER_LABEL}
    assert sum(s.fingerprint_count for s in sounds.values()) == figures["filler_postings"] > 0
    assert sum(len(Peaks.from_bytes(b)) for b in stored.values()) == figures["filler_peaks"]
    for start, speed in ((3.0, 1.0), (12.0, 1.0), (20.0, 1.1)):
        result = services.identify(store, _excerpt(SAMPLES / "chant.ogg", start, 5.0, speed), settings=Settings())
        assert result.matches and result.matches[0].sound_id == chant
        assert {m.sound_id for m in result.matches} == {chant}


def test_filler_added_in_steps_is_the_filler_added_at_once(tmp_path) -> None:
    def filled(name: str, steps: list[tuple[int, int]]) -> dict[str, bytes]:
        store = Store.open(f"sqlite:///{tmp_path / name}")
        try:
            real = services.ingest(store, SAMPLES / "speech_en.ogg", settings=Settings()).sound_id
            model = FillerModel.from_store(store, [real])
            for first, count in steps:
                add_filler(store, model, count * FILLER_SECONDS / 3600, chunk_hours=2 * FILLER_SECONDS / 3600,
                           seed=9, first_index=first, log=lambda _line: None)
            with store.session(readonly=True) as session:
                sounds = get_sounds(session, range(real + 1, real + 5))
                peaks = peaks_of_sounds(session, list(sounds))
            return {sounds[i].content_digest: peaks[i] for i in sounds}
        finally:
            store.dispose()

    assert filled("once.sqlite", [(0, 4)]) == filled("steps.sqlite", [(0, 2), (2, 2)])


def tiny_corpus(folder: Path) -> Path:
    """A corpus of the four samples: a few 5 s excerpts as queries, noise and a tone as negatives."""
    from bench.manifest import NEGATIVES, QUERIES, REFERENCES, SUMMARY, Negative, Query, Reference, write_jsonl

    (folder / "queries").mkdir(parents=True)
    (folder / "negatives").mkdir()
    refs, queries = [], []
    for path in sorted(SAMPLES.glob("*.ogg")):
        refs.append(Reference(path.stem, str(path), "music", "none", sf.info(path).duration))
        name = f"queries/{path.stem}.wav"
        (folder / name).write_bytes(_excerpt(path, 4.0, 5.0))
        queries.append(Query(f"q-{path.stem}", name, path.stem, 4.0, 1.0, 0.0, "clean", 5.0))
    gen = np.random.default_rng(0)
    negatives = []
    for i, audio in enumerate([0.1 * gen.standard_normal(5 * 16000),
                               0.3 * np.sin(2 * np.pi * 440 * np.arange(5 * 16000) / 16000)]):
        name = f"negatives/n{i}.wav"
        sf.write(folder / name, audio.astype(np.float32), 16000, format="WAV", subtype="PCM_16")
        negatives.append(Negative(f"n{i}", name, "synthetic", "noise", 0.0, "clean", 5.0, "heldout"))
    write_jsonl(folder / REFERENCES, refs)
    write_jsonl(folder / QUERIES, queries)
    write_jsonl(folder / NEGATIVES["calibration"], [])
    write_jsonl(folder / NEGATIVES["heldout"], negatives)
    (folder / SUMMARY).write_text(json.dumps({"reference_hours": sum(r.duration for r in refs) / 3600}))
    return folder


def test_the_scale_run_fills_builds_merges_and_measures_both_modes(tmp_path, capsys) -> None:
    import bench.scale as scale
    import bench.scale_common as scale_common
    import bench.scale_recover as scale_recover

    corpus = tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "results"
    # Sizes of a few 4-minute filler sounds; "the last hours" are a quarter of an hour here.
    status = scale.main(["--sizes", "0.5,1", "--last-hours", "0.25", "--chunk-hours", "0.2", "--queries", "4",
                         "--corpus", str(corpus), "--out", str(out), "--keep", str(tmp_path / "kept")])
    assert status == 0
    results = json.loads(next(out.glob("*-scale.json")).read_text())
    run = results["runs"]["sqlite"]
    assert run["filler_model"]["real_sounds"] == 4
    for key, target in (("0.5", 0.5), ("1", 1.0)):
        rec = run["sizes"][key]
        assert rec["hours"] == pytest.approx(target, abs=scale.FILLER_SECONDS / 3600)
        # A fresh folder gets a full build; the second build merges the last hours into it.
        assert rec["build_full"]["base"] is None and rec["build_incremental"]["merged_from_full"]
        assert rec["fill_last"]["filler_sounds"] >= 3 and rec["write_rate_last"]["sounds_per_second"] > 0
        assert rec["build_incremental"]["postings"] == rec["postings"] and rec["snapshot_holds_every_posting"]
        assert rec["snapshot_mb_per_hour"] > 0 and rec["mb_per_hour"] > 0
        for mode in scale.MODES:
            assert rec["modes"][mode]["queries"]["recall_at_1"] == 1.0, mode
            assert rec["modes"][mode]["negatives"]["heldout_fp"] == 0, mode
        assert rec["agreement"]["identical"] == rec["agreement"]["compared"] == 6
    assert run["sizes"]["1"]["write_rate_first_chunk"]["sounds"] == run["sizes"]["0.5"]["write_rate_first_chunk"]["sounds"]
    report = next(out.glob("*-scale.md")).read_text()
    assert "| 1.0 h | snapshot |" in report and "| 1.0 h | memory |" in report
    # The clips file scored again (as after a crash) from the run's results, and the modes set side by side.
    clips = str(next(out.glob("*-clips.jsonl")))
    capsys.readouterr()
    assert scale_recover.main([clips, "--state", str(next(out.glob("*-scale.json"))), "--corpus", str(corpus)]) == 0
    assert "| sqlite 1h memory | 4+2 |" in capsys.readouterr().out
    assert scale_common.main([clips]) == 0
    assert "| sqlite 0.5h | 4+2 | memory |" in capsys.readouterr().out
    # The kept store is measured again without ingesting, and grows with the same filler.
    status = scale.main(["--sizes", "1,1.5", "--last-hours", "0.25", "--chunk-hours", "0.2", "--queries", "4",
                         "--memory-mode", "off", "--corpus", str(corpus), "--out", str(out / "again"),
                         "--reuse", str(tmp_path / "kept")])
    assert status == 0
    again = json.loads(next((out / "again").glob("*-scale.json")).read_text())["runs"]["sqlite"]
    assert again["ingest"]["reused"] and "memory" not in again["sizes"]["1.5"]["modes"]
    assert again["sizes"]["1.5"]["modes"]["snapshot"]["queries"]["recall_at_1"] == 1.0
