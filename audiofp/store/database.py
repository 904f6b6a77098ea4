"""Engine, sessions and schema migrations of the store.

One ``Store`` per process wraps a SQLAlchemy engine configured for the two
supported backends: SQLite (a file, the embedded default) and PostgreSQL
through psycopg 3 (production). Opening a store brings the schema to the
newest Alembic revision and checks that the index was built with the running
code's fingerprint parameters, so a worker never writes incompatible hashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from ..errors import IndexMismatchError, ParameterError, StoreUnavailableError
from ..engine.params import DEFAULT_PARAMS, FingerprintParams
from .timestamps import clamp_postgresql_times
from .translate import DATABASE_ERRORS, classify

#: Seconds a SQLite connection waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

#: Bytes of a SQLite database file read through a memory map (address space, not RAM).
SQLITE_MMAP_BYTES = 1 << 30

#: Key of the advisory lock that serialises concurrent migrations on PostgreSQL
#: (an arbitrary constant: "audiofp" in ASCII, fits a signed 64-bit integer).
_PG_MIGRATION_LOCK = 0x617564696F6670


@contextmanager
def _our_errors(what: str, *, files: bool = True) -> Iterator[None]:
    """Raise audiofp's errors for database and file-system failures inside the block.

    Opening, migrating and running transactions happen outside the store's
    query functions (which :func:`audiofp.store.translate.translated` wraps), so
    they classify failures here: an unreachable server or an uncreatable SQLite
    folder is ``StoreUnavailableError``; a lost race ``RetryableError``.
    """
    try:
        yield
    except DATABASE_ERRORS as error:
        ours = classify(error)
        if ours is None:
            raise
        raise ours from error
    except OSError as error:
        if not files:
            raise
        raise StoreUnavailableError(f"cannot {what}: {error.strerror or error}") from error


def params_meta_key(scheme: int) -> str:
    """The ``index_meta`` key under which the digest of ``scheme``'s parameters is kept."""
    return f"params_digest:{scheme}"


# --------------------------------------------------------------------------- URLs and engines
def normalize_url(url: str) -> URL:
    """Parse ``url`` and pin the driver audiofp speaks to each backend.

    ``postgresql://`` and ``postgres://`` mean psycopg 3 (the raw COPY path of
    the repository needs it); ``sqlite://`` means the standard library driver.

    Raises
    ------
    ParameterError
        If the URL cannot be parsed or names another backend or driver.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ParameterError(f"not a database URL: {url!r}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        parsed = parsed.set(drivername="sqlite+pysqlite")
        if parsed.database and parsed.database.startswith("~"):
            parsed = parsed.set(database=str(Path(parsed.database).expanduser()))
        return parsed
    raise ParameterError(
        f"unsupported database URL scheme {parsed.drivername!r}: "
        "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
    )


def _sqlite_is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or bool(url.query.get("mode") == "memory")


def create_store_engine(url: str | URL) -> Engine:
    """Create an engine with audiofp's connection settings for its backend.

    SQLite: parent folder created, WAL journal (readers never block the
    writer), ``synchronous=NORMAL`` (durable at checkpoints, safe in WAL),
    a busy timeout, foreign keys on, and transactions that really begin where
    SQLAlchemy says so (the stdlib driver otherwise runs DDL outside any
    transaction and ignores SAVEPOINT semantics). PostgreSQL: connections are
    pinged before use so that a restarted server costs one retry, not an error,
    and read a time Python cannot hold as the nearest one it can (``timestamps``).
    """
    parsed = url if isinstance(url, URL) else normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True)
        event.listen(engine, "connect", _postgresql_on_connect)
        return engine

    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
    if _sqlite_is_memory(parsed):
        # Every session must see the same in-memory database: one shared connection.
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"]["check_same_thread"] = False
    else:
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _postgresql_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # An instant Python cannot hold (year 10000, BC, infinity) must not fail every read of its row.
    clamp_postgresql_times(dbapi_connection)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy: the driver's implicit BEGIN
    # (emitted only before DML) would leave migrations non-transactional.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Lookups probe random pages of the index: reading them through a
        # memory map instead of read() calls cuts the hot query's CPU by ~20%.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once (no busy
    # wait) if another writer committed meanwhile; writers therefore take the
    # write lock up front with BEGIN IMMEDIATE, and wait their turn.
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


# --------------------------------------------------------------------------- migrations
def migrations_path() -> Path:
    """The folder of audiofp's Alembic scripts, whether installed or in a source tree.

    The ``migrations`` package is installed next to ``audiofp`` (and sits
    beside it in a source tree or an editable install), so it is found from
    this file's location. It is never looked up by the top-level name
    ``migrations`` (nor through package metadata, which the working directory
    can shadow too): with ``python -m`` the working directory is on
    ``sys.path``, and another project's ``migrations`` package there would
    run its scripts against our database.

    Raises
    ------
    FileNotFoundError
        If the installation lacks audiofp's migrations.
    """
    candidate = Path(__file__).resolve().parents[2] / "migrations"
    # Our first revision as well as an env.py: a stray folder of that name is not taken.
    if all((candidate / name).is_file() for name in ("env.py", "versions/0001_core.py")):
        return candidate
    raise FileNotFoundError(f"the audiofp migrations folder is missing from this installation (looked in {candidate})")


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic configuration built in code: no working-directory or ini dependency."""
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        # ConfigParser interpolation treats '%' (URL-escaped passwords) specially.
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revisions() -> tuple[str, ...]:
    """The revision(s) the code expects the schema to be at."""
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def known_revision(revision: str) -> bool:
    """Whether this code's migrations include ``revision``."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return any(script.revision == revision for script in scripts.walk_revisions())


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _run_upgrade(engine: Engine, revision: str) -> None:
    """Upgrade through ``engine``, serialised against other processes doing the same."""
    if engine.dialect.name == "sqlite":
        # Take the write lock before reading the current revision.
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        config = alembic_config(engine.url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _refuse_unknown_schema(current: str | None) -> None:
    if current is not None and not known_revision(current):
        raise IndexMismatchError(
            f"the database schema is at revision {current}, which this version of audiofp "
            f"does not know (it expects {', '.join(head_revisions())}); it was migrated by newer code"
        )


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` (``audiofp db upgrade``); idempotent.

    Raises
    ------
    ParameterError
        If ``revision`` is not one of this code's revisions (nor ``head``).
    IndexMismatchError
        If the database was migrated by newer code.
    """
    if revision not in ("head", "heads") and not known_revision(revision):
        raise ParameterError(f"unknown schema revision {revision!r}; known heads: {', '.join(head_revisions())}")
    with _our_errors("open the database"):
        engine = create_store_engine(url)
        try:
            with engine.connect() as connection:
                _refuse_unknown_schema(_revision_of(connection))
            _run_upgrade(engine, revision)
        finally:
            engine.dispose()


