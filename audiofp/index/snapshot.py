"""Index snapshots: the inverted index derived from the store's record, as memory-mappable arrays.

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

A snapshot is derived data: the store's record is each sound's peaks (and, in
a store migrated from before peaks were kept, the packed rows of its older
sounds). Deleting the folder loses nothing: the next lookup builds one again.
A new generation is normally *merged*: the previous one plus the postings of
the sounds added since (:mod:`.assemble`), so keeping it fresh costs a copy
of the index and the sort of what is new, not a full sort.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from .. import store as db
from ..engine.inverted import InvertedIndex
from ..engine.params import FingerprintParams
from ..engine.types import POSTING_DTYPE
from ..errors import ParameterError
from ..store import Store
from .assemble import write_index
from .source import Chunk, legacy_chunks, peak_chunks, postings_of_peaks

log = logging.getLogger(__name__)

#: Version of the folder layout below; a reader ignores snapshots of another.
#: 4: derived from peaks, possibly merged from a previous generation (``base``);
#: 3: each hash's postings ascend in anchor frequency (2: in span; 1: as added).
SNAPSHOT_FORMAT = 4

#: Seconds after which an id missing below the newest sound is taken for a
#: rolled-back insert rather than a transaction still to commit. Uploads and
#: ingests commit within their check deadline, far below this.
HOLE_GRACE_SECONDS = 600.0

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
    base : str or None
        The generation this one was merged from (None: built from the whole store).
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
    base: str | None = None

    @property
    def built_epoch(self) -> float:
        """``built_at`` as seconds since the epoch."""
        return datetime.fromisoformat(self.built_at).timestamp()


@dataclass(frozen=True)
class Snapshot:
    """One opened generation: its metadata and its (memory-mapped) index.

    ``path`` is None for an index built in a worker's memory (no snapshot folder).
    """

    path: Path | None
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


def usable(snap: Snapshot | None, params: FingerprintParams) -> Snapshot | None:
    """``snap`` if its postings were formed with ``params``, else None (after saying why)."""
    if snap is None:
        return None
    if snap.meta.scheme != params.scheme or snap.meta.params_digest != params.digest():
        log.warning("index snapshot %s was built with other fingerprint parameters; building a new one", snap.path)
        return None
    return snap


@dataclass(frozen=True)
class _Plan:
    """What a build reads: the sounds it adds to its base (if any) and what the result holds."""

    watermark: int
    holes: list[int]
    sounds: int
    after: int
    """Sounds above this id, up to the watermark, are added from their peaks."""
    late: list[int]
    """Ids below ``after`` that committed after the base was read: added from their peaks too."""
    legacy: bool
    """Read the legacy rows (a full build of a store migrated from before peaks were kept)."""
    present: np.ndarray
    expected_postings: int


def _plan(session: Session, base: SnapshotMeta | None) -> _Plan:
    watermark = db.max_sound_id(session)
    legacy_upto = db.legacy_upto(session)
    total = db.posting_total(session)
    if base is None:
        present = db.sound_ids_after(session, 0)
        holes = np.setdiff1d(np.arange(1, watermark + 1, dtype=np.int64), present).tolist()
        return _Plan(watermark=watermark, holes=holes, sounds=int(present.size), after=legacy_upto, late=[],
                     legacy=legacy_upto > 0, present=present, expected_postings=total)
    above = db.sound_ids_after(session, base.watermark)
    late = db.sound_ids_among(session, base.holes).tolist() if base.holes else []
    # The base's holes still missing are worth carrying only while a late commit is possible.
    committed = set(late)
    carried = [h for h in base.holes if h not in committed] if time.time() - base.built_epoch < HOLE_GRACE_SECONDS \
        else []
    holes = carried + np.setdiff1d(np.arange(base.watermark + 1, watermark + 1, dtype=np.int64), above).tolist()
    return _Plan(watermark=max(watermark, base.watermark), holes=[int(h) for h in holes],
                 sounds=base.sounds + len(late) + int(above.size), after=base.watermark, late=[int(i) for i in late],
                 legacy=False, present=above, expected_postings=max(total - base.postings, 0))


def _chunks(session: Session, params: FingerprintParams, plan: _Plan) -> Iterator[Chunk]:
    if plan.legacy:
        yield from legacy_chunks(session, params.scheme)
    yield from peak_chunks(session, params, after=plan.after, upto=plan.watermark, expected=plan.present)
    if plan.late:
        yield postings_of_peaks(params, db.peaks_of_sounds(session, plan.late).items())


@contextmanager
def _reading(store: Store) -> Iterator[Session]:
    """One consistent view of the store for everything a build reads."""
    with store.session(readonly=True) as session:
        if store.dialect == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session


def build(store: Store, index_dir: Path, *, keep: int = 1, full: bool = False,
          log: Callable[[str], None] | None = None) -> Snapshot:
    """Build a new snapshot of ``store``'s index and make it the current one.

    Parameters
    ----------
    store : Store
    index_dir : Path
        The operator's index folder; the snapshot goes in the store's own folder below it.
    keep : int
        Older generations kept besides the new one (a reader that still maps
        one keeps reading it after it is deleted, as POSIX allows).
    full : bool
        Derive every posting again, even when the current generation could be merged into.
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
    base = None if full else usable(open_current(folder), store.params)
    building = folder / f".building-{uuid.uuid4().hex}"
    building.mkdir()
    try:
        with _reading(store) as session:
            if base is not None and base.meta.watermark < db.legacy_upto(session):
                base = None  # built before the store was migrated: it may lack legacy sounds
            plan = _plan(session, None if base is None else base.meta)
            say(f"snapshot up to sound {plan.watermark}: "
                + (f"merging sounds after {plan.after} into {base.path.name}" if base is not None and base.path
                   else f"all {plan.sounds} sounds"))
            total = write_index(building, _chunks(session, store.params, plan),
                                base=None if base is None else base.index,
                                expected_postings=plan.expected_postings,
                                hash_bits=store.params.layout.total_bits, say=say)
        meta = SnapshotMeta(
            format=SNAPSHOT_FORMAT, store_id=store_id, scheme=store.params.scheme,
            params_digest=store.params.digest(), watermark=int(plan.watermark), holes=plan.holes,
            sounds=int(plan.sounds), postings=int(total), built_at=datetime.now(timezone.utc).isoformat(),
            build_seconds=round(time.perf_counter() - started, 3),
            base=None if base is None or base.path is None else base.path.name,
        )
        (building / "meta.json").write_text(json.dumps(asdict(meta), indent=1))
        name = f"gen-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        building.rename(folder / name)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    del base  # unmap the previous generation before it may be removed
    _point_current(folder, name)
    _remove_old(folder, keep_current=name, keep=keep)
    say(f"snapshot {name} built in {time.perf_counter() - started:.1f} s")
    opened = open_current(folder)
    assert opened is not None
    return opened


