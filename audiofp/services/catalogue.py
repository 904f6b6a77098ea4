"""The catalogue of known sounds: decode within limits, add a sound, identify a clip.

These use cases compose the engine (pure functions over arrays) with the store
(SQL); the moderation use cases (uploads, history) build on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .. import index
from .. import store as db
from ..config import Limits, Settings
from ..engine import audio as audio_io
from ..engine.analysis import TrackAnalysis, analyse
from ..engine.fingerprint import QueryFingerprint, fingerprint_for_index
from ..engine.hashes import query_hashes
from ..engine import matching
from ..engine.matching import MatchSettings, find_matches, join_hits
from ..engine.types import Audio, Fingerprint, Match, Triplets
from ..engine.windows import combine, placed
from ..errors import ConflictError, NothingToFingerprintError, ParameterError, RetryableError, SilentAudioError
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
    postings: int = 0
    """Index postings the lookups returned (what a query costs at a large index)."""


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
    """Add decoded audio as a sound inside the caller's transaction (see :func:`add_sound_fingerprint`)."""
    digest = audio_io.content_digest(audio)
    known = db.find_sound_by_digest(session, digest)
    if known is not None:
        return IngestOutcome(known.id, False, known.duration_seconds, known.fingerprint_count, known.label)
    return add_sound_fingerprint(session, store, NewSound(fingerprint_to_register(store, audio), digest, audio.duration),
                                 label=label, source_name=source_name)


def add_sound_fingerprint(
    session: Session,
    store: Store,
    sound: "NewSound",
    *,
    label: str | None = None,
    source_name: str | None = None,
) -> IngestOutcome:
    """Add a fingerprinted recording as a sound inside the caller's transaction.

    The sound row and all its postings are written in ``session``: the caller's
    commit makes them visible together, and a failure leaves nothing.
    A recording whose decoded content is already known is not added again.

    Raises
    ------
    NothingToFingerprintError
        If the recording is new and its fingerprint is empty (too short or too
        flat): a sound without one is not added.
    RetryableError
        If a concurrent transaction registered the same audio after this one
        looked: running the use case again finds that sound.
    """
    known = db.find_sound_by_digest(session, sound.digest)
    if known is not None:
        return IngestOutcome(known.id, False, known.duration_seconds, known.fingerprint_count, known.label)
    fp = sound.fingerprint
    if len(fp) == 0:
        raise NothingToFingerprintError(
            f"the audio ({sound.duration:.3f} s) is too short or too flat to fingerprint: it yields no fingerprint"
        )
    if fp.peaks is None:
        raise ParameterError("a sound is registered with the peaks its fingerprint was formed from, and these are missing")
    try:
        record = db.add_sound(
            session,
            content_digest=sound.digest,
            duration_seconds=sound.duration,
            scheme=store.params.scheme,
            fingerprint_count=len(fp),
            label=label,
            source_name=source_name,
        )
    except ConflictError as exc:
        raise RetryableError(f"the same audio was registered concurrently as a sound: {exc}") from exc
    # The peaks are the sound's fingerprint record: its postings are derived from them (audiofp.index).
    db.add_sound_peaks(session, record.id, fp.peaks.to_bytes())
    return IngestOutcome(record.id, True, sound.duration, len(fp), label)


def ingest(store: Store, source: Source, *, settings: Settings, label: str | None = None) -> IngestOutcome:
    """Decode ``source`` and add it as a sound, in one transaction."""
    audio = decode(source, limits=settings.limits, sample_rate=store.params.sample_rate)
    name = Path(source).name if isinstance(source, (str, Path)) else None
    with db.transaction(store) as session:
        return add_sound_audio(session, store, audio, label=label, source_name=name)


@dataclass(frozen=True)
class NewSound:
    """What registering a recording as a sound needs: its index hashes, content digest and length."""

    fingerprint: Fingerprint
    digest: str
    duration: float


@dataclass(frozen=True)
class TrackReport:
    """What the check found of one audio track of an upload.

    ``decodable`` is False when no decoder exists for what the track declares;
    ``audible`` is False for a track that decoded to silence (or to nothing).
    """

    index: int
    duration: float
    decodable: bool
    audible: bool


@dataclass(frozen=True)
class _Window:
    """One query window, kept without its lookups (rebuilt when it is matched again)."""

    track: int
    triplets: Triplets
    n_frames: float
    start_frame: int

    def query(self, store: Store) -> QueryFingerprint:
        return QueryFingerprint(triplets=self.triplets, lookups=query_hashes(self.triplets, store.params),
                                n_frames=self.n_frames, duration=self.n_frames * store.params.frame_seconds,
                                start_frame=self.start_frame)


