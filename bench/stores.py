"""Fresh, throw-away stores for a benchmark run, and their size on disk.

The SQL store holds the sounds and each sound's spectral peaks; the inverted
index is derived from the peaks (an index snapshot folder, or a worker's
memory), so its size is measured apart: :func:`disk_usage` is the SQL store,
:func:`folder_bytes` a snapshot's folder.

SQLite: a new file in the run's work folder. PostgreSQL: a new database
``audiofp_bench_<timestamp>`` created with autocommit on the server and
dropped when the run ends, so runs never see each other's fingerprints.

With ``keep=True`` the store outlives the run (the SQLite file stays in the
work folder; a PostgreSQL database's name is written to
``<workdir>/pg-database.txt``) and :func:`kept_store` opens it again.
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
    """Bytes the SQL store occupies (an index snapshot is not in it: see :func:`folder_bytes`).

    ``total`` is the SQLite file (after a WAL checkpoint) or the whole
    PostgreSQL database; ``index`` is what ``audiofp.store.index_stats`` counts
    (the tables the index is derived from, with their indexes); ``postings``
    the postings the sounds make (their own counts); ``peak_bytes`` the packed
    peaks the store keeps (their payload, without the database's overhead).
    """

    total: int
    index: int
    postings: int
    rows: int
    sounds: int
    seconds: float
    peak_bytes: int = 0


def _pg_admin_dsn(base: str) -> str:
    # psycopg wants a libpq URL: drop SQLAlchemy's "+psycopg" driver suffix.
    return base.replace("postgresql+psycopg://", "postgresql://", 1) + "/postgres"


#: Where a kept PostgreSQL store's database name is recorded, in its work folder.
PG_NAME_FILE = "pg-database.txt"


@contextmanager
def fresh_store(kind: str, workdir: Path, *, pg_base: str = DEFAULT_PG, keep: bool = False,
                sqlite_name: str = "bench.sqlite") -> Iterator[Store]:
    """Open a new empty store of ``kind`` (``sqlite`` or ``postgresql``); remove it afterwards unless ``keep``."""
    if kind == "sqlite":
        path = workdir / sqlite_name
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
    if keep:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / PG_NAME_FILE).write_text(name + "\n")
    store = Store.open(f"{pg_base}/{name}")
    try:
        yield store
    finally:
        store.dispose()
        if not keep:
            with psycopg.connect(_pg_admin_dsn(pg_base), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def kept_store_exists(kind: str, workdir: Path, *, sqlite_name: str = "bench.sqlite") -> bool:
    """Whether ``workdir`` holds a store of ``kind`` kept by an earlier run."""
    return (workdir / (sqlite_name if kind == "sqlite" else PG_NAME_FILE)).exists()


@contextmanager
def kept_store(kind: str, workdir: Path, *, pg_base: str = DEFAULT_PG, sqlite_name: str = "bench.sqlite") -> Iterator[Store]:
    """Open the store of ``kind`` an earlier ``fresh_store(..., keep=True)`` left in ``workdir``; never removes it."""
    if kind == "sqlite":
        path = workdir / sqlite_name
        if not path.exists():
            raise FileNotFoundError(f"no kept SQLite store at {path}")
        url = f"sqlite:///{path}"
    elif kind == "postgresql":
        name_file = workdir / PG_NAME_FILE
        if not name_file.exists():
            raise FileNotFoundError(f"no kept PostgreSQL store recorded in {name_file}")
        url = f"{pg_base}/{name_file.read_text().strip()}"
    else:
        raise ValueError(f"unknown store kind {kind!r}")
    store = Store.open(url)
    try:
        yield store
    finally:
        store.dispose()


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
        peak_bytes = int(session.execute(text("SELECT COALESCE(SUM(LENGTH(peaks)), 0) FROM sound_peaks")).scalar_one())
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
        peak_bytes=peak_bytes,
    )


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (an index snapshot generation), 0 if it does not exist."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