def build_in_memory(store: Store) -> Snapshot:
    """The whole store's index in this process's memory: for stores run without a snapshot folder.

    It costs a full derivation at every start, so it suits small stores
    (tests, a laptop); a production worker maps a snapshot instead.
    """
    started = time.perf_counter()
    with _reading(store) as session:
        plan = _plan(session, None)
        chunks = list(_chunks(session, store.params, plan))
        store_id = read_store_id(session) or ""
    hashes = np.concatenate([h for h, _ in chunks]) if chunks else np.zeros(0, np.uint32)
    postings = np.concatenate([p for _, p in chunks]) if chunks else np.zeros(0, POSTING_DTYPE)
    meta = SnapshotMeta(
        format=SNAPSHOT_FORMAT, store_id=store_id, scheme=store.params.scheme, params_digest=store.params.digest(),
        watermark=int(plan.watermark), holes=plan.holes, sounds=plan.sounds, postings=int(postings.size),
        built_at=datetime.now(timezone.utc).isoformat(), build_seconds=round(time.perf_counter() - started, 3),
    )
    return Snapshot(path=None, meta=meta, index=InvertedIndex.build(hashes, postings))


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
        # Derived data: a damaged snapshot is skipped (the reader builds a new one), never fatal.
        log.warning("index snapshot %s cannot be used (%s); rebuild it with: audiofp index snapshot", path, exc)
        return None
    return Snapshot(path=path, meta=meta, index=index)
