"""Index snapshots: the SQL index of record, laid out as memory-mappable arrays.

A snapshot is a folder of three ``.npy`` arrays (an
:class:`~audiofp.engine.inverted.InvertedIndex`: hashes ascending, each
hash's postings by ascending anchor frequency) and a ``meta.json`` saying
which store and parameters it was built from and up to which sound
(the *watermark*). The snapshot folder of a store holds any number of built
generations and a ``CURRENT`` file naming the live one; building writes a new
generation beside the old and then replaces ``CURRENT`` in one rename, so a
reader never sees a half-written snapshot. Readers map the arrays read-only:
every worker of a machine shares one copy through the page cache, and opening
a snapshot reads no posting.

A snapshot is derived data: deleting the folder loses nothing (lookups go to
SQL until the next build).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from .. import store as db
from ..engine.inverted import InvertedIndex
from ..engine.types import POSTING_DTYPE
from ..errors import ParameterError
from ..store import Store

log = logging.getLogger(__name__)

#: Version of the folder layout below; a reader ignores snapshots of another.
#: 3: each hash's postings ascend in anchor frequency (2: in span; 1: as added).
SNAPSHOT_FORMAT = 3

#: ``index_meta`` key of the store's identity, which every snapshot records.
STORE_ID_KEY = "store_id"

_CURRENT = "CURRENT"
_ARRAYS = ("hashes", "starts", "postings")


@dataclass(frozen=True)
class SnapshotMeta:
    """What a snapshot holds and where it came from.

    Attributes
    ----------
    format : int
        :data:`SNAPSHOT_FORMAT` of the code that built it.
    store_id : str
        The identity of the store it was built from (``index_meta``).
    scheme : int
    params_digest : str
        Digest of the fingerprint parameters of the postings it holds.
    watermark : int
        Every sound with an id up to this one that was committed when the
        snapshot was read is in it.
    holes : list of int
        Ids up to the watermark that had no sound when the snapshot was read:
        a transaction still running then may commit one of them later.
    sounds : int
    postings : int
    built_at : str
        ISO 8601, UTC.
    build_seconds : float
    """

    format: int
    store_id: str
    scheme: int
    params_digest: str
    watermark: int
    holes: list[int]
    sounds: int
    postings: int
    built_at: str
    build_seconds: float

    @property
    def built_epoch(self) -> float:
        """``built_at`` as seconds since the epoch."""
        return datetime.fromisoformat(self.built_at).timestamp()


@dataclass(frozen=True)
class Snapshot:
    """One opened generation: its metadata and its (memory-mapped) index."""

    path: Path
    meta: SnapshotMeta
    index: InvertedIndex


def store_folder(index_dir: Path, store_id: str) -> Path:
    """The snapshot folder of one store under an operator's index folder."""
    if not store_id or not all(c.isalnum() or c == "-" for c in store_id):
        raise ParameterError(f"not a store id: {store_id!r}")
    return Path(index_dir) / store_id


def ensure_store_id(store: Store) -> str:
    """The store's identity, created on first use (a random UUID kept in ``index_meta``)."""
    with db.transaction(store) as session:
        return db.setdefault_meta(session, STORE_ID_KEY, str(uuid.uuid4()))


def read_store_id(session: Session) -> str | None:
    """The store's identity, or None if no snapshot was ever built for it."""
    return db.get_meta(session, STORE_ID_KEY)


