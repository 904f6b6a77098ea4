"""The catalogue commands: ``ingest`` known sounds, ``match`` clips, list ``sounds``.

``ingest`` and ``match`` work through batches of files: a file that fails is
reported and the batch goes on (exit code 1 at the end), except when the
store fails, which no other file can get past (see ``errors.is_input_error``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import click
from tqdm import tqdm

from .. import services
from ..engine.types import Match
from ..services.operations import list_sounds_page, refresh_index_if_due, seed_sounds
from ..services.documents import match_evidence
from .app import Context, main, pass_context
from .errors import EXIT_PARTIAL, KNOWN_ERRORS, fail, is_input_error
from .seed import seed_options

#: Extensions picked up when a folder is ingested (files named explicitly are always tried).
MEDIA_EXTENSIONS = frozenset(
    ".wav .flac .ogg .oga .opus .mp3 .m4a .aac .mp4 .m4v .mov .webm .mkv .wma .aiff .aif .gsm .amr .3gp".split()
)


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
        except KNOWN_ERRORS as exc:
            failed += 1
            tqdm.write(f"audiofp: {path}: {exc}", file=sys.stderr)
            if as_json:
                click.echo(json.dumps({"file": str(path), "error": str(exc)}))
            if not is_input_error(exc):
                fail(exc)
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
        seeded = sorted(set(sound_ids))
        affected = seed_sounds(store, seeded, tags=tags, removal_label=removal_label, removal_reason=removal_reason)
        linked = f", linked to removed content ({removal_label}); {affected} live uploads affected" if removal_label else ""
        click.echo(f"{len(seeded)} sounds labelled {list(tags)}{linked}", err=as_json)
    if added:
        try:
            snapshot = refresh_index_if_due(store, ctx.settings.index.index_refresh_postings)
        except OSError as exc:  # the sounds are in; only the (derived) snapshot could not be written
            snapshot = None
            click.echo(f"audiofp: warning: the index snapshot was not rebuilt: {exc}", err=True)
        if snapshot is not None:
            click.echo(f"index snapshot rebuilt: {snapshot.sounds} sounds, {snapshot.postings} fingerprints, "
                       f"{snapshot.build_seconds:.1f} s", err=as_json)
    if failed:
        sys.exit(EXIT_PARTIAL)


def _match_line(m: Match, label: str | None) -> str:
    name = f"sound {m.sound_id}" + (f" ({label})" if label else "")
    e = m.evidence
    track = f" (audio track {m.track})" if m.track else ""
    return (
        f"  {name}: clip{track} {e.query_start:.2f}-{e.query_end:.2f} s = sound {e.sound_start:.2f}-{e.sound_end:.2f} s, "
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
        except KNOWN_ERRORS as exc:
            if len(files) == 1 or not is_input_error(exc):
                fail(exc)
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
                    {"sound_id": m.sound_id, "track": m.track, **match_evidence(m.evidence),
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
# A negative id is a usage error (2) caught by click, like an out-of-range --limit.
@click.option("--after", default=0, type=click.IntRange(min=0), help="Only sounds with an id above this (pagination).")
@click.option("--limit", default=100, type=click.IntRange(1, 10_000), help="Most sounds listed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sound.")
@pass_context
def sounds(ctx: Context, label: str | None, after: int, limit: int, as_json: bool) -> None:
    """List the known sounds."""
    records = list_sounds_page(ctx.store, after_id=after, limit=limit, label=label)
    for r in records:
        if as_json:
            click.echo(json.dumps({**asdict(r), "created_at": r.created_at.isoformat()}))
        else:
            click.echo(f"{r.id:>8}  {r.duration_seconds:8.1f} s  {r.fingerprint_count:>8} fp  "
                       f"{r.label or '-':<24} {r.source_name or ''}")
    if not records and not as_json:
        click.echo("no sounds", err=True)
