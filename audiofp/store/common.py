"""Small helpers every aggregate module of the store shares.

``chunks`` exists because a query with one bind parameter per id stops working
past a backend limit: PostgreSQL's protocol carries at most 65,535 parameters
per statement, and SQLite builds may allow as few as 999 (32,766 since 3.32).
Every ``IN (...)`` over a caller-supplied collection goes through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import Base

#: Ids per ``IN (...)`` list: below every backend's bound-parameter limit, and
#: large enough that a typical call is one round trip.
IN_CHUNK = 10_000


def chunks(ids: Iterable[int], size: int | None = None) -> Iterator[list[int]]:
    """The distinct ``ids`` in ascending order, ``size`` (default ``IN_CHUNK``) at a time."""
    size = size or IN_CHUNK
    ordered = sorted({int(i) for i in ids})
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def dialect(session: Session) -> str:
    """``"sqlite"`` or ``"postgresql"``: the backend ``session`` talks to."""
    return session.get_bind().dialect.name


def upsert(session: Session, model: type[Base]) -> Any:
    """An INSERT into ``model``'s table that accepts ``on_conflict_do_*`` on either backend."""
    module = postgresql if dialect(session) == "postgresql" else sqlite
    return module.insert(model)
