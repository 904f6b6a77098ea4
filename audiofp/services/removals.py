"""Removals, their reversal, disputes of uses, and the event feed they feed.

Removing an upload links every sound it uses to removed content. The link is
derived (active removal + undisputed use), so a reversal or a dispute changes
it without rewriting anything; what these functions write is the fact itself,
an audit entry, and events for the live uploads a pipeline should re-review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConflictError, NotFoundError, ParameterError
from ..store import moderation_repository as repo
from ..store.moderation_repository import EventRecord, RemovalRecord, UseRecord
from .cursors import decode_cursor, encode_cursor
from .keys import Actor, audit

EVENT_CURSOR = "events"
MAX_PAGE = 500


@dataclass(frozen=True)
class RemovalOutcome:
    """What a removal (or its reversal) changed.

    ``affected_live_uploads`` counts other live uploads that use the sounds now
    linked (or unlinked); ``events_cursor`` lists their events when passed to
    :func:`events_since`.
    """

    removal: RemovalRecord
    sound_ids: list[int]
    affected_live_uploads: int
    events: int
    events_cursor: str


@dataclass(frozen=True)
class EventPage:
    events: list[EventRecord]
    next_cursor: str


def _check_text(name: str, value: str | None, *, required: bool, max_len: int = 2000) -> None:
    if value is None or value == "":
        if required:
            raise ParameterError(f"{name} is required")
        return
    if not isinstance(value, str) or len(value) > max_len:
        raise ParameterError(f"{name} must be a string of at most {max_len} characters")


def _emit(session: Any, kind: str, removal_id: int, sound_ids: list[int], exclude_upload_id: int | None) -> tuple[int, int, str]:
    """Events for the live uses of ``sound_ids``; returns (uploads, events, cursor)."""
    rows = repo.live_uses_of_sounds(session, sound_ids, exclude_upload_id=exclude_upload_id)
    first_id = repo.insert_events(session, kind=kind, removal_id=removal_id, rows=rows)
    # A cursor just before the first new event lists exactly these and what follows.
    after = first_id - 1 if first_id is not None else repo.last_event_id(session)
    return len({r.upload.id for r in rows}), len(rows), encode_cursor(EVENT_CURSOR, after)


def record_removal(
    store: Any, *, content_id: str, policy_label: str, reason: str | None, actor: Actor
) -> RemovalOutcome:
    """Mark an upload removed; its sounds become linked to removed content."""
    _check_text("policy_label", policy_label, required=True, max_len=255)
    _check_text("reason", reason, required=False)
    with store.session() as session:
        repo.lock_links(session, exclusive=True)
        upload = repo.find_upload(session, content_id=content_id)
        if upload is None:
            raise NotFoundError(f"no upload with content id {content_id!r}")
        if upload.state == "removed":
            raise ConflictError(f"upload {content_id!r} is already removed")
        removal_id = repo.insert_removal(session, upload_id=upload.id, policy_label=policy_label, reason=reason, by=actor.key_id)
        repo.set_upload_state(session, upload.id, "removed")
        sound_ids = sorted({u.sound_id for u in repo.uses_of_upload(session, upload.id, include_disputed=False)})
        uploads, events, cursor = _emit(session, "sound_linked_to_removal", removal_id, sound_ids, upload.id)
        audit(session, actor, "removal.create", f"upload:{content_id}",
              {"removal_id": removal_id, "policy_label": policy_label, "reason": reason, "sounds": sound_ids})
        removal = repo.get_removal(session, removal_id)
    return RemovalOutcome(removal, sound_ids, uploads, events, cursor)  # type: ignore[arg-type]


def link_sounds_to_removal(
    store: Any, sound_ids: list[int], *, policy_label: str, reason: str | None = None,
    labels: list[str] | None = None, actor: Actor,
) -> list[RemovalOutcome]:
    """Link known sounds directly to removed content (operators seeding from an archive)."""
    _check_text("policy_label", policy_label, required=True, max_len=255)
    _check_text("reason", reason, required=False)
    for label in labels or []:
        _check_text("label", label, required=True, max_len=255)
    outcomes = []
    with store.session() as session:
        repo.lock_links(session, exclusive=True)
        known = repo.sound_info(session, sound_ids)
        missing = sorted(set(sound_ids) - set(known))
        if missing:
            raise NotFoundError(f"no sound with id {missing[0]}")
        for sound_id in sorted(set(sound_ids)):
            if labels:
                repo.add_sound_labels(session, sound_id, labels)
            removal_id = repo.insert_removal(session, sound_id=sound_id, policy_label=policy_label, reason=reason, by=actor.key_id)
            uploads, events, cursor = _emit(session, "sound_linked_to_removal", removal_id, [sound_id], None)
            audit(session, actor, "removal.link_sound", f"sound:{sound_id}",
                  {"removal_id": removal_id, "policy_label": policy_label, "reason": reason})
            outcomes.append(RemovalOutcome(repo.get_removal(session, removal_id), [sound_id], uploads, events, cursor))  # type: ignore[arg-type]
    return outcomes


def label_sounds(store: Any, sound_ids: list[int], labels: list[str], *, actor: Actor) -> None:
    """Attach labels to known sounds."""
    for label in labels:
        _check_text("label", label, required=True, max_len=255)
    with store.session() as session:
        known = repo.sound_info(session, sound_ids)
        for sound_id in sound_ids:
            if sound_id not in known:
                raise NotFoundError(f"no sound with id {sound_id}")
            repo.add_sound_labels(session, sound_id, labels)
        audit(session, actor, "sound.label", None, {"sounds": sound_ids, "labels": labels})


def reverse_removal(store: Any, removal_id: int, *, reason: str | None, actor: Actor) -> RemovalOutcome:
    """Reverse a removal (an appeal upheld); the links it made go away."""
    _check_text("reason", reason, required=False)
    with store.session() as session:
        repo.lock_links(session, exclusive=True)
        removal = repo.get_removal(session, removal_id)
        if removal is None:
            raise NotFoundError(f"no removal with id {removal_id}")
        if not removal.active:
            raise ConflictError(f"removal {removal_id} is already reversed")
        repo.mark_removal_reversed(session, removal_id, by=actor.key_id, reason=reason)
        if removal.upload_id is not None:
            repo.set_upload_state(session, removal.upload_id, "live")
            sound_ids = sorted({u.sound_id for u in repo.uses_of_upload(session, removal.upload_id, include_disputed=False)})
        else:
            sound_ids = [removal.sound_id]  # type: ignore[list-item]
        uploads, events, cursor = _emit(session, "removal_reversed", removal_id, sound_ids, removal.upload_id)
        audit(session, actor, "removal.reverse", f"removal:{removal_id}", {"reason": reason, "sounds": sound_ids})
        updated = repo.get_removal(session, removal_id)
    return RemovalOutcome(updated, sound_ids, uploads, events, cursor)  # type: ignore[arg-type]


def get_removal(store: Any, removal_id: int) -> RemovalRecord:
    with store.session(readonly=True) as session:
        removal = repo.get_removal(session, removal_id)
    if removal is None:
        raise NotFoundError(f"no removal with id {removal_id}")
    return removal


def dispute_use(store: Any, use_id: int, *, reason: str | None, actor: Actor) -> UseRecord:
    """Mark a use as a false match: it stops counting toward verdicts and links."""
    _check_text("reason", reason, required=False)
    with store.session() as session:
        use = repo.get_use(session, use_id)
        if use is None:
            raise NotFoundError(f"no use with id {use_id}")
        if use.kind == "original":
            raise ConflictError("an upload's own original sound cannot be disputed as a false match")
        if use.disputed:
            raise ConflictError(f"use {use_id} is already disputed")
        repo.mark_use_disputed(session, use_id, by=actor.key_id, reason=reason)
        audit(session, actor, "use.dispute", f"use:{use_id}",
              {"reason": reason, "sound_id": use.sound_id, "upload_id": use.upload_id})
        return repo.get_use(session, use_id)  # type: ignore[return-value]


def events_since(store: Any, cursor: str | None, *, limit: int = 100) -> EventPage:
    """Events after ``cursor``, oldest first; keep ``next_cursor`` for the next poll."""
    if not 1 <= limit <= MAX_PAGE:
        raise ParameterError(f"limit must be within 1..{MAX_PAGE}")
    after = decode_cursor(EVENT_CURSOR, cursor)
    with store.session(readonly=True) as session:
        events = repo.events_after(session, after, limit)
    last = events[-1].id if events else after
    return EventPage(events, encode_cursor(EVENT_CURSOR, last))
