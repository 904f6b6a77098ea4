"""The ``audiofp`` command: ingest known sounds, match clips, inspect the index.

A thin shell over ``audiofp.service``: each command gathers its inputs, calls
the service, and prints. Our errors become one line on stderr and an exit
code in one place (``_fail``); nothing below knows about exit codes.

Exit codes: 0 success; 1 some inputs of a batch failed (the rest were done);
2 usage error; 3 bad input (not audio, too long, ...); 4 store problem
(index built with other parameters, database unreachable).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, NoReturn

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from .. import services
from ..config import Settings
from .demo import demo
from .moderation import apply_seed, seed_options
from .moderation import register as register_moderation
from ..errors import AudioFPError, BadAudioError, IndexMismatchError, NotFoundError
from ..store import Store, current_revision, repository, upgrade
from ..engine.types import Match
from ..services.uploads import match_evidence

EXIT_PARTIAL, EXIT_BAD_INPUT, EXIT_STORE = 1, 3, 4

#: Extensions picked up when a folder is ingested (files named explicitly are always tried).
MEDIA_EXTENSIONS = frozenset(
    ".wav .flac .ogg .oga .opus .mp3 .m4a .aac .mp4 .m4v .mov .webm .mkv .wma .aiff .aif .gsm .amr .3gp".split()
)


def _fail(exc: Exception) -> NoReturn:
    """Print one line for a known error and exit with its code."""
    code = EXIT_BAD_INPUT if isinstance(exc, (BadAudioError, NotFoundError)) else EXIT_STORE
    detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    click.echo(f"audiofp: error: {detail}", err=True)
    sys.exit(code)


class Context:
    """Settings and a lazily opened store shared by the commands of one run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            try:
                self._store = Store.open(self.settings.resolved_database_url)
            except (AudioFPError, SQLAlchemyError) as exc:
                _fail(exc)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", envvar="AUDIOFP_DATABASE_URL", default="", metavar="URL",
              help="SQLAlchemy URL of the store (default: a SQLite file under the data folder).")
@click.version_option(package_name="audiofp")
@click.pass_context
def main(ctx: click.Context, database_url: str) -> None:
    """audiofp: find where known sounds are reused, even sped up, pitch-shifted or talked over."""
    settings = Settings.load({"database_url": database_url} if database_url else None)
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)


