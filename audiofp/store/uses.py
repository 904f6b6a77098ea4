"""Uses: the fact that an upload uses a sound, with the match evidence, and reads over them.

The reads take their filters as explicit parameters (which upload states,
whether disputed uses count): what a use *means* for a verdict or a link is a
rule of the services, stated there once.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from ..engine.types import Evidence
from .common import chunks
from .models import Upload, Use
from .records import AccountSoundRow, HistoryRow, SharedAccountRow, UploadState, UseKind, UseRecord, UseSpan, UseTally, utc
from .translate import translated
from .uploads import upload_record


def use_record(row: Use) -> UseRecord:
    """The record of a use row (also used by the modules that join uses)."""
    return UseRecord(
        id=row.id,
        upload_id=row.upload_id,
        sound_id=row.sound_id,
        kind=UseKind(row.kind),
        evidence=row.evidence,
        created_at=utc(row.created_at),
        disputed=bool(row.disputed),
        disputed_at=utc(row.disputed_at),
        dispute_reason=row.dispute_reason,
    )


@translated
def insert_use(session: Session, *, upload_id: int, sound_id: int, kind: UseKind, evidence: Evidence) -> int:
    """Record that ``upload_id`` uses ``sound_id``, with the match evidence; returns the use id."""
    row = Use(
        upload_id=upload_id,
        sound_id=sound_id,
        kind=UseKind(kind).value,
        evidence=evidence,
        created_at=datetime.now(timezone.utc),
        disputed=False,
    )
    session.add(row)
    session.flush()
    return row.id


@translated
def get_use(session: Session, use_id: int) -> UseRecord | None:
    """The use with this id, or None."""
    row = session.get(Use, use_id)
    return use_record(row) if row is not None else None


@translated
def mark_use_disputed(session: Session, use_id: int, *, by: int | None, reason: str | None) -> None:
    """Record that a reviewer disputed a use as a false match."""
    session.execute(
        update(Use)
        .where(Use.id == use_id)
        .values(disputed=True, disputed_at=datetime.now(timezone.utc), disputed_by=by, dispute_reason=reason)
    )


@translated
def uses_of_upload(session: Session, upload_id: int, *, include_disputed: bool) -> list[UseRecord]:
    """The uses an upload made, in id order."""
    stmt = select(Use).where(Use.upload_id == upload_id)
    if not include_disputed:
        stmt = stmt.where(Use.disputed.is_(False))
    return [use_record(r) for r in session.scalars(stmt.order_by(Use.id))]


@translated
def uses_of_sounds(
    session: Session,
    sound_ids: Iterable[int],
    *,
    include_disputed: bool,
    state: UploadState | None = None,
    account_id: str | None = None,
    exclude_upload_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: int = 0,
    limit: int | None = None,
) -> list[HistoryRow]:
    """Uses of any of ``sound_ids`` with their uploads, in use id order (keyset after ``after_id``).

    Parameters
    ----------
    include_disputed : bool
        Whether uses a reviewer disputed are included.
    state : UploadState, optional
        Only uses by uploads in this state.
    account_id : str, optional
        Only uses by this account's uploads.
    exclude_upload_id : int, optional
        Leave out the uses of this upload.
    since, until : datetime, optional
        Only uploads made at or after ``since`` and before ``until``.
    after_id : int
        Only uses with an id above this (the last id of the previous page).
    limit : int, optional
        At most this many uses, the lowest ids; all of them when None.
    """
    pages = []
    for chunk in chunks(sound_ids):
        stmt = select(Use, Upload).join(Upload, Upload.id == Use.upload_id).where(
            Use.sound_id.in_(chunk), Use.id > after_id
        )
        if not include_disputed:
            stmt = stmt.where(Use.disputed.is_(False))
        if state is not None:
            stmt = stmt.where(Upload.state == UploadState(state).value)
        if account_id is not None:
            stmt = stmt.where(Upload.account_id == account_id)
        if exclude_upload_id is not None:
            stmt = stmt.where(Upload.id != exclude_upload_id)
        # In UTC: SQLite compares the stored UTC digits with the parameter's digits.
        if since is not None:
            stmt = stmt.where(Upload.uploaded_at >= utc(since))
        if until is not None:
            stmt = stmt.where(Upload.uploaded_at < utc(until))
        stmt = stmt.order_by(Use.id).limit(limit)
        pages.append([HistoryRow(use_record(u), upload_record(up)) for u, up in session.execute(stmt)])
    # Each chunk holds its own lowest ids: the overall lowest are among them.
    merged = list(heapq.merge(*pages, key=lambda row: row.use.id))
    return merged if limit is None else merged[:limit]


def _by_sound(sound_id: int) -> Select:
    return select().select_from(Use).join(Upload, Upload.id == Use.upload_id).where(Use.sound_id == sound_id)


@translated
def use_tallies(session: Session, sound_id: int) -> list[UseTally]:
    """How many uses of a sound there are per (upload state, disputed) pair that occurs."""
    rows = session.execute(
        _by_sound(sound_id).add_columns(Upload.state, Use.disputed, func.count(Use.id)).group_by(Upload.state, Use.disputed)
    )
    return [UseTally(UploadState(state), bool(disputed), int(n)) for state, disputed, n in rows]


@translated
def use_span(session: Session, sound_id: int) -> UseSpan:
    """Distinct accounts and the first and last upload times over every use of a sound."""
    accounts, first, last = session.execute(
        _by_sound(sound_id).add_columns(
            func.count(func.distinct(Upload.account_id)), func.min(Upload.uploaded_at), func.max(Upload.uploaded_at)
        )
    ).one()
    return UseSpan(int(accounts or 0), utc(first), utc(last))


@translated
def account_sounds(session: Session, account_id: str, *, include_disputed: bool) -> list[AccountSoundRow]:
    """The sounds an account's uploads use, most used first (then by sound id)."""
    stmt = (
        select(Use.sound_id, func.count(Use.id), func.min(Upload.uploaded_at), func.max(Upload.uploaded_at))
        .join(Upload, Upload.id == Use.upload_id)
        .where(Upload.account_id == account_id)
        .group_by(Use.sound_id)
        .order_by(func.count(Use.id).desc(), Use.sound_id)
    )
    if not include_disputed:
        stmt = stmt.where(Use.disputed.is_(False))
    return [AccountSoundRow(s, int(n), utc(a), utc(b)) for s, n, a, b in session.execute(stmt)]


@translated
def accounts_sharing_sounds(
    session: Session, account_id: str, sound_ids: Iterable[int], *, include_disputed: bool
) -> list[SharedAccountRow]:
    """Uses of ``sound_ids`` by accounts other than ``account_id``, counted per (account, sound)."""
    out: list[SharedAccountRow] = []
    for chunk in chunks(sound_ids):
        stmt = (
            select(Upload.account_id, Use.sound_id, func.count(Use.id))
            .join(Upload, Upload.id == Use.upload_id)
            .where(Use.sound_id.in_(chunk), Upload.account_id != account_id)
            .group_by(Upload.account_id, Use.sound_id)
        )
        if not include_disputed:
            stmt = stmt.where(Use.disputed.is_(False))
        out.extend(SharedAccountRow(a, s, int(n)) for a, s, n in session.execute(stmt))
    return sorted(out, key=lambda r: (r.account_id, r.sound_id))
