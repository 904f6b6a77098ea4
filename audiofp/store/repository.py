"""Repository: the narrow functions through which the rest of audiofp uses the store.

Each function takes the caller's ``Session`` (so that one use case is one
transaction) and returns plain frozen dataclasses or numpy arrays, never ORM
rows. Sounds and metadata go through SQLAlchemy expressions; the two hot
paths, appending postings and looking them up, use the raw driver connection
with one fixed statement per backend, because SQLAlchemy's per-row overhead
would dominate a bulk ingest of millions of postings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import ConflictError, IndexMismatchError, NotFoundError, ParameterError
from ..engine.types import POSTING_DTYPE
from .models import FingerprintPostings, IndexMeta, Sound

#: Bytes of one packed posting (``POSTING_DTYPE``).
POSTING_BYTES = POSTING_DTYPE.itemsize

#: Largest scheme that keeps ``(scheme << 32) | hash`` a positive signed 64-bit key.
MAX_SCHEME = (1 << 31) - 1

#: Ids per ``IN (...)`` list; below SQLite's bound-variable limit.
_IN_CHUNK = 10_000

_SQLITE_APPEND = (
    "INSERT INTO fingerprints (key, postings) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET postings = CAST(fingerprints.postings || excluded.postings AS BLOB)"
)
_SQLITE_LOOKUP = "SELECT key, postings FROM fingerprints WHERE key IN (SELECT value FROM json_each(?))"

_PG_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS fingerprints_stage "
    "(key int8 NOT NULL, postings bytea NOT NULL) ON COMMIT DELETE ROWS"
)
_PG_COPY = "COPY fingerprints_stage (key, postings) FROM STDIN (FORMAT BINARY)"
# ORDER BY key: every writer locks rows in the same order, so two transactions
# appending to overlapping hashes queue behind each other instead of deadlocking.
_PG_APPEND = (
    "INSERT INTO fingerprints (key, postings) SELECT key, postings FROM fingerprints_stage ORDER BY key "
    "ON CONFLICT (key) DO UPDATE SET postings = fingerprints.postings || excluded.postings"
)
_PG_LOOKUP = "SELECT key, postings FROM fingerprints WHERE key = ANY(%s::int8[])"


@dataclass(frozen=True)
class SoundRecord:
    """One known sound, as the rest of audiofp sees it. ``created_at`` is UTC."""

    id: int
    content_digest: str
    label: str | None
    source_name: str | None
    duration_seconds: float
    scheme: int
    fingerprint_count: int
    created_at: datetime


@dataclass(frozen=True)
class IndexStats:
    """Size of the index.

    ``postings`` counts stored (hash, sound, time) entries, ``rows`` distinct
    (scheme, hash) keys. ``bytes_on_disk`` is the SQLite database file, or the
    index tables with their indexes and TOAST on PostgreSQL.
    """

    sounds: int
    seconds: float
    postings: int
    rows: int
    bytes_on_disk: int | None


# --------------------------------------------------------------------------- helpers
def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _upsert(session: Session, table: Table) -> Any:
    module = postgresql if _dialect(session) == "postgresql" else sqlite
    return module.insert(table)


def _utc(value: datetime) -> datetime:
    # SQLite keeps no zone; every datetime audiofp writes is UTC.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _record(row: Sound) -> SoundRecord:
    return SoundRecord(
        id=row.id,
        content_digest=row.content_digest,
        label=row.label,
        source_name=row.source_name,
        duration_seconds=float(row.duration_seconds),
        scheme=int(row.scheme),
        fingerprint_count=int(row.fingerprint_count),
        created_at=_utc(row.created_at),
    )


def _driver_connection(session: Session) -> Any:
    # session.connection() begins the session's transaction if needed, so the
    # raw statements below run inside the caller's transaction.
    return session.connection().connection.driver_connection


def _check_scheme(scheme: int) -> int:
    if isinstance(scheme, bool) or not isinstance(scheme, (int, np.integer)) or not 0 <= scheme <= MAX_SCHEME:
        raise ParameterError(f"scheme must be an integer in [0, {MAX_SCHEME}], got {scheme!r}")
    return int(scheme)


def _as_hashes(hashes: np.ndarray) -> np.ndarray:
    array = np.asarray(hashes)
    if array.ndim != 1:
        raise ParameterError(f"hashes must be a 1-D array, got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.uint32)
    if not np.issubdtype(array.dtype, np.integer):
        raise ParameterError(f"hashes must be integers, got dtype {array.dtype}")
    if array.min() < 0 or array.max() > np.iinfo(np.uint32).max:
        raise ParameterError("hashes must fit in an unsigned 32-bit integer")
    return array.astype(np.uint32, copy=False)


# --------------------------------------------------------------------------- sounds
def find_sound_by_digest(session: Session, content_digest: str) -> SoundRecord | None:
    """The sound whose decoded audio has this digest, or None."""
    row = session.scalars(select(Sound).where(Sound.content_digest == content_digest)).one_or_none()
    return None if row is None else _record(row)


def add_sound(
    session: Session,
    *,
    content_digest: str,
    duration_seconds: float,
    scheme: int,
    fingerprint_count: int,
    label: str | None = None,
    source_name: str | None = None,
) -> SoundRecord:
    """Create a sound and return it with its new id.

    Raises
    ------
    ConflictError
        If a sound with this ``content_digest`` exists (the caller's
        transaction stays usable: the failed insert is rolled back to a savepoint).
    ParameterError
        If a field is out of range.
    """
    if not isinstance(content_digest, str) or not 0 < len(content_digest) <= 64:
        raise ParameterError("content_digest must be a non-empty string of at most 64 characters")
    if not math.isfinite(duration_seconds) or duration_seconds < 0:
        raise ParameterError(f"duration_seconds must be finite and >= 0, got {duration_seconds!r}")
    if not 0 <= scheme <= 32767:
        raise ParameterError(f"scheme must be in [0, 32767], got {scheme!r}")
    if fingerprint_count < 0:
        raise ParameterError(f"fingerprint_count must be >= 0, got {fingerprint_count!r}")
    row = Sound(
        content_digest=content_digest,
        label=label,
        source_name=source_name,
        duration_seconds=float(duration_seconds),
        scheme=int(scheme),
        fingerprint_count=int(fingerprint_count),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise ConflictError(f"a sound with content digest {content_digest} already exists") from exc
    return _record(row)


def get_sound(session: Session, sound_id: int) -> SoundRecord:
    """The sound with this id; raises ``NotFoundError`` if there is none."""
    row = session.get(Sound, int(sound_id))
    if row is None:
        raise NotFoundError(f"no sound with id {sound_id}")
    return _record(row)


def get_sounds(session: Session, sound_ids: Iterable[int]) -> dict[int, SoundRecord]:
    """The sounds among ``sound_ids`` that exist, by id (missing ids are left out)."""
    ids = sorted({int(i) for i in sound_ids})
    found: dict[int, SoundRecord] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        for row in session.scalars(select(Sound).where(Sound.id.in_(chunk))):
            found[row.id] = _record(row)
    return found


def list_sounds(
    session: Session, *, after_id: int = 0, limit: int = 100, label: str | None = None
) -> list[SoundRecord]:
    """Sounds in id order, starting after ``after_id`` (keyset pagination).

    Pass the last id of a page as ``after_id`` to get the next page; a short
    page is the last one. ``label`` keeps only sounds with exactly that label.
    """
    if limit < 1:
        raise ParameterError(f"limit must be >= 1, got {limit}")
    if after_id < 0:
        raise ParameterError(f"after_id must be >= 0, got {after_id}")
    query = select(Sound).where(Sound.id > after_id)
    if label is not None:
        query = query.where(Sound.label == label)
    rows = session.scalars(query.order_by(Sound.id).limit(limit))
    return [_record(row) for row in rows]


# --------------------------------------------------------------------------- postings
def _grouped_rows(scheme: int, hashes: np.ndarray, postings: np.ndarray) -> list[tuple[int, bytes]]:
    """``(key, packed postings)`` per distinct hash, in key order.

    Within a hash, postings keep their input order (stable sort), so a lookup
    returns a sound's postings in the order they were given.
    """
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    packed = np.ascontiguousarray(postings[order]).tobytes()
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_hashes)) + 1))
    ends = np.append(starts[1:], len(sorted_hashes))
    keys = (np.int64(scheme) << np.int64(32)) | sorted_hashes[starts].astype(np.int64)
    # Byte offsets computed in numpy: the Python loop below is the per-row cost.
    first, last = (starts * POSTING_BYTES).tolist(), (ends * POSTING_BYTES).tolist()
    return [(key, packed[a:b]) for key, a, b in zip(keys.tolist(), first, last)]


def add_postings(session: Session, scheme: int, hashes: np.ndarray, postings: np.ndarray) -> None:
    """Append postings to the inverted index, in the caller's transaction.

    Parameters
    ----------
    session : Session
        The caller's session; nothing is visible to others before it commits.
    scheme : int
        Hash family of ``hashes``.
    hashes : np.ndarray of uint32, shape (n,)
        Hash of each posting.
    postings : np.ndarray of POSTING_DTYPE, shape (n,)
        Where each hash occurs, in the same order as ``hashes``.

    Raises
    ------
    ParameterError
        On a dtype, shape or range the index cannot store.
    """
    scheme = _check_scheme(scheme)
    hashes = _as_hashes(hashes)
    postings = np.asarray(postings)
    if postings.dtype != POSTING_DTYPE:
        raise ParameterError(f"postings must have dtype POSTING_DTYPE, got {postings.dtype}")
    if postings.shape != hashes.shape:
        raise ParameterError(f"hashes {hashes.shape} and postings {postings.shape} differ in shape")
    if hashes.size == 0:
        return
    rows = _grouped_rows(scheme, hashes, postings)
    raw = _driver_connection(session)
    if _dialect(session) == "postgresql":
        with raw.cursor() as cursor:
            cursor.execute(_PG_STAGE)
            with cursor.copy(_PG_COPY) as copy:
                copy.set_types(["int8", "bytea"])
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_PG_APPEND)
            cursor.execute("DELETE FROM fingerprints_stage")
    else:
        cursor = raw.cursor()
        try:
            cursor.executemany(_SQLITE_APPEND, rows)
        finally:
            cursor.close()


def lookup_postings(session: Session, scheme: int, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every posting of ``hashes`` under ``scheme``, in one round trip.

    Parameters
    ----------
    session : Session
    scheme : int
    hashes : np.ndarray of uint32, shape (n,)
        Hashes to look up; duplicates are looked up once.

    Returns
    -------
    hashes : np.ndarray of uint32, shape (m,)
        The hash each returned posting belongs to.
    postings : np.ndarray of POSTING_DTYPE, shape (m,)
        The postings, grouped by hash (groups in no particular order; within a
        group in the order they were added).
    """
    scheme = _check_scheme(scheme)
    wanted = np.unique(_as_hashes(hashes))
    if wanted.size == 0:
        return np.empty(0, dtype=np.uint32), np.empty(0, dtype=POSTING_DTYPE)
    keys = ((np.int64(scheme) << np.int64(32)) | wanted.astype(np.int64)).tolist()
    raw = _driver_connection(session)
    if _dialect(session) == "postgresql":
        with raw.cursor() as cursor:
            cursor.execute(_PG_LOOKUP, (keys,), binary=True)
            rows = cursor.fetchall()
    else:
        cursor = raw.cursor()
        try:
            cursor.execute(_SQLITE_LOOKUP, ("[" + ",".join(map(str, keys)) + "]",))
            rows = cursor.fetchall()
        finally:
            cursor.close()
    if not rows:
        return np.empty(0, dtype=np.uint32), np.empty(0, dtype=POSTING_DTYPE)
    row_keys = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    blobs = [row[1] for row in rows]
    sizes = np.fromiter((len(blob) for blob in blobs), dtype=np.int64, count=len(rows))
    if (sizes % POSTING_BYTES).any():
        bad = int(row_keys[np.flatnonzero(sizes % POSTING_BYTES)[0]])
        raise IndexMismatchError(
            f"fingerprint row {bad} does not hold whole {POSTING_BYTES}-byte postings; "
            "the index was written by incompatible code"
        )
    # bytearray: callers get a writable array without another copy.
    postings = np.frombuffer(bytearray().join(blobs), dtype=POSTING_DTYPE)
    row_hashes = (row_keys & 0xFFFFFFFF).astype(np.uint32)
    return np.repeat(row_hashes, sizes // POSTING_BYTES), postings


# --------------------------------------------------------------------------- stats and metadata
def index_stats(session: Session) -> IndexStats:
    """Counts and size of the index (scans the fingerprint keys: an operator query)."""
    sounds, seconds = session.execute(
        select(func.count(Sound.id), func.coalesce(func.sum(Sound.duration_seconds), 0.0))
    ).one()
    rows, total_bytes = session.execute(
        select(
            func.count(FingerprintPostings.key),
            func.coalesce(func.sum(func.length(FingerprintPostings.postings)), 0),
        )
    ).one()
    if _dialect(session) == "postgresql":
        size = session.execute(
            text(
                "SELECT pg_total_relation_size('sounds') + pg_total_relation_size('fingerprints') "
                "+ pg_total_relation_size('index_meta')"
            )
        ).scalar_one()
    else:
        pages = session.execute(text("PRAGMA page_count")).scalar_one()
        page_size = session.execute(text("PRAGMA page_size")).scalar_one()
        size = pages * page_size
    return IndexStats(
        sounds=int(sounds),
        seconds=float(seconds),
        postings=int(total_bytes) // POSTING_BYTES,
        rows=int(rows),
        bytes_on_disk=None if size is None else int(size),
    )


def get_meta(session: Session, key: str) -> str | None:
    """The value stored under ``key`` in ``index_meta``, or None."""
    return session.scalars(select(IndexMeta.value).where(IndexMeta.key == key)).one_or_none()


def set_meta(session: Session, key: str, value: str) -> None:
    """Store ``value`` under ``key``, replacing any previous value."""
    statement = _upsert(session, IndexMeta.__table__).values(key=key, value=value)
    session.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def setdefault_meta(session: Session, key: str, value: str) -> str:
    """Store ``value`` under ``key`` unless a value is there; return the stored value.

    Safe against a concurrent writer of the same key: exactly one value wins.
    """
    statement = _upsert(session, IndexMeta.__table__).values(key=key, value=value)
    session.execute(statement.on_conflict_do_nothing(index_elements=["key"]))
    stored = get_meta(session, key)
    return value if stored is None else stored
