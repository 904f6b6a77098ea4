"""A worker's read side of the index: the current snapshot plus the sounds added since.

Lookups are answered from two in-memory indexes, without a round trip per
hash to the database:

* the store's current snapshot (memory-mapped, shared by the machine's workers);
* the *recent* index: the sounds the snapshot does not hold, indexed in this
  worker's memory from their stored peaks.

Before each lookup the reader asks the database (one short read of sound ids)
which sounds it does not hold yet and indexes them, so an upload registered
on any worker is matched by the very next lookup on every worker. When it
cannot answer for the whole store (no snapshot yet, one built for another
store or other parameters, or a new sound without stored peaks) it says so and
the caller reads the SQL index as before: slower, never wrong.
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
from ..engine.fingerprint import index_from_peaks
from ..engine.inverted import InvertedIndex, PostingRuns, distinct_sorted
from ..engine.types import Peaks
from ..store import Store
from . import snapshot as snapshots

log = logging.getLogger(__name__)

#: Seconds after which an id missing below the newest sound is taken for a
#: rolled-back insert rather than a transaction still to commit. Uploads and
#: ingests commit within their check deadline, far below this.
HOLE_GRACE_SECONDS = 600.0

#: Seconds between two checks whether a snapshot was ever built for a store that had none.
_STORE_ID_RECHECK_SECONDS = 2.0

#: Seconds between two checks of the store's size while it has no usable snapshot.
_SIZE_RECHECK_SECONDS = 30.0

#: Recent indexes kept apart before they are merged into one (merging costs
#: the size of all of them, so it is done once per this many additions).
_MAX_RECENT_PARTS = 8


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
    """Answers index lookups for one store from its snapshot folder and its recent sounds.

    With ``refresh_postings`` > 0 it also keeps the snapshot fresh by itself:
    once that many postings are outside the current snapshot (or, before the
    first one, in the whole store), a lookup starts a new build in a
    background thread. A file lock lets one process of the machine build
    while the others go on answering from the old snapshot.
    """

    def __init__(self, store: Store, index_dir: Path, *, refresh_postings: int = 0) -> None:
        self.store = store
        self.index_dir = Path(index_dir)
        self.refresh_postings = int(refresh_postings)
        self._lock = threading.Lock()
        self._building: threading.Thread | None = None
        self._next_size_check = 0.0
        self._cannot_answer = False
        self._folder: Path | None = None
        self._snapshot: snapshots.Snapshot | None = None
        self._recent: _Recent | None = None
        self._seen_current: tuple[int, int] | None = None
        self._warned_peakless: set[int] = set()
        self._next_id_check = 0.0

    # ----------------------------------------------------------------- lookups
    def find(self, hashes: np.ndarray) -> list[PostingRuns] | None:
        """Where every posting of ``hashes`` in the whole store lies, or None if this reader cannot tell.

        Returns
        -------
        list of PostingRuns or None
            One per index answered from (the snapshot, then the recent
            sounds); None means "read the SQL index instead".
        """
        with self._lock:
            snap = self._current_snapshot()
            self._cannot_answer = snap is None or not self._catch_up(snap)
            if self.refresh_postings and self._refresh_due(snap):
                self._start_background_build()
            if self._cannot_answer:
                return None
            assert snap is not None
            recent = list(self._recent.parts) if self._recent else []
        wanted = distinct_sorted(np.asarray(hashes, dtype=np.uint32))
        return [snap.index.find(wanted)] + [part.find(wanted) for part in recent]

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Every posting of ``hashes``, copied out as :func:`audiofp.store.lookup_postings` returns them, or None."""
        runs = self.find(hashes)
        if runs is None:
            return None
        found = [r.gathered() for r in runs]
        return np.concatenate([h for h, _ in found]), np.concatenate([p for _, p in found])

    def status(self) -> ReaderStatus:
        """The snapshot and recent sounds the next lookup would use (catching up first)."""
        with self._lock:
            snap = self._current_snapshot()
            if snap is not None:
                self._catch_up(snap)
            recent = self._recent
            return ReaderStatus(
                snapshot=None if snap is None else snap.path.name,
                snapshot_sounds=0 if snap is None else snap.meta.sounds,
                snapshot_postings=0 if snap is None else snap.meta.postings,
                watermark=0 if snap is None else snap.meta.watermark,
                recent_sounds=0 if recent is None else len(recent.known),
                recent_postings=0 if recent is None else recent.postings,
            )

    # ----------------------------------------------------------------- refreshing the snapshot
    def refresh(self) -> snapshots.Snapshot | None:
        """Build a new snapshot now, unless another process of this machine is building one.

        Returns
        -------
        Snapshot or None
            The new snapshot, or None if another build held the lock.
        """
        lock_path = self.index_dir / ".build.lock"
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            try:
                built = snapshots.build(self.store, self.index_dir)
                self._next_id_check = 0.0  # the store has an id now: look for its folder at once
                return built
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def refresh_if_due(self, threshold: int) -> snapshots.Snapshot | None:
        """Build a new snapshot now if ``threshold`` postings or more are outside the
        current one (a command-line run after a bulk ingest, which cannot leave a
        build running in the background); 0 never builds."""
        if threshold <= 0:
            return None
        with self._lock:
            snap = self._current_snapshot()
            self._cannot_answer = snap is None or not self._catch_up(snap)
            self._next_size_check = 0.0
            due = self._refresh_due(snap, threshold)
        return self.refresh() if due else None

    def _refresh_due(self, snap: snapshots.Snapshot | None, threshold: int | None = None) -> bool:
        threshold = self.refresh_postings if threshold is None else threshold
        if self._building is not None and self._building.is_alive():
            return False
        if snap is not None and self._recent is not None and not self._cannot_answer:
            return self._recent.postings >= threshold
        # No usable snapshot (or sounds it cannot index): worth one once the store is big enough.
        now = time.monotonic()
        if now < self._next_size_check:
            return False
        self._next_size_check = now + _SIZE_RECHECK_SECONDS
        with self.store.session(readonly=True) as session:
            outside = db.posting_total(session) - (snap.meta.postings if snap is not None else 0)
        return outside >= threshold

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

    # ----------------------------------------------------------------- snapshot
    def _current_snapshot(self) -> snapshots.Snapshot | None:
        """The snapshot to answer from, reopened when a build has replaced it."""
        if self._folder is None:
            if time.monotonic() < self._next_id_check:
                return None
            with self.store.session(readonly=True) as session:
                store_id = snapshots.read_store_id(session)
            if store_id is None:
                # No snapshot was ever built for this store; ask again in a while, not at every lookup.
                self._next_id_check = time.monotonic() + _STORE_ID_RECHECK_SECONDS
                return None
            self._folder = snapshots.store_folder(self.index_dir, store_id)
        try:
            stat = (self._folder / "CURRENT").stat()
            marker: tuple[int, int] | None = (stat.st_ino, stat.st_mtime_ns)
        except OSError:  # none built here yet, or the folder is unusable: read SQL
            marker = None
        if marker != self._seen_current:
            self._seen_current = marker
            self._snapshot, self._recent = self._open_usable(), None
        return self._snapshot

    def _open_usable(self) -> snapshots.Snapshot | None:
        assert self._folder is not None
        snap = snapshots.open_current(self._folder)
        if snap is None:
            return None
        params = self.store.params
        if snap.meta.scheme != params.scheme or snap.meta.params_digest != params.digest():
            log.warning("index snapshot %s was built with other fingerprint parameters; reading SQL until it is rebuilt",
                        snap.path)
            return None
        return snap

    # ----------------------------------------------------------------- recent sounds
    def _catch_up(self, snap: snapshots.Snapshot) -> bool:
        """Index the sounds committed since the snapshot; False if one cannot be indexed here."""
        if self._recent is None:
            grace_left = HOLE_GRACE_SECONDS - (time.time() - snap.meta.built_epoch)
            first_missed = time.monotonic() - HOLE_GRACE_SECONDS + max(grace_left, 0.0)
            self._recent = _Recent(floor=snap.meta.watermark,
                                   pending={h: first_missed for h in snap.meta.holes} if grace_left > 0 else {})
        recent = self._recent
        now = time.monotonic()
        with self.store.session(readonly=True) as session:
            above = db.sound_ids_after(session, recent.floor)
            waiting = list(recent.pending)
            late = db.sound_ids_among(session, waiting) if waiting else np.zeros(0, np.int64)
            new = [int(i) for i in np.concatenate([late, above]) if int(i) not in recent.known]
            if new and not self._index_sounds(session, new):
                return False
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
        return True

    def _index_sounds(self, session: Session, sound_ids: list[int]) -> bool:
        assert self._recent is not None
        stored = db.peaks_of_sounds(session, sound_ids)
        peakless = [i for i in sound_ids if i not in stored]
        if peakless:
            fresh = [i for i in peakless if i not in self._warned_peakless]
            if fresh:
                self._warned_peakless.update(fresh)
                log.warning("sounds %s have no stored peaks; lookups read the SQL index until the next snapshot",
                            fresh[:10])
            return False
        hashes: list[np.ndarray] = []
        postings: list[np.ndarray] = []
        for sound_id in sound_ids:
            fp = index_from_peaks(Peaks.from_bytes(stored[sound_id]), self.store.params, duration=0.0)
            hashes.append(fp.hashes)
            postings.append(fp.postings(sound_id))
        recent = self._recent
        recent.parts.append(InvertedIndex.build(np.concatenate(hashes), np.concatenate(postings)))
        if len(recent.parts) > _MAX_RECENT_PARTS:
            merged_hashes = np.concatenate([np.repeat(p.hashes, np.diff(p.starts)) for p in recent.parts])
            merged_postings = np.concatenate([p.postings for p in recent.parts])
            recent.parts = [InvertedIndex.build(merged_hashes, merged_postings)]
        recent.known.update(sound_ids)
        return True


