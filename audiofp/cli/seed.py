"""Seeding from an archive of removed content: ``audiofp link`` and ingest's seeding options.

An operator who holds an archive of removed content labels its sounds and
links them to a removal, either while ingesting them (:func:`seed_options` on
``audiofp ingest``) or afterwards for sounds already known (``audiofp link``).
Both call :func:`audiofp.services.operations.seed_sounds`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..services.operations import seed_sounds
from .app import Context, main, pass_context

F = TypeVar("F", bound=Callable[..., Any])


def seed_options(command: F) -> F:
    """Add ``--tag``, ``--removal-label`` and ``--removal-reason`` to a command."""
    command = click.option("--removal-reason", default=None, help="Reason recorded with --removal-label.")(command)
    command = click.option("--removal-label", default=None, metavar="POLICY",
                           help="Link every ingested sound to removed content under this policy label.")(command)
    command = click.option("--tag", "tags", multiple=True, metavar="LABEL",
                           help="Label attached to every ingested sound (repeatable).")(command)
    return command


@main.command("link")
@click.argument("sound_ids", nargs=-1, required=True, type=int)
@seed_options
@pass_context
def link(ctx: Context, sound_ids: tuple[int, ...], tags: tuple[str, ...], removal_label: str | None,
         removal_reason: str | None) -> None:
    """Label known sounds and/or link them to removed content (archive seeding)."""
    if not tags and not removal_label:
        raise click.UsageError("give --tag and/or --removal-label")
    affected = seed_sounds(ctx.store, sound_ids, tags=tags, removal_label=removal_label,
                           removal_reason=removal_reason)
    click.echo(f"{len(sound_ids)} sound(s) updated; {affected} live upload(s) now use removed-linked sounds", err=True)
