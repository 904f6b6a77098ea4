"""The catalogue of known sounds: decode within limits, add a sound, identify a clip.

These use cases compose the engine (pure functions over arrays) with the store
(SQL); the moderation use cases (uploads, history) build on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from .. import store as db
from ..config import Limits, Settings
from ..engine import audio as audio_io
from ..engine.fingerprint import QueryFingerprint, fingerprint_for_index, fingerprint_for_query
from ..engine.matching import MatchSettings, find_matches, join_hits
from ..engine.types import Audio, Fingerprint, Match
from ..errors import ConflictError, NothingToFingerprintError, RetryableError
from ..store import Session, SoundRecord, Store

Source = str | Path | bytes | BinaryIO


@dataclass(frozen=True)
class IngestOutcome:
    """What adding one recording did.

    ``created`` is False when the same decoded audio was already a sound; then
    ``sound_id`` is that sound and nothing was written.
    """

    sound_id: int
    created: bool
    duration: float
    fingerprints: int
    label: str | None = None


@dataclass(frozen=True)
class QueryResult:
    """The sounds a clip reuses (best first), with the clip's length and the time taken."""

    matches: list[Match]
    duration: float
    seconds: float
    lookups: int = 0
    hits: int = 0
    labels: dict[int, str | None] = field(default_factory=dict)


def decode(source: Source, *, limits: Limits, sample_rate: int) -> Audio:
    """Decode ``source`` to analysis-rate mono audio within the configured limits."""
    return audio_io.decode(
        source,
        sample_rate=sample_rate,
        max_bytes=limits.max_upload_bytes,
        max_seconds=limits.max_audio_seconds,
        timeout_seconds=limits.decode_timeout_seconds,
    )


def fingerprint_to_register(store: Store, audio: Audio) -> Fingerprint:
    """The index fingerprint of ``audio``, which must hold at least one hash to make a sound.

    Raises
    ------
    NothingToFingerprintError
        If the audio yields no hash (too short, or no spectral peaks: a DC offset).
    """
    fp = fingerprint_for_index(audio, store.params)
    if len(fp) == 0:
        raise NothingToFingerprintError(
            f"the audio ({audio.duration:.3f} s) is too short or too flat to fingerprint: it yields no fingerprint"
        )
    return fp


def identical_sound(session: Session, audio: Audio) -> SoundRecord | None:
    """The known sound whose decoded audio is identical to ``audio``, if any."""
    return db.find_sound_by_digest(session, audio_io.content_digest(audio))


def add_sound_audio(
    session: Session,
    store: Store,
    audio: Audio,
    *,
    label: str | None = None,
    source_name: str | None = None,
) -> IngestOutcome:
    """Add decoded audio as a sound inside the caller's transaction.

    The sound row and all its postings are written in ``session``: the caller's
    commit makes them visible together, and a failure leaves nothing.
    Audio whose decoded content is already known is not added again.

    Raises
    ------
    NothingToFingerprintError
        If the audio is new and yields no fingerprint (too short or too flat):
        a sound without one is not added.
    RetryableError
        If a concurrent transaction registered the same audio after this one
        looked: running the use case again finds that sound.
    """
    digest = audio_io.content_digest(audio)
    known = db.find_sound_by_digest(session, digest)
    if known is not None:
        return IngestOutcome(known.id, False, known.duration_seconds, known.fingerprint_count, known.label)
    fp = fingerprint_to_register(store, audio)
    try:
        record = db.add_sound(
            session,
            content_digest=digest,
            duration_seconds=audio.duration,
            scheme=store.params.scheme,
            fingerprint_count=len(fp),
            label=label,
            source_name=source_name,
        )
    except ConflictError as exc:
        raise RetryableError(f"the same audio was registered concurrently as a sound: {exc}") from exc
    db.add_postings(session, store.params.scheme, fp.hashes, fp.postings(record.id))
    return IngestOutcome(record.id, True, audio.duration, len(fp), label)


def ingest(store: Store, source: Source, *, settings: Settings, label: str | None = None) -> IngestOutcome:
    """Decode ``source`` and add it as a sound, in one transaction."""
    audio = decode(source, limits=settings.limits, sample_rate=store.params.sample_rate)
    name = Path(source).name if isinstance(source, (str, Path)) else None
    with db.transaction(store) as session:
        return add_sound_audio(session, store, audio, label=label, source_name=name)


def identify_audio(
    store: Store,
    audio: Audio,
    *,
    session: Session | None = None,
    match_settings: MatchSettings | None = None,
) -> QueryResult:
    """Find the known sounds ``audio`` reuses.

    Parameters
    ----------
    store : Store
    audio : Audio
        Decoded query at the analysis rate.
    session : Session, optional
        Run the lookup inside this transaction (so a caller can match and
        record atomically); a read-only session of its own otherwise.
    match_settings : MatchSettings, optional
        Search range and acceptance rule; the calibrated defaults otherwise.
    """
    started = time.perf_counter()
    query = fingerprint_for_query(audio, store.params)
    result = match_fingerprint(store, query, session=session, match_settings=match_settings)
    return replace(result, seconds=time.perf_counter() - started)


def match_fingerprint(
    store: Store,
    query: QueryFingerprint,
    *,
    session: Session | None = None,
    match_settings: MatchSettings | None = None,
) -> QueryResult:
    """Find the known sounds a query fingerprint reuses: :func:`identify_audio` without
    fingerprinting, for a caller that matches one query more than once."""
    started = time.perf_counter()
    settings = match_settings or MatchSettings()
    if session is None:
        with db.transaction(store, readonly=True) as own:
            matches, hits, labels = _match_in(own, store, query, settings)
    else:
        matches, hits, labels = _match_in(session, store, query, settings)
    return QueryResult(
        matches=matches,
        duration=query.duration,
        seconds=time.perf_counter() - started,
        lookups=int(query.lookups.hashes.size),
        hits=hits,
        labels=labels,
    )


def _match_in(
    session: Session, store: Store, query: QueryFingerprint, settings: MatchSettings
) -> tuple[list[Match], int, dict[int, str | None]]:
    """One lookup round trip, the matching, and the labels of the matched sounds."""
    hit_hashes, postings = db.lookup_postings(session, store.params.scheme, query.lookups.hashes)
    hits = join_hits(query.triplets, query.lookups, hit_hashes, postings, settings)
    matches = find_matches(hits, store.params, settings, query_frames=query.n_frames)
    labels: dict[int, str | None] = {}
    if matches:
        records = db.get_sounds(session, {m.sound_id for m in matches})
        labels = {i: r.label for i, r in records.items()}
    return matches, len(hits), labels


def identify(store: Store, source: Source, *, settings: Settings) -> QueryResult:
    """Decode ``source`` and find the known sounds it reuses; ``seconds`` includes decoding."""
    started = time.perf_counter()
    audio = decode(source, limits=settings.limits, sample_rate=store.params.sample_rate)
    result = identify_audio(store, audio, match_settings=settings.matching)
    return QueryResult(
        matches=result.matches,
        duration=result.duration,
        seconds=time.perf_counter() - started,
        lookups=result.lookups,
        hits=result.hits,
        labels=result.labels,
    )
