"""Uploads: fingerprint, match, record the uses, answer with a verdict.

The verdict is a JSON document stored with the upload, so that a retried
submission (same content id or Idempotency-Key) gets the very same answer
without recording anything twice. A retry is the same content id, account id
and bytes as the first submission; a content id or key that comes back with
anything else is another upload, and is refused rather than answered with the
first one's verdict.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, BinaryIO

from .. import store as db
from ..config import Settings
from ..engine.types import Evidence, Match
from ..errors import (
    ConflictError,
    IdempotencyMismatchError,
    NothingToFingerprintError,
    ParameterError,
    RetryableError,
)
from ..store import Session, Store, UploadState, UseKind
from . import catalogue
from .documents import verdict_doc, verdict_upload_doc
from .links import linked_removals

#: Attempts at recording an upload when a concurrent writer wins a race
#: (the same new sound registered at once, a deadlock on shared index rows).
RECORD_ATTEMPTS = 4

Source = bytes | BinaryIO

__all__ = [
    "RECORD_ATTEMPTS", "Source", "Submission", "build_verdict", "dry_run_match", "payload_digest",
    "submit_upload", "usable_matches",
]


@dataclass(frozen=True)
class Submission:
    """The outcome of :func:`submit_upload`.

    ``body`` is the verdict document serialised once; replays return it byte
    for byte. ``created`` is False for a replay.
    """

    verdict: dict[str, Any]
    body: str
    created: bool
    timings: dict[str, float] = field(default_factory=dict)
    """Milliseconds spent decoding, matching and recording (empty for a replay)."""


def usable_matches(matches: Iterable[Match], settings: Settings) -> list[Match]:
    """Matches confident enough to count, one per sound (the best scoring)."""
    best: dict[int, Match] = {}
    for m in matches:
        if m.confidence < settings.moderation.min_use_confidence:
            continue
        if m.sound_id not in best or m.evidence.score > best[m.sound_id].evidence.score:
            best[m.sound_id] = m
    return sorted(best.values(), key=lambda m: (-m.confidence, -m.evidence.score, m.sound_id))


def build_verdict(
    session: Session,
    matches: list[Match],
    settings: Settings,
    *,
    tracks: tuple[catalogue.TrackReport, ...],
    use_ids: dict[int, int] | None = None,
    upload: dict[str, Any] | None = None,
    original_sound_id: int | None = None,
    fingerprinted: bool = True,
) -> dict[str, Any]:
    """The verdict document for ``matches`` given the current links to removed content.

    The recommended action follows the most confident match among the sounds
    that are linked; sounds that are not linked do not count against an upload.
    ``fingerprinted`` is False for audio too short or too flat to fingerprint
    (or silent) that matched nothing: the verdict then says nothing about it
    either way, and ``tracks`` says what each audio track held.
    """
    sound_ids = [m.sound_id for m in matches]
    links = linked_removals(session, sound_ids)
    linked_confidences = [float(m.confidence) for m in matches if links.get(m.sound_id)]
    return verdict_doc(
        matches,
        links=links,
        tags=db.tags_of_sounds(session, sound_ids),
        action=settings.moderation.action(linked_confidences),
        tracks=tracks,
        use_ids=use_ids,
        upload=upload,
        original_sound_id=original_sound_id,
        fingerprinted=fingerprinted,
    )


def _check(store: Store, source: Source, settings: Settings, *, keep_windows: bool) -> catalogue.Analysis:
    """Check every track of an upload within the configured limits (size, duration, tracks, wall-clock time)."""
    return catalogue.analyse_source(store, source, settings=settings, keep_windows=keep_windows)


def dry_run_match(store: Store, source: Source, *, settings: Settings) -> dict[str, Any]:
    """The verdict an upload would get now, recording nothing."""
    analysis = _check(store, source, settings, keep_windows=False)
    matches = usable_matches(analysis.matches, settings)
    fingerprinted = True
    with db.transaction(store, readonly=True) as session:
        if not matches:
            # What recording would do: find the sound of identical audio, or register this one if it can be.
            sound = analysis.new_sound
            known = None if sound is None else db.find_sound_by_digest(session, sound.digest)
            if known is not None and sound is not None:
                matches = [_identity_match(known.id, sound.duration, known.fingerprint_count)]
            else:
                fingerprinted = sound is not None and len(sound.fingerprint) > 0
        return build_verdict(session, matches, settings, tracks=analysis.tracks, fingerprinted=fingerprinted)


def payload_digest(source: Source) -> str:
    """SHA-256 (hex) of the bytes of an upload; a file object is read to its end and put back where it was."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return hashlib.sha256(source).hexdigest()
    start = source.tell()
    digest = hashlib.sha256()
    for chunk in iter(lambda: source.read(1 << 20), b""):
        digest.update(chunk)
    source.seek(start, io.SEEK_SET)
    return digest.hexdigest()


