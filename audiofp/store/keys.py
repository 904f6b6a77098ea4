"""API keys: who may call the API. Only the SHA-256 of a secret is kept."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import ApiKey
from .records import ApiKeyRecord, Role, utc
from .translate import translated


def _record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, Role(row.role), row.prefix, utc(row.created_at), utc(row.revoked_at))


@translated
def insert_api_key(session: Session, *, name: str, role: Role, key_hash: str, prefix: str) -> ApiKeyRecord:
    """Store a new key by the hash of its secret."""
    row = ApiKey(
        name=name, role=Role(role).value, key_hash=key_hash, prefix=prefix, created_at=datetime.now(timezone.utc)
    )
    session.add(row)
    session.flush()
    return _record(row)


@translated
def find_api_key(session: Session, key_hash: str) -> ApiKeyRecord | None:
    """The key whose secret hashes to ``key_hash``, revoked or not, or None."""
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()
    return _record(row) if row is not None else None


@translated
def get_api_key(session: Session, key_id: int) -> ApiKeyRecord | None:
    """The key with this id, or None."""
    row = session.get(ApiKey, key_id)
    return _record(row) if row is not None else None


@translated
def list_api_keys(session: Session) -> list[ApiKeyRecord]:
    """Every key, revoked ones included, in id order."""
    return [_record(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.id))]


@translated
def revoke_api_key(session: Session, key_id: int) -> None:
    """Mark a key revoked now."""
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=datetime.now(timezone.utc)))
