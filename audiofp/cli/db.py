"""``audiofp db``: schema migrations and the size of the index."""

from __future__ import annotations

import click

from ..errors import ParameterError

from ..services.operations import (
    build_index_snapshot,
    get_index_stats,
    index_status,
    redacted_url,
    schema_revision,
    upgrade_schema,
)
from .app import Context, main, pass_context
from .errors import fail


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
    line = f"{s.sounds} sounds, {hours:.2f} h of audio, {s.postings} fingerprints"
    if s.rows:
        line += f" ({s.rows} legacy hash rows)"
    if s.bytes_on_disk is not None:
        per_hour = (s.bytes_on_disk / hours / 1e6) if hours > 0 else 0.0
        line += f", {s.bytes_on_disk / 1e6:.1f} MB on disk ({per_hour:.2f} MB per hour)"
    click.echo(line)
    click.echo(f"store: {redacted_url(ctx.store.url)}")


@main.group()
def index() -> None:
    """Index snapshots: the arrays this machine's workers look hashes up in."""


@index.command("snapshot")
@click.option("--full", is_flag=True, help="Derive the whole index again instead of merging into the current snapshot.")
@pass_context
def index_snapshot(ctx: Context, full: bool) -> None:
    """Build a new snapshot of the index and make it the one workers use."""
    index_dir = ctx.settings.resolved_index_dir
    if index_dir is None:
        fail(ParameterError("snapshots are turned off (AUDIOFP_INDEX_DIR=off)"))
    meta = build_index_snapshot(ctx.store, index_dir, full=full, log=click.echo)
    how = f"merged into {meta.base}" if meta.base else "derived from every sound's peaks"
    click.echo(f"snapshot of {meta.sounds} sounds and {meta.postings} fingerprints (up to sound {meta.watermark}) "
               f"in {index_dir}, {how}, in {meta.build_seconds:.1f} s")


@index.command("status")
@pass_context
def index_status_command(ctx: Context) -> None:
    """Print what lookups are answered from: the snapshot, and the sounds added since."""
    status = index_status(ctx.store)
    if status.snapshot is None:
        click.echo(f"no snapshot (snapshots are turned off, or {ctx.settings.resolved_index_dir} cannot be written): "
                   f"indexed in memory: {status.snapshot_sounds} sounds, {status.snapshot_postings} fingerprints")
    else:
        click.echo(f"snapshot {status.snapshot}: {status.snapshot_sounds} sounds, {status.snapshot_postings} "
                   f"fingerprints, up to sound {status.watermark}")
    click.echo(f"recent sounds indexed in memory: {status.recent_sounds} ({status.recent_postings} fingerprints)")
