"""Scale test: query latency, snapshot builds and disk size with the index filled to N hours.

Usage::

    python -m bench.scale --sizes 10,100,1000 --db sqlite|postgresql|both [--corpus DIR]
                          [--queries 300] [--keep DIR | --reuse DIR] [--memory-mode auto|on|off]
    python -m bench.scale --hours 1000 ...          # one size

The corpus references are ingested for real; the store is then filled with
synthetic *filler* sounds (label ``filler``, 4 minutes each) cut from the
real sounds' stored peaks: 5-10 s stretches of them, each played backwards in
time and moved 6-24 log-frequency bins up or down (peaks moved out of the
band the real peaks occupy are dropped), laid end to end. Peak density and
the hash distribution are those of real audio, and since no edit the matcher
searches reverses time, filler never truly matches a reference or a query.
Each filler sound is fingerprinted from its peaks
(``engine.fingerprint.index_from_peaks``) and registered through the
product's write path (``services.catalogue.add_sound_fingerprint``: the sound
row and its peaks), one transaction per ``--chunk-hours`` of filler, so
memory stays bounded and the write rate is the product's.

One store is filled progressively. At each of ``--sizes`` (hours, ascending):

1. filler up to ``--last-hours`` (10 h) below the size;
2. a *full* snapshot (``audiofp.index.build``) into a fresh folder: timed, sized;
3. the last 10 h of filler (the write rate of a catalogue's newest hours);
4. a second build in the same folder, which *merges* the sounds added since
   into the first (``SnapshotMeta.base`` names the generation merged from):
   timed, sized;
5. a fixed sample of the corpus's queries and negatives, in two lookup modes:

``snapshot``
    the merged snapshot attached (``audiofp.index.attach(store, folder)``):
    lookups answer from its memory-mapped arrays;
``memory``
    no snapshot folder (``attach(store, None)``): the first lookup indexes
    every sound's stored peaks in memory (timed), the others answer from that
    index. Run at sizes up to 100 h by default (``--memory-mode``).

Both modes must return the same matches for every clip; any difference is
reported with the clip's id. Reported per size: latency p50/p95 per clip
length, postings a query touches, recall@1, false positives, the SQL store's
size and MB per hour, the snapshot's MB per hour, both builds' seconds, the
filler write rate (sounds, hours and derived postings per second) of the
store's first chunk and of the last 10 h, and peak RSS. Results (and partial
results, rewritten after every step) go to ``bench/results/<time>-scale.md`` /
``.json``, and every clip's outcome to ``<time>-scale-<kind>-clips.jsonl``.

``--keep DIR`` keeps the store (the SQLite file ``DIR/scale.sqlite``; a
PostgreSQL database's name in ``DIR/pg-database.txt``) with what a later run
needs to measure it again (``DIR/scale-<kind>.json``: the reference ids of
the real sounds, which the filler is cut from, and the chunks written);
``--reuse DIR`` measures such a store without ingesting again, filling it up
when it is smaller than a requested size (sizes below what it holds are
skipped). Each size's snapshot folder is deleted once measured unless
``--keep-snapshots``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import asdict, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterator  # noqa: E402

from sqlalchemy import text  # noqa: E402

from audiofp import index as snapshot_index  # noqa: E402
from audiofp.config import Settings  # noqa: E402
from audiofp.engine.params import DEFAULT_PARAMS  # noqa: E402
from audiofp.store import Store  # noqa: E402

from .manifest import Negative, Query  # noqa: E402
from .report import fmt_ms, fmt_pct  # noqa: E402
from .scale_measure import WARMUP_CLIPS, compare_modes, current_rss_mb, identify_clip, run_mode  # noqa: E402
from .scale_report import render  # noqa: E402
from .run import FULL_CORPUS, SHIPPED, ingest_all, load_corpus, peak_rss_mb  # noqa: E402
from .filler import (  # noqa: E402
    FILLER_SECONDS, SEGMENT_SECONDS, SHIFT_BINS, FillerModel, add_filler, filler_count, real_sound_order,
    summarize_chunks,
)
from .stores import DEFAULT_PG, disk_usage, folder_bytes, fresh_store, kept_store, kept_store_exists  # noqa: E402

SQLITE_NAME = "scale.sqlite"
MODES = ("snapshot", "memory")

#: Hours written after each size's full snapshot, which the second build merges in.
LAST_HOURS = 10.0

#: Largest size the memory mode runs at with ``--memory-mode auto`` (each run builds the whole index in memory).
MEMORY_MODE_MAX_HOURS = 100.0

#: A store within this many hours below a size counts as filled to it (filler comes in 4-minute sounds).
SIZE_TOLERANCE_HOURS = 0.1

# --------------------------------------------------------------------------- measuring
def store_hours(store: Store) -> float:
    """Hours of audio the store's sounds hold (a cheap sum, unlike ``disk_usage``)."""
    with store.session(readonly=True) as session:
        return float(session.execute(text("SELECT COALESCE(SUM(duration_seconds), 0) FROM sounds")).scalar_one()) / 3600


