"""Shared test fixtures: databases on both backends.

``sqlite_url`` is a fresh SQLite file; ``pg_url`` a fresh PostgreSQL database
on the server at 127.0.0.1:5432 (override the admin connection with
``AUDIOFP_TEST_POSTGRES_URL``), dropped afterwards; ``store_url`` runs a test
on each backend; ``store`` is an opened, migrated ``Store`` on it.

Without a reachable PostgreSQL the ``postgres`` tests are skipped, except when
the ``CI`` environment variable is set: then they fail, because CI must test
the production backend.

This file is shared: other engineers may add fixtures here by asking its owner
(the store engineer) so that fixtures are not duplicated or shadowed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from audiofp.store import Store

ADMIN_URL = os.environ.get("AUDIOFP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL unreachable at {ADMIN_URL}: {exc}".strip()
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI requires the postgres tests)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """URL of a SQLite file that does not exist yet, in a folder that does not exist yet."""
    return f"sqlite:///{tmp_path / 'db' / 'audiofp.sqlite'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = f"audiofp_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    user = info.get("user", "postgres")
    host = info.get("host", "127.0.0.1")
    port = info.get("port", "5432")
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    finally:
        with _admin_connection() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request) -> str:
    """A fresh database URL, once per backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(store_url) -> Iterator[Store]:
    """A migrated store with the default parameters, on each backend."""
    opened = Store.open(store_url)
    try:
        yield opened
    finally:
        opened.dispose()
