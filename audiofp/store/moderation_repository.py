"""Storage functions of the moderation domain.

Each function takes an open session (the caller owns the transaction) and
returns plain dataclasses, never ORM rows. Queries are SQLAlchemy expressions
that run unchanged on SQLite and PostgreSQL; the one backend-specific step is
the advisory locks that order link changes against verdicts and event ids
(see :func:`lock_links`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from ..engine.types import Evidence
from .models import Sound
from .moderation_models import ApiKey, AuditEntry, Event, Removal, SoundTag, Upload, Use

#: Arbitrary constants naming the advisory locks this module takes on PostgreSQL.
EVENT_LOCK_KEY = 0x6175_6466_0001
SOUND_REGISTRATION_LOCK_KEY = 0x6175_6466_0002


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every value we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class UploadRecord:
    id: int
    content_id: str
    account_id: str
    uploaded_at: datetime
    received_at: datetime
    metadata: dict[str, Any] | None
    state: str
    duration_seconds: float
    original_sound_id: int | None
    idempotency_key: str | None
    verdict_json: str


@dataclass(frozen=True)
class UseRecord:
    id: int
    upload_id: int
    sound_id: int
    kind: str
    evidence: Evidence
    created_at: datetime
    disputed: bool
    disputed_at: datetime | None
    dispute_reason: str | None


@dataclass(frozen=True)
class RemovalRecord:
    id: int
    upload_id: int | None
    content_id: str | None
    account_id: str | None
    sound_id: int | None
    policy_label: str
    reason: str | None
    removed_at: datetime
    reversed_at: datetime | None
    reversal_reason: str | None

    @property
    def active(self) -> bool:
        return self.reversed_at is None


@dataclass(frozen=True)
class HistoryRow:
    """A use together with the upload that made it."""

    use: UseRecord
    upload: UploadRecord


@dataclass(frozen=True)
class EventRecord:
    id: int
    kind: str
    created_at: datetime
    removal_id: int | None
    sound_id: int
    use_id: int
    upload_id: int
    content_id: str
    account_id: str
    upload_state: str


@dataclass(frozen=True)
class SoundInfo:
    id: int
    label: str | None
    source_name: str | None
    duration_seconds: float
    created_at: datetime


@dataclass(frozen=True)
class ApiKeyRecord:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    key_id: int | None
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any] | None


def _upload(row: Upload) -> UploadRecord:
    return UploadRecord(
        id=row.id,
        content_id=row.content_id,
        account_id=row.account_id,
        uploaded_at=_utc(row.uploaded_at),  # type: ignore[arg-type]
        received_at=_utc(row.received_at),  # type: ignore[arg-type]
        metadata=json.loads(row.metadata_json) if row.metadata_json else None,
        state=row.state,
        duration_seconds=row.duration_seconds,
        original_sound_id=row.original_sound_id,
        idempotency_key=row.idempotency_key,
        verdict_json=row.verdict_json,
    )


def _use(row: Use) -> UseRecord:
    return UseRecord(
        id=row.id,
        upload_id=row.upload_id,
        sound_id=row.sound_id,
        kind=row.kind,
        evidence=row.evidence,
        created_at=_utc(row.created_at),  # type: ignore[arg-type]
        disputed=bool(row.disputed),
        disputed_at=_utc(row.disputed_at),
        dispute_reason=row.dispute_reason,
    )


def _removal(row: Removal, upload: Upload | None) -> RemovalRecord:
    return RemovalRecord(
        id=row.id,
        upload_id=row.upload_id,
        content_id=upload.content_id if upload is not None else None,
        account_id=upload.account_id if upload is not None else None,
        sound_id=row.sound_id,
        policy_label=row.policy_label,
        reason=row.reason,
        removed_at=_utc(row.removed_at),  # type: ignore[arg-type]
        reversed_at=_utc(row.reversed_at),
        reversal_reason=row.reversal_reason,
    )


# --- locks -----------------------------------------------------------------


def _advisory_lock(session: Session, key: int, *, shared: bool = False) -> None:
    if session.get_bind().dialect.name == "postgresql":
        fn = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
        session.execute(select(fn(key)))
    # SQLite serialises writers on the database file, which gives the same order.


def lock_links(session: Session, *, exclusive: bool) -> None:
    """Order link changes (removals, reversals) against verdicts, until commit.

    A removal takes it exclusively before reading the live uses it will put in
    the feed; an upload takes it shared before reading the links its verdict
    reports. Without it, under READ COMMITTED, an upload recorded while a
    removal commits could see no link and also be missing from the removal's
    events. Uploads do not block each other (shared).

    Exclusive holders also write events, so event ids become visible in
    increasing order: a sequence hands out ids at insert time, not commit time,
    and a feed reader must never move its cursor past an id still to commit.
    """
    _advisory_lock(session, EVENT_LOCK_KEY, shared=not exclusive)


def lock_sound_registration(session: Session) -> None:
    """Serialise the registration of new sounds, so two concurrent uploads of one
    new recording do not both register it."""
    _advisory_lock(session, SOUND_REGISTRATION_LOCK_KEY)


# --- uploads and uses -----------------------------------------------------


def find_upload(
    session: Session, *, content_id: str | None = None, idempotency_key: str | None = None
) -> UploadRecord | None:
    """The upload with this content id or idempotency key, if any."""
    if content_id is None and idempotency_key is None:
        return None
    conds = []
    if content_id is not None:
        conds.append(Upload.content_id == content_id)
    if idempotency_key is not None:
        conds.append(Upload.idempotency_key == idempotency_key)
    row = session.scalars(select(Upload).where(or_(*conds)).order_by(Upload.id).limit(1)).first()
    return _upload(row) if row is not None else None


def get_upload(session: Session, upload_id: int) -> UploadRecord | None:
    row = session.get(Upload, upload_id)
    return _upload(row) if row is not None else None


def insert_upload(
    session: Session,
    *,
    content_id: str,
    account_id: str,
    uploaded_at: datetime,
    metadata: dict[str, Any] | None,
    duration_seconds: float,
    idempotency_key: str | None,
) -> int:
    """Insert an upload (verdict filled in later) and return its id.

    Raises ``sqlalchemy.exc.IntegrityError`` at flush when the content id or the
    idempotency key is already taken; the caller turns that into a replay.
    """
    row = Upload(
        content_id=content_id,
        account_id=account_id,
        uploaded_at=uploaded_at,
        received_at=datetime.now(timezone.utc),
        metadata_json=json.dumps(metadata, sort_keys=True) if metadata else None,
        state="live",
        duration_seconds=duration_seconds,
        idempotency_key=idempotency_key,
        verdict_json="",
    )
    session.add(row)
    session.flush()
    return row.id


def set_upload_verdict(
    session: Session, upload_id: int, verdict_json: str, original_sound_id: int | None
) -> None:
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id)
        .values(verdict_json=verdict_json, original_sound_id=original_sound_id)
    )


def set_upload_state(session: Session, upload_id: int, state: str) -> None:
    session.execute(update(Upload).where(Upload.id == upload_id).values(state=state))


def insert_use(session: Session, *, upload_id: int, sound_id: int, kind: str, evidence: Evidence) -> int:
    """Record that ``upload_id`` uses ``sound_id``, with the match evidence."""
    row = Use(
        upload_id=upload_id,
        sound_id=sound_id,
        kind=kind,
        evidence=evidence,
        created_at=datetime.now(timezone.utc),
        disputed=False,
    )
    session.add(row)
    session.flush()
    return row.id


def get_use(session: Session, use_id: int) -> UseRecord | None:
    row = session.get(Use, use_id)
    return _use(row) if row is not None else None


def uses_of_upload(session: Session, upload_id: int, *, include_disputed: bool = True) -> list[UseRecord]:
    stmt = select(Use).where(Use.upload_id == upload_id)
    if not include_disputed:
        stmt = stmt.where(Use.disputed.is_(False))
    return [_use(r) for r in session.scalars(stmt.order_by(Use.id))]


def mark_use_disputed(session: Session, use_id: int, *, by: int | None, reason: str | None) -> None:
    session.execute(
        update(Use)
        .where(Use.id == use_id)
        .values(disputed=True, disputed_at=datetime.now(timezone.utc), disputed_by=by, dispute_reason=reason)
    )


def live_uses_of_sounds(
    session: Session, sound_ids: Iterable[int], *, exclude_upload_id: int | None = None
) -> list[HistoryRow]:
    """Undisputed uses of these sounds by live uploads: the ones to re-review."""
    ids = list(set(sound_ids))
    if not ids:
        return []
    stmt = (
        select(Use, Upload)
        .join(Upload, Upload.id == Use.upload_id)
        .where(Use.sound_id.in_(ids), Use.disputed.is_(False), Upload.state == "live")
        .order_by(Use.id)
    )
    if exclude_upload_id is not None:
        stmt = stmt.where(Upload.id != exclude_upload_id)
    return [HistoryRow(_use(u), _upload(up)) for u, up in session.execute(stmt)]


def sound_uses(
    session: Session,
    sound_id: int,
    *,
    after_id: int = 0,
    limit: int = 50,
    state: str | None = None,
    account_id: str | None = None,
    include_disputed: bool = True,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[HistoryRow]:
    """One page of a sound's reuse history, oldest use first (keyset on use id)."""
    stmt = (
        select(Use, Upload)
        .join(Upload, Upload.id == Use.upload_id)
        .where(Use.sound_id == sound_id, Use.id > after_id)
    )
    if state is not None:
        stmt = stmt.where(Upload.state == state)
    if account_id is not None:
        stmt = stmt.where(Upload.account_id == account_id)
    if not include_disputed:
        stmt = stmt.where(Use.disputed.is_(False))
    if since is not None:
        stmt = stmt.where(Upload.uploaded_at >= since)
    if until is not None:
        stmt = stmt.where(Upload.uploaded_at < until)
    stmt = stmt.order_by(Use.id).limit(limit)
    return [HistoryRow(_use(u), _upload(up)) for u, up in session.execute(stmt)]


