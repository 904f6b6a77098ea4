"""Sounds: the distinct recordings the index knows, and the tags attached to them.

A sound has one display ``label`` (set when it is ingested) and any number of
free-form tags (entity, campaign, archive name...) in ``sound_tags``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import ConflictError, NotFoundError, ParameterError
from .common import chunks
from .models import Sound, SoundTag
from .records import SoundRecord, utc
from .translate import translated


def _record(row: Sound) -> SoundRecord:
    return SoundRecord(
        id=row.id,
        content_digest=row.content_digest,
        label=row.label,
        source_name=row.source_name,
        duration_seconds=float(row.duration_seconds),
        scheme=int(row.scheme),
        fingerprint_count=int(row.fingerprint_count),
        created_at=utc(row.created_at),
    )


@translated
def find_sound_by_digest(session: Session, content_digest: str) -> SoundRecord | None:
    """The sound whose decoded audio has this digest, or None."""
    row = session.scalars(select(Sound).where(Sound.content_digest == content_digest)).one_or_none()
    return None if row is None else _record(row)


@translated
def count_sounds(session: Session) -> int:
    """How many sounds the catalogue holds (sounds are never deleted: a change means one was added)."""
    return int(session.scalar(select(func.count()).select_from(Sound)) or 0)


@translated
def add_sound(
    session: Session,
    *,
    content_digest: str,
    duration_seconds: float,
    scheme: int,
    fingerprint_count: int,
    label: str | None = None,
    source_name: str | None = None,
) -> SoundRecord:
    """Create a sound and return it with its new id.

    Raises
    ------
    ConflictError
        If a sound with this ``content_digest`` exists (the caller's
        transaction stays usable: the failed insert is rolled back to a savepoint).
    ParameterError
        If a field is out of range.
    """
    if not isinstance(content_digest, str) or not 0 < len(content_digest) <= 64:
        raise ParameterError("content_digest must be a non-empty string of at most 64 characters")
    if not math.isfinite(duration_seconds) or duration_seconds < 0:
        raise ParameterError(f"duration_seconds must be finite and >= 0, got {duration_seconds!r}")
    if not 0 <= scheme <= 32767:
        raise ParameterError(f"scheme must be in [0, 32767], got {scheme!r}")
    if fingerprint_count < 0:
        raise ParameterError(f"fingerprint_count must be >= 0, got {fingerprint_count!r}")
    row = Sound(
        content_digest=content_digest,
        label=label,
        source_name=source_name,
        duration_seconds=float(duration_seconds),
        scheme=int(scheme),
        fingerprint_count=int(fingerprint_count),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise ConflictError(f"a sound with content digest {content_digest} already exists") from exc
    return _record(row)


@translated
def get_sound(session: Session, sound_id: int) -> SoundRecord:
    """The sound with this id; raises ``NotFoundError`` if there is none."""
    row = session.get(Sound, int(sound_id))
    if row is None:
        raise NotFoundError(f"no sound with id {sound_id}")
    return _record(row)


@translated
def get_sounds(session: Session, sound_ids: Iterable[int]) -> dict[int, SoundRecord]:
    """The sounds among ``sound_ids`` that exist, by id (missing ids are left out)."""
    found: dict[int, SoundRecord] = {}
    for chunk in chunks(sound_ids):
        for row in session.scalars(select(Sound).where(Sound.id.in_(chunk))):
            found[row.id] = _record(row)
    return found


@translated
def list_sounds(
    session: Session, *, after_id: int = 0, limit: int = 100, label: str | None = None
) -> list[SoundRecord]:
    """Sounds in id order, starting after ``after_id`` (keyset pagination).

    Pass the last id of a page as ``after_id`` to get the next page; a short
    page is the last one. ``label`` keeps only sounds with exactly that label.
    """
    if limit < 1:
        raise ParameterError(f"limit must be >= 1, got {limit}")
    if after_id < 0:
        raise ParameterError(f"after_id must be >= 0, got {after_id}")
    query = select(Sound).where(Sound.id > after_id)
    if label is not None:
        query = query.where(Sound.label == label)
    rows = session.scalars(query.order_by(Sound.id).limit(limit))
    return [_record(row) for row in rows]


@translated
def add_sound_tags(session: Session, sound_id: int, tags: Iterable[str]) -> None:
    """Attach ``tags`` to a sound; tags it already has are left as they are."""
    existing = set(session.scalars(select(SoundTag.tag).where(SoundTag.sound_id == sound_id)))
    for tag in sorted(set(tags) - existing):
        session.add(SoundTag(sound_id=sound_id, tag=tag))
    session.flush()


@translated
def tags_of_sounds(session: Session, sound_ids: Iterable[int]) -> dict[int, list[str]]:
    """The tags of each of ``sound_ids``, alphabetical (an empty list for a sound without)."""
    out: dict[int, list[str]] = {}
    for chunk in chunks(sound_ids):
        out.update((i, []) for i in chunk)
        rows = session.execute(
            select(SoundTag.sound_id, SoundTag.tag).where(SoundTag.sound_id.in_(chunk)).order_by(SoundTag.tag)
        )
        for sound_id, tag in rows:
            out[sound_id].append(tag)
    return out
