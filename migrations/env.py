"""Alembic environment of audiofp: migrates the metadata of every audiofp model module.

audiofp runs migrations in code and hands over its own connection (with the
backend settings and the lock it took) in ``config.attributes["connection"]``;
the ``alembic`` command line instead gets a URL from the ini file or the
``AUDIOFP_DATABASE_URL`` setting.
"""

from __future__ import annotations

import importlib
import logging.config

from alembic import context
from sqlalchemy import Connection

import audiofp.store.models
from audiofp.config import Settings
from audiofp.store.database import create_store_engine, normalize_url

# Optional model modules: their tables join Base.metadata when they exist.
for _module in ("audiofp.store.moderation_models",):
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise

config = context.config
target_metadata = audiofp.store.models.Base.metadata

if config.config_file_name is not None and config.attributes.get("connection") is None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or Settings.load().resolved_database_url


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _run_on(connection: Connection) -> None:
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = normalize_url(_url())
    _configure(url=url, literal_binds=True, render_as_batch=url.get_backend_name() == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = create_store_engine(_url())
    try:
        with engine.begin() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
