"""Postings: the packed inverted index from (scheme, hash) to where the hash occurs.

The two hot paths, appending postings and looking them up, use the raw driver
connection with one fixed statement per backend, because SQLAlchemy's per-row
overhead would dominate a bulk ingest of millions of postings; everything else
goes through SQLAlchemy expressions. A lookup sends every key in one
parameter (a JSON array on SQLite, an ``int8[]`` on PostgreSQL), so it needs
no chunking however many hashes a query has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..engine.inverted import distinct_sorted
from ..engine.types import POSTING_DTYPE
from ..errors import IndexMismatchError, ParameterError
from .common import dialect
from .models import FingerprintPostings, Sound
from .records import IndexStats
from .translate import translated

#: Bytes of one packed posting (``POSTING_DTYPE``).
POSTING_BYTES = POSTING_DTYPE.itemsize

#: Largest scheme that keeps ``(scheme << 32) | hash`` a positive signed 64-bit key.
MAX_SCHEME = (1 << 31) - 1

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


@translated
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
    if dialect(session) == "postgresql":
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


@translated
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
    wanted = distinct_sorted(_as_hashes(hashes))
    if wanted.size == 0:
        return np.empty(0, dtype=np.uint32), np.empty(0, dtype=POSTING_DTYPE)
    keys = ((np.int64(scheme) << np.int64(32)) | wanted.astype(np.int64)).tolist()
    raw = _driver_connection(session)
    if dialect(session) == "postgresql":
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


def index_rows(session: Session, scheme: int, *, batch_rows: int = 20_000) -> Iterator[tuple[np.ndarray, list[bytes]]]:
    """Every row of ``scheme`` in hash order, in batches: the read side of an index snapshot.

    The caller's transaction fixes what is read (run it at REPEATABLE READ on
    PostgreSQL, so the rows agree with the sounds it reads). PostgreSQL streams
    the rows through a server-side cursor, so memory stays one batch.

    Yields
    ------
    hashes : np.ndarray of uint32, shape (k,)
        The hash of each row, ascending.
    blobs : list of bytes
        Each row's packed postings (``POSTING_DTYPE``).
    """
    scheme = _check_scheme(scheme)
    low, high = scheme << 32, (scheme + 1) << 32
    raw = _driver_connection(session)
    if dialect(session) == "postgresql":
        cursor = raw.cursor(name="audiofp_index_rows")
        statement = "SELECT key, postings FROM fingerprints WHERE key >= %s AND key < %s ORDER BY key"
        params: tuple[int, int] = (low, high)
    else:
        cursor = raw.cursor()
        statement = "SELECT key, postings FROM fingerprints WHERE key >= ? AND key < ? ORDER BY key"
        params = (low, high)
    try:
        cursor.execute(statement, params)
        while True:
            rows = cursor.fetchmany(batch_rows)
            if not rows:
                return
            keys = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            yield (keys & 0xFFFFFFFF).astype(np.uint32), [bytes(row[1]) for row in rows]
    finally:
        cursor.close()


@translated
def posting_count(session: Session, scheme: int) -> int:
    """Number of postings stored under ``scheme`` (scans the rows' lengths)."""
    scheme = _check_scheme(scheme)
    total = session.execute(
        select(func.coalesce(func.sum(func.length(FingerprintPostings.postings)), 0)).where(
            FingerprintPostings.key >= scheme << 32, FingerprintPostings.key < (scheme + 1) << 32
        )
    ).scalar_one()
    return int(total) // POSTING_BYTES


# --------------------------------------------------------------------------- stats
@translated
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
    if dialect(session) == "postgresql":
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