def build(store: Store, index_dir: Path, *, keep: int = 1, log: Callable[[str], None] | None = None) -> Snapshot:
    """Build a new snapshot of ``store``'s index and make it the current one.

    Parameters
    ----------
    store : Store
    index_dir : Path
        The operator's index folder; the snapshot goes in the store's own folder below it.
    keep : int
        Older generations kept besides the new one (a reader that still maps
        one keeps reading it after it is deleted, as POSIX allows).
    log : callable, optional
        Progress lines.

    Returns
    -------
    Snapshot
        The new snapshot, opened.
    """
    started = time.perf_counter()
    say = log or (lambda _line: None)
    store_id = ensure_store_id(store)
    folder = store_folder(index_dir, store_id)
    folder.mkdir(parents=True, exist_ok=True)
    building = folder / f".building-{uuid.uuid4().hex}"
    building.mkdir()
    scheme = store.params.scheme
    try:
        with store.session(readonly=True) as session:
            if store.dialect == "postgresql":
                # One snapshot of the database for the sounds and every row read below.
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            watermark = db.max_sound_id(session)
            present = db.sound_ids_after(session, 0)
            holes = np.setdiff1d(np.arange(1, watermark + 1, dtype=np.int64), present).tolist()
            total = db.posting_count(session, scheme)
            say(f"snapshot of {present.size} sounds, {total:,} postings, up to sound {watermark}")
            postings = np.lib.format.open_memmap(building / "postings.npy", mode="w+", dtype=POSTING_DTYPE,
                                                 shape=(total,))
            hash_parts: list[np.ndarray] = []
            count_parts: list[np.ndarray] = []
            written = 0
            for hashes, blobs in db.index_rows(session, scheme):
                counts = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs)) // POSTING_DTYPE.itemsize
                chunk = np.frombuffer(b"".join(blobs), dtype=POSTING_DTYPE)
                # Within a hash by ascending anchor frequency (stable), as InvertedIndex promises the matcher.
                row = np.repeat(np.arange(counts.size), counts)
                postings[written: written + chunk.size] = chunk[np.lexsort((chunk["freq"], row))]
                written += chunk.size
                hash_parts.append(hashes)
                count_parts.append(counts)
            if written != total:
                raise RuntimeError(f"read {written} postings where the store counted {total}")
            postings.flush()
            del postings
        hashes = np.concatenate(hash_parts) if hash_parts else np.zeros(0, np.uint32)
        counts = np.concatenate(count_parts) if count_parts else np.zeros(0, np.int64)
        np.save(building / "hashes.npy", hashes)
        np.save(building / "starts.npy", np.r_[0, np.cumsum(counts)].astype(np.int64))
        meta = SnapshotMeta(
            format=SNAPSHOT_FORMAT, store_id=store_id, scheme=scheme, params_digest=store.params.digest(),
            watermark=int(watermark), holes=[int(h) for h in holes], sounds=int(present.size), postings=int(total),
            built_at=datetime.now(timezone.utc).isoformat(), build_seconds=round(time.perf_counter() - started, 3),
        )
        (building / "meta.json").write_text(json.dumps(asdict(meta), indent=1))
        name = f"gen-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        building.rename(folder / name)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _point_current(folder, name)
    _remove_old(folder, keep_current=name, keep=keep)
    say(f"snapshot {name} built in {time.perf_counter() - started:.1f} s")
    opened = open_current(folder)
    assert opened is not None
    return opened


def _point_current(folder: Path, name: str) -> None:
    """Make ``name`` the current generation in one atomic rename."""
    pending = folder / f".{_CURRENT}-{uuid.uuid4().hex}"
    pending.write_text(name + "\n")
    os.replace(pending, folder / _CURRENT)


def _remove_old(folder: Path, *, keep_current: str, keep: int) -> None:
    # Builds that died (a killed process) leave their folder behind; none takes an hour.
    for stale in folder.glob(".building-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    generations = sorted((p for p in folder.glob("gen-*") if p.is_dir() and p.name != keep_current),
                         key=lambda p: p.name, reverse=True)
    for old in generations[max(keep, 0):]:
        shutil.rmtree(old, ignore_errors=True)


def current_name(folder: Path) -> str | None:
    """The name of the current generation in a store's snapshot folder, or None."""
    try:
        name = (folder / _CURRENT).read_text().strip()
    except OSError:
        return None
    return name or None


def open_current(folder: Path) -> Snapshot | None:
    """Map the current generation of a store's snapshot folder; None if there is none to use.

    A generation written by another snapshot format is not used (a rebuild replaces it).
    """
    name = current_name(folder)
    if name is None:
        return None
    path = folder / name
    try:
        meta_fields = json.loads((path / "meta.json").read_text())
        if not isinstance(meta_fields, dict) or meta_fields.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a snapshot of format {SNAPSHOT_FORMAT}")
        meta = SnapshotMeta(**meta_fields)
        arrays = {a: np.load(path / f"{a}.npy", mmap_mode="r", allow_pickle=False) for a in _ARRAYS}
        if arrays["postings"].dtype != POSTING_DTYPE or arrays["postings"].size != meta.postings:
            raise ValueError("its postings do not match its metadata")
        # The matcher reads postings at these offsets without bounds checks: they must be sound.
        hashes, starts = arrays["hashes"], arrays["starts"]
        if hashes.dtype != np.uint32 or starts.dtype != np.int64 or np.any(hashes[1:] <= hashes[:-1]) \
                or np.any(starts[1:] < starts[:-1]):
            raise ValueError("its hashes are not strictly ascending or its offsets not ordered")
        index = InvertedIndex(hashes=arrays["hashes"], starts=arrays["starts"], postings=arrays["postings"])
    except (OSError, ValueError, TypeError, ParameterError) as exc:
        # Derived data: a damaged snapshot is skipped (lookups read SQL), never fatal.
        log.warning("index snapshot %s cannot be used (%s); rebuild it with: audiofp index snapshot", path, exc)
        return None
    return Snapshot(path=path, meta=meta, index=index)
