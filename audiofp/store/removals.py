"""Removals: uploads taken down, or sounds linked to removed content directly.

The store answers which removals can be reached from a set of sounds, with the
filters the caller picks; which of them *link* a sound to removed content is a
rule of the services (``audiofp.services.links``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .common import chunks
from .models import Removal, Upload, Use
from .records import RemovalRecord, utc
from .translate import translated


def _record(row: Removal, upload: Upload | None) -> RemovalRecord:
    return RemovalRecord(
        id=row.id,
        upload_id=row.upload_id,
        content_id=upload.content_id if upload is not None else None,
        account_id=upload.account_id if upload is not None else None,
        sound_id=row.sound_id,
        policy_label=row.policy_label,
        reason=row.reason,
        removed_at=utc(row.removed_at),
        reversed_at=utc(row.reversed_at),
        reversal_reason=row.reversal_reason,
    )


@translated
def insert_removal(
    session: Session,
    *,
    upload_id: int | None = None,
    sound_id: int | None = None,
    policy_label: str,
    reason: str | None,
    by: int | None,
) -> int:
    """Record a removal of an upload, or of a sound directly (exactly one of the two); returns its id."""
    row = Removal(
        upload_id=upload_id,
        sound_id=sound_id,
        policy_label=policy_label,
        reason=reason,
        removed_at=datetime.now(timezone.utc),
        removed_by=by,
    )
    session.add(row)
    session.flush()
    return row.id


@translated
def get_removal(session: Session, removal_id: int) -> RemovalRecord | None:
    """The removal with this id, or None."""
    row = session.get(Removal, removal_id)
    if row is None:
        return None
    upload = session.get(Upload, row.upload_id) if row.upload_id is not None else None
    return _record(row, upload)


@translated
def mark_removal_reversed(session: Session, removal_id: int, *, by: int | None, reason: str | None) -> None:
    """Record that a removal was reversed (an appeal upheld)."""
    session.execute(
        update(Removal)
        .where(Removal.id == removal_id)
        .values(reversed_at=datetime.now(timezone.utc), reversed_by=by, reversal_reason=reason)
    )


@translated
def removals_via_uses(
    session: Session, sound_ids: Iterable[int], *, include_disputed_uses: bool, include_reversed: bool
) -> list[tuple[int, RemovalRecord]]:
    """``(sound id, removal)`` for each removal of an upload that uses one of ``sound_ids``.

    In removal id order; a removal appears once per sound its upload uses.
    """
    found: list[tuple[int, RemovalRecord]] = []
    for chunk in chunks(sound_ids):
        stmt = (
            select(Use.sound_id, Removal, Upload)
            .join(Removal, Removal.upload_id == Use.upload_id)
            .join(Upload, Upload.id == Use.upload_id)
            .where(Use.sound_id.in_(chunk))
        )
        if not include_disputed_uses:
            stmt = stmt.where(Use.disputed.is_(False))
        if not include_reversed:
            stmt = stmt.where(Removal.reversed_at.is_(None))
        found.extend((sound_id, _record(removal, upload)) for sound_id, removal, upload in session.execute(stmt))
    return sorted(found, key=lambda pair: (pair[1].id, pair[0]))


@translated
def removals_of_sounds(
    session: Session, sound_ids: Iterable[int], *, include_reversed: bool
) -> list[RemovalRecord]:
    """Removals that name one of ``sound_ids`` directly (archive seeding), in id order."""
    found: list[RemovalRecord] = []
    for chunk in chunks(sound_ids):
        stmt = select(Removal).where(Removal.sound_id.in_(chunk))
        if not include_reversed:
            stmt = stmt.where(Removal.reversed_at.is_(None))
        found.extend(_record(removal, None) for removal in session.scalars(stmt))
    return sorted(found, key=lambda r: r.id)


@translated
def removals_of_uploads(
    session: Session, upload_ids: Iterable[int], *, include_reversed: bool
) -> list[RemovalRecord]:
    """Removals of any of ``upload_ids``, in id order."""
    found: list[RemovalRecord] = []
    for chunk in chunks(upload_ids):
        stmt = select(Removal, Upload).join(Upload, Upload.id == Removal.upload_id).where(Removal.upload_id.in_(chunk))
        if not include_reversed:
            stmt = stmt.where(Removal.reversed_at.is_(None))
        found.extend(_record(removal, upload) for removal, upload in session.execute(stmt))
    return sorted(found, key=lambda r: r.id)
