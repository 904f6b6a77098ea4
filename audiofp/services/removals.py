"""Removals, their reversal, disputes of uses, tags, and the event feed they feed.

Removing an upload links every sound it uses to removed content. The link is
derived (``links``), so a reversal or a dispute changes it without rewriting
anything; what these functions write is the fact itself, an audit entry, and
events for the live uploads a pipeline should re-review.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .. import store as db
from ..errors import ConflictError, NotFoundError, ParameterError
from ..store import EventKind, EventRecord, RemovalRecord, Session, Store, UploadState, UseKind, UseRecord
from .cursors import decode_cursor, encode_cursor
from .keys import Actor, audit
from .links import uses_to_rereview

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


def _check_tags(tags: Iterable[str]) -> list[str]:
    tags = list(tags)
    for tag in tags:
        _check_text("label", tag, required=True, max_len=255)
    return tags


def _require_sounds(session: Session, sound_ids: Iterable[int]) -> list[int]:
    """``sound_ids`` sorted and without repeats; ``NotFoundError`` names the first unknown one."""
    wanted = sorted({int(i) for i in sound_ids})
    known = db.get_sounds(session, wanted)
    missing = [i for i in wanted if i not in known]
    if missing:
        raise NotFoundError(f"no sound with id {missing[0]}")
    return wanted


def _sounds_of_upload(session: Session, upload_id: int) -> list[int]:
    # A disputed use never linked its sound, so removing or restoring the upload does not touch it.
    return sorted({u.sound_id for u in db.uses_of_upload(session, upload_id, include_disputed=False)})


def _emit(
    session: Session, kind: EventKind, removal_id: int, sound_ids: list[int], changed_upload_id: int | None
) -> tuple[int, int, str]:
    """Events for the uses to re-review now that ``sound_ids`` changed; returns (uploads, events, cursor)."""
    rows = uses_to_rereview(session, sound_ids, except_upload_id=changed_upload_id)
    first_id = db.insert_events(session, kind=kind, removal_id=removal_id, rows=rows)
    # A cursor just before the first new event lists exactly these and what follows.
    after = first_id - 1 if first_id is not None else db.last_event_id(session)
    return len({r.upload.id for r in rows}), len(rows), encode_cursor(EVENT_CURSOR, after)


def _outcome(session: Session, removal_id: int, sound_ids: list[int], emitted: tuple[int, int, str]) -> RemovalOutcome:
    removal = db.get_removal(session, removal_id)
    assert removal is not None  # written or read in this very transaction
    return RemovalOutcome(removal, sound_ids, *emitted)


def record_removal(
    store: Store, *, content_id: str, policy_label: str, reason: str | None, actor: Actor
) -> RemovalOutcome:
    """Mark an upload removed; its sounds become linked to removed content."""
    _check_text("policy_label", policy_label, required=True, max_len=255)
    _check_text("reason", reason, required=False)
    with db.transaction(store) as session:
        db.lock_links(session, exclusive=True)
        upload = db.find_upload(session, content_id=content_id)
        if upload is None:
            raise NotFoundError(f"no upload with content id {content_id!r}")
        if upload.state == UploadState.REMOVED:
            raise ConflictError(f"upload {content_id!r} is already removed")
        removal_id = db.insert_removal(session, upload_id=upload.id, policy_label=policy_label, reason=reason,
                                       by=actor.key_id)
        db.set_upload_state(session, upload.id, UploadState.REMOVED)
        sound_ids = _sounds_of_upload(session, upload.id)
        emitted = _emit(session, EventKind.SOUND_LINKED_TO_REMOVAL, removal_id, sound_ids, upload.id)
        audit(session, actor, "removal.create", f"upload:{content_id}",
              {"removal_id": removal_id, "policy_label": policy_label, "reason": reason, "sounds": sound_ids})
        return _outcome(session, removal_id, sound_ids, emitted)


def link_sounds_to_removal(
    store: Store, sound_ids: Sequence[int], *, policy_label: str, reason: str | None = None,
    tags: Sequence[str] = (), actor: Actor,
) -> list[RemovalOutcome]:
    """Link known sounds directly to removed content (operators seeding from an archive).

    ``tags`` are attached to every sound first. Any unknown sound id fails the
    whole call before anything is written.
    """
    _check_text("policy_label", policy_label, required=True, max_len=255)
    _check_text("reason", reason, required=False)
    tags = _check_tags(tags)
    outcomes = []
    with db.transaction(store) as session:
        db.lock_links(session, exclusive=True)
        for sound_id in _require_sounds(session, sound_ids):
            if tags:
                db.add_sound_tags(session, sound_id, tags)
            removal_id = db.insert_removal(session, sound_id=sound_id, policy_label=policy_label, reason=reason,
                                           by=actor.key_id)
            emitted = _emit(session, EventKind.SOUND_LINKED_TO_REMOVAL, removal_id, [sound_id], None)
            audit(session, actor, "removal.link_sound", f"sound:{sound_id}",
                  {"removal_id": removal_id, "policy_label": policy_label, "reason": reason})
            outcomes.append(_outcome(session, removal_id, [sound_id], emitted))
    return outcomes


def tag_sounds(store: Store, sound_ids: Sequence[int], tags: Sequence[str], *, actor: Actor) -> None:
    """Attach tags to known sounds; any unknown sound id fails the whole call."""
    tags = _check_tags(tags)
    with db.transaction(store) as session:
        for sound_id in _require_sounds(session, sound_ids):
            db.add_sound_tags(session, sound_id, tags)
        audit(session, actor, "sound.label", None, {"sounds": list(sound_ids), "labels": tags})



def reverse_removal(store: Store, removal_id: int, *, reason: str | None, actor: Actor) -> RemovalOutcome:
    """Reverse a removal (an appeal upheld); the links it made go away."""
    _check_text("reason", reason, required=False)
    with db.transaction(store) as session:
        db.lock_links(session, exclusive=True)
        removal = db.get_removal(session, removal_id)
        if removal is None:
            raise NotFoundError(f"no removal with id {removal_id}")
        if not removal.active:
            raise ConflictError(f"removal {removal_id} is already reversed")
        db.mark_removal_reversed(session, removal_id, by=actor.key_id, reason=reason)
        if removal.upload_id is not None:
            db.set_upload_state(session, removal.upload_id, UploadState.LIVE)
            sound_ids = _sounds_of_upload(session, removal.upload_id)
        else:
            sound_ids = [removal.sound_id]  # type: ignore[list-item]  # a direct removal names its sound
        emitted = _emit(session, EventKind.REMOVAL_REVERSED, removal_id, sound_ids, removal.upload_id)
        audit(session, actor, "removal.reverse", f"removal:{removal_id}", {"reason": reason, "sounds": sound_ids})
        return _outcome(session, removal_id, sound_ids, emitted)


def get_removal(store: Store, removal_id: int) -> RemovalRecord:
    """The removal with this id, with its appeal state."""
    with db.transaction(store, readonly=True) as session:
        removal = db.get_removal(session, removal_id)
    if removal is None:
        raise NotFoundError(f"no removal with id {removal_id}")
    return removal


def dispute_use(store: Store, use_id: int, *, reason: str | None, actor: Actor) -> UseRecord:
    """Mark a use as a false match: it stops counting toward verdicts and links."""
    _check_text("reason", reason, required=False)
    with db.transaction(store) as session:
        use = db.get_use(session, use_id)
        if use is None:
            raise NotFoundError(f"no use with id {use_id}")
        if use.kind == UseKind.ORIGINAL:
            raise ConflictError("an upload's own original sound cannot be disputed as a false match")
        if use.disputed:
            raise ConflictError(f"use {use_id} is already disputed")
        db.mark_use_disputed(session, use_id, by=actor.key_id, reason=reason)
        audit(session, actor, "use.dispute", f"use:{use_id}",
              {"reason": reason, "sound_id": use.sound_id, "upload_id": use.upload_id})
        disputed = db.get_use(session, use_id)
        assert disputed is not None  # read in this very transaction
        return disputed


def events_since(store: Store, cursor: str | None, *, limit: int = 100) -> EventPage:
    """Events after ``cursor``, oldest first; keep ``next_cursor`` for the next poll."""
    if not 1 <= limit <= MAX_PAGE:
        raise ParameterError(f"limit must be within 1..{MAX_PAGE}")
    after = decode_cursor(EVENT_CURSOR, cursor)
    with db.transaction(store, readonly=True) as session:
        events = db.events_after(session, after, limit)
    last = events[-1].id if events else after
    return EventPage(events, encode_cursor(EVENT_CURSOR, last))
