"""``audiofp db``: schema migrations and the size of the index."""

from __future__ import annotations

import click

from ..services.operations import get_index_stats, redacted_url, schema_revision, upgrade_schema
from .app import Context, main, pass_context


@main.group()
def db() -> None:
    """Schema and index maintenance."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(ctx: Context, revision: str) -> None:
    """Create or migrate the schema (Alembic)."""
    click.echo(f"schema at {upgrade_schema(ctx.settings.resolved_database_url, revision)}")


@db.command("current")
@pass_context
def db_current(ctx: Context) -> None:
    """Print the schema revision of the store."""
    click.echo(schema_revision(ctx.settings.resolved_database_url) or "empty (run: audiofp db upgrade)")


@db.command("stats")
@pass_context
def db_stats(ctx: Context) -> None:
    """Print the size of the index."""
    s = get_index_stats(ctx.store)
    hours = s.seconds / 3600
    line = f"{s.sounds} sounds, {hours:.2f} h of audio, {s.postings} fingerprints in {s.rows} hash rows"
    if s.bytes_on_disk is not None:
        per_hour = (s.bytes_on_disk / hours / 1e6) if hours > 0 else 0.0
        line += f", {s.bytes_on_disk / 1e6:.1f} MB on disk ({per_hour:.2f} MB per hour)"
    click.echo(line)
    click.echo(f"store: {redacted_url(ctx.store.url)}")