def reader_status(store: Store) -> dict[str, Any] | None:
    """What the store's attached index reader says of itself (None if there is none)."""
    reader = snapshot_index.reader_of(store)
    if reader is None:
        return None
    try:
        return asdict(reader.status())
    except Exception as exc:  # a figure of the report, not worth failing a mode for
        return {"error": f"{type(exc).__name__}: {exc}"}


def release_reader(store: Store) -> None:
    """Drop the index reader attached to the store, and with it its mapped snapshot or in-memory index.

    ``attach(store, None)`` puts a reader without a snapshot in its place,
    which builds nothing until a lookup asks it to.
    """
    snapshot_index.attach(store, None)
    gc.collect()


# --------------------------------------------------------------------------- one store kind
class KindRun:
    """One store kind: ingest (or reopen), then fill and measure at each size; results kept in ``self.out``."""

    def __init__(self, kind: str, args: argparse.Namespace, out: dict[str, Any], save: Callable[[], None],
                 log: Callable[[str], None], clips_path: Path) -> None:
        self.kind, self.args, self.out, self.save, self.log = kind, args, out, save, log
        self.settings = measured_settings(args)
        self.clips_path = clips_path
        self.state_path: Path | None = None
        self.state: dict[str, Any] = {}

    def say(self, message: str) -> None:
        self.log(f"[{self.kind}] {message}")

    def write_state(self) -> None:
        if self.state_path is not None:
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state, indent=1, default=float))
            tmp.replace(self.state_path)

    @contextlib.contextmanager
    def open_store(self) -> Iterator[tuple[Store, Path]]:
        args, kind = self.args, self.kind
        if args.reuse is not None:
            workdir = args.reuse
            self.say(f"reopening the store kept in {workdir}")
            with kept_store(kind, workdir, pg_base=args.pg, sqlite_name=SQLITE_NAME) as store:
                yield store, workdir
        elif args.keep is not None:
            workdir = args.keep
            workdir.mkdir(parents=True, exist_ok=True)
            if kept_store_exists(kind, workdir, sqlite_name=SQLITE_NAME):
                raise RuntimeError(f"{workdir} already holds a kept {kind} store: measure it with --reuse {workdir}")
            with fresh_store(kind, workdir, pg_base=args.pg, keep=True, sqlite_name=SQLITE_NAME) as store:
                yield store, workdir
        else:
            with tempfile.TemporaryDirectory(prefix="audiofp-scale-") as tmp, \
                    fresh_store(kind, Path(tmp), pg_base=args.pg, sqlite_name=SQLITE_NAME) as store:
                yield store, Path(tmp)

    def run(self, refs: list[Any], q_sample: list[Query], n_sample: list[Negative]) -> None:
        args, out = self.args, self.out
        with self.open_store() as (store, workdir):
            out["store_url"] = store.engine.url.render_as_string(hide_password=True)
            out["workdir"] = str(workdir)
            kept = args.keep is not None or args.reuse is not None
            self.state_path = workdir / f"scale-{self.kind}.json" if kept else None
            if args.reuse is not None:
                if self.state_path is None or not self.state_path.exists():
                    raise RuntimeError(f"{workdir} has no scale-{self.kind}.json: not a store kept by bench.scale")
                self.state = json.loads(self.state_path.read_text())
                sound_to_ref = {int(k): v for k, v in self.state["sound_to_ref"].items()}
                out["ingest"] = {**self.state.get("ingest", {}), "reused": True}
                seed = int(self.state.get("seed", args.seed))
            else:
                self.say(f"ingesting {len(refs)} real references")
                sound_to_ref, ingest = ingest_all(store, args.corpus, refs, self.log)
                seed = args.seed
                out["ingest"] = ingest
                self.state = {"kind": self.kind, "store_url": out["store_url"], "seed": seed,
                              "sound_to_ref": {str(k): v for k, v in sound_to_ref.items()},
                              "ingest": ingest, "chunks": [], "params_digest": DEFAULT_PARAMS.digest()}
                self.write_state()
            model = FillerModel.from_store(store, real_sound_order(sound_to_ref))
            out["filler_model"] = {"real_sounds": len(model.sound_ids), "real_hours": model.real_seconds / 3600,
                                   "real_peaks_per_second": model.peaks_per_second,
                                   "real_postings_per_second": model.postings_per_second,
                                   "band_bins": [model.freq_low, model.freq_high],
                                   "segment_seconds": list(SEGMENT_SECONDS), "shift_bins": list(SHIFT_BINS)}
            out["real_postings_per_second"] = model.postings_per_second
            out["corpus_references"] = len(sound_to_ref)
            # What bench.scale_recover needs to score the clips file again if this process dies.
            out["sound_to_ref"] = {str(k): v for k, v in sound_to_ref.items()}
            self.save()
            self.say(f"filler cut from {len(model.sound_ids)} real sounds: {model.peaks_per_second:.1f} peaks and "
                     f"{model.postings_per_second:.0f} postings per second of audio")
            all_chunks: list[dict[str, Any]] = list(self.state.get("chunks", []))
            out["filler_chunks"] = all_chunks  # every chunk's write figures, the reused store's earlier ones first
            clips: list[Query | Negative] = [c for pair in zip(q_sample, n_sample) for c in pair]
            clips += q_sample[len(n_sample):] + n_sample[len(q_sample):]
            sizes_out = out.setdefault("sizes", {})
            with open(self.clips_path, "a", encoding="utf-8") as clips_file:
                for size in args.sizes:
                    key = f"{size:g}"
                    record: dict[str, Any] = sizes_out.setdefault(key, {"target_hours": size})
                    try:
                        self.measure_size(store, workdir, model, seed, size, record, all_chunks, sound_to_ref,
                                          clips, clips_file)
                    except Exception as exc:  # filling or sizing failed: keep the sizes measured, stop this kind
                        record["error"] = f"{type(exc).__name__}: {exc}"
                        record["traceback"] = traceback.format_exc()
                        self.say(f"size {key} h failed: {record['error']}")
                        self.save()
                        raise
                    finally:
                        release_reader(store)

    def fill(self, store: Store, model: FillerModel, seed: int, hours: float, all_chunks: list[dict[str, Any]],
             what: str) -> dict[str, Any]:
        """Add ``hours`` of filler (none below the tolerance); the segment's figures, its chunks under ``chunks``."""
        if hours <= SIZE_TOLERANCE_HOURS:
            return {"filler_sounds": 0, "filler_postings": 0, "filler_seconds": 0.0, "write_rate": None, "chunks": []}
        first = filler_count(store)
        self.say(f"adding {hours:.2f} h of filler, {what} (from filler sound #{first})")

        def on_chunk(chunk: dict[str, Any]) -> None:
            all_chunks.append(chunk)
            self.state["chunks"] = all_chunks
            self.write_state()

        segment = add_filler(store, model, hours, chunk_hours=self.args.chunk_hours, seed=seed, log=self.log,
                             first_index=first, on_chunk=on_chunk)
        if store.dialect == "postgresql":
            # What autovacuum would have done by then: fresh planner statistics for the build's reads.
            t0 = time.perf_counter()
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
            segment["vacuum_seconds"] = time.perf_counter() - t0
        return segment

    def build_snapshot(self, store: Store, snap_dir: Path, expect: str) -> dict[str, Any]:
        """Build a snapshot in ``snap_dir`` (``expect``: ``full`` or ``incremental``), timed and sized."""
        self.say(f"building a snapshot in {snap_dir} ({expect})")
        t0 = time.perf_counter()
        snap = snapshot_index.build(store, snap_dir, log=lambda line: self.say(f"  {line}"))
        wall = time.perf_counter() - t0
        meta = snap.meta
        base = getattr(meta, "base", None)
        info = {
            "expected": expect, "base": base, "generation": snap.path.name, "path": str(snap.path),
            "build_seconds": meta.build_seconds, "build_wall_seconds": wall, "bytes": folder_bytes(snap.path),
            "sounds": meta.sounds, "postings": meta.postings, "watermark": meta.watermark,
            "holes": len(getattr(meta, "holes", []) or []),
            "rss_mb_after": current_rss_mb(), "peak_rss_mb_after": peak_rss_mb(),
        }
        if (expect == "incremental") != (base is not None):
            self.say(f"WARNING: the build was expected to be {expect}, the snapshot says base={base!r}")
        self.say(f"snapshot {info['generation']} ({'merged from ' + base if base else 'full'}): {meta.sounds} sounds, "
                 f"{meta.postings:,} postings, {info['bytes'] / 1e6:.0f} MB, built in {meta.build_seconds:.1f} s")
        return info

    def memory_mode_at(self, size: float) -> bool:
        setting = self.args.memory_mode
        return setting == "on" or (setting == "auto" and size <= MEMORY_MODE_MAX_HOURS + SIZE_TOLERANCE_HOURS)

    def measure_size(self, store: Store, workdir: Path, model: FillerModel, seed: int, size: float,
                     record: dict[str, Any], all_chunks: list[dict[str, Any]], sound_to_ref: dict[int, str],
                     clips: list[Query | Negative], clips_file: Any) -> None:
        args = self.args
        have = store_hours(store)
        if have > size + SIZE_TOLERANCE_HOURS + FILLER_SECONDS / 3600:
            record["skipped"] = f"the store already holds {have:.1f} h"
            self.say(f"size {size:g} h skipped: {record['skipped']}")
            self.save()
            return

        # Up to the last hours: the bulk of the store, which a full snapshot is built from.
        bulk = self.fill(store, model, seed, size - args.last_hours - have, all_chunks,
                         f"up to {size - args.last_hours:g} h")
        record["fill_bulk"] = {k: v for k, v in bulk.items() if k != "chunks"}
        record["chunk_first_of_store"] = all_chunks[0] if all_chunks else None
        record["peak_rss_mb_after_fill"] = peak_rss_mb()
        self.save()
        snap_dir = workdir / "snapshots" / f"{self.kind}-{size:g}h"
        if snap_dir.exists():
            shutil.rmtree(snap_dir)
        record["build_full"] = self.build_snapshot(store, snap_dir, "full")
        record["build_full"]["store_hours"] = store_hours(store)
        self.save()

        # The last hours: what a catalogue adds between two snapshots; then the build merges them in.
        last = self.fill(store, model, seed, size - store_hours(store), all_chunks, "the last hours")
        record["fill_last"] = {k: v for k, v in last.items() if k != "chunks"}
        record["write_rate_last"] = last["write_rate"]
        record["write_rate_first_chunk"] = summarize_chunks(all_chunks[:1])
        record["write_rate_all_filler"] = summarize_chunks(all_chunks)
        record["build_incremental"] = self.build_snapshot(store, snap_dir, "incremental")
        record["build_incremental"]["merged_from_full"] = (
            record["build_incremental"]["base"] == record["build_full"]["generation"])

        disk = disk_usage(store)
        hours = disk.seconds / 3600
        snap_bytes = record["build_incremental"]["bytes"]
        record.update({
            "hours": hours, "sounds": disk.sounds, "postings": disk.postings, "rows": disk.rows,
            "total_bytes": disk.total, "index_bytes": disk.index, "peak_payload_bytes": disk.peak_bytes,
            "mb_per_hour": disk.total / 1e6 / hours, "index_mb_per_hour": disk.index / 1e6 / hours,
            "snapshot_bytes": snap_bytes, "snapshot_mb_per_hour": snap_bytes / 1e6 / hours,
            "snapshot_holds_every_posting": record["build_incremental"]["postings"] == disk.postings,
            "filler_postings_per_second_of_audio": (
                record["write_rate_all_filler"]["postings"] / (record["write_rate_all_filler"]["audio_hours"] * 3600)
                if record["write_rate_all_filler"] else None),
        })
        self.save()
        self.say(f"{hours:.1f} h, {disk.sounds} sounds, {disk.postings / 1e6:.1f} M postings; SQL store "
                 f"{disk.total / 1e6:,.0f} MB ({record['mb_per_hour']:.2f} MB/h), snapshot {snap_bytes / 1e6:.0f} MB "
                 f"({record['snapshot_mb_per_hour']:.2f} MB/h); measuring")
        if not record["snapshot_holds_every_posting"]:
            self.say(f"WARNING: the snapshot holds {record['build_incremental']['postings']:,} postings, "
                     f"the store counts {disk.postings:,}")

        modes = record.setdefault("modes", {})
        records: dict[str, dict[str, dict[str, Any]]] = {}
        tag = f"{self.kind} {size:g}h"
        try:
            snapshot_index.attach(store, snap_dir)
            status = reader_status(store)
            self.say(f"snapshot mode: {len(clips)} clips (reader {status})")
            result = run_mode(store, args.corpus, clips, sound_to_ref, settings=self.settings, log=self.log,
                              tag=f"{tag} snapshot",
                              clips_file=clips_file)
            records["snapshot"] = result.pop("_records")
            modes["snapshot"] = {"reader_before": status, "reader_after": reader_status(store), **result}
            self.log_mode("snapshot", modes["snapshot"])
        except Exception as exc:  # keep the other mode's figures; say why this one has none
            modes["snapshot"] = self.failure("snapshot mode", exc)
        finally:
            release_reader(store)
        clips_file.flush()
        self.save()

        if self.memory_mode_at(size) and clips:
            try:
                # No snapshot folder: the reader indexes every sound's stored peaks in memory, at the first lookup.
                snapshot_index.attach(store, None)
                rss_before = current_rss_mb()
                first = identify_clip(store, args.corpus / clips[0].path, self.settings)
                first_info = {"first_lookup_seconds": first["latency"], "rss_mb_before": rss_before,
                              "rss_mb_after_first_lookup": current_rss_mb(), "reader": reader_status(store)}
                self.say(f"memory mode: first lookup (builds the index) took {first['latency']:.1f} s, "
                         f"RSS {rss_before:.0f} -> {first_info['rss_mb_after_first_lookup']:.0f} MB; {len(clips)} clips")
                result = run_mode(store, args.corpus, clips, sound_to_ref, settings=self.settings, log=self.log,
                                  tag=f"{tag} memory",
                                  clips_file=clips_file)
                records["memory"] = result.pop("_records")
                again = records["memory"].get(clips[0].id, {}).get("latency")
                # The same clip once the index is built: the rest of the first lookup was building it.
                first_info["index_build_seconds"] = first["latency"] - again if again is not None else None
                modes["memory"] = {**first_info, **result}
                self.log_mode("memory", modes["memory"])
            except Exception as exc:  # keep the other mode's figures; say why this one has none
                modes["memory"] = self.failure("memory mode", exc)
            finally:
                release_reader(store)
            clips_file.flush()

        if "snapshot" in records and "memory" in records:
            agreement = compare_modes(records["snapshot"], records["memory"])
            record["agreement"] = agreement
            self.say(f"modes agree on {agreement['identical']} of {agreement['compared']} clips"
                     + (f"; DIFFERENT: {[d['id'] for d in agreement['differences']]}" if agreement["differences"] else ""))
        record["peak_rss_mb"] = peak_rss_mb()
        if not args.keep_snapshots:
            # A snapshot is about 2 MB an hour: at 1,000 h the sizes' snapshots would fill the disk.
            shutil.rmtree(snap_dir, ignore_errors=True)
        self.save()

    def failure(self, what: str, exc: Exception) -> dict[str, Any]:
        """The record of a step that failed (its error and traceback), said in the log too."""
        error = f"{type(exc).__name__}: {exc}"
        self.say(f"{what} failed: {error}")
        return {"error": error, "traceback": traceback.format_exc()}

    def log_mode(self, mode: str, r: dict[str, Any]) -> None:
        q, n = r["queries"], r["negatives"]
        self.say(f"{mode}: {r['clips_run']} clips in {r['seconds']:.0f} s; query p50/p95 {fmt_ms(q['latency_p50'])}/"
                 f"{fmt_ms(q['latency_p95'])} ms, recall@1 {fmt_pct(q['recall_at_1'])} of {q['n']}, "
                 f"FP {n['calibration_fp'] + n['heldout_fp']} of {n['calibration_n'] + n['heldout_n']}, "
                 f"postings p50 {r['postings_queries']['p50']:.0f}")


