"""Schema migrations: existing indexes survive the digest change, and only our scripts run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text

from audiofp.engine.params import DEFAULT_PARAMS
from audiofp.errors import IndexMismatchError
from audiofp.store import Store, head_revisions, upgrade
from audiofp.store.database import alembic_config, create_store_engine, migrations_path

#: ``DEFAULT_PARAMS.digest()`` before the posting layout joined the parameters
#: (audiofp up to schema revision 0004): what existing default indexes hold.
OLD_DEFAULT_DIGEST = "b2fe88a1a73616d4"
KEY = "params_digest:1"


@contextmanager
def _transaction(url: str) -> Iterator[Connection]:
    """A connection to ``url`` outside any Store, committed at the end."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _index_at_0004_holding(url: str, digest: str) -> None:
    """A store as audiofp left it at revision 0004, with ``digest`` recorded for scheme 1."""
    upgrade(url, "0004_sound_tags")
    with _transaction(url) as connection:
        connection.execute(text("INSERT INTO index_meta (key, value) VALUES (:key, :value)"), {"key": KEY, "value": digest})


def _recorded_digest(url: str) -> str | None:
    with _transaction(url) as connection:
        return connection.execute(text("SELECT value FROM index_meta WHERE key = :key"), {"key": KEY}).scalar_one_or_none()


def test_an_index_built_with_the_old_default_parameters_still_opens(store_url):
    assert DEFAULT_PARAMS.digest() != OLD_DEFAULT_DIGEST  # the change this migration is for
    _index_at_0004_holding(store_url, OLD_DEFAULT_DIGEST)
    Store.open(store_url).dispose()
    assert _recorded_digest(store_url) == DEFAULT_PARAMS.digest()


#: ``DEFAULT_PARAMS.digest()`` at revisions 0005-0008, when it also covered query-only parameters.
DIGEST_0008 = "3b0b15affc9f17c9"


def test_an_index_stamped_before_the_digest_left_query_parameters_out_still_opens(store_url):
    assert DEFAULT_PARAMS.digest() != DIGEST_0008  # the change revision 0009 is for
    upgrade(store_url, "0008_peaks_are_the_record")
    with _transaction(store_url) as connection:
        connection.execute(text("INSERT INTO index_meta (key, value) VALUES (:key, :value)"),
                           {"key": KEY, "value": DIGEST_0008})
    Store.open(store_url).dispose()
    assert _recorded_digest(store_url) == DEFAULT_PARAMS.digest()
    command.downgrade(alembic_config(store_url), "0008_peaks_are_the_record")  # code of that time finds its own digest
    assert _recorded_digest(store_url) == DIGEST_0008


def test_a_store_opens_under_parameters_that_differ_only_in_how_queries_search(store_url):
    import dataclasses

    from audiofp.engine.params import HashLayout

    Store.open(store_url).dispose()
    wider = HashLayout(tuple(dataclasses.replace(f, query_tolerance=f.query_tolerance + 7.0 if f.name == "band"
                                                 else f.query_tolerance) for f in DEFAULT_PARAMS.layout.fields))
    Store.open(store_url, params=dataclasses.replace(DEFAULT_PARAMS, layout=wider, query_fanout=9)).dispose()
    with pytest.raises(IndexMismatchError):
        Store.open(store_url, params=dataclasses.replace(DEFAULT_PARAMS, ref_fanout=5))


def test_an_index_built_with_other_parameters_is_still_refused(store_url):
    other = "0123456789abcdef"
    _index_at_0004_holding(store_url, other)
    with pytest.raises(IndexMismatchError, match=other):
        Store.open(store_url)
    assert _recorded_digest(store_url) == other


def test_migrations_are_ours_even_beside_another_projects_migrations_package(tmp_path):
    """``python -m`` puts the working directory first on sys.path; a project
    there with its own ``migrations`` package must not have its scripts run."""
    decoy = tmp_path / "migrations"
    (decoy / "versions").mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    (decoy / "env.py").write_text("raise SystemExit('the decoy env.py ran')\n")
    for name, down in (("0001_core", None), ("9999_decoy", "0001_core")):
        (decoy / "versions" / f"{name}.py").write_text(f"revision = {name!r}\ndown_revision = {down!r}\n")
    probe = textwrap.dedent(
        """
        import importlib.util
        from audiofp.store.database import head_revisions, migrations_path
        print(importlib.util.find_spec("migrations").origin)
        print(migrations_path())
        print(",".join(head_revisions()))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    shadowed, found, heads = out[-3:]
    assert Path(shadowed).parent == decoy  # the top-level name does lead to the decoy
    assert Path(found) == migrations_path() and Path(found) != decoy
    assert tuple(heads.split(",")) == head_revisions() and "9999_decoy" not in heads
