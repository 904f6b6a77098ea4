"""The store on SQLite and on the real PostgreSQL: what ingest and matching rely on."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from audiofp.errors import ConflictError, IndexMismatchError, NotFoundError, ParameterError
from audiofp.engine.params import DEFAULT_PARAMS, FingerprintParams
from audiofp.store import (
    Store,
    add_sound,
    add_sound_peaks,
    current_revision,
    find_sound_by_digest,
    get_meta,
    get_sound,
    get_sounds,
    head_revisions,
    index_stats,
    list_sounds,
    peaks_of_sounds,
    set_meta,
    stream_peaks,
    upgrade,
)
from audiofp.store.database import alembic_config, create_store_engine
from audiofp.store.models import Base
from audiofp.engine.types import STORED_PEAK_DTYPE

CORE_TABLES = {"sounds", "sound_peaks", "fingerprints", "index_meta"}


def new_sound(session, digest: str, **fields):
    values = {"duration_seconds": 10.0, "scheme": 1, "fingerprint_count": 0} | fields
    return add_sound(session, content_digest=digest, **values)


# --------------------------------------------------------------------------- peaks: the fingerprint record
def random_peaks(n: int, rng: np.random.Generator) -> bytes:
    """Packed peaks of one sound, with NUL and high bytes among them."""
    packed = np.zeros(n, dtype=STORED_PEAK_DTYPE)
    packed["time"] = np.sort(rng.random(n) * 1000).astype(np.float32)
    packed["freq"] = rng.random(n) * 200
    packed["strength"] = rng.random(n) * 40
    return packed.tobytes()


def test_peaks_stream_back_exactly_in_id_order_and_in_batches(store):
    rng = np.random.default_rng(3)
    with store.session() as session:
        stored = {}
        for i in range(7):
            sound = new_sound(session, f"{i:064d}", fingerprint_count=i)
            stored[sound.id] = random_peaks(50 + i, rng)
            add_sound_peaks(session, sound.id, stored[sound.id])
        peakless = new_sound(session, "p" * 64)  # a damaged store: a sound without its record
    ids = sorted(stored)
    with store.session(readonly=True) as session:
        batches = list(stream_peaks(session, ids[1], ids[-1], batch_rows=2))
        everything = [row for batch in stream_peaks(session, 0, peakless.id) for row in batch]
        assert peaks_of_sounds(session, [ids[0], peakless.id]) == {ids[0]: stored[ids[0]]}
    assert [len(b) for b in batches] == [2, 2, 1]  # the ids after the second, up to the last, two at a time
    assert [row for batch in batches for row in batch] == [(i, ids.index(i), stored[i]) for i in ids[2:]]
    assert [row[0] for row in everything] == ids  # the peakless sound is left out, for the caller to notice


def test_adding_peaks_refuses_what_is_not_bytes(store):
    with store.session() as session:
        sound = new_sound(session, "e" * 64)
        with pytest.raises(ParameterError):
            add_sound_peaks(session, sound.id, np.zeros(3, STORED_PEAK_DTYPE))


# --------------------------------------------------------------------------- transactions
def test_failed_ingest_leaves_no_partial_rows(store):
    rng = np.random.default_rng(5)
    with pytest.raises(RuntimeError, match="decoder died"):
        with store.session() as session:
            sound = new_sound(session, "f" * 64)
            add_sound_peaks(session, sound.id, random_peaks(100, rng))
            raise RuntimeError("decoder died")
    with store.session(readonly=True) as session:
        stats = index_stats(session)
        assert find_sound_by_digest(session, "f" * 64) is None
        assert list(stream_peaks(session, 0, 10**9)) == []
    assert (stats.sounds, stats.rows, stats.postings) == (0, 0, 0)


def test_concurrent_writers_lose_nothing(store):
    # Each ingest appends one sound row and one peaks row: writers never touch a shared row.
    rng = np.random.default_rng(6)
    per_writer = {w: [random_peaks(300, rng) for _ in range(15)] for w in range(2)}
    written: dict[int, bytes] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(w: int) -> None:
        try:
            start.wait()
            for i, peaks in enumerate(per_writer[w]):
                with store.session() as session:
                    # Read, then write: the pattern of an ingest (is this sound known?).
                    find_sound_by_digest(session, f"{w}{i:063d}")
                    sound = new_sound(session, f"{w}{i:063d}")
                    add_sound_peaks(session, sound.id, peaks)
                written[sound.id] = peaks
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in per_writer]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with store.session(readonly=True) as session:
        got = {i: blob for batch in stream_peaks(session, 0, 10**9) for i, _, blob in batch}
    assert got == written and len(got) == 30


def test_readers_see_committed_state_while_a_writer_is_open(store):
    seen: list[int] = []

    def reader() -> None:
        with store.session(readonly=True) as session:
            seen.append(index_stats(session).sounds)

    with store.session() as writer:
        new_sound(writer, "a" * 64)
        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(timeout=20)
        # A match lookup is neither blocked by an ingest in progress nor sees half of it.
        assert not thread.is_alive() and seen == [0]
    reader()
    assert seen == [0, 1]


# --------------------------------------------------------------------------- sounds
def test_content_digest_is_unique_and_findable(store):
    with store.session() as session:
        created = new_sound(session, "9" * 64, label="nasheed", source_name="bank.csv", duration_seconds=61.5)
    with store.session() as session:
        with pytest.raises(ConflictError):
            new_sound(session, "9" * 64)
        # The conflict did not poison the transaction.
        other = new_sound(session, "8" * 64)
    with store.session(readonly=True) as session:
        found = find_sound_by_digest(session, "9" * 64)
        assert find_sound_by_digest(session, "7" * 64) is None
        assert get_sound(session, other.id).content_digest == "8" * 64
    assert found == created
    assert (found.label, found.source_name, found.duration_seconds) == ("nasheed", "bank.csv", 61.5)
    assert found.created_at.tzinfo is not None


def test_get_sounds_and_missing_sound(store):
    with store.session() as session:
        ids = [new_sound(session, f"{i:064d}").id for i in range(5)]
    with store.session(readonly=True) as session:
        some = get_sounds(session, [ids[0], ids[3], ids[3], 10_000])
        with pytest.raises(NotFoundError):
            get_sound(session, 10_000)
    assert sorted(some) == [ids[0], ids[3]]
    assert some[ids[3]].content_digest == f"{3:064d}"


def test_list_sounds_pages_through_everything_once(store):
    with store.session() as session:
        for i in range(25):
            new_sound(session, f"{i:064d}", label="flagged" if i % 3 == 0 else None)
    pages, after = [], 0
    with store.session(readonly=True) as session:
        while page := list_sounds(session, after_id=after, limit=10):
            pages.append(page)
            after = page[-1].id
        flagged = list_sounds(session, label="flagged", limit=100)
        with pytest.raises(ParameterError):
            list_sounds(session, limit=0)
    assert [len(p) for p in pages] == [10, 10, 5]
    ids = [s.id for p in pages for s in p]
    assert ids == sorted(set(ids)) and len(ids) == 25
    assert len(flagged) == 9 and all(s.label == "flagged" for s in flagged)


def test_index_stats_counts_sounds_seconds_postings(store):
    rng = np.random.default_rng(7)
    with store.session(readonly=True) as session:
        empty = index_stats(session)
    with store.session() as session:
        a = new_sound(session, "a" * 64, duration_seconds=12.5, fingerprint_count=4)
        new_sound(session, "b" * 64, duration_seconds=7.5, fingerprint_count=1)
        add_sound_peaks(session, a.id, random_peaks(40, rng))
    with store.session(readonly=True) as session:
        stats = index_stats(session)
    assert (empty.sounds, empty.postings, empty.rows) == (0, 0, 0)
    assert (stats.sounds, stats.seconds, stats.postings, stats.rows) == (2, 20.0, 5, 0)
    assert stats.bytes_on_disk is not None and stats.bytes_on_disk > 0


def test_meta_values_can_be_set_and_replaced(store):
    with store.session() as session:
        assert get_meta(session, "note") is None
        set_meta(session, "note", "one")
        set_meta(session, "note", "two")
    with store.session(readonly=True) as session:
        assert get_meta(session, "note") == "two"


# --------------------------------------------------------------------------- parameters and schema
def test_other_fingerprint_parameters_are_refused(store_url):
    Store.open(store_url).dispose()
    changed = FingerprintParams(peak_floor_db=DEFAULT_PARAMS.peak_floor_db + 1)
    with pytest.raises(IndexMismatchError) as excinfo:
        Store.open(store_url, params=changed)
    assert DEFAULT_PARAMS.digest() in str(excinfo.value)
    assert changed.digest() in str(excinfo.value)
    # A new scheme number may coexist with the old one, and reopening is fine.
    Store.open(store_url, params=FingerprintParams(scheme=2, peak_floor_db=7.0)).dispose()
    Store.open(store_url).dispose()


def test_migrations_build_the_schema_from_empty_and_rerun_as_no_op(store_url):
    assert current_revision(store_url) is None
    upgrade(store_url)
    assert (current_revision(store_url),) == head_revisions()
    with Store.open(store_url, migrate=False) as store:
        with store.session() as session:
            new_sound(session, "a" * 64)
    upgrade(store_url)  # second run: nothing to do, nothing lost
    assert (current_revision(store_url),) == head_revisions()
    with Store.open(store_url, migrate=False) as store, store.session(readonly=True) as session:
        assert find_sound_by_digest(session, "a" * 64) is not None

    engine = create_store_engine(store_url)
    try:
        with engine.connect() as connection:
            assert CORE_TABLES <= set(inspect(connection).get_table_names())
            # The migrations and the models describe the same core schema.
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert [d for d in diffs if _table_of(d) in CORE_TABLES] == []


def _table_of(diff) -> str:
    """Table an Alembic autogenerate difference is about."""
    if isinstance(diff, list):  # column modifications come grouped
        return _table_of(diff[0])
    op, first, *rest = diff
    if op.endswith("_table"):
        return first.name
    if hasattr(first, "table"):  # an index or a constraint
        return first.table.name
    return rest[0]  # (op, schema, table, ...)


def test_core_migration_downgrades_to_an_empty_database(store_url):
    upgrade(store_url, "0001_core")
    engine = create_store_engine(store_url)
    try:
        with engine.begin() as connection:
            config = alembic_config(engine.url)
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with engine.connect() as connection:
            assert not CORE_TABLES & set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_opening_without_migrating_an_empty_database_is_refused(store_url):
    with pytest.raises(IndexMismatchError, match="audiofp db upgrade"):
        Store.open(store_url, migrate=False)


def test_a_schema_migrated_by_newer_code_is_refused(store_url):
    Store.open(store_url).dispose()
    engine = create_store_engine(store_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    finally:
        engine.dispose()
    with pytest.raises(IndexMismatchError, match="9999_future"):
        Store.open(store_url)
    with pytest.raises(IndexMismatchError, match="newer code"):
        upgrade(store_url)


def test_upgrading_to_an_unknown_revision_is_refused(sqlite_url):
    with pytest.raises(ParameterError, match="unknown schema revision"):
        upgrade(sqlite_url, "0042_nope")
    assert current_revision(sqlite_url) is None


def test_workers_opening_a_fresh_database_at_once_all_succeed(store_url):
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def open_store() -> None:
        try:
            start.wait()
            Store.open(store_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert (current_revision(store_url),) == head_revisions()


# --------------------------------------------------------------------------- backend settings
def test_sqlite_store_uses_wal_and_foreign_keys(sqlite_url):
    with Store.open(sqlite_url) as store, store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() >= 10_000
        assert connection.execute(text("PRAGMA mmap_size")).scalar_one() > 0


@pytest.mark.postgres
def test_plain_postgres_urls_use_psycopg(pg_url):
    plain = pg_url.replace("postgresql+psycopg://", "postgres://")
    with Store.open(plain) as store:
        assert store.dialect == "postgresql"
        assert store.url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url", "postgresql+psycopg2://u@h/db"])
def test_unsupported_urls_are_refused_with_our_error(url):
    with pytest.raises(ParameterError):
        Store.open(url)
