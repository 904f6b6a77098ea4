"""Index metadata: key/value facts about the index, such as the parameter digest per scheme."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .common import upsert
from .models import IndexMeta
from .translate import translated


@translated
def get_meta(session: Session, key: str) -> str | None:
    """The value stored under ``key`` in ``index_meta``, or None."""
    return session.scalars(select(IndexMeta.value).where(IndexMeta.key == key)).one_or_none()


@translated
def set_meta(session: Session, key: str, value: str) -> None:
    """Store ``value`` under ``key``, replacing any previous value."""
    statement = upsert(session, IndexMeta).values(key=key, value=value)
    session.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


@translated
def setdefault_meta(session: Session, key: str, value: str) -> str:
    """Store ``value`` under ``key`` unless a value is there; return the stored value.

    Safe against a concurrent writer of the same key: exactly one value wins.
    """
    statement = upsert(session, IndexMeta).values(key=key, value=value)
    session.execute(statement.on_conflict_do_nothing(index_elements=["key"]))
    stored = get_meta(session, key)
    return value if stored is None else stored
