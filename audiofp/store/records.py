"""The values the store hands out: frozen records and the states they carry.

Every store function returns one of these (or a numpy array), never an ORM
row, so nothing outside ``audiofp.store`` can lazy-load, mutate or flush by
accident. States are ``StrEnum`` members: they compare equal to, serialise as
and are stored as the very same strings the columns and the wire use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, overload

from ..engine.types import Evidence
from .timestamps import UTC_MAX, UTC_MIN


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime, whichever backend read it.

    SQLite keeps no zone and hands back naive values; every datetime audiofp
    writes is UTC, so a naive value is UTC. PostgreSQL hands back aware values
    in the *session's* time zone, which a server may set to anything: convert,
    so that the same instant always prints as the same ``+00:00`` string.
    An instant beyond Python's range in UTC becomes the nearest bound
    (:data:`~audiofp.store.timestamps.UTC_MIN`, :data:`~audiofp.store.timestamps.UTC_MAX`).
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        # Year 9999 west of Greenwich or year 1 east of it: past what Python holds in UTC.
        return UTC_MAX if value.year > 1 else UTC_MIN


# --------------------------------------------------------------------------- states
class UploadState(StrEnum):
    """Whether an upload is up; mirrors whether an unreversed removal of it exists."""

    LIVE = "live"
    REMOVED = "removed"


class UseKind(StrEnum):
    """How an upload uses a sound."""

    ORIGINAL = "original"
    """The upload introduced the sound: its audio became the sound."""
    REUSE = "reuse"


class EventKind(StrEnum):
    """Why a use was put in the feed for re-review."""

    SOUND_LINKED_TO_REMOVAL = "sound_linked_to_removal"
    REMOVAL_REVERSED = "removal_reversed"


class Role(StrEnum):
    """What an API key is for; the permissions of each are a service rule."""

    PIPELINE = "pipeline"
    INVESTIGATOR = "investigator"
    REVIEWER = "reviewer"
    ADMIN = "admin"


# --------------------------------------------------------------------------- the index
@dataclass(frozen=True)
class SoundRecord:
    """One known sound, as the rest of audiofp sees it. ``created_at`` is UTC."""

    id: int
    content_digest: str
    label: str | None
    """The sound's one display label (its tags are a separate list)."""
    source_name: str | None
    duration_seconds: float
    scheme: int
    fingerprint_count: int
    created_at: datetime


@dataclass(frozen=True)
class IndexStats:
    """Size of the index.

    ``postings`` counts stored (hash, sound, time) entries, ``rows`` distinct
    (scheme, hash) keys. ``bytes_on_disk`` is the SQLite database file, or the
    index tables with their indexes and TOAST on PostgreSQL.
    """

    sounds: int
    seconds: float
    postings: int
    rows: int
    bytes_on_disk: int | None


# --------------------------------------------------------------------------- moderation
@dataclass(frozen=True)
class UploadRecord:
    """A platform content item and the verdict it was given (``verdict_json``)."""

    id: int
    content_id: str
    account_id: str
    uploaded_at: datetime
    received_at: datetime
    metadata: dict[str, Any] | None
    state: UploadState
    duration_seconds: float
    original_sound_id: int | None
    idempotency_key: str | None
    verdict_json: str
    payload_digest: str | None = None
    """SHA-256 of the bytes submitted; None for uploads recorded before it was kept."""


@dataclass(frozen=True)
class UseRecord:
    """The fact that upload ``upload_id`` uses sound ``sound_id``, with the match evidence."""

    id: int
    upload_id: int
    sound_id: int
    kind: UseKind
    evidence: Evidence
    created_at: datetime
    disputed: bool
    disputed_at: datetime | None
    dispute_reason: str | None


@dataclass(frozen=True)
class RemovalRecord:
    """A removal; ``content_id`` and ``account_id`` are its upload's, when it names one."""

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
class UseTally:
    """How many uses of a sound have this upload state and dispute flag."""

    state: UploadState
    disputed: bool
    uses: int


@dataclass(frozen=True)
class UseSpan:
    """Every use of a sound, disputed or not: distinct accounts and upload time range."""

    accounts: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True)
class AccountSoundRow:
    """A sound an account's uploads use: how often, first and last upload time."""

    sound_id: int
    uses: int
    first_used: datetime
    last_used: datetime


@dataclass(frozen=True)
class SharedAccountRow:
    """Another account's uses of one sound."""

    account_id: str
    sound_id: int
    uses: int


@dataclass(frozen=True)
class EventRecord:
    """One feed entry, with the content and account ids of its upload."""

    id: int
    kind: EventKind
    created_at: datetime
    removal_id: int | None
    sound_id: int
    use_id: int
    upload_id: int
    content_id: str
    account_id: str
    upload_state: UploadState


@dataclass(frozen=True)
class ApiKeyRecord:
    """A caller of the API; the secret itself is never stored, only its hash."""

    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class AuditRecord:
    """Who did what, when."""

    id: int
    at: datetime
    key_id: int | None
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any] | None
