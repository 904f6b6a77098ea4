"""A worker's read side of the index: a snapshot plus the sounds added since.

Lookups are answered from two in-memory indexes, without a round trip per
hash to the database:

* the *base*: the store's current snapshot (memory-mapped, shared by the
  machine's workers), or, for a store run without a snapshot folder, the
  whole index built in this worker's memory;
* the *recent* index: the sounds the base does not hold, indexed in this
  worker's memory from their stored peaks.

Before each lookup the reader asks the database (one short read of sound ids)
which sounds it does not hold yet and indexes them, so an upload registered
on any worker is matched by the very next lookup on every worker. A store
with no usable snapshot yet (none built, one for other parameters, a damaged
one) gets one built at the first lookup; once enough postings are outside the
snapshot, a worker merges them into a new generation in the background.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from weakref import WeakKeyDictionary

import numpy as np
from sqlalchemy.orm import Session

from .. import store as db
from ..engine.inverted import InvertedIndex, PostingRuns, distinct_sorted
from ..store import Store
from . import snapshot as snapshots
from .snapshot import HOLE_GRACE_SECONDS
from .source import postings_of_peaks

log = logging.getLogger(__name__)

#: Recent indexes kept apart before they are merged into one (merging costs
#: the size of all of them, so it is done once per this many additions).
_MAX_RECENT_PARTS = 8

#: A new generation is merged once the recent sounds hold this share of the
#: snapshot's postings (or the configured threshold, if larger). A merge copies
#: the whole snapshot, so merging after a fixed amount of new audio would cost
#: ingest more and more as the index grows; after a fixed share, each posting
#: is copied about 1 / share times over its life, whatever the index size.
MERGE_SHARE = 0.02


@dataclass
class _Recent:
    """Sounds indexed in memory because the snapshot does not hold them."""

    floor: int
    """Every id up to here is in the snapshot, indexed here, or a rolled-back insert."""
    pending: dict[int, float] = field(default_factory=dict)
    """Missing ids above ``floor`` (or snapshot holes) and when they were first missed (monotonic seconds)."""
    known: set[int] = field(default_factory=set)
    parts: list[InvertedIndex] = field(default_factory=list)

    @property
    def postings(self) -> int:
        return sum(len(p) for p in self.parts)


@dataclass(frozen=True)
class ReaderStatus:
    """What a reader answers from, for health checks and the CLI."""

    snapshot: str | None
    snapshot_sounds: int
    snapshot_postings: int
    watermark: int
    recent_sounds: int
    recent_postings: int


class IndexReader:
    """Answers index lookups for one store from its snapshot folder (or memory) and its recent sounds.

    With ``index_dir`` None the base is built in this worker's memory at the
    first lookup. With ``refresh_postings`` > 0 the reader also keeps the
    snapshot fresh by itself: once that many postings (or :data:`MERGE_SHARE`
    of the snapshot's, if more) are outside the current snapshot, a lookup
    starts a merge into a new generation in a background thread. A file lock lets one process of the machine build while the
    others go on answering from the old snapshot.
    """

    def __init__(self, store: Store, index_dir: Path | None, *, refresh_postings: int = 0) -> None:
        self.store = store
        self.index_dir = None if index_dir is None else Path(index_dir)
        self.refresh_postings = int(refresh_postings)
        self._lock = threading.Lock()
        self._building: threading.Thread | None = None
        self._folder: Path | None = None
        self._folder_error: OSError | None = None
        self._first_built: snapshots.Snapshot | None = None
        self._snapshot: snapshots.Snapshot | None = None
        self._memory: snapshots.Snapshot | None = None
        self._base: snapshots.Snapshot | None = None
        self._recent: _Recent | None = None
        self._seen_current: tuple[int, int] | None = None
        self._warned_peakless: set[int] = set()

    # ----------------------------------------------------------------- lookups
    def find(self, hashes: np.ndarray) -> list[PostingRuns]:
        """Where every posting of ``hashes`` in the whole store lies.

        Returns
        -------
        list of PostingRuns
            One per index answered from (the base, then the recent sounds).
        """
        with self._lock:
            base = self._current_base()
            self._catch_up(base)
            if self.refresh_postings and self._refresh_due(self.refresh_postings):
                self._start_background_build()
            assert self._recent is not None
            recent = list(self._recent.parts)
        wanted = distinct_sorted(np.asarray(hashes, dtype=np.uint32))
        return [base.index.find(wanted)] + [part.find(wanted) for part in recent]

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every posting of ``hashes``, copied out: (hash of each, postings)."""
        found = [r.gathered() for r in self.find(hashes)]
        return np.concatenate([h for h, _ in found]), np.concatenate([p for _, p in found])

    def status(self) -> ReaderStatus:
        """The base and recent sounds the next lookup would use (catching up first)."""
        with self._lock:
            base = self._current_base()
            self._catch_up(base)
            recent = self._recent
            return ReaderStatus(
                snapshot=None if base.path is None else base.path.name,
                snapshot_sounds=base.meta.sounds,
                snapshot_postings=base.meta.postings,
                watermark=base.meta.watermark,
                recent_sounds=0 if recent is None else len(recent.known),
                recent_postings=0 if recent is None else recent.postings,
            )

    # ----------------------------------------------------------------- refreshing the snapshot
    def refresh(self, *, wait: bool = False) -> snapshots.Snapshot | None:
        """Build a new snapshot generation now (merged into the current one when it can be).

        Parameters
        ----------
        wait : bool
            If another process of this machine is building, wait for it and
            return None (True), or return None at once (False).

        Returns
        -------
        Snapshot or None
            The new snapshot, or None if another build held the lock.
        """
        if self.index_dir is None:
            return None
        lock_path = self.index_dir / ".build.lock"
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                return None
            try:
                return snapshots.build(self.store, self.index_dir)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def refresh_if_due(self, threshold: int) -> snapshots.Snapshot | None:
        """Build a new generation now if ``threshold`` postings or more are outside the
        current one (a command-line run after a bulk ingest, which cannot leave a
        build running in the background); 0 never builds. Returns the snapshot
        built, including the store's first one if this call's catching up built it.

        Raises
        ------
        OSError
            If the snapshot folder cannot be used.
        """
        if threshold <= 0 or self.index_dir is None:
            return None
        with self._lock:
            self._catch_up(self._current_base())
            if self._folder_error is not None:
                raise self._folder_error
            first, self._first_built = self._first_built, None
            due = self._refresh_due(threshold)
        return self.refresh() if due else first

    def _refresh_due(self, threshold: int) -> bool:
        if self._base is None or self._base.path is None or self._recent is None:
            return False  # nothing on disk to merge into (an in-memory base is never rebuilt)
        if self._building is not None and self._building.is_alive():
            return False
        return self._recent.postings >= max(threshold, MERGE_SHARE * self._base.meta.postings)

    def _start_background_build(self) -> None:
        def build() -> None:
            try:
                built = self.refresh()
                if built is not None:
                    log.info("index snapshot %s built: %d sounds, %d postings, in %.1f s", built.path,
                             built.meta.sounds, built.meta.postings, built.meta.build_seconds)
            except Exception:  # a failed build leaves the old snapshot in use; the next due lookup retries
                log.exception("building an index snapshot failed")

        self._building = threading.Thread(target=build, name="audiofp-index-snapshot", daemon=True)
        self._building.start()

    def wait_for_build(self, timeout: float | None = None) -> None:
        """Wait for a background build this reader started, if any (tests, and a CLI about to exit)."""
        if self._building is not None:
            self._building.join(timeout)

    # ----------------------------------------------------------------- the base
    def _current_base(self) -> snapshots.Snapshot:
        """The index the recent sounds are added to: the current snapshot, built first if need be, or memory."""
        base: snapshots.Snapshot | None = None
        if self.index_dir is not None and self._folder_error is None:
            try:
                base = self._current_snapshot()
                if base is None:
                    log.info("no usable index snapshot of this store in %s: building one", self.index_dir)
                    # (or wait for the process of this machine that is building one)
                    self._first_built = self.refresh(wait=True)
                    base = self._current_snapshot()
            except OSError as exc:
                log.warning("the index folder %s cannot be used (%s): indexing this store in memory",
                            self.index_dir, exc)
                self._folder_error = exc
                base = None
        if base is None:
            if self._memory is None:
                self._memory = snapshots.build_in_memory(self.store)
            base = self._memory
        if base is not self._base:
            self._base, self._recent = base, None
        return base

    def _current_snapshot(self) -> snapshots.Snapshot | None:
        """The current snapshot generation, reopened when a build has replaced it; None if none is usable."""
        if self._folder is None:
            with self.store.session(readonly=True) as session:
                store_id = snapshots.read_store_id(session)
            if store_id is None:
                return None  # no snapshot was ever built for this store
            self._folder = snapshots.store_folder(self.index_dir, store_id)
        try:
            stat = (self._folder / "CURRENT").stat()
            marker: tuple[int, int] | None = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:  # none built in this folder yet
            marker = None
        if marker != self._seen_current or self._snapshot is None:
            self._seen_current = marker
            self._snapshot = snapshots.usable(snapshots.open_current(self._folder), self.store.params)
        return self._snapshot

    # ----------------------------------------------------------------- recent sounds
    def _catch_up(self, base: snapshots.Snapshot) -> None:
        """Index the sounds committed since the base was read."""
        if self._recent is None:
            grace_left = HOLE_GRACE_SECONDS - (time.time() - base.meta.built_epoch)
            first_missed = time.monotonic() - HOLE_GRACE_SECONDS + max(grace_left, 0.0)
            self._recent = _Recent(floor=base.meta.watermark,
                                   pending={h: first_missed for h in base.meta.holes} if grace_left > 0 else {})
        recent = self._recent
        now = time.monotonic()
        with self.store.session(readonly=True) as session:
            above = db.sound_ids_after(session, recent.floor)
            waiting = list(recent.pending)
            late = db.sound_ids_among(session, waiting) if waiting else np.zeros(0, np.int64)
            new = [int(i) for i in np.concatenate([late, above]) if int(i) not in recent.known]
            if new:
                self._index_sounds(session, new)
        for i in late.tolist():
            recent.pending.pop(int(i), None)
        # Ids skipped above the floor may still commit: wait for them, up to the grace.
        if above.size:
            expected = np.arange(recent.floor + 1, int(above[-1]) + 1, dtype=np.int64)
            for missing in np.setdiff1d(expected, above).tolist():
                recent.pending.setdefault(int(missing), now)
            recent.floor = int(above[-1])
        for i, since in list(recent.pending.items()):
            if now - since > HOLE_GRACE_SECONDS:
                del recent.pending[i]

    def _index_sounds(self, session: Session, sound_ids: list[int]) -> None:
        assert self._recent is not None
        stored = db.peaks_of_sounds(session, sound_ids)
        peakless = [i for i in sound_ids if i not in stored and i not in self._warned_peakless]
        if peakless:
            self._warned_peakless.update(peakless)
            log.error("sounds %s have no stored peaks and cannot be indexed (a damaged store: they match nothing)",
                      peakless[:10])
        recent = self._recent
        hashes, postings = postings_of_peaks(self.store.params, ((i, stored[i]) for i in sound_ids if i in stored))
        recent.parts.append(InvertedIndex.build(hashes, postings))
        if len(recent.parts) > _MAX_RECENT_PARTS:
            merged_hashes = np.concatenate([np.repeat(p.hashes, np.diff(p.starts)) for p in recent.parts])
            merged_postings = np.concatenate([p.postings for p in recent.parts])
            recent.parts = [InvertedIndex.build(merged_hashes, merged_postings)]
        recent.known.update(sound_ids)


_readers: "WeakKeyDictionary[Store, IndexReader]" = WeakKeyDictionary()
_readers_lock = threading.Lock()


def attach(store: Store, index_dir: Path | None, *, refresh_postings: int = 0) -> IndexReader:
    """Answer ``store``'s lookups from the snapshots under ``index_dir`` (None: from an index in memory).

    With ``refresh_postings`` > 0 the reader also merges new sounds into a new
    snapshot generation by itself (see :class:`IndexReader`).
    """
    reader = IndexReader(store, index_dir, refresh_postings=refresh_postings)
    with _readers_lock:
        _readers[store] = reader
    return reader


def reader_of(store: Store) -> IndexReader:
    """The reader attached to ``store``; a store never attached gets one that indexes it in memory."""
    with _readers_lock:
        reader = _readers.get(store)
        if reader is None:
            reader = _readers[store] = IndexReader(store, None)
        return reader


def find_postings(store: Store, hashes: np.ndarray) -> list[PostingRuns]:
    """Where every posting of ``hashes`` in ``store`` lies (see :meth:`IndexReader.find`)."""
    return reader_of(store).find(hashes)


__all__ = ["HOLE_GRACE_SECONDS", "IndexReader", "ReaderStatus", "attach", "find_postings", "reader_of"]
