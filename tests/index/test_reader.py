"""Lookups from the derived index: exactly the sounds' postings, never stale, never fatal.

Each test runs on SQLite and PostgreSQL. "Workers" are separate ``Store``
objects on one database, each with its own reader, as gunicorn's processes are.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiofp import index, services
from audiofp.index import assemble
from audiofp import store as db
from audiofp.config import Limits, Settings
from audiofp.engine.audio import decode
from audiofp.engine.types import POSTING_DTYPE
from audiofp.services.operations import open_store

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SETTINGS = Settings(limits=Limits(max_upload_bytes=50_000_000, max_audio_seconds=600.0))
SR = 22050


@pytest.fixture
def index_dir(tmp_path) -> Path:
    return tmp_path / "index"


@pytest.fixture
def workers(store_url, index_dir):
    """Two workers on one database, both reading snapshots from ``index_dir``."""
    opened = [open_store(store_url, index_dir=index_dir) for _ in range(2)]
    yield opened
    for s in opened:
        s.dispose()


def ingest(store, name: str) -> int:
    return services.ingest(store, SAMPLES / name, label=Path(name).stem, settings=SETTINGS).sound_id


def excerpt(tmp_path: Path, name: str, start: float, seconds: float) -> Path:
    x = decode(SAMPLES / name, sample_rate=SR).samples
    path = tmp_path / f"{Path(name).stem}-{start:g}.wav"
    sf.write(path, x[int(start * SR): int((start + seconds) * SR)], SR)
    return path


def found(store, clip: Path) -> list[int]:
    return [m.sound_id for m in services.identify(store, clip, settings=SETTINGS).matches]


def canonical(hashes: np.ndarray, postings: np.ndarray) -> list[tuple]:
    return sorted(zip(hashes.tolist(), *(postings[c].tolist() for c in POSTING_DTYPE.names)))


def fingerprinted(store, names: dict[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """Every posting of the sounds ``{id: sample}``, from their audio: what any index of them must hold."""
    parts = []
    for sound_id, name in names.items():
        fp = services.catalogue.fingerprint_for_index(decode(SAMPLES / name, sample_rate=store.params.sample_rate),
                                                      store.params)
        parts.append((fp.hashes, fp.postings(sound_id)))
    return np.concatenate([h for h, _ in parts]), np.concatenate([p for _, p in parts])


def among(hashes: np.ndarray, postings: np.ndarray, asked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isin(hashes, asked)
    return hashes[keep], postings[keep]


def test_the_index_holds_exactly_the_postings_of_the_sounds_audio(workers, index_dir, tmp_path):
    a, _ = workers
    names = {ingest(a, name): name for name in ("chant.ogg", "speech_en.ogg", "speech_ar.ogg")}
    index.build(a, index_dir)
    hashes, postings = fingerprinted(a, names)
    rng = np.random.default_rng(0)
    asked = np.concatenate([rng.choice(hashes, 800), rng.integers(0, 1 << 21, 400)]).astype(np.uint32)

    from_snapshot = index.reader_of(a).lookup(asked)
    index.attach(a, None)
    from_memory = index.reader_of(a).lookup(asked)

    expected = canonical(*among(hashes, postings, asked))
    assert len(expected) > 500
    assert canonical(*from_snapshot) == expected and canonical(*from_memory) == expected
    # And so the same matches, evidence included.
    clip = excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)
    in_memory = services.identify(a, clip, settings=SETTINGS)
    index.attach(a, index_dir)
    with_snapshot = services.identify(a, clip, settings=SETTINGS)
    assert [(m.sound_id, m.evidence) for m in with_snapshot.matches] == [(m.sound_id, m.evidence) for m in in_memory.matches]
    assert with_snapshot.postings == in_memory.postings > 0


@pytest.mark.parametrize("bucket_postings", [10**9, 300], ids=["one-bucket", "many-buckets"])
def test_a_merged_generation_is_identical_to_a_full_build(workers, index_dir, monkeypatch, bucket_postings):
    monkeypatch.setattr(assemble, "TARGET_BUCKET_POSTINGS", bucket_postings)
    a, _ = workers
    ingest(a, "chant.ogg")
    first = index.build(a, index_dir)
    for name in ("speech_en.ogg", "speech_ar.ogg"):
        ingest(a, name)
    merged = index.build(a, index_dir)
    full = index.build(a, index_dir, full=True, keep=2)

    assert merged.meta.base == first.path.name and full.meta.base is None
    assert (merged.meta.sounds, merged.meta.watermark) == (full.meta.sounds, full.meta.watermark) == (3, 3)
    for name in ("hashes", "starts", "postings"):
        assert np.array_equal(getattr(merged.index, name), getattr(full.index, name)), name
    assert merged.meta.postings == full.meta.postings > 2000


def test_a_sound_added_on_one_worker_is_matched_by_the_next_lookup_on_another(workers, index_dir, tmp_path):
    a, b = workers
    ingest(a, "chant.ogg")
    index.build(a, index_dir)
    clip = excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)
    assert found(b, clip) == []  # b maps the snapshot now, without speech_en

    speech = ingest(a, "speech_en.ogg")

    assert found(b, clip) == [speech]
    status = index.reader_of(b).status()
    assert (status.snapshot_sounds, status.recent_sounds) == (1, 1) and status.recent_postings > 0


def test_workers_switch_to_a_new_snapshot_and_drop_what_it_now_holds(workers, index_dir, tmp_path):
    a, b = workers
    ingest(a, "chant.ogg")
    first = index.build(a, index_dir)
    speech = ingest(a, "speech_en.ogg")
    clip = excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)
    assert found(b, clip) == [speech]

    second = index.build(a, index_dir)

    assert found(b, clip) == [speech]
    status = index.reader_of(b).status()
    assert status.snapshot == second.path.name != first.path.name
    assert (status.snapshot_sounds, status.recent_sounds) == (2, 0)
    assert not first.path.exists() or len(list(first.path.parent.glob("gen-*"))) <= 2


def test_a_sound_without_stored_peaks_is_reported_and_does_not_stop_lookups(workers, index_dir, tmp_path, caplog):
    # A damaged store (a peaks row deleted by hand): that sound cannot be
    # indexed, and the logs say so, but every other sound still matches.
    a, b = workers
    speech = ingest(a, "speech_en.ogg")
    index.build(a, index_dir)
    with a.session() as session:
        damaged = db.add_sound(session, content_digest="f" * 64, duration_seconds=30.0, scheme=a.params.scheme,
                               fingerprint_count=100)
    chant = ingest(a, "chant.ogg")

    assert found(b, excerpt(tmp_path, "chant.ogg", 10.0, 5.0)) == [chant]
    assert found(b, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == [speech]
    assert f"[{damaged.id}] have no stored peaks" in caplog.text
    caplog.clear()
    rebuilt = index.build(a, index_dir, full=True)
    assert rebuilt.meta.sounds == 3 and f"[{damaged.id}] have no stored peaks" in caplog.text


def _other_parameters(path: Path) -> None:
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "params_digest": "0" * 16}))


def _offsets_out_of_order(path: Path) -> None:
    # Still from 0 to the number of postings, but not in order: the compiled matcher would read past them.
    starts = np.load(path / "starts.npy")
    starts[1] = starts[-1]
    np.save(path / "starts.npy", starts)


def _truncated(path: Path) -> None:
    postings = path / "postings.npy"
    postings.write_bytes(postings.read_bytes()[:200])


@pytest.mark.parametrize("damage", [_other_parameters, _offsets_out_of_order, _truncated])
def test_a_damaged_or_foreign_snapshot_is_replaced_not_used(workers, index_dir, tmp_path, damage):
    a, b = workers
    speech = ingest(a, "speech_en.ogg")
    built = index.build(a, index_dir)
    damage(built.path)

    index.attach(b, index_dir)
    assert found(b, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == [speech]
    rebuilt = index.reader_of(b).status().snapshot
    assert rebuilt != built.path.name
    assert json.loads((built.path.parent / rebuilt / "meta.json").read_text())["base"] is None  # derived afresh


def test_another_store_never_reads_this_stores_snapshot(index_dir, tmp_path, sqlite_url):
    one = open_store(sqlite_url, index_dir=index_dir)
    other = open_store(f"sqlite:///{tmp_path / 'other.sqlite'}", index_dir=index_dir)
    try:
        ingest(one, "speech_en.ogg")
        built = index.build(one, index_dir)
        assert found(other, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == []
        status = index.reader_of(other).status()
        assert status.snapshot != built.path.name and status.snapshot_sounds == 0
    finally:
        one.dispose()
        other.dispose()


@pytest.mark.postgres
def test_a_sound_committed_late_below_a_newer_one_is_not_missed(pg_url, index_dir, tmp_path):
    # Sequence values are handed out at insert and committed in any order: a
    # reader that has seen sound n+1 must still pick up sound n when it commits.
    a = open_store(pg_url, index_dir=index_dir)
    b = open_store(pg_url, index_dir=index_dir)
    try:
        ingest(a, "chant.ogg")
        index.build(a, index_dir)
        inserted = threading.Event()
        release = threading.Event()
        slow: dict[str, int] = {}

        def slow_ingest() -> None:
            with a.session() as session:
                slow["id"] = services.catalogue.add_sound_audio(
                    session, a, decode(SAMPLES / "speech_en.ogg", sample_rate=8000), label="slow").sound_id
                inserted.set()
                release.wait(30)

        thread = threading.Thread(target=slow_ingest)
        thread.start()
        assert inserted.wait(60)
        fast = ingest(a, "speech_ar.ogg")
        assert fast > slow["id"]
        assert found(b, excerpt(tmp_path, "speech_ar.ogg", 4.0, 5.0)) == [fast]  # b has now seen the newer id
        release.set()
        thread.join(60)

        assert found(b, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == [slow["id"]]
    finally:
        a.dispose()
        b.dispose()


def test_a_worker_builds_the_first_snapshot_at_once_and_merges_the_next_by_itself(store_url, index_dir, tmp_path):
    # A threshold small enough for the samples (each holds 800-1,100 postings):
    # a merge once 500 postings are outside the snapshot.
    a = open_store(store_url, index_dir=index_dir, refresh_postings=500)
    try:
        reader = index.reader_of(a)
        chant = ingest(a, "chant.ogg")
        assert found(a, excerpt(tmp_path, "chant.ogg", 10.0, 5.0)) == [chant]  # the first lookup builds one
        first = reader.status()
        assert first.snapshot is not None and (first.snapshot_sounds, first.recent_sounds) == (1, 0)

        speech = ingest(a, "speech_en.ogg")  # over the threshold by itself
        assert found(a, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == [speech]  # from memory, while it merges
        reader.wait_for_build(60)
        second = reader.status()
        assert second.snapshot != first.snapshot and (second.snapshot_sounds, second.recent_sounds) == (2, 0)
        folder = next(index_dir.glob("*/CURRENT")).parent
        assert json.loads((folder / second.snapshot / "meta.json").read_text())["base"] == first.snapshot
    finally:
        a.dispose()


def test_no_worker_builds_while_another_holds_the_build_lock(store_url, index_dir):
    import fcntl

    a = open_store(store_url, index_dir=index_dir)
    try:
        ingest(a, "chant.ogg")
        index_dir.mkdir(parents=True, exist_ok=True)
        with open(index_dir / ".build.lock", "a+b") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            assert index.reader_of(a).refresh() is None
        assert index.reader_of(a).refresh() is not None
    finally:
        a.dispose()


def test_an_unusable_snapshot_folder_falls_back_to_an_index_in_memory(workers, index_dir, tmp_path):
    a, b = workers
    speech = ingest(a, "speech_en.ogg")
    index.build(a, index_dir)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    index.attach(b, blocker / "index")  # a path below a file: every access fails
    assert found(b, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == [speech]
    status = index.reader_of(b).status()
    assert status.snapshot is None and status.snapshot_sounds == 1


def test_a_worker_merges_only_once_the_new_sounds_are_a_share_of_the_snapshot(store_url, index_dir, tmp_path,
                                                                                  monkeypatch):
    # A merge copies the whole snapshot: at a large index it waits for a share of it, not a fixed amount.
    a = open_store(store_url, index_dir=index_dir, refresh_postings=1)
    try:
        reader = index.reader_of(a)
        ingest(a, "chant.ogg")
        found(a, excerpt(tmp_path, "chant.ogg", 10.0, 5.0))  # builds the first snapshot
        snapshot = reader.status()
        first = ingest(a, "speech_en.ogg")
        with a.session(readonly=True) as session:
            added = db.get_sound(session, first).fingerprint_count
        # Due after this sound and one more, not after this one alone.
        monkeypatch.setattr(index.reader, "MERGE_SHARE", 1.5 * added / snapshot.snapshot_postings)
        assert found(a, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == [first]
        reader.wait_for_build(60)
        assert reader.status().snapshot == snapshot.snapshot and reader.status().recent_sounds == 1

        second = ingest(a, "speech_ar.ogg")
        assert found(a, excerpt(tmp_path, "speech_ar.ogg", 4.0, 5.0)) == [second]
        reader.wait_for_build(60)
        merged = reader.status()
        assert merged.snapshot != snapshot.snapshot and (merged.snapshot_sounds, merged.recent_sounds) == (3, 0)
    finally:
        a.dispose()