@dataclass(frozen=True)
class UseStats:
    uses: int
    live_uses: int
    removed_uses: int
    disputed_uses: int
    accounts: int
    first_seen: datetime | None
    last_seen: datetime | None


def sound_use_stats(session: Session, sound_id: int) -> UseStats:
    live = func.sum(case((and_(Upload.state == "live", Use.disputed.is_(False)), 1), else_=0))
    removed = func.sum(case((and_(Upload.state == "removed", Use.disputed.is_(False)), 1), else_=0))
    disputed = func.sum(case((Use.disputed.is_(True), 1), else_=0))
    row = session.execute(
        select(
            func.count(Use.id),
            live,
            removed,
            disputed,
            func.count(func.distinct(Upload.account_id)),
            func.min(Upload.uploaded_at),
            func.max(Upload.uploaded_at),
        )
        .join(Upload, Upload.id == Use.upload_id)
        .where(Use.sound_id == sound_id)
    ).one()
    return UseStats(
        uses=int(row[0] or 0),
        live_uses=int(row[1] or 0),
        removed_uses=int(row[2] or 0),
        disputed_uses=int(row[3] or 0),
        accounts=int(row[4] or 0),
        first_seen=_utc(row[5]),
        last_seen=_utc(row[6]),
    )


# --- removals --------------------------------------------------------------


