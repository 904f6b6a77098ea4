"""Fresh, throw-away stores for a benchmark run, and their size on disk.

SQLite: a new file in the run's work folder. PostgreSQL: a new database
``audiofp_bench_<timestamp>`` created with autocommit on the server and
dropped when the run ends, so runs never see each other's fingerprints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import text

from audiofp.store import Store, index_stats

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


@dataclass(frozen=True)
class DiskUsage:
    """Bytes the store occupies.

    ``total`` is the SQLite file (after a WAL checkpoint) or the whole
    PostgreSQL database; ``index`` is what ``audiofp.store.index_stats`` counts
    (the index tables); ``postings`` the number of stored postings.
    """

    total: int
    index: int
    postings: int
    rows: int
    sounds: int
    seconds: float


def _pg_admin_dsn(base: str) -> str:
    # psycopg wants a libpq URL: drop SQLAlchemy's "+psycopg" driver suffix.
    return base.replace("postgresql+psycopg://", "postgresql://", 1) + "/postgres"


@contextmanager
def fresh_store(kind: str, workdir: Path, *, pg_base: str = DEFAULT_PG, keep: bool = False) -> Iterator[Store]:
    """Open a new empty store of ``kind`` (``sqlite`` or ``postgresql``); remove it afterwards."""
    if kind == "sqlite":
        path = workdir / "bench.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        store = Store.open(f"sqlite:///{path}")
        try:
            yield store
        finally:
            store.dispose()
            if not keep:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if kind != "postgresql":
        raise ValueError(f"unknown store kind {kind!r}")
    name = f"audiofp_bench_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}"
    with psycopg.connect(_pg_admin_dsn(pg_base), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    store = Store.open(f"{pg_base}/{name}")
    try:
        yield store
    finally:
        store.dispose()
        if not keep:
            with psycopg.connect(_pg_admin_dsn(pg_base), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def disk_usage(store: Store) -> DiskUsage:
    """Measure the store now (checkpoints SQLite's WAL first so the file holds everything)."""
    if store.dialect == "sqlite":
        # A checkpoint cannot run inside a transaction: use a bare driver
        # connection (audiofp runs the sqlite3 driver in autocommit mode).
        raw = store.engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    with store.session(readonly=True) as session:
        stats = index_stats(session)
    if store.dialect == "sqlite":
        db_path = Path(store.engine.url.database or "")
        total = sum(Path(f"{db_path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db_path}{s}").exists())
    else:
        with store.session(readonly=True) as session:
            total = int(session.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    return DiskUsage(
        total=int(total),
        index=int(stats.bytes_on_disk or 0),
        postings=stats.postings,
        rows=stats.rows,
        sounds=stats.sounds,
        seconds=stats.seconds,
    )
