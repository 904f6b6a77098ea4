"""Lookups from an index snapshot: the same answers as SQL, never stale, never fatal.

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


def stored_hashes(store) -> np.ndarray:
    with store.session(readonly=True) as session:
        return np.concatenate([h for h, _ in db.index_rows(session, store.params.scheme)])


def test_a_snapshot_answers_exactly_what_the_sql_index_answers(workers, index_dir, tmp_path):
    a, _ = workers
    for name in ("chant.ogg", "speech_en.ogg", "speech_ar.ogg"):
        ingest(a, name)
    index.build(a, index_dir)
    rng = np.random.default_rng(0)
    asked = np.concatenate([rng.choice(stored_hashes(a), 800), rng.integers(0, 1 << 21, 400)]).astype(np.uint32)

    with a.session(readonly=True) as session:
        from_sql = db.lookup_postings(session, a.params.scheme, asked)
    from_snapshot = index.reader_of(a).lookup(asked)

    assert from_snapshot is not None and from_sql[0].size > 500
    assert canonical(*from_snapshot) == canonical(*from_sql)
    # And so the same matches, evidence included.
    clip = excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)
    with_snapshot = services.identify(a, clip, settings=SETTINGS)
    index.attach(a, None)
    without = services.identify(a, clip, settings=SETTINGS)
    assert [(m.sound_id, m.evidence) for m in with_snapshot.matches] == [(m.sound_id, m.evidence) for m in without.matches]
    assert with_snapshot.postings == without.postings > 0


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


def test_a_sound_without_stored_peaks_sends_lookups_to_sql_until_the_next_snapshot(workers, index_dir, tmp_path):
    # Sounds written by raw postings (older code, bulk loaders) carry no peaks:
    # a worker cannot index them itself, so it must not answer without them.
    a, b = workers
    ingest(a, "chant.ogg")
    index.build(a, index_dir)
    fp = services.catalogue.fingerprint_for_index(decode(SAMPLES / "speech_en.ogg", sample_rate=8000), a.params)
    with a.session() as session:
        raw = db.add_sound(session, content_digest="f" * 64, duration_seconds=fp.duration, scheme=a.params.scheme,
                           fingerprint_count=len(fp))
        db.add_postings(session, a.params.scheme, fp.hashes, fp.postings(raw.id))

    assert index.reader_of(b).lookup(stored_hashes(a)[:50]) is None
    assert found(b, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == [raw.id]
    index.build(a, index_dir)
    assert index.reader_of(b).lookup(stored_hashes(a)[:50]) is not None


def test_a_damaged_or_foreign_snapshot_is_skipped_not_fatal(workers, index_dir, tmp_path, store_url):
    a, b = workers
    speech = ingest(a, "speech_en.ogg")
    built = index.build(a, index_dir)
    clip = excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)

    # Built with other fingerprint parameters: not used.
    meta_file = built.path / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "params_digest": "0" * 16}))
    index.attach(b, index_dir)
    assert index.reader_of(b).lookup(stored_hashes(a)[:10]) is None
    assert found(b, clip) == [speech]

    # Offsets out of order (which the compiled matcher would read past): not used.
    meta_file.write_text(json.dumps(meta))
    starts_file = built.path / "starts.npy"
    good_starts = starts_file.read_bytes()
    starts = np.load(starts_file)
    starts[1] = starts[-1]  # still from 0 to the number of postings, but not in order
    np.save(starts_file, starts)
    index.attach(b, index_dir)
    assert index.reader_of(b).lookup(stored_hashes(a)[:10]) is None
    starts_file.write_bytes(good_starts)

    # Truncated arrays: not used either.
    meta_file.write_text(json.dumps(meta))
    postings = built.path / "postings.npy"
    postings.write_bytes(postings.read_bytes()[:200])
    index.attach(b, index_dir)
    assert index.reader_of(b).lookup(stored_hashes(a)[:10]) is None
    assert found(b, clip) == [speech]


def test_another_store_never_reads_this_stores_snapshot(index_dir, tmp_path, sqlite_url):
    one = open_store(sqlite_url, index_dir=index_dir)
    other = open_store(f"sqlite:///{tmp_path / 'other.sqlite'}", index_dir=index_dir)
    try:
        ingest(one, "speech_en.ogg")
        index.build(one, index_dir)
        assert index.reader_of(other).lookup(stored_hashes(one)[:10]) is None
        assert found(other, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == []
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


def test_a_worker_builds_the_first_snapshot_and_the_next_by_itself_once_enough_is_outside(store_url, index_dir,
                                                                                         tmp_path):
    # A threshold small enough for the samples (each holds 800-1,100 postings):
    # the first build once the store holds 500, the next once 500 are outside the snapshot.
    a = open_store(store_url, index_dir=index_dir, refresh_postings=500)
    try:
        reader = index.reader_of(a)
        chant = ingest(a, "chant.ogg")
        assert found(a, excerpt(tmp_path, "chant.ogg", 10.0, 5.0)) == [chant]  # the lookup that notices
        reader.wait_for_build(60)
        first = reader.status()
        assert first.snapshot is not None and first.snapshot_sounds == 1

        speech = ingest(a, "speech_en.ogg")  # over the threshold by itself
        assert found(a, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == [speech]
        reader.wait_for_build(60)
        second = reader.status()
        assert second.snapshot != first.snapshot and (second.snapshot_sounds, second.recent_sounds) == (2, 0)
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


def test_an_unusable_snapshot_folder_sends_lookups_to_sql(workers, index_dir, tmp_path):
    a, b = workers
    speech = ingest(a, "speech_en.ogg")
    index.build(a, index_dir)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    index.attach(b, blocker / "index")  # a path below a file: every access fails
    assert index.reader_of(b).lookup(stored_hashes(a)[:10]) is None
    assert found(b, excerpt(tmp_path, "speech_en.ogg", 6.0, 5.0)) == [speech]
