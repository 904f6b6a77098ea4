"""SQLAlchemy models of every audiofp table: the index, then what the platform did with it.

The schema itself is made and changed only by Alembic (``migrations/``); these
classes describe it for queries, and a test compares the two. The aggregate
modules of ``audiofp.store`` convert rows to the frozen records of
``records.py`` at the boundary, so no ORM object leaves ``audiofp.store``.

The fingerprint record: each sound's spectral peaks, one ``sound_peaks`` row
per sound (10 bytes a peak), written with the sound and never rewritten. The
inverted index is derived from them outside SQL (``audiofp.index``). A row
per posting would cost 40-60 bytes on PostgreSQL (tuple header, line pointer,
index entry), and the packed rows per (scheme, hash) that stores used until
revision 0008 (``fingerprints``, kept for sounds older than their peaks) were
rewritten on every append, which slowed ingest and bloated PostgreSQL.

Moderation: which upload reused which sound (a *use*), which uploads were
taken down (a *removal*), what the upload pipelines should re-review (the
*event* feed), who may call the API (*api keys*) and who looked at or changed
what (the *audit log*). "Linked to removed content" is not stored as a flag on
a sound: the services derive it from removals and uses at read time, so that
reversing a removal or disputing a use makes the link follow without a cascade
of updates that could drift out of step.

State columns hold the values of the ``StrEnum`` types of ``records.py`` as
plain strings, so the schema needs no enum type on either backend.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, composite, mapped_column

from ..engine.types import Evidence
from .records import UploadState
from .timestamps import StoredTime

#: On SQLite a column declared exactly INTEGER PRIMARY KEY is the rowid itself,
#: so the fingerprint table needs no separate index; PostgreSQL wants BIGINT.
RowKey = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


#: Deterministic constraint names: Alembic's batch mode (how SQLite alters a
#: table) can only drop or recreate a constraint it can name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Sound(Base):
    """One distinct recording known to the system."""

    __tablename__ = "sounds"

    id: Mapped[int] = mapped_column(RowKey, primary_key=True, autoincrement=True)
    content_digest: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the decoded analysis-rate samples: same audio, same digest."""
    label: Mapped[str | None] = mapped_column(Text, nullable=True, index=True)
    source_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_seconds: Mapped[float] = mapped_column(Float)
    scheme: Mapped[int] = mapped_column(SmallInteger)
    fingerprint_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(StoredTime, default=utcnow)


class FingerprintPostings(Base):
    """Packed postings of one hash: ``key = (scheme << 32) | hash``."""

    __tablename__ = "fingerprints"

    key: Mapped[int] = mapped_column(RowKey, primary_key=True, autoincrement=False)
    postings: Mapped[bytes] = mapped_column(LargeBinary)


class SoundPeaks(Base):
    """The spectral peaks a sound's postings were formed from (``Peaks.to_bytes``).

    Postings can be formed again from them without the audio, which uploads do
    not keep: a worker indexes the sounds added since its index snapshot this
    way, and a later fingerprint scheme can re-derive its keys in place.
    """

    __tablename__ = "sound_peaks"

    sound_id: Mapped[int] = mapped_column(RowKey, ForeignKey("sounds.id"), primary_key=True, autoincrement=False)
    peaks: Mapped[bytes] = mapped_column(LargeBinary)


class IndexMeta(Base):
    """Key/value facts about the index, such as the parameter digest per scheme."""

    __tablename__ = "index_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# --------------------------------------------------------------------------- moderation
#: Foreign keys to ``sounds.id`` must have the same type as that column.
SoundRef = RowKey


class Upload(Base):
    """A platform content item sent by an upload pipeline, with its verdict."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(RowKey, primary_key=True, autoincrement=True)
    content_id: Mapped[str] = mapped_column(String(255), unique=True)
    """The platform's own id of the content; the idempotency key of a submission."""
    account_id: Mapped[str] = mapped_column(String(255), index=True)
    uploaded_at: Mapped[datetime] = mapped_column(StoredTime)
    received_at: Mapped[datetime] = mapped_column(StoredTime, default=utcnow)
    metadata_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default=UploadState.LIVE.value)
    """An ``UploadState``; mirrors whether an unreversed removal exists."""
    duration_seconds: Mapped[float] = mapped_column(Float)
    original_sound_id: Mapped[int | None] = mapped_column(
        SoundRef, ForeignKey("sounds.id"), nullable=True
    )
    """The sound registered from this upload's audio, when it reused nothing."""
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    payload_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """SHA-256 (hex) of the bytes submitted, to tell a retry from another upload under the same key;
    None for uploads recorded before it was kept."""
    verdict_json: Mapped[str] = mapped_column(Text)
    """The response body given the first time, replayed verbatim on retries."""


