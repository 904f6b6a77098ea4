"""Run the benchmark: ingest the references, run every query and negative, report.

Usage::

    python -m bench.run --db sqlite|postgresql|both [--corpus DIR] [--quick]

Each store kind gets a fresh, empty store. Ingest is timed per reference
(decode + fingerprint + index write, one thread); every query and negative is
sent through ``audiofp.services.identify`` and timed including decode. Results
go to stdout (markdown) and to ``bench/results/<timestamp>.md`` and ``.json``,
with the per-clip outcomes (and every match returned for a negative: the raw
evidence a threshold is calibrated on) in ``<timestamp>-<store>-clips.jsonl``.
"""

from __future__ import annotations

import os

# One thread per process: the ingest figure is "per core", and the machine is shared.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

from audiofp import services  # noqa: E402
from audiofp.errors import AudioFPError  # noqa: E402
from audiofp.config import Settings  # noqa: E402
from audiofp.engine.matching import MatchSettings  # noqa: E402
from audiofp.engine.params import DEFAULT_PARAMS  # noqa: E402
from audiofp.store import Store  # noqa: E402

from . import manifest  # noqa: E402
from .manifest import Negative, Query, Reference  # noqa: E402
from .metrics import NegativeOutcome, QueryOutcome, negative_cells, query_cells, score_query, summarize_negatives, summarize_queries  # noqa: E402
from . import calibration  # noqa: E402
from .report import render  # noqa: E402
from .stores import DEFAULT_PG, disk_usage, fresh_store  # noqa: E402

FULL_CORPUS = Path("bench/corpus/full")

#: The default search range with the acceptance rule opened up, so that the
#: best candidate of every clip comes back with its raw evidence (anchors,
#: score, estimated false-match probability) for setting a threshold.
PERMISSIVE = Settings(matching=MatchSettings(min_anchors=3, max_false_match_probability=1.0))

#: The shipped settings: what a deployment runs with its defaults.
SHIPPED = Settings()
QUICK_CORPUS = Path("bench/corpus/quick")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def match_dict(match: Any) -> dict[str, Any]:
    """A ``Match`` as plain JSON-able values, with its confidence."""
    evidence = {k: (float(v) if isinstance(v, float) else v) for k, v in asdict(match.evidence).items()}
    return {"sound_id": match.sound_id, **evidence, "false_match_probability": float(match.false_match_probability)}


def ingest_all(store: Store, corpus: Path, refs: list[Reference], log: Callable[[str], None]) -> tuple[dict[int, str], dict[str, Any]]:
    """Ingest every reference; return sound id -> reference id, and the timing figures."""
    sound_to_ref: dict[int, str] = {}
    wall = cpu = audio = 0.0
    failures: list[str] = []
    duplicates = 0
    for i, ref in enumerate(refs):
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            outcome = services.ingest(store, str(corpus / ref.path), label=ref.id, settings=SHIPPED)
        except AudioFPError as exc:
            failures.append(f"{ref.id}: {type(exc).__name__}: {exc}")
            continue
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        audio += float(outcome.duration)
        if not outcome.created:
            duplicates += 1
        sound_to_ref[int(outcome.sound_id)] = ref.id
        if (i + 1) % 25 == 0:
            log(f"  ingested {i + 1}/{len(refs)} ({audio / max(wall, 1e-9):.0f}x realtime)")
    figures = {
        "sounds": len(sound_to_ref),
        "audio_seconds": audio,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "realtime_wall": audio / wall if wall else None,
        "realtime_cpu": audio / cpu if cpu else None,
        "duplicates": duplicates,
        "failures": failures,
    }
    return sound_to_ref, figures


def identify_timed(store: Store, path: Path, settings: Settings = SHIPPED) -> tuple[list[dict[str, Any]], float, str | None]:
    """Matches (as dicts), wall seconds, and the error type if the service refused the input."""
    t0 = time.perf_counter()
    try:
        result = services.identify(store, str(path), settings=settings)
    except AudioFPError as exc:
        return [], time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
    return [match_dict(m) for m in result.matches], time.perf_counter() - t0, None


def best_candidate(store: Store, path: Path, sound_to_ref: dict[int, str] | None = None, ref_id: str | None = None) -> dict[str, Any] | None:
    """Raw evidence of the strongest candidate under :data:`PERMISSIVE` (of the true reference, for a query)."""
    matches, _, error = identify_timed(store, path, PERMISSIVE)
    if error is not None:
        return None
    if sound_to_ref is not None:
        matches = [m for m in matches if sound_to_ref.get(m["sound_id"]) == ref_id]
    return max(matches, key=lambda m: m["anchors"], default=None)