def _differences(found: db.UploadRecord, request: _Request) -> list[str]:
    """What of ``request`` differs from the submission ``found`` recorded (an empty list for a retry)."""
    differences = []
    if found.content_id != request.content_id:
        differences.append("content id")
    if found.account_id != request.account_id:
        differences.append("account id")
    # Uploads recorded before digests were kept are compared on their ids only.
    if found.payload_digest is not None and found.payload_digest != request.payload_digest:
        differences.append("file")
    return differences


def _replay(store: Store, request: _Request) -> Submission | None:
    """The stored answer if ``request`` repeats a recorded submission, None if it is new.

    Raises
    ------
    IdempotencyMismatchError
        If its content id or idempotency key was recorded with another payload.
    """
    with db.transaction(store, readonly=True) as session:
        by_content = db.find_upload(session, content_id=request.content_id)
        by_key = None if request.idempotency_key is None else db.find_upload(
            session, idempotency_key=request.idempotency_key)
    for found, name, value in ((by_key, "Idempotency-Key", request.idempotency_key),
                               (by_content, "content id", request.content_id)):
        differences = [] if found is None else _differences(found, request)
        if differences:
            raise IdempotencyMismatchError(
                f"{name} {value!r} was first sent with another {' and '.join(differences)}: a retry must repeat "
                f"the first request exactly; send a new {name} for a new upload"
            )
    found = by_key or by_content
    if found is None or not found.verdict_json:
        return None
    return Submission(verdict=json.loads(found.verdict_json), body=found.verdict_json, created=False)


def _check_fields(content_id: str, account_id: str, uploaded_at: datetime, idempotency_key: str | None,
                  settings: Settings) -> None:
    for name, value in (("content_id", content_id), ("account_id", account_id)):
        if not isinstance(value, str) or not value.strip() or len(value) > 255:
            raise ParameterError(f"{name} must be a non-empty string of at most 255 characters")
    if uploaded_at.tzinfo is None or uploaded_at.utcoffset() is None:
        raise ParameterError("uploaded_at must carry a time zone (for instance 2024-05-01T12:00:00Z)")
    settings.moderation.check_upload_time(uploaded_at, datetime.now(timezone.utc))
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
        raise ParameterError("Idempotency-Key must be 1-255 characters")


@dataclass(frozen=True)
class _Request:
    """What identifies a submission: a retry repeats all of it."""

    content_id: str
    account_id: str
    idempotency_key: str | None
    payload_digest: str


@dataclass(frozen=True)
class _Upload:
    """What a submission records, gathered once and reused by every attempt."""

    request: _Request
    uploaded_at: datetime
    metadata: dict[str, Any] | None
    analysis: catalogue.Analysis


