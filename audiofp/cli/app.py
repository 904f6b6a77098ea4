"""The ``audiofp`` command group: settings, a lazily opened store, and extension commands.

The commands themselves live in the modules that own them (``catalogue``,
``db``, ``keys``, ``seed``, ``demo``) and register on :data:`main` when
``audiofp.cli`` imports them. Other packages add commands through the
``audiofp.commands`` entry-point group, so ``audiofp serve`` comes from the
API package without this package importing it: the core never depends on the
web layer.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from ..config import Settings
from ..services.operations import Store, open_store
from .errors import KNOWN_ERRORS, fail

#: Entry-point group under which other packages declare extra ``audiofp`` commands.
COMMANDS_ENTRY_POINT_GROUP = "audiofp.commands"


class Context:
    """Settings and a lazily opened store shared by the commands of one run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use: ``--help`` and ``db`` commands need none."""
        if self._store is None:
            # No background builds: a command may exit before one ends (ingest builds in the foreground).
            self._store = open_store(self.settings.resolved_database_url,
                                     index_dir=self.settings.resolved_index_dir)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None


pass_context = click.make_pass_decorator(Context)


@functools.cache
def extension_commands() -> dict[str, EntryPoint]:
    """Commands other installed packages declare, by name (loaded only when used)."""
    return {ep.name: ep for ep in entry_points(group=COMMANDS_ENTRY_POINT_GROUP)}


class AudiofpGroup(click.Group):
    """The root group: this package's commands, extension commands, and the one error exit."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *extension_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in extension_commands():
            return command
        try:
            loaded = extension_commands()[cmd_name].load()
        except Exception as exc:  # a broken extension must not take the core commands down with it
            click.echo(f"audiofp: warning: command {cmd_name!r} could not be loaded: {exc}", err=True)
            return None
        return loaded if isinstance(loaded, click.Command) else None

    def invoke(self, ctx: click.Context) -> Any:
        # Every command (nested groups and extensions included) runs inside
        # this call, so an error of ours that a command lets through becomes
        # its one line and exit code here, and nowhere else.
        try:
            return super().invoke(ctx)
        except KNOWN_ERRORS as exc:
            fail(exc)


@click.group(cls=AudiofpGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", envvar="AUDIOFP_DATABASE_URL", default="", metavar="URL",
              help="SQLAlchemy URL of the store (default: a SQLite file under the data folder).")
@click.version_option(package_name="audiofp")
@click.pass_context
def main(ctx: click.Context, database_url: str) -> None:
    """audiofp: find where known sounds are reused, even sped up, pitch-shifted or talked over."""
    settings = Settings.load({"database_url": database_url} if database_url else None)
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)
