"""``audiofp serve``: the HTTP API under gunicorn, from the ``audiofp`` command.

The API package owns this command and declares it under the ``audiofp.commands``
entry points (pyproject.toml), so the ``audiofp`` core never imports the web
layer. The command runs inside the ``audiofp`` group: it takes the group's
settings, and an error it lets through becomes the group's one-line message
and exit code.
"""

from __future__ import annotations

from typing import Any, Protocol

import click
from gunicorn.app.base import BaseApplication

from audiofp.config import Settings
from audiofp.services.operations import prepare_store

from . import create_app
from .server import GUNICORN_SETTINGS


class GroupContext(Protocol):
    """What ``serve`` needs of the ``audiofp`` group's context object."""

    settings: Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (gunicorn); use about 2 per core in production.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads per worker.")
@click.pass_obj
def serve(obj: GroupContext, host: str, port: int, workers: int, threads: int) -> None:
    """Run the HTTP API (gunicorn) on the configured store (SQLite by default)."""
    url = obj.settings.resolved_database_url
    # Migrate (and build the index snapshot if there is none) once here, so workers
    # do not race to do it at their first request; a store that cannot be opened
    # fails the command with its exit code.
    prepare_store(url, index_dir=obj.settings.resolved_index_dir)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in GUNICORN_SETTINGS.items():
                self.cfg.set(name, value)
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            return create_app({"DATABASE_URL": url})

    click.echo(f"audiofp: serving on http://{host}:{port} ({workers} worker(s)); store: {url.split('://')[0]}", err=True)
    Server().run()