def run_store(kind: str, corpus: Path, refs: list[Reference], queries: list[Query], negatives: list[Negative],
              clips_path: Path, *, pg_base: str, calibrate: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """The whole benchmark on one fresh store of ``kind``."""
    with tempfile.TemporaryDirectory(prefix="audiofp-bench-") as tmp, fresh_store(kind, Path(tmp), pg_base=pg_base) as store:
        empty = disk_usage(store).total
        log(f"[{kind}] ingesting {len(refs)} references")
        sound_to_ref, ingest = ingest_all(store, corpus, refs, log)
        rss_ingest = peak_rss_mb()
        disk = disk_usage(store)
        hours = disk.seconds / 3600 if disk.seconds else float("nan")
        log(f"[{kind}] {ingest['realtime_wall']:.0f}x realtime, {disk.total / 1e6:.1f} MB; running {len(queries)} queries")
        q_out: list[QueryOutcome] = []
        n_out: list[NegativeOutcome] = []
        with open(clips_path, "w", encoding="utf-8") as clips:
            for i, q in enumerate(queries):
                matches, latency, error = identify_timed(store, corpus / q.path)
                outcome = score_query(q, matches, sound_to_ref, latency, error)
                q_out.append(outcome)
                record = {**asdict(q), **asdict(outcome), "clip": "query", "matches": matches}
                if calibrate:
                    record["best_candidate"] = best_candidate(store, corpus / q.path, sound_to_ref, q.ref_id)
                clips.write(json.dumps(record) + "\n")
                if (i + 1) % 250 == 0:
                    log(f"  queries {i + 1}/{len(queries)}")
            log(f"[{kind}] running {len(negatives)} negatives")
            for i, neg in enumerate(negatives):
                matches, latency, error = identify_timed(store, corpus / neg.path)
                outcome = NegativeOutcome(neg.id, neg.transform, neg.length, neg.half, latency, matches, error)
                n_out.append(outcome)
                record = {**asdict(neg), "clip": "negative", "latency": latency, "error": error, "matches": matches}
                if calibrate and neg.half == "calibration":
                    record["best_candidate"] = best_candidate(store, corpus / neg.path)
                clips.write(json.dumps(record) + "\n")
                if (i + 1) % 500 == 0:
                    log(f"  negatives {i + 1}/{len(negatives)}")
        return {
            "ingest": ingest,
            "disk": {
                "total_bytes": disk.total,
                "index_bytes": disk.index,
                "postings": disk.postings,
                "rows": disk.rows,
                "postings_per_hour": disk.postings / hours,
                "index_mb_per_hour": disk.index / 1e6 / hours,
                "total_mb_per_hour": disk.total / 1e6 / hours,
                "empty_store_bytes": empty,
                "growth_mb_per_hour": (disk.total - empty) / 1e6 / hours,
            },
            "memory": {"peak_rss_mb_after_ingest": rss_ingest, "peak_rss_mb_after_queries": peak_rss_mb()},
            "queries": {
                "overall": summarize_queries(q_out),
                "cells": [{"transform": t, "length": length, **v} for (t, length), v in query_cells(q_out).items()],
            },
            "negatives": {
                "overall": summarize_negatives(n_out),
                "cells": [{"transform": t, "length": length, **v} for (t, length), v in negative_cells(n_out).items()],
            },
            "clips_file": str(clips_path),
            "sound_to_ref": {str(k): v for k, v in sound_to_ref.items()},
        }


def load_corpus(corpus: Path) -> tuple[dict[str, Any], list[Reference], list[Query], list[Negative]]:
    summary = json.loads((corpus / manifest.SUMMARY).read_text())
    refs = manifest.read_jsonl(corpus / manifest.REFERENCES, Reference)
    queries = manifest.read_jsonl(corpus / manifest.QUERIES, Query)
    negatives = [n for half in manifest.NEGATIVES.values() for n in manifest.read_jsonl(corpus / half, Negative)]
    return summary, refs, queries, negatives


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--corpus", type=Path, help=f"corpus folder (default {FULL_CORPUS}, or {QUICK_CORPUS} with --quick)")
    parser.add_argument("--quick", action="store_true", help="smoke run on the small corpus (built if missing)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL without a database name")
    parser.add_argument("--calibrate", action="store_true",
                        help="also record each calibration negative's (and each query's true) best candidate "
                        "under an open acceptance rule, in the clips file (untimed, about doubles the run)")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    corpus = args.corpus or (QUICK_CORPUS if args.quick else FULL_CORPUS)
    if not (corpus / manifest.SUMMARY).exists():
        if not args.quick:
            log(f"no corpus at {corpus}: build it with `python -m bench.corpus --out {corpus}`")
            return 2
        log(f"building the quick corpus in {corpus}")
        subprocess.run([sys.executable, "-m", "bench.corpus", "--quick", "--out", str(corpus)], check=True, stdout=subprocess.DEVNULL)
    summary, refs, queries, negatives = load_corpus(corpus)
    started = time.strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {
        "started": started,
        "quick": args.quick,
        "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "params_digest": DEFAULT_PARAMS.digest(),
        "corpus": {**summary, "path": str(corpus)},
        "query_count": len(queries),
        "negative_count": len(negatives),
        "runs": {},
    }
    for kind in kinds:
        clips_path = args.out / f"{started}-{kind}-clips.jsonl"
        results["runs"][kind] = run_store(kind, corpus, refs, queries, negatives, clips_path, pg_base=args.pg, calibrate=args.calibrate, log=log)
    text = render(results)
    if args.calibrate:
        for kind in kinds:
            text += f"\n# {kind}\n\n" + calibration.render(Path(results["runs"][kind]["clips_file"]))
    (args.out / f"{started}.json").write_text(json.dumps(results, indent=1, default=float))
    (args.out / f"{started}.md").write_text(text)
    sys.stdout.write(text)
    log(f"written {args.out / (started + '.md')} and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