@dataclass(frozen=True)
class Analysis:
    """Everything one check of a file found: per track, the matches, and what would register it.

    ``matches`` hold for the whole file: merged over windows, with their
    probabilities restated for the number of windows queried (see
    :mod:`audiofp.engine.windows`). ``new_sound`` is the first audible track,
    which becomes the upload's own sound when it reuses nothing.
    """

    tracks: tuple[TrackReport, ...]
    matches: list[Match]
    new_sound: NewSound | None
    sounds_seen: int
    """How many sounds the catalogue held when the check began."""
    windows: tuple[_Window, ...] = ()
    lookups: int = 0
    hits: int = 0
    postings: int = 0
    seconds: float = 0.0
    """Wall-clock time of the whole check."""
    match_seconds: float = 0.0
    """The part of ``seconds`` spent looking windows up and matching them (the rest decoded and fingerprinted)."""

    @property
    def duration(self) -> float:
        """Length of the longest track, seconds."""
        return max((t.duration for t in self.tracks), default=0.0)

    @property
    def audible(self) -> bool:
        """Whether any track holds sound to check."""
        return any(t.audible for t in self.tracks)


def analyse_source(
    store: Store,
    source: Source,
    *,
    settings: Settings,
    keep_windows: bool = False,
    register: bool = True,
) -> Analysis:
    """Check every audio track of a file against the catalogue, in bounded memory.

    Each track is decoded in blocks and matched window by window as it
    arrives (one short read-only transaction per window); only the peaks and
    the matches are kept. The limits' wall-clock budget covers the whole
    check, decoding, fingerprinting and matching alike.

    Parameters
    ----------
    store : Store
    source : path, bytes or seekable binary file
    settings : Settings
    keep_windows : bool
        Keep each window's triplets, so :func:`rematch` can match them again.
    register : bool
        Keep what registering the first audible track as a sound needs.

    Raises
    ------
    InputTooLargeError, AudioTooLongError, BadAudioError, CheckTimeoutError
        For a file that cannot be checked: too large, too long, too many
        tracks, not media, no audio track, or too slow to check.
    """
    started = time.perf_counter()
    limits = settings.limits
    deadline = audio_io.Deadline(limits.decode_timeout_seconds, limits.check_seconds_per_audio_minute / 60.0)
    with db.transaction(store, readonly=True) as session:
        sounds_seen = db.count_sounds(session)
    reports: list[TrackReport] = []
    found: list[Match] = []
    kept: list[_Window] = []
    new_sound: NewSound | None = None
    lookups = hits = postings = windows = 0
    match_seconds = 0.0
    name = Path(source).name if isinstance(source, (str, Path)) else "the upload"
    for track in audio_io.tracks(source, sample_rate=store.params.sample_rate, max_bytes=limits.max_upload_bytes,
                                 max_seconds=limits.max_audio_seconds, max_tracks=limits.max_audio_tracks,
                                 deadline=deadline):
        analysis = TrackAnalysis(store.params, keep_index=register and new_sound is None)
        track_found: list[Match] = []

        def check(queries: list[QueryFingerprint]) -> None:
            nonlocal lookups, hits, postings, windows, match_seconds
            for query in queries:
                deadline.check(f"checking {name}")
                result = match_fingerprint(store, query, match_settings=settings.matching)
                match_seconds += result.seconds
                lookups += result.lookups
                hits += result.hits
                postings += result.postings
                windows += 1
                track_found.extend(placed(result.matches, start_seconds=query.start_seconds(store.params),
                                          track=track.index))
                if keep_windows:
                    kept.append(_Window(track.index, query.triplets, query.n_frames, query.start_frame))

        for block in track.blocks:
            check(analysis.feed(block))
        check(analysis.finish())
        audible = analysis.peak_level >= audio_io.SILENCE_PEAK
        reports.append(TrackReport(track.index, round(analysis.duration, 3), track.decodable, audible))
        if not audible:
            continue  # whatever near-silence matched is not a reuse anyone hears
        found.extend(track_found)
        if analysis.keep_index:
            new_sound = NewSound(analysis.index_fingerprint(), analysis.digest, analysis.duration)
    if not any(t.decodable for t in reports):
        raise audio_io.BadAudioError(
            f"{name} declares an audio encoding that cannot be decoded (malformed or unknown header)")
    matches = combine(found, windows=windows, max_false_match_probability=settings.matching.max_false_match_probability)
    return Analysis(tracks=tuple(reports), matches=matches, new_sound=new_sound, sounds_seen=sounds_seen,
                    windows=tuple(kept), lookups=lookups, hits=hits, postings=postings,
                    seconds=time.perf_counter() - started,
                    match_seconds=match_seconds)


