"""Uploads: platform content items, each with the verdict it was given."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import ConflictError
from .models import Upload
from .records import UploadRecord, UploadState, utc
from .translate import translated


def upload_record(row: Upload) -> UploadRecord:
    """The record of an upload row (also used by the modules that join uploads)."""
    return UploadRecord(
        id=row.id,
        content_id=row.content_id,
        account_id=row.account_id,
        uploaded_at=utc(row.uploaded_at),
        received_at=utc(row.received_at),
        metadata=json.loads(row.metadata_json) if row.metadata_json else None,
        state=UploadState(row.state),
        duration_seconds=row.duration_seconds,
        original_sound_id=row.original_sound_id,
        idempotency_key=row.idempotency_key,
        verdict_json=row.verdict_json,
        payload_digest=row.payload_digest,
    )


@translated
def find_upload(
    session: Session, *, content_id: str | None = None, idempotency_key: str | None = None
) -> UploadRecord | None:
    """The upload with this content id or this idempotency key (the older if both match), if any."""
    if content_id is None and idempotency_key is None:
        return None
    conds = []
    if content_id is not None:
        conds.append(Upload.content_id == content_id)
    if idempotency_key is not None:
        conds.append(Upload.idempotency_key == idempotency_key)
    row = session.scalars(select(Upload).where(or_(*conds)).order_by(Upload.id).limit(1)).first()
    return upload_record(row) if row is not None else None


@translated
def get_upload(session: Session, upload_id: int) -> UploadRecord | None:
    """The upload with this id, or None."""
    row = session.get(Upload, upload_id)
    return upload_record(row) if row is not None else None


@translated
def insert_upload(
    session: Session,
    *,
    content_id: str,
    account_id: str,
    uploaded_at: datetime,
    metadata: dict[str, Any] | None,
    duration_seconds: float,
    idempotency_key: str | None,
    payload_digest: str | None = None,
) -> int:
    """Insert a live upload (its verdict is filled in later) and return its id.

    ``payload_digest`` is the SHA-256 of the bytes submitted, kept to tell a
    retry of this upload from another upload sent under its content id or key.

    Raises
    ------
    ConflictError
        If the content id or the idempotency key is already taken, by a
        committed upload or (on PostgreSQL, once it commits) a concurrent one.
        The caller's transaction stays usable: the insert is rolled back to a savepoint.
    """
    row = Upload(
        content_id=content_id,
        account_id=account_id,
        # SQLite stores the wall-clock digits and drops the offset: store UTC's.
        uploaded_at=utc(uploaded_at),
        received_at=datetime.now(timezone.utc),
        metadata_json=json.dumps(metadata, sort_keys=True) if metadata else None,
        state=UploadState.LIVE,
        duration_seconds=duration_seconds,
        idempotency_key=idempotency_key,
        payload_digest=payload_digest,
        verdict_json="",
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise ConflictError(
            f"an upload with content id {content_id!r} or this idempotency key already exists"
        ) from exc
    return row.id


@translated
def set_upload_verdict(session: Session, upload_id: int, verdict_json: str, original_sound_id: int | None) -> None:
    """Store the verdict document given to an upload, and the sound it introduced, if any."""
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id)
        .values(verdict_json=verdict_json, original_sound_id=original_sound_id)
    )


@translated
def set_upload_state(session: Session, upload_id: int, state: UploadState) -> None:
    """Mark an upload live or removed."""
    session.execute(update(Upload).where(Upload.id == upload_id).values(state=UploadState(state).value))
