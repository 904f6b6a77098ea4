"""Events: the feed upload pipelines poll for uses to re-review; the event id is the cursor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .locks import lock_links
from .models import Event, Upload
from .records import EventKind, EventRecord, HistoryRow, UploadState, utc
from .translate import translated


@translated
def insert_events(
    session: Session, *, kind: EventKind, removal_id: int | None, rows: Sequence[HistoryRow]
) -> int | None:
    """One event per use in ``rows``, in that order; returns the first new event id (None if none)."""
    if not rows:
        return None
    # Normally already held by the caller; taken here too because event ids
    # must become visible in increasing order (see ``lock_links``).
    lock_links(session, exclusive=True)
    now = datetime.now(timezone.utc)
    events = [
        Event(
            kind=EventKind(kind).value,
            created_at=now,
            removal_id=removal_id,
            sound_id=r.use.sound_id,
            use_id=r.use.id,
            upload_id=r.upload.id,
        )
        for r in rows
    ]
    session.add_all(events)
    session.flush()
    return min(e.id for e in events)


@translated
def last_event_id(session: Session) -> int:
    """The id of the newest event; 0 when the feed is empty."""
    return int(session.scalar(select(func.max(Event.id))) or 0)


@translated
def events_after(session: Session, after_id: int, limit: int) -> list[EventRecord]:
    """Up to ``limit`` events with an id above ``after_id``, oldest first."""
    rows = session.execute(
        select(Event, Upload)
        .join(Upload, Upload.id == Event.upload_id)
        .where(Event.id > after_id)
        .order_by(Event.id)
        .limit(limit)
    )
    return [
        EventRecord(
            id=e.id,
            kind=EventKind(e.kind),
            created_at=utc(e.created_at),
            removal_id=e.removal_id,
            sound_id=e.sound_id,
            use_id=e.use_id,
            upload_id=e.upload_id,
            content_id=u.content_id,
            account_id=u.account_id,
            upload_state=UploadState(u.state),
        )
        for e, u in rows
    ]
