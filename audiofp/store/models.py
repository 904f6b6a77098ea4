"""SQLAlchemy models of the core index: sounds and their fingerprints.

The schema itself is made and changed only by Alembic (``migrations/``); these
classes describe it for queries. Repository functions convert rows to plain
dataclasses at the store boundary, so no ORM object leaves ``audiofp.store``.

Fingerprints are kept in a packed inverted index: one row per (scheme, hash)
whose ``postings`` blob concatenates fixed-width entries (``POSTING_DTYPE``,
10 bytes: sound, time, freq, span). A row per posting would cost 40-60 bytes
on PostgreSQL (tuple header, line pointer, index entry) and make the lookup
touch one heap page per posting; packing makes the per-row overhead shared by
every posting of a hash and turns a query into one indexed read per hash.
Ingest appends to the blobs with an upsert that concatenates.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Float, Integer, LargeBinary, MetaData, SmallInteger, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FingerprintPostings(Base):
    """Packed postings of one hash: ``key = (scheme << 32) | hash``."""

    __tablename__ = "fingerprints"

    key: Mapped[int] = mapped_column(RowKey, primary_key=True, autoincrement=False)
    postings: Mapped[bytes] = mapped_column(LargeBinary)


class IndexMeta(Base):
    """Key/value facts about the index, such as the parameter digest per scheme."""

    __tablename__ = "index_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