def code_version() -> dict[str, Any]:
    """Which audiofp code this process runs: where it was imported from, a digest of its loaded sources, git state."""
    import subprocess

    import audiofp

    root = Path(audiofp.__file__).resolve().parent
    digest = hashlib.sha256()
    files = sorted({Path(m.__file__).resolve() for name, m in list(sys.modules.items())
                    if name.split(".")[0] == "audiofp" and getattr(m, "__file__", None)})
    for path in files:
        digest.update(str(path.relative_to(root.parent)).encode())
        digest.update(path.read_bytes())
    info: dict[str, Any] = {"audiofp_path": str(root), "loaded_sources_sha256": digest.hexdigest(), "loaded_modules": len(files)}
    note = root.parent / "CODE_VERSION"  # written beside an exported copy of the tree (git archive)
    if note.exists():
        info["code_version_note"] = note.read_text().strip()
    try:
        run = lambda *cmd: subprocess.run(cmd, cwd=root.parent, capture_output=True, text=True, timeout=30).stdout  # noqa: E731
        info["git_head"] = run("git", "rev-parse", "HEAD").strip() or None
        info["git_dirty_audiofp"] = run("git", "status", "--porcelain", "--", "audiofp", "migrations").splitlines() if info["git_head"] else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def measured_settings(args: argparse.Namespace) -> Settings:
    """The settings identifications run with: the shipped ones, but for ``--match-threads``."""
    if args.match_threads is None:
        return SHIPPED
    return replace(SHIPPED, matching=replace(SHIPPED.matching, match_threads=args.match_threads))