def insert_removal(
    session: Session,
    *,
    upload_id: int | None = None,
    sound_id: int | None = None,
    policy_label: str,
    reason: str | None,
    by: int | None,
) -> int:
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


def get_removal(session: Session, removal_id: int) -> RemovalRecord | None:
    row = session.get(Removal, removal_id)
    if row is None:
        return None
    upload = session.get(Upload, row.upload_id) if row.upload_id is not None else None
    return _removal(row, upload)


def active_removal_of_upload(session: Session, upload_id: int) -> RemovalRecord | None:
    row = session.scalars(
        select(Removal).where(Removal.upload_id == upload_id, Removal.reversed_at.is_(None))
    ).first()
    return _removal(row, session.get(Upload, upload_id)) if row is not None else None


def mark_removal_reversed(session: Session, removal_id: int, *, by: int | None, reason: str | None) -> None:
    session.execute(
        update(Removal)
        .where(Removal.id == removal_id)
        .values(reversed_at=datetime.now(timezone.utc), reversed_by=by, reversal_reason=reason)
    )


def linked_removals(session: Session, sound_ids: Iterable[int]) -> dict[int, list[RemovalRecord]]:
    """Active removals each sound is linked to, by sound id.

    A sound is linked to a removal when a removed upload has an undisputed use
    of it, or when an operator linked the sound itself (archive seeding).
    """
    ids = list(set(sound_ids))
    out: dict[int, list[RemovalRecord]] = {i: [] for i in ids}
    if not ids:
        return out
    via_uses = (
        select(Use.sound_id, Removal, Upload)
        .join(Removal, Removal.upload_id == Use.upload_id)
        .join(Upload, Upload.id == Use.upload_id)
        .where(Use.sound_id.in_(ids), Use.disputed.is_(False), Removal.reversed_at.is_(None))
        .order_by(Removal.id)
    )
    for sound_id, removal, upload in session.execute(via_uses):
        out[sound_id].append(_removal(removal, upload))
    direct = select(Removal).where(Removal.sound_id.in_(ids), Removal.reversed_at.is_(None)).order_by(Removal.id)
    for removal in session.scalars(direct):
        out[removal.sound_id].append(_removal(removal, None))  # type: ignore[index]
    return out


