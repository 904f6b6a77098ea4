"""Database failures turned into audiofp's errors, at the store's edge.

Callers of the store must be able to tell three failures apart without
knowing SQLAlchemy or a driver: a concurrent writer won a race (try again:
``RetryableError``), the request collides with stored state (``ConflictError``),
or the database is gone (``StoreUnavailableError``). Every public store
function is wrapped by :func:`translated`; the two hot paths of the index talk
to the driver directly, so driver exceptions are classified too, not only
SQLAlchemy's wrappers of them. :func:`transaction` extends the same to the
beginning and the commit of a use case's transaction, which happen outside
any store function.

Programming errors (a malformed statement, a value the column cannot hold) are
bugs, not conditions a caller can handle: they propagate unchanged.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import psycopg
from sqlalchemy import exc as sa

from ..errors import AudioFPError, ConflictError, RetryableError, StoreUnavailableError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .database import Store

P = ParamSpec("P")
R = TypeVar("R")

#: PostgreSQL SQLSTATEs of a lost race: serialization_failure, deadlock_detected,
#: lock_not_available. The transaction is aborted; running it again may succeed.
RACE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def _is_race(driver_error: BaseException | None) -> bool:
    if getattr(driver_error, "sqlstate", None) in RACE_SQLSTATES:
        return True
    # SQLite reports a writer that held the file past the busy timeout this way.
    message = str(driver_error).lower()
    return isinstance(driver_error, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


def classify(error: BaseException) -> AudioFPError | None:
    """Our error for a SQLAlchemy or driver exception, or None for a bug to let through."""
    driver_error = error.orig if isinstance(error, sa.DBAPIError) else error
    detail = str(driver_error).strip().splitlines()[0] if str(driver_error).strip() else type(error).__name__
    if _is_race(driver_error):
        return RetryableError(f"a concurrent writer won a race; retry ({detail})")
    if isinstance(error, sa.IntegrityError) or isinstance(driver_error, (psycopg.IntegrityError, sqlite3.IntegrityError)):
        return ConflictError(f"the change conflicts with stored data ({detail})")
    unavailable = (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError, sa.TimeoutError)
    if isinstance(error, unavailable) or isinstance(
        driver_error, (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError)
    ):
        return StoreUnavailableError(f"the database is unavailable ({detail})")
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return StoreUnavailableError(f"the database connection was lost ({detail})")
    return None


#: What :func:`classify` is asked about; anything else is not a database failure.
DATABASE_ERRORS = (sa.SQLAlchemyError, psycopg.Error, sqlite3.Error)


def translated(function: Callable[P, R]) -> Callable[P, R]:
    """Make ``function`` raise our errors instead of SQLAlchemy's or the driver's."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except DATABASE_ERRORS as error:
            ours = classify(error)
            if ours is None:
                raise
            raise ours from error

    return wrapper


def transaction(store: Store, *, readonly: bool = False) -> AbstractContextManager[Session]:
    """One use case, one transaction: ``store.session(readonly=...)``.

    Committed when the block ends, rolled back if it raises; a failure to begin
    or commit raises our errors (``Store.session`` classifies them with
    :func:`classify`).
    """
    return store.session(readonly=readonly)