_readers: "WeakKeyDictionary[Store, IndexReader]" = WeakKeyDictionary()
_readers_lock = threading.Lock()


def attach(store: Store, index_dir: Path | None, *, refresh_postings: int = 0) -> None:
    """Answer ``store``'s lookups from the snapshots under ``index_dir`` (None: from SQL only).

    With ``refresh_postings`` > 0 the reader also rebuilds the snapshot by
    itself (see :class:`IndexReader`).
    """
    with _readers_lock:
        if index_dir is None:
            _readers.pop(store, None)
        else:
            _readers[store] = IndexReader(store, index_dir, refresh_postings=refresh_postings)


def reader_of(store: Store) -> IndexReader | None:
    """The reader attached to ``store``, if any."""
    return _readers.get(store)


def find_postings(session: Session, store: Store, hashes: np.ndarray) -> list[PostingRuns]:
    """Where every posting of ``hashes`` lies: in the attached reader's indexes when it
    can answer, else in the rows read from SQL in ``session``."""
    reader = _readers.get(store)
    if reader is not None:
        runs = reader.find(hashes)
        if runs is not None:
            return runs
    return [PostingRuns.grouped(*db.lookup_postings(session, store.params.scheme, hashes))]


__all__ = ["HOLE_GRACE_SECONDS", "IndexReader", "ReaderStatus", "attach", "find_postings", "reader_of"]

