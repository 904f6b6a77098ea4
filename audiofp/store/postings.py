"""Legacy postings: the packed per-hash rows of sounds added before peaks became the record.

Up to schema revision 0007 every sound's postings were appended to one packed
row per (scheme, hash) in ``fingerprints``; appending rewrote the whole row,
so ingest slowed and PostgreSQL bloated as the index grew. Since 0008 a
sound's record is its peaks (:mod:`.peaks`) and the index is derived from
them (``audiofp.index``). Stores migrated from before keep the rows of their
older sounds (those with ids up to :data:`LEGACY_UPTO_KEY` in ``index_meta``),
which nothing writes any more and a full index build reads once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..engine.types import POSTING_DTYPE
from ..errors import ParameterError
from .common import dialect
from .meta import get_meta
from .models import FingerprintPostings, Sound
from .records import IndexStats
from .translate import translated

#: Bytes of one packed posting (``POSTING_DTYPE``).
POSTING_BYTES = POSTING_DTYPE.itemsize

#: Largest scheme that keeps ``(scheme << 32) | hash`` a positive signed 64-bit key.
MAX_SCHEME = (1 << 31) - 1

#: ``index_meta`` key: sounds with an id up to this value have their postings in
#: ``fingerprints`` rows (set by migration 0008; 0 when there are none).
LEGACY_UPTO_KEY = "legacy_postings_upto"


def _driver_connection(session: Session) -> Any:
    # session.connection() begins the session's transaction if needed, so the
    # raw statements below run inside the caller's transaction.
    return session.connection().connection.driver_connection


def _check_scheme(scheme: int) -> int:
    if isinstance(scheme, bool) or not isinstance(scheme, (int, np.integer)) or not 0 <= scheme <= MAX_SCHEME:
        raise ParameterError(f"scheme must be an integer in [0, {MAX_SCHEME}], got {scheme!r}")
    return int(scheme)


@translated
def legacy_upto(session: Session) -> int:
    """The largest sound id whose postings are in legacy rows (0: none are)."""
    value = get_meta(session, LEGACY_UPTO_KEY)
    return int(value) if value else 0


def legacy_index_rows(session: Session, scheme: int, *, batch_rows: int = 20_000) -> Iterator[tuple[np.ndarray, list[bytes]]]:
    """Every legacy row of ``scheme`` in hash order, in batches (a full index build reads them).

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


# --------------------------------------------------------------------------- stats
@translated
def index_stats(session: Session) -> IndexStats:
    """Counts and size of the fingerprint record (an operator query: scans the legacy rows).

    ``postings`` counts the postings the sounds' peaks and legacy rows give
    (from the sounds' own counts); ``rows`` the legacy packed rows;
    ``bytes_on_disk`` the SQLite file, or the sounds, peaks, legacy rows and
    index metadata with their indexes and TOAST on PostgreSQL.
    """
    sounds, seconds, postings = session.execute(
        select(func.count(Sound.id), func.coalesce(func.sum(Sound.duration_seconds), 0.0),
               func.coalesce(func.sum(Sound.fingerprint_count), 0))
    ).one()
    rows = session.execute(select(func.count(FingerprintPostings.key))).scalar_one()
    if dialect(session) == "postgresql":
        size = session.execute(
            text(
                "SELECT pg_total_relation_size('sounds') + pg_total_relation_size('sound_peaks') "
                "+ pg_total_relation_size('fingerprints') + pg_total_relation_size('index_meta')"
            )
        ).scalar_one()
    else:
        pages = session.execute(text("PRAGMA page_count")).scalar_one()
        page_size = session.execute(text("PRAGMA page_size")).scalar_one()
        size = pages * page_size
    return IndexStats(
        sounds=int(sounds),
        seconds=float(seconds),
        postings=int(postings),
        rows=int(rows),
        bytes_on_disk=None if size is None else int(size),
    )