def parse_sizes(value: str) -> list[float]:
    sizes = sorted({float(v) for v in value.split(",") if v.strip()})
    if not sizes or sizes[0] <= 0:
        raise argparse.ArgumentTypeError("sizes must be positive hours, comma-separated")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, help="index sizes to measure at, hours, comma-separated (one store filled in turn)")
    parser.add_argument("--hours", type=float, help="one index size to reach, hours of audio (default 1000)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--corpus", type=Path, default=FULL_CORPUS)
    parser.add_argument("--queries", type=int, default=300, help="queries and negatives sampled from the corpus")
    parser.add_argument("--chunk-hours", type=float, default=50.0, help="filler hours per write transaction")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--pg", default=DEFAULT_PG)
    store_dir = parser.add_mutually_exclusive_group()
    store_dir.add_argument("--keep", type=Path, help="keep the store in this folder (with what --reuse needs)")
    store_dir.add_argument("--reuse", type=Path, help="measure the store kept in this folder (filled up if smaller)")
    parser.add_argument("--last-hours", type=float, default=LAST_HOURS,
                        help="hours written after each size's full snapshot and merged in by a second build")
    parser.add_argument("--memory-mode", choices=["auto", "on", "off"], default="auto",
                        help=f"also run the clips with the index built in memory from the peaks "
                        f"(auto: at sizes up to {MEMORY_MODE_MAX_HOURS:g} h)")
    parser.add_argument("--match-threads", type=int,
                        help=f"threads one query is split over (default: shipped, {SHIPPED.matching.match_threads})")
    parser.add_argument("--keep-snapshots", action="store_true",
                        help="keep each size's snapshot folder (by default deleted once the size is measured)")
    args = parser.parse_args(argv)
    if args.match_threads is not None:
        if args.match_threads < 1:
            parser.error("--match-threads must be 1 or more")
    if args.last_hours < 0:
        parser.error("--last-hours must be 0 or more")
    if args.sizes and args.hours is not None:
        parser.error("give --sizes or --hours, not both")
    args.sizes = args.sizes or [args.hours if args.hours is not None else 1000.0]

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    summary, refs, queries, negatives = load_corpus(args.corpus)
    rng = random.Random(f"{args.seed}:scale-sample")
    q_sample = rng.sample(queries, min(args.queries, len(queries)))
    n_sample = rng.sample(negatives, min(args.queries, len(negatives)))

    started = time.strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {
        "started": started, "sizes": args.sizes, "target_hours": args.sizes[-1], "corpus": str(args.corpus),
        "corpus_hours": summary["reference_hours"],
        "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "params_digest": DEFAULT_PARAMS.digest(),
        "sample": {"queries": len(q_sample), "negatives": len(n_sample), "seed": args.seed},
        "chunk_hours": args.chunk_hours, "last_hours": args.last_hours, "memory_mode": args.memory_mode,
        "match_threads": measured_settings(args).matching.match_threads, "warmup_clips": WARMUP_CLIPS, "modes": list(MODES),
        "keep": str(args.keep) if args.keep else None, "reuse": str(args.reuse) if args.reuse else None,
        "command": " ".join(sys.argv), "code": code_version(), "finished": None, "runs": {},
    }
    json_path = args.out / f"{started}-scale.json"
    md_path = args.out / f"{started}-scale.md"

    def save() -> None:
        for path, body in ((json_path, json.dumps(results, indent=1, default=float)), (md_path, render(results))):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(body)
            tmp.replace(path)

    status = 0
    for kind in kinds:
        out: dict[str, Any] = results["runs"].setdefault(kind, {})
        try:
            KindRun(kind, args, out, save, log, args.out / f"{started}-scale-{kind}-clips.jsonl").run(refs, q_sample, n_sample)
        except Exception as exc:  # the other kind still runs; what this one measured is kept
            out["error"] = f"{type(exc).__name__}: {exc}"
            out["traceback"] = traceback.format_exc()
            log(f"[{kind}] failed: {out['error']}\n{out['traceback']}")
            status = 1
        save()
    results["finished"] = time.strftime("%Y%m%d-%H%M%S")
    save()
    sys.stdout.write(render(results))
    log(f"written {md_path} and {json_path}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
