"""Uploads: fingerprint, match, record the uses, answer with a verdict.

The verdict is a JSON document stored with the upload, so that a retried
submission (same content id or Idempotency-Key) gets the very same answer
without recording anything twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from . import catalogue
from ..errors import ParameterError
from ..store import moderation_repository as repo
from ..store.moderation_repository import RemovalRecord
from ..engine.types import Audio, Evidence, Match
from ..config import Settings

#: Attempts at recording an upload when a concurrent writer wins a race
#: (the same new sound registered at once, a deadlock on shared index rows).
_RECORD_ATTEMPTS = 4

Source = bytes | BinaryIO


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


def removal_doc(r: RemovalRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "content_id": r.content_id,
        "account_id": r.account_id,
        "sound_id": r.sound_id,
        "policy_label": r.policy_label,
        "reason": r.reason,
        "removed_at": r.removed_at.isoformat(),
    }


def match_evidence(e: Evidence) -> dict[str, float]:
    return {
        "query_start": round(float(e.query_start), 3),
        "query_end": round(float(e.query_end), 3),
        "sound_start": round(float(e.sound_start), 3),
        "sound_end": round(float(e.sound_end), 3),
        "speed": round(float(e.speed), 4),
        "pitch_semitones": round(float(e.pitch_semitones), 3),
        "landmarks": int(e.anchors),
        "score": round(float(e.score), 4),
        "confidence": float(e.confidence),
    }


def usable_matches(matches: list[Match], settings: Settings) -> list[Match]:
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
    use_ids: dict[int, int] | None = None,
    upload: dict[str, Any] | None = None,
    original_sound_id: int | None = None,
) -> dict[str, Any]:
    """The verdict document for ``matches`` given the current links to removals."""
    sound_ids = [m.sound_id for m in matches]
    links = repo.linked_removals(session, sound_ids)
    labels = repo.labels_of_sounds(session, sound_ids)
    sounds = []
    removals: dict[int, dict[str, Any]] = {}
    linked_confidences = []
    for m in matches:
        linked = links.get(m.sound_id, [])
        for r in linked:
            removals.setdefault(r.id, removal_doc(r))
        if linked:
            linked_confidences.append(float(m.confidence))
        sounds.append(
            {
                "sound_id": m.sound_id,
                "use_id": (use_ids or {}).get(m.sound_id),
                **match_evidence(m.evidence),
                "labels": labels.get(m.sound_id, []),
                "linked_to_removed_content": bool(linked),
                "removal_ids": [r.id for r in linked],
            }
        )
    return {
        "upload": upload,
        "recorded": upload is not None,
        "action": settings.moderation.action(linked_confidences),
        "linked_to_removed_content": bool(linked_confidences),
        "sounds": sounds,
        "removals": sorted(removals.values(), key=lambda d: d["id"]),
        "original_sound_id": original_sound_id,
    }


def decode_source(store: Any, source: Source, settings: Settings) -> Audio:
    """Decode an upload at the index's analysis rate within the configured limits
    (size, duration, wall-clock time)."""
    return catalogue.decode(source, limits=settings.limits, sample_rate=store.params.sample_rate)


def dry_run_match(store: Any, source: Source, *, settings: Settings) -> dict[str, Any]:
    """The verdict an upload would get now, recording nothing."""
    audio = decode_source(store, source, settings)
    result = catalogue.identify_audio(store, audio, match_settings=settings.matching)
    matches = usable_matches(list(result.matches), settings)
    with store.session(readonly=True) as session:
        return build_verdict(session, matches, settings)


def _replay(store: Any, content_id: str, idempotency_key: str | None) -> Submission | None:
    with store.session(readonly=True) as session:
        found = repo.find_upload(session, content_id=content_id, idempotency_key=idempotency_key)
    if found is None or not found.verdict_json:
        return None
    return Submission(verdict=json.loads(found.verdict_json), body=found.verdict_json, created=False)


def _check_fields(content_id: str, account_id: str, uploaded_at: datetime, idempotency_key: str | None) -> None:
    for name, value in (("content_id", content_id), ("account_id", account_id)):
        if not isinstance(value, str) or not value.strip() or len(value) > 255:
            raise ParameterError(f"{name} must be a non-empty string of at most 255 characters")
    if uploaded_at.tzinfo is None:
        raise ParameterError("uploaded_at must carry a time zone (for instance 2024-05-01T12:00:00Z)")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
        raise ParameterError("Idempotency-Key must be 1-255 characters")


def submit_upload(
    store: Any,
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
    without decoding or recording anything.
    """
    _check_fields(content_id, account_id, uploaded_at, idempotency_key)
    replay = _replay(store, content_id, idempotency_key)
    if replay is not None:
        return replay

    started = time.perf_counter()
    audio = decode_source(store, source, settings)
    decoded = time.perf_counter()
    matches = usable_matches(list(catalogue.identify_audio(store, audio, match_settings=settings.matching).matches), settings)
    matched = time.perf_counter()
    for attempt in range(_RECORD_ATTEMPTS):
        try:
            submission = _record(
                store, audio, matches, settings,
                content_id=content_id, account_id=account_id, uploaded_at=uploaded_at,
                metadata=metadata, idempotency_key=idempotency_key,
            )
            timings = {"decode": decoded - started, "match": matched - decoded,
                       "record": time.perf_counter() - matched}
            return replace(submission, timings={k: round(v * 1000, 2) for k, v in timings.items()})
        except (IntegrityError, OperationalError):
            # Either the same upload was recorded meanwhile (answer with it) or
            # a concurrent writer won a race on a shared row (try again).
            replay = _replay(store, content_id, idempotency_key)
            if replay is not None:
                return replay
            if attempt == _RECORD_ATTEMPTS - 1:
                raise
            matches = usable_matches(list(catalogue.identify_audio(store, audio, match_settings=settings.matching).matches), settings)
    raise AssertionError("unreachable")


