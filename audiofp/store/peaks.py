"""Each sound's spectral peaks: the store's record of its fingerprint.

The inverted index is derived from these peaks (``audiofp.index``): a snapshot
build streams them (:func:`stream_peaks`), and a worker whose snapshot holds
the sounds up to a watermark asks which sounds came after (or committed late,
below it) and indexes their peaks in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import ParameterError
from .common import dialect
from .models import Sound, SoundPeaks
from .translate import translated


@translated
def add_sound_peaks(session: Session, sound_id: int, peaks: bytes) -> None:
    """Keep the packed peaks (``Peaks.to_bytes``) of a sound being added, in the caller's transaction."""
    if not isinstance(peaks, (bytes, bytearray, memoryview)):
        raise ParameterError(f"peaks must be bytes, got {type(peaks).__name__}")
    session.add(SoundPeaks(sound_id=int(sound_id), peaks=bytes(peaks)))
    session.flush()


@translated
def peaks_of_sounds(session: Session, sound_ids: list[int]) -> dict[int, bytes]:
    """The stored peaks of ``sound_ids``; a sound without stored peaks is absent from the result."""
    found: dict[int, bytes] = {}
    for start in range(0, len(sound_ids), 500):
        chunk = [int(i) for i in sound_ids[start: start + 500]]
        rows = session.execute(select(SoundPeaks.sound_id, SoundPeaks.peaks).where(SoundPeaks.sound_id.in_(chunk)))
        found.update((int(sound_id), bytes(blob)) for sound_id, blob in rows)
    return found


@translated
def sound_ids_after(session: Session, after: int) -> np.ndarray:
    """Ids of the sounds with an id above ``after``, ascending (int64)."""
    ids = session.execute(select(Sound.id).where(Sound.id > int(after)).order_by(Sound.id)).scalars().all()
    return np.asarray(ids, dtype=np.int64)


@translated
def sound_ids_among(session: Session, candidates: list[int]) -> np.ndarray:
    """Which of ``candidates`` are ids of sounds (int64, ascending)."""
    found: list[int] = []
    for start in range(0, len(candidates), 500):
        chunk = [int(i) for i in candidates[start: start + 500]]
        found.extend(session.execute(select(Sound.id).where(Sound.id.in_(chunk))).scalars().all())
    return np.asarray(sorted(found), dtype=np.int64)


@translated
def max_sound_id(session: Session) -> int:
    """The largest sound id, or 0 when there is no sound."""
    return int(session.execute(select(func.coalesce(func.max(Sound.id), 0))).scalar_one())


@translated
def posting_total(session: Session) -> int:
    """Postings of all sounds, from the sounds' own counts (no scan of the index)."""
    return int(session.execute(select(func.coalesce(func.sum(Sound.fingerprint_count), 0))).scalar_one())


def stream_peaks(session: Session, after: int, upto: int, *, batch_rows: int = 200) -> Iterator[list[tuple[int, int, bytes]]]:
    """The peaks of every sound with ``after < id <= upto``, in id order, in batches.

    The caller's transaction fixes what is read (REPEATABLE READ on PostgreSQL
    for a snapshot build). PostgreSQL streams through a server-side cursor,
    so memory stays one batch however large the store.

    Yields
    ------
    list of (int, int, bytes)
        ``(sound id, the sound's posting count, packed peaks)`` per sound; a
        sound without stored peaks is left out (the caller checks for gaps).
    """
    statement = (
        select(Sound.id, Sound.fingerprint_count, SoundPeaks.peaks)
        .join(SoundPeaks, SoundPeaks.sound_id == Sound.id)
        .where(Sound.id > int(after), Sound.id <= int(upto))
        .order_by(Sound.id)
    )
    options = {"yield_per": batch_rows} if dialect(session) == "postgresql" else {}
    result = session.execute(statement, execution_options=options)
    try:
        for rows in result.partitions(batch_rows):
            yield [(int(i), int(count), bytes(blob)) for i, count, blob in rows]
    finally:
        result.close()
