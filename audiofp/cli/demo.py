"""``audiofp demo``: the whole job on a laptop, in one command.

Ingests the shipped samples into a separate demo store (so a real index is
never polluted) and matches the altered clips in ``samples/queries``: one
reuses a sample sped up, talked over and re-encoded; one is unrelated speech
that must not match.
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import services
from ..config import Settings
from ..services.operations import build_index_snapshot, open_store
from .app import Context, main, pass_context


def default_samples_dir() -> Path:
    """samples/ of the source tree, or of the working directory."""
    here = Path(__file__).resolve().parents[2] / "samples"
    return here if here.is_dir() else Path.cwd() / "samples"


@main.command()
@click.option("--samples", "samples_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of sample audio (default: the repository's samples/).")
@click.option("--database-url", default="", metavar="URL", help="Store for the demo (default: demo.sqlite in the data folder).")
@pass_context
def demo(ctx: Context, samples_dir: Path | None, database_url: str) -> None:
    """Ingest the samples and match an altered reuse of one of them."""
    samples_dir = samples_dir or default_samples_dir()
    if not (samples_dir / "queries").is_dir():
        raise click.BadParameter(f"no samples folder with queries/ at {samples_dir}", param_hint="--samples")
    if database_url:
        url = database_url
    else:
        # The demo owns this file: start it afresh so that a demo store left by
        # an older version (other fingerprint parameters) never gets in the way.
        demo_file = ctx.settings.resolved_data_dir / "demo.sqlite"
        for stale in (demo_file, demo_file.with_name("demo.sqlite-wal"), demo_file.with_name("demo.sqlite-shm")):
            stale.unlink(missing_ok=True)
        url = f"sqlite:///{demo_file}"
    _run(url, samples_dir, ctx.settings)


def _run(url: str, samples_dir: Path, settings: Settings) -> None:
    index_dir = settings.resolved_index_dir
    with open_store(url, index_dir=index_dir) as store:
        click.echo(f"demo store: {url}")
        for path in sorted(samples_dir.glob("*.ogg")):
            out = services.ingest(store, path, label=path.stem, settings=settings)
            state = "added" if out.created else "already known"
            click.echo(f"  ingest {path.name:24s} -> sound {out.sound_id} ({state}, {out.duration:.1f} s, {out.fingerprints} fingerprints)")
        if index_dir is not None:
            # What workers look hashes up in (a real deployment rebuilds it as sounds accumulate).
            meta = build_index_snapshot(store, index_dir)
            click.echo(f"index snapshot: {meta.sounds} sounds, {meta.postings} fingerprints, in {index_dir}")
        for query in sorted((samples_dir / "queries").iterdir()):
            result = services.identify(store, query, settings=settings)
            click.echo(f"match {query.name} ({result.duration:.1f} s, {result.seconds * 1000:.0f} ms):")
            if not result.matches:
                click.echo("  no match")
            for m in result.matches:
                click.echo(
                    f"  sound {m.sound_id} ({result.labels.get(m.sound_id)}): clip {m.evidence.query_start:.1f}-{m.evidence.query_end:.1f} s "
                    f"= sound {m.evidence.sound_start:.1f}-{m.evidence.sound_end:.1f} s, speed x{m.evidence.speed:.2f}, "
                    f"pitch {m.evidence.pitch_semitones:+.1f} st, {m.evidence.anchors} landmarks, confidence {m.confidence:.6f}"
                )