def _media_files(paths: tuple[str, ...]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in MEDIA_EXTENSIONS:
                    yield child
        else:
            yield path


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--label", default=None, help="Label attached to every new sound.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file on stdout.")
@seed_options
@pass_context
def ingest(
    ctx: Context,
    paths: tuple[str, ...],
    label: str | None,
    as_json: bool,
    tags: tuple[str, ...],
    removal_label: str | None,
    removal_reason: str | None,
) -> None:
    """Add known sounds from files or folders (recursive).

    Audio already in the index (same decoded content) is skipped. A file that
    fails is reported and the rest go on; the exit code is 1 if any failed.
    With --tag or --removal-label, every sound of the run (new or already
    known) is labelled or linked to removed content, for seeding from an archive.
    """
    store = ctx.store
    files = list(_media_files(paths))
    sound_ids: list[int] = []
    started = time.perf_counter()
    added = skipped = failed = fingerprints = 0
    seconds = 0.0
    bar = tqdm(files, unit="file", disable=None, file=sys.stderr)
    for path in bar:
        bar.set_postfix_str(path.name[-30:])
        try:
            out = services.ingest(store, path, label=label, settings=ctx.settings)
        except (AudioFPError, SQLAlchemyError) as exc:
            failed += 1
            tqdm.write(f"audiofp: {path}: {exc}", file=sys.stderr)
            if as_json:
                click.echo(json.dumps({"file": str(path), "error": str(exc)}))
            if isinstance(exc, (IndexMismatchError, SQLAlchemyError)):
                _fail(exc)
            continue
        seconds += out.duration
        sound_ids.append(out.sound_id)
        if out.created:
            added += 1
            fingerprints += out.fingerprints
        else:
            skipped += 1
            tqdm.write(f"audiofp: {path}: already known as sound {out.sound_id}, skipped", file=sys.stderr)
        if as_json:
            click.echo(json.dumps({"file": str(path), **asdict(out)}))
    elapsed = time.perf_counter() - started
    speed = seconds / elapsed if elapsed > 0 else 0.0
    click.echo(
        f"{len(files)} files: {added} added, {skipped} already known, {failed} failed; "
        f"{seconds:.1f} s of audio, {fingerprints} fingerprints, {elapsed:.1f} s ({speed:.0f}x realtime)",
        err=as_json,
    )
    if tags or removal_label:
        try:
            affected = apply_seed(store, sorted(set(sound_ids)), tags=tags, removal_label=removal_label,
                                  removal_reason=removal_reason)
        except (AudioFPError, SQLAlchemyError) as exc:
            _fail(exc)
        linked = f", linked to removed content ({removal_label}); {affected} live uploads affected" if removal_label else ""
        click.echo(f"{len(set(sound_ids))} sounds labelled {list(tags)}{linked}", err=as_json)
    if failed:
        sys.exit(EXIT_PARTIAL)


def _match_line(m: Match, label: str | None) -> str:
    name = f"sound {m.sound_id}" + (f" ({label})" if label else "")
    e = m.evidence
    return (
        f"  {name}: clip {e.query_start:.2f}-{e.query_end:.2f} s = sound {e.sound_start:.2f}-{e.sound_end:.2f} s, "
        f"speed x{e.speed:.3f}, pitch {e.pitch_semitones:+.2f} st, {e.anchors} landmarks, "
        f"score {e.score:.1f}, confidence {e.confidence:.6f}"
    )


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file per line.")
@pass_context
def match(ctx: Context, files: tuple[str, ...], as_json: bool) -> None:
    """Find the known sounds each file reuses, best first.

    Files that cannot be read are reported and the rest go on; the exit code
    is 1 if any failed (3 if the only file failed).
    """
    store = ctx.store
    failed = 0
    for raw in files:
        try:
            result = services.identify(store, raw, settings=ctx.settings)
        except (AudioFPError, SQLAlchemyError) as exc:
            if len(files) == 1:
                _fail(exc)
            failed += 1
            if as_json:
                click.echo(json.dumps({"file": raw, "error": str(exc)}))
            else:
                click.echo(f"audiofp: error: {raw}: {exc}", err=True)
            continue
        if as_json:
            click.echo(json.dumps({
                "file": raw,
                "duration": round(result.duration, 3),
                "seconds": round(result.seconds, 4),
                "matches": [
                    {"sound_id": m.sound_id, **match_evidence(m.evidence),
                     "false_match_probability": m.false_match_probability, "label": result.labels.get(m.sound_id)}
                    for m in result.matches
                ],
            }))
            continue
        click.echo(f"{raw} ({result.duration:.1f} s, matched in {result.seconds * 1000:.0f} ms):")
        if not result.matches:
            click.echo("  no match")
        for m in result.matches:
            click.echo(_match_line(m, result.labels.get(m.sound_id)))
    if failed:
        sys.exit(EXIT_PARTIAL)


@main.command()
@click.option("--label", default=None, help="Only sounds with this label.")
@click.option("--after", default=0, type=int, help="Only sounds with an id above this (pagination).")
@click.option("--limit", default=100, type=click.IntRange(1, 10_000), help="Most sounds listed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sound.")
@pass_context
def sounds(ctx: Context, label: str | None, after: int, limit: int, as_json: bool) -> None:
    """List the known sounds."""
    with ctx.store.session(readonly=True) as session:
        records = repository.list_sounds(session, after_id=after, limit=limit, label=label)
    for r in records:
        if as_json:
            click.echo(json.dumps({**asdict(r), "created_at": r.created_at.isoformat()}))
        else:
            click.echo(f"{r.id:>8}  {r.duration_seconds:8.1f} s  {r.fingerprint_count:>8} fp  "
                       f"{r.label or '-':<24} {r.source_name or ''}")
    if not records and not as_json:
        click.echo("no sounds", err=True)


@main.group()
def db() -> None:
    """Schema and index maintenance."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(ctx: Context, revision: str) -> None:
    """Create or migrate the schema (Alembic)."""
    url = ctx.settings.resolved_database_url
    try:
        upgrade(url, revision)
        click.echo(f"schema at {current_revision(url)}")
    except SQLAlchemyError as exc:
        _fail(exc)


@db.command("current")
@pass_context
def db_current(ctx: Context) -> None:
    """Print the schema revision of the store."""
    try:
        click.echo(current_revision(ctx.settings.resolved_database_url) or "empty (run: audiofp db upgrade)")
    except SQLAlchemyError as exc:
        _fail(exc)


@db.command("stats")
@pass_context
def db_stats(ctx: Context) -> None:
    """Print the size of the index."""
    with ctx.store.session(readonly=True) as session:
        s = repository.index_stats(session)
    hours = s.seconds / 3600
    line = f"{s.sounds} sounds, {hours:.2f} h of audio, {s.postings} fingerprints in {s.rows} hash rows"
    if s.bytes_on_disk is not None:
        per_hour = (s.bytes_on_disk / hours / 1e6) if hours > 0 else 0.0
        line += f", {s.bytes_on_disk / 1e6:.1f} MB on disk ({per_hour:.2f} MB per hour)"
    click.echo(line)
    click.echo(f"store: {make_url(ctx.store.url).render_as_string(hide_password=True)}")


# Commands owned by other modules: the demo; the API server, keys and removal
# links of the moderation services.
main.add_command(demo)
register_moderation(main)