def removals_of_uploads(session: Session, upload_ids: Iterable[int]) -> dict[int, RemovalRecord]:
    """The active removal of each removed upload among ``upload_ids``."""
    ids = list(set(upload_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Removal, Upload)
        .join(Upload, Upload.id == Removal.upload_id)
        .where(Removal.upload_id.in_(ids), Removal.reversed_at.is_(None))
    )
    return {removal.upload_id: _removal(removal, upload) for removal, upload in rows}


# --- sounds ------------------------------------------------------------------


def sound_info(session: Session, sound_ids: Sequence[int]) -> dict[int, SoundInfo]:
    rows = session.scalars(select(Sound).where(Sound.id.in_(list(sound_ids))))
    return {
        s.id: SoundInfo(s.id, s.label, s.source_name, s.duration_seconds, _utc(s.created_at))  # type: ignore[arg-type]
        for s in rows
    }


def add_sound_labels(session: Session, sound_id: int, labels: Iterable[str]) -> None:
    existing = set(session.scalars(select(SoundTag.tag).where(SoundTag.sound_id == sound_id)))
    for label in sorted(set(labels) - existing):
        session.add(SoundTag(sound_id=sound_id, tag=label))
    session.flush()


def labels_of_sounds(session: Session, sound_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = list(set(sound_ids))
    out: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select(SoundTag.sound_id, SoundTag.tag)
            .where(SoundTag.sound_id.in_(ids))
            .order_by(SoundTag.tag)
        )
        for sound_id, label in rows:
            out[sound_id].append(label)
    return out


# --- accounts ----------------------------------------------------------------


@dataclass(frozen=True)
class AccountSoundRow:
    sound_id: int
    uses: int
    first_used: datetime
    last_used: datetime


def account_sounds(session: Session, account_id: str) -> list[AccountSoundRow]:
    """Sounds an account's uploads use (undisputed), most used first."""
    rows = session.execute(
        select(Use.sound_id, func.count(Use.id), func.min(Upload.uploaded_at), func.max(Upload.uploaded_at))
        .join(Upload, Upload.id == Use.upload_id)
        .where(Upload.account_id == account_id, Use.disputed.is_(False))
        .group_by(Use.sound_id)
        .order_by(func.count(Use.id).desc(), Use.sound_id)
    )
    return [AccountSoundRow(s, int(n), _utc(a), _utc(b)) for s, n, a, b in rows]  # type: ignore[arg-type]