def _record(
    store: Any,
    audio: Audio,
    matches: list[Match],
    settings: Settings,
    *,
    content_id: str,
    account_id: str,
    uploaded_at: datetime,
    metadata: dict[str, Any] | None,
    idempotency_key: str | None,
) -> Submission:
    with store.session() as session:
        upload_id = repo.insert_upload(
            session, content_id=content_id, account_id=account_id, uploaded_at=uploaded_at,
            metadata=metadata, duration_seconds=audio.duration, idempotency_key=idempotency_key,
        )
        original_sound_id = None
        if not matches:
            # Register the upload's audio as a new sound, unless a concurrent
            # upload of the same recording registered it since we looked.
            repo.lock_sound_registration(session)
            matches = usable_matches(list(catalogue.identify_audio(store, audio, session=session, match_settings=settings.matching).matches), settings)
        if not matches:
            outcome = catalogue.add_sound_audio(session, store, audio, source_name=content_id)
            original_sound_id = outcome.sound_id if outcome.created else None
            # The whole upload is the sound (or, for a byte-identical copy, the
            # same decoded audio): an identity alignment over its full length.
            whole = Evidence(
                query_start=0.0, query_end=round(audio.duration, 3),
                sound_start=0.0, sound_end=round(audio.duration, 3),
                speed=1.0, pitch_semitones=0.0, anchors=int(outcome.fingerprints),
                score=0.0, confidence=1.0,
            )
            use_id = repo.insert_use(
                session, upload_id=upload_id, sound_id=outcome.sound_id,
                kind="original" if outcome.created else "reuse", evidence=whole,
            )
            use_ids = {outcome.sound_id: use_id}
        else:
            use_ids = {
                m.sound_id: repo.insert_use(session, upload_id=upload_id, sound_id=m.sound_id, kind="reuse", evidence=m.evidence)
                for m in matches
            }
        repo.lock_links(session, exclusive=False)
        upload_doc = {
            "id": upload_id,
            "content_id": content_id,
            "account_id": account_id,
            "uploaded_at": uploaded_at.isoformat(),
            "duration_seconds": round(audio.duration, 3),
            "state": "live",
        }
        verdict = build_verdict(
            session, matches, settings, use_ids=use_ids, upload=upload_doc, original_sound_id=original_sound_id
        )
        body = json.dumps(verdict, sort_keys=True)
        repo.set_upload_verdict(session, upload_id, body, original_sound_id)
    return Submission(verdict=verdict, body=body, created=True)