def current_revision(url: str) -> str | None:
    """The Alembic revision of the schema at ``url``; None for an empty database."""
    with _our_errors("open the database"):
        engine = create_store_engine(url)
        try:
            with engine.connect() as connection:
                return _revision_of(connection)
        finally:
            engine.dispose()


# --------------------------------------------------------------------------- the store
class Store:
    """A handle on one audiofp database: engine, sessions, parameter guard.

    Create it with :meth:`open`; share one per process (the engine pools
    connections and is thread-safe); call :meth:`dispose` at shutdown.
    """

    def __init__(self, url: str, engine: Engine, params: FingerprintParams) -> None:
        self.url = url
        self.engine = engine
        self.params = params
        postgres = self.dialect == "postgresql"
        self._readonly_engine = engine.execution_options(postgresql_readonly=True) if postgres else engine
        self._write_engine = engine if postgres else engine.execution_options(sqlite_begin="IMMEDIATE")

    @classmethod
    def open(cls, url: str, *, params: FingerprintParams = DEFAULT_PARAMS, migrate: bool = True) -> "Store":
        """Connect to ``url``, migrate the schema, and check the fingerprint parameters.

        Parameters
        ----------
        url : str
            ``sqlite:///PATH`` (the folder is created) or ``postgresql+psycopg://...``.
        params : FingerprintParams
            Parameters of the fingerprints this process reads and writes.
        migrate : bool
            Run ``alembic upgrade head`` first (a no-op when already there). When
            False the schema must already be at the head revision.

        Raises
        ------
        ParameterError
            If the URL is not one of the supported backends.
        StoreUnavailableError
            If the database cannot be reached (or the SQLite folder created).
        IndexMismatchError
            If the index was built with other parameters for ``params.scheme``,
            or (``migrate=False``) the schema is not at the code's revision.
        """
        parsed = normalize_url(url)
        with _our_errors("open the database"):
            engine = create_store_engine(parsed)
            store = cls(parsed.render_as_string(hide_password=False), engine, params)
            try:
                store._prepare_schema(migrate)
                store._check_params()
            except BaseException:
                engine.dispose()
                raise
        return store

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Sessions take the SQLite write lock when they begin (so concurrent
        writers queue instead of failing); pass ``readonly=True`` for a pure
        read (a match lookup) so it runs beside writers. On PostgreSQL
        ``readonly`` makes the transaction READ ONLY. A failure to begin or to
        commit raises audiofp's errors (``StoreUnavailableError``,
        ``RetryableError``, ``ConflictError``); errors the block raises itself
        pass through unchanged.
        """
        bind = self._readonly_engine if readonly else self._write_engine
        with _our_errors("reach the database", files=False), Session(bind, expire_on_commit=False) as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Store({make_url(self.url).render_as_string(hide_password=True)!r})"

    # ----------------------------------------------------------------- internals
    def _prepare_schema(self, migrate: bool) -> None:
        heads = head_revisions()
        with self.engine.connect() as connection:
            current = _revision_of(connection)
        if current is not None and (current,) == heads:
            return  # the common case: no lock, no Alembic run
        _refuse_unknown_schema(current)
        if migrate:
            _run_upgrade(self.engine, "head")
            return
        raise IndexMismatchError(
            f"the database schema is at revision {current or 'none (empty database)'}, "
            f"the code expects {', '.join(heads)}; run `audiofp db upgrade`"
        )

    def _check_params(self) -> None:
        from .meta import setdefault_meta

        wanted = self.params.digest()
        with self.session() as session:
            # Insert-if-absent, then read: two processes opening a fresh index
            # with different parameters cannot both win.
            recorded = setdefault_meta(session, params_meta_key(self.params.scheme), wanted)
        if recorded != wanted:
            raise IndexMismatchError(
                f"the index holds scheme {self.params.scheme} fingerprints built with parameters "
                f"digest {recorded}, but this code uses digest {wanted}; mixing them would ruin "
                "matching. Use the parameters the index was built with, a new scheme number, "
                "or a new database."
            )
