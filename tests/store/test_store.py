"""The store on SQLite and on the real PostgreSQL: what ingest and matching rely on."""

from __future__ import annotations

import threading
from collections import defaultdict

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
    add_postings,
    add_sound,
    current_revision,
    find_sound_by_digest,
    get_meta,
    get_sound,
    get_sounds,
    head_revisions,
    index_stats,
    list_sounds,
    lookup_postings,
    set_meta,
    upgrade,
)
from audiofp.store.database import alembic_config, create_store_engine
from audiofp.store.models import Base
from audiofp.engine.types import POSTING_DTYPE

CORE_TABLES = {"sounds", "fingerprints", "index_meta"}


def make_postings(sound_id: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random postings of one sound; freq/span cover 0 and 255 (NUL and high bytes)."""
    postings = np.empty(n, dtype=POSTING_DTYPE)
    postings["sound"] = sound_id
    postings["time"] = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    postings["freq"] = rng.integers(0, 256, n)
    postings["span"] = rng.integers(0, 256, n)
    postings["freq"][:2] = (0, 255)[: min(n, 2)]
    return postings


def by_hash(hashes: np.ndarray, postings: np.ndarray) -> dict[int, list[tuple]]:
    groups: dict[int, list[tuple]] = defaultdict(list)
    for h, p in zip(hashes.tolist(), postings.tolist()):
        groups[h].append(p)
    return dict(groups)


def new_sound(session, digest: str, **fields):
    values = {"duration_seconds": 10.0, "scheme": 1, "fingerprint_count": 0} | fields
    return add_sound(session, content_digest=digest, **values)


# --------------------------------------------------------------------------- postings
def test_postings_of_two_sounds_come_back_exactly_per_hash(store):
    rng = np.random.default_rng(1)
    # Hashes 0..299 shared by both sounds, each sound also has its own range,
    # and hash 2**32-1 exercises the top of the key space.
    top = [2**32 - 1]
    hashes_a = np.concatenate([rng.integers(0, 300, 2000), np.arange(1000, 1100), top]).astype(np.uint32)
    hashes_b = np.concatenate([rng.integers(0, 300, 1500), np.arange(2000, 2050)]).astype(np.uint32)
    with store.session() as session:
        a = new_sound(session, "a" * 64)
        b = new_sound(session, "b" * 64)
    postings_a = make_postings(a.id, len(hashes_a), rng)
    postings_b = make_postings(b.id, len(hashes_b), rng)
    with store.session() as session:
        add_postings(session, 1, hashes_a, postings_a)
    with store.session() as session:
        add_postings(session, 1, hashes_b, postings_b)

    query = np.unique(np.concatenate([hashes_a, hashes_b]))
    with store.session(readonly=True) as session:
        got_hashes, got_postings = lookup_postings(session, 1, query)

    assert got_hashes.dtype == np.uint32 and got_postings.dtype == POSTING_DTYPE
    assert len(got_postings) == len(hashes_a) + len(hashes_b)
    expected = by_hash(hashes_a, postings_a)
    for h, entries in by_hash(hashes_b, postings_b).items():
        expected.setdefault(h, []).extend(entries)
    # Same entries per hash, in the order appended (sound a's, then sound b's).
    assert by_hash(got_hashes, got_postings) == expected


def test_lookup_returns_nothing_for_absent_hashes_and_other_schemes(store):
    rng = np.random.default_rng(2)
    with store.session() as session:
        sound = new_sound(session, "c" * 64)
        add_postings(session, 1, np.array([10, 11], np.uint32), make_postings(sound.id, 2, rng))
    with store.session(readonly=True) as session:
        absent_hashes, absent = lookup_postings(session, 1, np.array([12, 13], np.uint32))
        other_hashes, other_scheme = lookup_postings(session, 2, np.array([10, 11], np.uint32))
        empty_hashes, empty = lookup_postings(session, 1, np.array([], np.uint32))
        mixed_hashes, _ = lookup_postings(session, 1, np.array([12, 10, 10], np.uint32))
    assert len(absent) == len(absent_hashes) == 0
    assert len(other_scheme) == len(other_hashes) == 0
    assert len(empty) == len(empty_hashes) == 0 and empty.dtype == POSTING_DTYPE
    assert mixed_hashes.tolist() == [10]  # a duplicate query hash does not duplicate results


def test_lookup_of_many_hashes_in_one_call(store):
    # 50,000 hashes in one call: past SQLite's bound-variable limit (32,766).
    rng = np.random.default_rng(3)
    stored = np.arange(0, 100_000, 2, dtype=np.uint32)
    with store.session() as session:
        sound = new_sound(session, "d" * 64)
        add_postings(session, 1, stored, make_postings(sound.id, len(stored), rng))
    query = np.arange(0, 50_000, dtype=np.uint32)  # half present, half absent
    with store.session(readonly=True) as session:
        hashes, postings = lookup_postings(session, 1, query)
    assert sorted(hashes.tolist()) == list(range(0, 50_000, 2))
    assert (postings["sound"] == sound.id).all()


def test_appending_keeps_postings_of_one_hash_in_one_row(store):
    rng = np.random.default_rng(4)
    with store.session() as session:
        sound = new_sound(session, "e" * 64)
        add_postings(session, 3, np.full(5, 77, np.uint32), make_postings(sound.id, 5, rng))
        add_postings(session, 3, np.full(4, 77, np.uint32), make_postings(sound.id, 4, rng))
    with store.session(readonly=True) as session:
        stats = index_stats(session)
    assert (stats.rows, stats.postings) == (1, 9)


@pytest.mark.parametrize(
    ("hashes", "postings"),
    [
        (np.array([1, 2], np.int64), np.zeros(3, POSTING_DTYPE)),  # shape mismatch
        (np.array([-1], np.int64), np.zeros(1, POSTING_DTYPE)),  # negative hash
        (np.array([2**32], np.int64), np.zeros(1, POSTING_DTYPE)),  # hash wider than 32 bits
        (np.array([1.5]), np.zeros(1, POSTING_DTYPE)),  # not integers
        (np.array([1], np.uint32), np.zeros(1, np.uint64)),  # not postings
        (np.array([[1]], np.uint32), np.zeros((1, 1), POSTING_DTYPE)),  # not 1-D
    ],
)
def test_bad_postings_are_refused_with_our_error(sqlite_url, hashes, postings):
    with Store.open(sqlite_url) as store, store.session() as session:
        with pytest.raises(ParameterError):
            add_postings(session, 1, hashes, postings)
        with pytest.raises(ParameterError):
            add_postings(session, -1, np.array([1], np.uint32), np.zeros(1, POSTING_DTYPE))


# --------------------------------------------------------------------------- transactions
def test_failed_ingest_leaves_no_partial_rows(store):
    rng = np.random.default_rng(5)
    with pytest.raises(RuntimeError, match="decoder died"):
        with store.session() as session:
            sound = new_sound(session, "f" * 64)
            add_postings(session, 1, np.arange(100, dtype=np.uint32), make_postings(sound.id, 100, rng))
            raise RuntimeError("decoder died")
    with store.session(readonly=True) as session:
        stats = index_stats(session)
        assert find_sound_by_digest(session, "f" * 64) is None
        _, postings = lookup_postings(session, 1, np.arange(100, dtype=np.uint32))
    assert (stats.sounds, stats.rows, stats.postings) == (0, 0, 0)
    assert len(postings) == 0


def test_concurrent_writers_on_overlapping_hashes_lose_nothing(store):
    rng = np.random.default_rng(6)
    with store.session() as session:
        sound_ids = [new_sound(session, str(i) * 64).id for i in range(2)]
    batches = 15
    per_batch = {sid: [make_postings(sid, 400, rng) for _ in range(batches)] for sid in sound_ids}
    # Both writers hit the same 300 hashes, in different orders.
    hashes = {
        sid: [rng.permutation(np.arange(400) % 300).astype(np.uint32) for _ in range(batches)] for sid in sound_ids
    }
    errors: list[BaseException] = []
    start = threading.Barrier(len(sound_ids))

    def writer(sid: int) -> None:
        try:
            start.wait()
            for h, p in zip(hashes[sid], per_batch[sid]):
                with store.session() as session:
                    # Read, then write: the pattern of an ingest (is this sound known?).
                    index_stats(session)
                    add_postings(session, 1, h, p)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(sid,)) for sid in sound_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    with store.session(readonly=True) as session:
        got_hashes, got_postings = lookup_postings(session, 1, np.arange(300, dtype=np.uint32))
    assert len(got_postings) == 2 * batches * 400
    got = by_hash(got_hashes, got_postings)
    for sid in sound_ids:
        expected = by_hash(np.concatenate(hashes[sid]), np.concatenate(per_batch[sid]))
        for h, entries in expected.items():
            # Each writer's own postings survive, in that writer's order.
            assert [e for e in got[h] if e[0] == sid] == entries


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


def test_index_stats_counts_sounds_seconds_postings_rows(store):
    rng = np.random.default_rng(7)
    with store.session(readonly=True) as session:
        empty = index_stats(session)
    with store.session() as session:
        a = new_sound(session, "a" * 64, duration_seconds=12.5)
        new_sound(session, "b" * 64, duration_seconds=7.5)
        add_postings(session, 1, np.array([1, 1, 2, 3], np.uint32), make_postings(a.id, 4, rng))
        add_postings(session, 2, np.array([1], np.uint32), make_postings(a.id, 1, rng))
    with store.session(readonly=True) as session:
        stats = index_stats(session)
    assert (empty.sounds, empty.postings, empty.rows) == (0, 0, 0)
    assert (stats.sounds, stats.seconds, stats.postings, stats.rows) == (2, 20.0, 5, 4)
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