class Use(Base):
    """The link "this upload reuses that sound", with the evidence."""

    __tablename__ = "uses"
    __table_args__ = (
        UniqueConstraint("upload_id", "sound_id", name="uq_uses_upload_sound"),
        Index("ix_uses_sound_id_id", "sound_id", "id"),
    )

    id: Mapped[int] = mapped_column(RowKey, primary_key=True, autoincrement=True)
    upload_id: Mapped[int] = mapped_column(RowKey, ForeignKey("uploads.id"))
    sound_id: Mapped[int] = mapped_column(SoundRef, ForeignKey("sounds.id"))
    kind: Mapped[str] = mapped_column(String(16))
    """A ``UseKind``: ``original`` (the upload introduced the sound) or ``reuse``."""
    evidence: Mapped[Evidence] = composite(
        mapped_column("query_start", Float),
        mapped_column("query_end", Float),
        mapped_column("sound_start", Float),
        mapped_column("sound_end", Float),
        mapped_column("speed", Float),
        mapped_column("pitch_semitones", Float),
        mapped_column("anchors", Integer),
        mapped_column("score", Float),
        mapped_column("confidence", Float),
    )
    """The match evidence, column for column (``audiofp.engine.types.Evidence``)."""
    created_at: Mapped[datetime] = mapped_column(StoredTime, default=utcnow)
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    disputed_at: Mapped[datetime | None] = mapped_column(StoredTime, nullable=True)
    disputed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dispute_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Removal(Base):
    """An upload taken down (or a sound linked to removed content from an archive).

    Exactly one of ``upload_id`` and ``sound_id`` is set: removals made through
    the API name an upload; operators seeding from an archive link a sound
    directly, because the removed content itself was never uploaded here.
    """

    __tablename__ = "removals"

    id: Mapped[int] = mapped_column(RowKey, primary_key=True, autoincrement=True)
    upload_id: Mapped[int | None] = mapped_column(
        RowKey, ForeignKey("uploads.id"), nullable=True, index=True
    )
    sound_id: Mapped[int | None] = mapped_column(
        SoundRef, ForeignKey("sounds.id"), nullable=True, index=True
    )
    policy_label: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    removed_at: Mapped[datetime] = mapped_column(StoredTime, default=utcnow)
    removed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reversed_at: Mapped[datetime | None] = mapped_column(StoredTime, nullable=True)
    reversed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reversal_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class SoundTag(Base):
    """A free-form tag on a sound (entity, campaign, archive name...); a sound has many.

    Not to be confused with ``Sound.label``, the sound's one display label.
    """

    __tablename__ = "sound_tags"

    sound_id: Mapped[int] = mapped_column(SoundRef, ForeignKey("sounds.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class Event(Base):
    """One entry of the feed upload pipelines poll: a use that needs re-review.

    The id is the cursor. Writers take a lock before inserting events (see the
    ``locks.lock_links``) so that ids become visible in increasing order and a reader
    that resumes after id N never misses a later-committed smaller id.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(RowKey, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    """An ``EventKind``."""
    created_at: Mapped[datetime] = mapped_column(StoredTime, default=utcnow)
    removal_id: Mapped[int | None] = mapped_column(RowKey, ForeignKey("removals.id"), nullable=True)
    sound_id: Mapped[int] = mapped_column(SoundRef, ForeignKey("sounds.id"))
    use_id: Mapped[int] = mapped_column(RowKey, ForeignKey("uses.id"))
    upload_id: Mapped[int] = mapped_column(RowKey, ForeignKey("uploads.id"))


class ApiKey(Base):
    """A caller of the API. Only the SHA-256 of the secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    """A ``Role``."""
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    """The first characters of the key, shown in listings to tell keys apart."""
    created_at: Mapped[datetime] = mapped_column(StoredTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(StoredTime, nullable=True)


class AuditEntry(Base):
    """Who did what, when: every investigator search, removal, reversal, dispute, key change."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(RowKey, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(StoredTime, default=utcnow)
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(255))
    """Key name (``key:<name>``) or ``cli`` for operator commands."""
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    detail_json: Mapped[str | None] = mapped_column(Text, nullable=True)