@dataclass(frozen=True)
class SharedAccountRow:
    account_id: str
    sound_id: int
    uses: int


def accounts_sharing_sounds(session: Session, account_id: str, sound_ids: Iterable[int]) -> list[SharedAccountRow]:
    """Other accounts with undisputed uses of any of ``sound_ids``."""
    ids = list(set(sound_ids))
    if not ids:
        return []
    rows = session.execute(
        select(Upload.account_id, Use.sound_id, func.count(Use.id))
        .join(Upload, Upload.id == Use.upload_id)
        .where(Use.sound_id.in_(ids), Use.disputed.is_(False), Upload.account_id != account_id)
        .group_by(Upload.account_id, Use.sound_id)
        .order_by(Upload.account_id, Use.sound_id)
    )
    return [SharedAccountRow(a, s, int(n)) for a, s, n in rows]


# --- events ------------------------------------------------------------------


def insert_events(session: Session, *, kind: str, removal_id: int | None, rows: Sequence[HistoryRow]) -> int | None:
    """One event per affected use, in use order; returns the first new event id (None if none)."""
    if not rows:
        return None
    lock_links(session, exclusive=True)  # normally already held by the caller
    now = datetime.now(timezone.utc)
    events = [
        Event(
            kind=kind,
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


def last_event_id(session: Session) -> int:
    return int(session.scalar(select(func.max(Event.id))) or 0)


def events_after(session: Session, after_id: int, limit: int) -> list[EventRecord]:
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
            kind=e.kind,
            created_at=_utc(e.created_at),  # type: ignore[arg-type]
            removal_id=e.removal_id,
            sound_id=e.sound_id,
            use_id=e.use_id,
            upload_id=e.upload_id,
            content_id=u.content_id,
            account_id=u.account_id,
            upload_state=u.state,
        )
        for e, u in rows
    ]


# --- keys and audit ----------------------------------------------------------


def _key(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, row.role, row.prefix, _utc(row.created_at), _utc(row.revoked_at))  # type: ignore[arg-type]


def insert_api_key(session: Session, *, name: str, role: str, key_hash: str, prefix: str) -> ApiKeyRecord:
    row = ApiKey(name=name, role=role, key_hash=key_hash, prefix=prefix, created_at=datetime.now(timezone.utc))
    session.add(row)
    session.flush()
    return _key(row)


def find_api_key(session: Session, key_hash: str) -> ApiKeyRecord | None:
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()
    return _key(row) if row is not None else None


def get_api_key(session: Session, key_id: int) -> ApiKeyRecord | None:
    row = session.get(ApiKey, key_id)
    return _key(row) if row is not None else None


def list_api_keys(session: Session) -> list[ApiKeyRecord]:
    return [_key(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_api_key(session: Session, key_id: int) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=datetime.now(timezone.utc)))


def insert_audit(
    session: Session,
    *,
    key_id: int | None,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None,
) -> None:
    # Targets embed caller-supplied ids (an account id from a URL can be any
    # length); the column is bounded, and an audit write must never fail a request.
    session.add(
        AuditEntry(
            at=datetime.now(timezone.utc),
            key_id=key_id,
            actor=actor[:255],
            action=action[:64],
            target=target[:255] if target is not None else None,
            detail_json=json.dumps(detail, sort_keys=True, default=str) if detail else None,
        )
    )
    session.flush()


def audit_entries(session: Session, *, after_id: int = 0, limit: int = 100, action: str | None = None) -> list[AuditRecord]:
    stmt = select(AuditEntry).where(AuditEntry.id > after_id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    rows = session.scalars(stmt.order_by(AuditEntry.id).limit(limit))
    return [
        AuditRecord(
            r.id, _utc(r.at), r.key_id, r.actor, r.action, r.target,  # type: ignore[arg-type]
            json.loads(r.detail_json) if r.detail_json else None,
        )
        for r in rows
    ]
