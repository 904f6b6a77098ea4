"""What the index is derived from: each sound's stored peaks, and a migrated store's legacy rows.

A sound's postings are formed again from its peaks exactly as when it was
added (the same triplets, hashes and posting fields): 1,000 h of audio, read
from the store and derived, in about two minutes. A store migrated from
before peaks were kept also holds packed per-hash rows for its older sounds,
read as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import numpy as np
from sqlalchemy.orm import Session

from .. import store as db
from ..engine.fingerprint import index_from_peaks
from ..engine.params import FingerprintParams
from ..engine.types import POSTING_DTYPE, Peaks
from ..errors import IndexMismatchError

log = logging.getLogger(__name__)

Chunk = tuple[np.ndarray, np.ndarray]
"""Postings with the hash of each: (uint32 hashes, POSTING_DTYPE postings) of equal length."""


def postings_of_peaks(params: FingerprintParams, sounds: Iterable[tuple[int, bytes]]) -> Chunk:
    """The postings of sounds given as ``(sound id, packed peaks)``, with their hashes."""
    hashes: list[np.ndarray] = []
    postings: list[np.ndarray] = []
    for sound_id, packed in sounds:
        fp = index_from_peaks(Peaks.from_bytes(packed), params, duration=0.0)
        hashes.append(fp.hashes)
        postings.append(fp.postings(sound_id))
    if not hashes:
        return np.zeros(0, np.uint32), np.zeros(0, POSTING_DTYPE)
    return np.concatenate(hashes).astype(np.uint32, copy=False), np.concatenate(postings)


def legacy_chunks(session: Session, scheme: int) -> Iterator[Chunk]:
    """The postings kept in legacy packed rows (sounds up to ``legacy_upto``)."""
    for hashes, blobs in db.legacy_index_rows(session, scheme):
        counts = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs)) // POSTING_DTYPE.itemsize
        yield np.repeat(hashes, counts), np.frombuffer(b"".join(blobs), dtype=POSTING_DTYPE)


def peak_chunks(session: Session, params: FingerprintParams, *, after: int, upto: int,
                expected: np.ndarray | None = None) -> Iterator[Chunk]:
    """The postings of every sound with ``after < id <= upto``, formed from its peaks, batch by batch.

    Each sound's postings are checked against the count recorded when it was
    added: a difference means the store was written with other fingerprint
    parameters, and the index would be wrong.

    Parameters
    ----------
    expected : np.ndarray of int64, optional
        The ids of the sounds in the range, when the caller knows them: a
        sound among them without stored peaks is logged (it cannot be matched).
    """
    seen: list[int] = []
    for batch in db.stream_peaks(session, after, upto):
        hashes, postings = postings_of_peaks(params, ((i, packed) for i, _, packed in batch))
        ids, counts = np.unique(postings["sound"], return_counts=True)
        derived = dict(zip(ids.tolist(), counts.tolist()))
        for sound_id, counted, _ in batch:
            got = derived.get(sound_id, 0)
            if got != counted:
                raise IndexMismatchError(
                    f"sound {sound_id} gives {got} postings from its stored peaks where {counted} were counted when "
                    "it was added: the store was written with other fingerprint parameters"
                )
        seen.extend(i for i, _, _ in batch)
        yield hashes, postings
    if expected is not None:
        in_range = expected[(expected > after) & (expected <= upto)]
        missing = np.setdiff1d(in_range, np.asarray(seen, dtype=np.int64))
        if missing.size:
            log.error("sounds %s have no stored peaks and cannot be indexed (a damaged store: they match nothing)",
                      missing[:20].tolist())


__all__ = ["Chunk", "legacy_chunks", "peak_chunks", "postings_of_peaks"]
