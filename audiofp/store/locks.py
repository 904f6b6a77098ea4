"""Advisory locks that order concurrent writers where a row lock cannot.

PostgreSQL runs audiofp's transactions at READ COMMITTED, so two transactions
can each read a state the other is about to change. These transaction-scoped
advisory locks (released at commit or rollback) put the few races that matter
in a queue. SQLite needs none: writers take the database file's write lock
when their transaction begins, which serialises them all.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .common import dialect
from .translate import translated

#: Arbitrary constants naming the advisory locks ("audf" in ASCII, then a number).
EVENT_LOCK_KEY = 0x6175_6466_0001
SOUND_REGISTRATION_LOCK_KEY = 0x6175_6466_0002


def _advisory_lock(session: Session, key: int, *, shared: bool = False) -> None:
    if dialect(session) == "postgresql":
        fn = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
        session.execute(select(fn(key)))


@translated
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


@translated
def lock_sound_registration(session: Session) -> None:
    """Serialise the registration of new sounds, so two concurrent uploads of one
    new recording do not both register it."""
    _advisory_lock(session, SOUND_REGISTRATION_LOCK_KEY)
