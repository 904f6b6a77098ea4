"""The store raises audiofp's errors, never SQLAlchemy's or a driver's.

Callers tell a lost race (retry), a clash with stored data (conflict) and a
database that is gone (unavailable) apart by type, without importing SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import psycopg
import psycopg.errors
import pytest
from sqlalchemy import exc as sa
from sqlalchemy import text

from audiofp import store as db
from audiofp.errors import ConflictError, RetryableError, StoreUnavailableError
from audiofp.store import Session, Store
from audiofp.store.translate import classify

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def _upload(session, content_id: str, key: str | None = None) -> int:
    return db.insert_upload(session, content_id=content_id, account_id="acct", uploaded_at=NOW, metadata=None,
                            duration_seconds=1.0, idempotency_key=key)


def test_a_taken_content_id_or_idempotency_key_is_a_conflict_and_the_transaction_goes_on(store):
    with store.session() as session:
        _upload(session, "c-1", key="k-1")
    with store.session() as session:
        with pytest.raises(ConflictError, match="c-2"):
            _upload(session, "c-2", key="k-1")
        with pytest.raises(ConflictError, match="c-1"):
            _upload(session, "c-1")
        # The failed inserts were rolled back to a savepoint: the transaction is usable.
        third = _upload(session, "c-3")
    with store.session(readonly=True) as session:
        assert db.get_upload(session, third).content_id == "c-3"
        assert db.find_upload(session, content_id="c-2") is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sqlite3.OperationalError("database is locked"), RetryableError),
        (psycopg.errors.DeadlockDetected("deadlock detected"), RetryableError),
        (psycopg.errors.SerializationFailure("could not serialize access"), RetryableError),
        (sa.OperationalError("SELECT 1", {}, psycopg.errors.LockNotAvailable("lock timeout")), RetryableError),
        (sa.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key")), ConflictError),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), ConflictError),
        (sa.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")), StoreUnavailableError),
        (sqlite3.OperationalError("unable to open database file"), StoreUnavailableError),
        (psycopg.InterfaceError("the connection is closed"), StoreUnavailableError),
    ],
)
def test_database_failures_are_classified_as_our_errors(error, expected):
    assert type(classify(error)) is expected


def test_programming_errors_are_bugs_and_pass_through_unchanged():
    assert classify(sa.ProgrammingError("SELEC 1", {}, psycopg.errors.SyntaxError("syntax error"))) is None
    assert classify(sa.ArgumentError("bad argument")) is None


@pytest.mark.postgres
def test_a_deadlock_between_two_writers_comes_out_as_retryable(pg_url):
    """Two transactions take the same two locks in opposite orders: PostgreSQL kills one."""
    with Store.open(pg_url) as store:
        both_hold_one = threading.Barrier(2)
        outcomes: dict[str, BaseException | None] = {}

        def writer(name: str, first, second) -> None:
            try:
                with store.session() as session:
                    first(session)
                    both_hold_one.wait(10)
                    second(session)
                outcomes[name] = None
            except BaseException as exc:  # reported below
                outcomes[name] = exc

        links = lambda session: db.lock_links(session, exclusive=True)  # noqa: E731
        sounds = db.lock_sound_registration
        threads = [threading.Thread(target=writer, args=("a", links, sounds)),
                   threading.Thread(target=writer, args=("b", sounds, links))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    failures = [exc for exc in outcomes.values() if exc is not None]
    assert len(outcomes) == 2 and len(failures) == 1, outcomes
    assert isinstance(failures[0], RetryableError) and "retry" in str(failures[0])


@contextmanager
def backend_killer(store: Store) -> Iterator[Callable[[Session], None]]:
    """A function that ends the server process behind a session, as a server restart would."""
    with store.engine.connect() as other:

        def kill(session: Session) -> None:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()

        yield kill


@pytest.mark.postgres
def test_a_connection_lost_mid_transaction_comes_out_as_unavailable(pg_url):
    with Store.open(pg_url) as store, backend_killer(store) as kill:
        with pytest.raises(StoreUnavailableError):
            with store.session(readonly=True) as session:
                db.last_event_id(session)
                kill(session)
                db.last_event_id(session)
        # The pool replaces the dead connection: the next use case works.
        with store.session(readonly=True) as session:
            assert db.last_event_id(session) == 0


@pytest.mark.postgres
def test_a_connection_lost_before_commit_comes_out_as_unavailable_from_a_transaction(pg_url):
    with Store.open(pg_url) as store, backend_killer(store) as kill:
        with pytest.raises(StoreUnavailableError):
            with db.transaction(store) as session:
                _upload(session, "c-1")
                kill(session)
            # the commit, outside any store function, is where it fails
        with db.transaction(store, readonly=True) as session:
            assert db.find_upload(session, content_id="c-1") is None


def test_errors_raised_inside_a_transaction_pass_through_and_roll_back(store):
    with pytest.raises(KeyError):
        with db.transaction(store) as session:
            _upload(session, "c-1")
            raise KeyError("the use case failed")
    with db.transaction(store, readonly=True) as session:
        assert db.find_upload(session, content_id="c-1") is None