def submit_upload(
    store: Store,
    source: Source,
    *,
    content_id: str,
    account_id: str,
    uploaded_at: datetime,
    settings: Settings,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Submission:
    """Fingerprint an upload, record its uses (or its new sound), return the verdict.

    A content id or idempotency key seen before returns the stored verdict
    without decoding or recording anything; so does one recorded by a
    concurrent submission while this one was matching. ``source`` is read
    twice (digested, then decoded): a file object must be seekable.

    Raises
    ------
    IdempotencyMismatchError
        If the content id or key was recorded with another content id,
        account id or file: that is another upload, not a retry.
    RetryableError
        If concurrent writers won every one of ``RECORD_ATTEMPTS`` races.
    ConflictError
        If the content id or key is taken but its verdict cannot be read back.
    """
    _check_fields(content_id, account_id, uploaded_at, idempotency_key, settings)
    started = time.perf_counter()
    request = _Request(content_id, account_id, idempotency_key, payload_digest(source))
    replay = _replay(store, request)
    if replay is not None:
        return replay

    analysis = _check(store, source, settings, keep_windows=True)
    upload = _Upload(request, uploaded_at, metadata, analysis)
    matched = time.perf_counter()
    matches = usable_matches(analysis.matches, settings)
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            submission = _record(store, upload, matches, settings)
        except ConflictError:
            # The same upload was recorded meanwhile: answer with its verdict
            # (or refuse, if what was recorded under this content id or key differs).
            replay = _replay(store, request)
            if replay is None:
                raise
            return replay
        except RetryableError:
            if attempt == RECORD_ATTEMPTS:
                raise
            # The winner may have registered a sound this upload reuses: match
            # again (the lookups only; the file is decoded and fingerprinted once).
            with db.transaction(store, readonly=True) as session:
                matches = usable_matches(catalogue.rematch(store, analysis, settings=settings, session=session),
                                         settings)
            continue
        timings = {"decode": matched - started - analysis.match_seconds, "match": analysis.match_seconds,
                   "record": time.perf_counter() - matched}
        return replace(submission, timings={k: round(v * 1000, 2) for k, v in timings.items()})
    raise AssertionError("unreachable: the last attempt returns or raises")


def _identity_evidence(duration: float, anchors: int) -> Evidence:
    """The whole upload is the sound (or, for a byte-identical copy, the same
    decoded audio): an identity alignment over its full length."""
    whole = round(duration, 3)
    return Evidence(
        query_start=0.0, query_end=whole, sound_start=0.0, sound_end=whole,
        speed=1.0, pitch_semitones=0.0, anchors=anchors, score=0.0, confidence=1.0,
    )


def _identity_match(sound_id: int, duration: float, anchors: int) -> Match:
    """A known sound whose decoded audio is identical to the upload's: found by its digest, for certain.

    Fingerprints miss such a copy when the sound is too short to have enough
    of them; the digest does not, and the verdict must say what was recorded.
    """
    return Match(sound_id=sound_id, evidence=_identity_evidence(duration, anchors), false_match_probability=0.0)


def _register(
    session: Session, store: Store, upload: _Upload, upload_id: int
) -> tuple[list[Match], dict[int, int], int | None]:
    """An upload that reuses nothing: register its first audible track as a new sound, or use the known sound of
    identical audio.

    Returns the matches the verdict lists, the use recorded per sound, and the
    id of the sound registered (None when none was). Audio that yields no
    fingerprint (or an upload with no audible track) records no use and becomes no sound.
    """
    sound = upload.analysis.new_sound
    if sound is None:
        return [], {}, None
    try:
        outcome = catalogue.add_sound_fingerprint(session, store, sound, source_name=upload.request.content_id)
    except NothingToFingerprintError:
        return [], {}, None
    if outcome.created:
        evidence = _identity_evidence(sound.duration, int(outcome.fingerprints))
        use_id = db.insert_use(session, upload_id=upload_id, sound_id=outcome.sound_id, kind=UseKind.ORIGINAL,
                               evidence=evidence)
        return [], {outcome.sound_id: use_id}, outcome.sound_id
    match = _identity_match(outcome.sound_id, sound.duration, int(outcome.fingerprints))
    use_id = db.insert_use(session, upload_id=upload_id, sound_id=outcome.sound_id, kind=UseKind.REUSE,
                           evidence=match.evidence)
    return [match], {outcome.sound_id: use_id}, None


def _record(store: Store, upload: _Upload, matches: list[Match], settings: Settings) -> Submission:
    analysis = upload.analysis
    with db.transaction(store) as session:
        request = upload.request
        upload_id = db.insert_upload(
            session, content_id=request.content_id, account_id=request.account_id, uploaded_at=upload.uploaded_at,
            metadata=upload.metadata, duration_seconds=analysis.duration, idempotency_key=request.idempotency_key,
            payload_digest=request.payload_digest,
        )
        original_sound_id = None
        if not matches and analysis.new_sound is not None:
            # Register the upload's audio as a new sound, unless a concurrent
            # upload of the same recording registered it since we looked.
            db.lock_sound_registration(session)
            if db.count_sounds(session) != analysis.sounds_seen:
                matches = usable_matches(catalogue.rematch(store, analysis, settings=settings, session=session),
                                         settings)
        if not matches:
            matches, use_ids, original_sound_id = _register(session, store, upload, upload_id)
        else:
            use_ids = {
                m.sound_id: db.insert_use(
                    session, upload_id=upload_id, sound_id=m.sound_id, kind=UseKind.REUSE, evidence=m.evidence
                )
                for m in matches
            }
        db.lock_links(session, exclusive=False)
        upload_doc = verdict_upload_doc(
            upload_id=upload_id, content_id=request.content_id, account_id=request.account_id,
            uploaded_at=upload.uploaded_at, duration_seconds=analysis.duration, state=UploadState.LIVE,
        )
        verdict = build_verdict(
            session, matches, settings, tracks=analysis.tracks, use_ids=use_ids, upload=upload_doc,
            original_sound_id=original_sound_id, fingerprinted=bool(use_ids),
        )
        body = json.dumps(verdict, sort_keys=True)
        db.set_upload_verdict(session, upload_id, body, original_sound_id)
    return Submission(verdict=verdict, body=body, created=True)