def rematch(store: Store, analysis: Analysis, *, settings: Settings, session: Session) -> list[Match]:
    """Match a checked file's windows again, inside ``session`` (it needs ``keep_windows``).

    For an upload about to register its audio as a new sound: a concurrent
    upload may have registered the same sound since the check.
    """
    found: list[Match] = []
    for window in analysis.windows:
        query = window.query(store)
        result = match_fingerprint(store, query, session=session, match_settings=settings.matching)
        found.extend(placed(result.matches, start_seconds=query.start_seconds(store.params), track=window.track))
    return combine(found, windows=len(analysis.windows),
                   max_false_match_probability=settings.matching.max_false_match_probability)


def identify_audio(
    store: Store,
    audio: Audio,
    *,
    session: Session | None = None,
    match_settings: MatchSettings | None = None,
) -> QueryResult:
    """Find the known sounds ``audio`` reuses.

    Audio longer than a window is matched window by window, as uploads are.

    Parameters
    ----------
    store : Store
    audio : Audio
        Decoded query at the analysis rate.
    session : Session, optional
        Run the lookups inside this transaction (so a caller can match and
        record atomically); a read-only session of its own otherwise.
    match_settings : MatchSettings, optional
        Search range and acceptance rule; the calibrated defaults otherwise.
    """
    started = time.perf_counter()
    settings = match_settings or MatchSettings()
    _, queries = analyse(audio, store.params, keep_index=False)
    found: list[Match] = []
    lookups = hits = postings = 0
    labels: dict[int, str | None] = {}
    for query in queries:
        result = match_fingerprint(store, query, session=session, match_settings=settings)
        found.extend(placed(result.matches, start_seconds=query.start_seconds(store.params), track=0))
        lookups += result.lookups
        hits += result.hits
        postings += result.postings
        labels.update(result.labels)
    matches = combine(found, windows=len(queries), max_false_match_probability=settings.max_false_match_probability)
    return QueryResult(matches=matches, duration=audio.duration, seconds=time.perf_counter() - started,
                       lookups=lookups, hits=hits, postings=postings,
                       labels={m.sound_id: labels.get(m.sound_id) for m in matches})


def warm_up_matcher() -> None:
    """Load the matcher's compiled kernels (a worker calls this at boot)."""
    matching.warm_up()


def match_fingerprint(
    store: Store,
    query: QueryFingerprint,
    *,
    session: Session | None = None,
    match_settings: MatchSettings | None = None,
) -> QueryResult:
    """Find the known sounds one query (window) reuses, with one lookup round trip.

    Match times are the window's own; :func:`audiofp.engine.windows.placed`
    moves them onto the track.
    """
    started = time.perf_counter()
    settings = match_settings or MatchSettings()
    if session is None:
        with db.transaction(store, readonly=True) as own:
            matches, hits, postings, labels = _match_in(own, store, query, settings)
    else:
        matches, hits, postings, labels = _match_in(session, store, query, settings)
    return QueryResult(
        matches=matches,
        duration=query.duration,
        seconds=time.perf_counter() - started,
        lookups=int(query.lookups.hashes.size),
        hits=hits,
        labels=labels,
        postings=postings,
    )


def _match_in(
    session: Session, store: Store, query: QueryFingerprint, settings: MatchSettings
) -> tuple[list[Match], int, int, dict[int, str | None]]:
    """One lookup, the matching, and the labels of the matched sounds (with the hits and postings counted)."""
    if query.lookups.hashes.size == 0:
        return [], 0, 0, {}
    runs = index.find_postings(store, query.lookups.hashes)
    hits = join_hits(query.triplets, query.lookups, runs, settings, query_frames=query.n_frames)
    matches = find_matches(hits, store.params, settings, query_frames=query.n_frames)
    labels: dict[int, str | None] = {}
    if matches:
        records = db.get_sounds(session, {m.sound_id for m in matches})
        labels = {i: r.label for i, r in records.items()}
    return matches, len(hits), sum(len(r) for r in runs), labels


def identify(store: Store, source: Source, *, settings: Settings) -> QueryResult:
    """Check ``source`` (every audio track) and find the known sounds it reuses; ``seconds`` includes decoding.

    Raises
    ------
    SilentAudioError
        If no track holds any sound.
    """
    analysis = analyse_source(store, source, settings=settings, register=False)
    if not analysis.audible:
        name = Path(source).name if isinstance(source, (str, Path)) else "input"
        raise SilentAudioError(f"{name} is silent: nothing to fingerprint")
    labels: dict[int, str | None] = {}
    if analysis.matches:
        with db.transaction(store, readonly=True) as session:
            labels = {i: r.label for i, r in db.get_sounds(session, {m.sound_id for m in analysis.matches}).items()}
    return QueryResult(matches=analysis.matches, duration=analysis.duration, seconds=analysis.seconds,
                       lookups=analysis.lookups, hits=analysis.hits, postings=analysis.postings, labels=labels)
