"""Scale test: query latency and disk size with the index filled to N hours.

Usage::

    python -m bench.scale --hours 1000 --db sqlite|postgresql|both [--corpus DIR]

The corpus references are ingested for real; the index is then filled up to
``--hours`` with synthetic *filler* sounds (label ``filler``) whose postings
follow the real ones: hashes drawn from the real hash histogram, anchor
frequencies and spans from the real marginals, anchor times uniform over each
filler sound, as many postings per hour as the real audio has. Filler is
written in large chunks through ``repository.add_postings`` (one transaction
per chunk) so memory stays bounded. Then a fixed sample of the corpus's
queries and negatives is run against the full index.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
from sqlalchemy import text  # noqa: E402

from audiofp.store import Store, add_postings, add_sound  # noqa: E402
from audiofp.engine.types import POSTING_DTYPE  # noqa: E402

from .metrics import NegativeOutcome, score_query, summarize_negatives, summarize_queries  # noqa: E402
from .report import fmt_ms, fmt_pct, md_table  # noqa: E402
from .run import FULL_CORPUS, identify_timed, ingest_all, load_corpus, peak_rss_mb  # noqa: E402
from .stores import DEFAULT_PG, disk_usage, fresh_store  # noqa: E402

FILLER_SECONDS = 240.0


@dataclass(frozen=True)
class PostingModel:
    """Empirical distribution of the real index's postings.

    ``hash_cdf`` is over ``hash_values``; ``freq_cdf`` and ``span_cdf`` over 0..255.
    """

    hash_values: np.ndarray
    hash_cdf: np.ndarray
    freq_cdf: np.ndarray
    span_cdf: np.ndarray
    postings_per_second: float

    @classmethod
    def from_store(cls, store: Store) -> "PostingModel":
        """Histogram every posting in the store (the real references only)."""
        hashes: list[int] = []
        counts: list[int] = []
        freq = np.zeros(256, np.int64)
        span = np.zeros(256, np.int64)
        with store.session(readonly=True) as session:
            seconds = float(session.execute(text("SELECT COALESCE(SUM(duration_seconds), 0) FROM sounds")).scalar_one())
            for key, blob in session.execute(text("SELECT key, postings FROM fingerprints")):
                postings = np.frombuffer(bytes(blob), dtype=POSTING_DTYPE)
                hashes.append(int(key) & 0xFFFFFFFF)
                counts.append(len(postings))
                freq += np.bincount(postings["freq"], minlength=256)
                span += np.bincount(postings["span"], minlength=256)
        total = float(sum(counts))
        if not total or not seconds:
            raise RuntimeError("the store holds no postings to model the filler on")
        return cls(
            hash_values=np.asarray(hashes, np.uint32),
            hash_cdf=np.cumsum(np.asarray(counts, np.float64)) / total,
            freq_cdf=np.cumsum(freq) / freq.sum(),
            span_cdf=np.cumsum(span) / span.sum(),
            postings_per_second=total / seconds,
        )

    def sample(self, gen: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` hashes and their posting fields (sound and time left for the caller)."""
        def draw(cdf: np.ndarray) -> np.ndarray:
            return np.minimum(np.searchsorted(cdf, gen.random(n), side="right"), len(cdf) - 1)

        hashes = self.hash_values[draw(self.hash_cdf)]
        postings = np.empty(n, dtype=POSTING_DTYPE)
        postings["freq"] = draw(self.freq_cdf).astype(np.uint8)
        postings["span"] = draw(self.span_cdf).astype(np.uint8)
        return hashes, postings


def add_filler(store: Store, model: PostingModel, hours: float, *, chunk_hours: float, seed: int,
               log: Callable[[str], None]) -> dict[str, float]:
    """Write ``hours`` of filler sounds and postings; return timing figures."""
    gen = np.random.default_rng(seed)
    frames = FILLER_SECONDS / store.params.frame_seconds
    per_sound = int(round(model.postings_per_second * FILLER_SECONDS))
    n_sounds = int(np.ceil(hours * 3600 / FILLER_SECONDS))
    per_chunk = max(1, int(chunk_hours * 3600 / FILLER_SECONDS))
    started = time.perf_counter()
    written = 0
    for first in range(0, n_sounds, per_chunk):
        count = min(per_chunk, n_sounds - first)
        with store.session() as session:
            ids = []
            for i in range(first, first + count):
                sound = add_sound(
                    session,
                    content_digest=hashlib.sha256(f"filler:{seed}:{i}".encode()).hexdigest(),
                    duration_seconds=FILLER_SECONDS,
                    scheme=store.params.scheme,
                    fingerprint_count=per_sound,
                    label="filler",
                    source_name="bench.scale filler",
                )
                ids.append(sound.id)
            hashes, postings = model.sample(gen, per_sound * count)
            postings["sound"] = np.repeat(np.asarray(ids, np.uint32), per_sound)
            postings["time"] = (gen.random(len(postings)) * frames).astype(np.uint32)
            add_postings(session, store.params.scheme, hashes, postings)
        written += len(postings)
        elapsed = time.perf_counter() - started
        log(f"  filler {first + count}/{n_sounds} sounds, {written / 1e6:.1f} M postings, {written / elapsed / 1e6:.2f} M/s")
    elapsed = time.perf_counter() - started
    return {"filler_sounds": n_sounds, "filler_postings": written, "filler_seconds": elapsed,
            "filler_postings_per_second": written / elapsed if elapsed else float("nan")}


def run_scale(kind: str, args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    summary, refs, queries, negatives = load_corpus(args.corpus)
    rng = random.Random(f"{args.seed}:scale-sample")
    q_sample = rng.sample(queries, min(args.queries, len(queries)))
    n_sample = rng.sample(negatives, min(args.queries, len(negatives)))
    with tempfile.TemporaryDirectory(prefix="audiofp-scale-") as tmp, fresh_store(kind, Path(tmp), pg_base=args.pg) as store:
        log(f"[{kind}] ingesting {len(refs)} real references")
        sound_to_ref, ingest = ingest_all(store, args.corpus, refs, log)
        model = PostingModel.from_store(store)
        filler_hours = max(0.0, args.hours - ingest["audio_seconds"] / 3600)
        log(f"[{kind}] {model.postings_per_second:.0f} postings/s of audio; adding {filler_hours:.0f} h of filler")
        filler = add_filler(store, model, filler_hours, chunk_hours=args.chunk_hours, seed=args.seed, log=log)
        if kind == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE fingerprints"))
        disk = disk_usage(store)
        log(f"[{kind}] {disk.seconds / 3600:.0f} h, {disk.postings / 1e6:.1f} M postings, {disk.total / 1e9:.2f} GB; querying")
        q_out = []
        for q in q_sample:
            matches, latency, error = identify_timed(store, args.corpus / q.path)
            q_out.append(score_query(q, matches, sound_to_ref, latency, error))
        n_out = []
        for neg in n_sample:
            matches, latency, error = identify_timed(store, args.corpus / neg.path)
            n_out.append(NegativeOutcome(neg.id, neg.transform, neg.length, neg.half, latency, matches, error))
        by_length = {
            f"{length:g}": summarize_queries([o for o in q_out if o.length == length]) for length in sorted({o.length for o in q_out})
        }
        return {
            "hours": disk.seconds / 3600,
            "postings": disk.postings,
            "rows": disk.rows,
            "total_bytes": disk.total,
            "index_bytes": disk.index,
            "mb_per_hour": disk.total / 1e6 / (disk.seconds / 3600),
            "real_postings_per_second": model.postings_per_second,
            **filler,
            "peak_rss_mb": peak_rss_mb(),
            "queries": summarize_queries(q_out),
            "queries_by_length": by_length,
            "negatives": summarize_negatives(n_out),
            "corpus_hours": summary["reference_hours"],
        }


def render(results: dict[str, Any]) -> str:
    runs = results["runs"]
    names = list(runs)

    def row(label: str, fn: Callable[[dict[str, Any]], str]) -> list[str]:
        return [label] + [fn(runs[n]) for n in names]

    rows = [
        row("hours indexed (real + filler)", lambda r: f"{r['hours']:.0f} ({r['corpus_hours']:.1f} real)"),
        row("postings (M)", lambda r: f"{r['postings'] / 1e6:.1f}"),
        row("store size, GB", lambda r: f"{r['total_bytes'] / 1e9:.2f}"),
        row("MB per hour", lambda r: f"{r['mb_per_hour']:.2f}"),
        row("filler write, M postings/s", lambda r: f"{r['filler_postings_per_second'] / 1e6:.2f}"),
        row("query p50 / p95, ms", lambda r: f"{fmt_ms(r['queries']['latency_p50'])} / {fmt_ms(r['queries']['latency_p95'])}"),
        *[row(f"query p50 / p95, ms, {length} s clips", lambda r, length=length: f"{fmt_ms(r['queries_by_length'][length]['latency_p50'])} / {fmt_ms(r['queries_by_length'][length]['latency_p95'])}")
          for length in next(iter(runs.values()))["queries_by_length"]],
        row("recall@1 of sampled queries", lambda r: f"{fmt_pct(r['queries']['recall_at_1'])} of {r['queries']['n']}"),
        row("false positives, sampled negatives", lambda r: f"{r['negatives']['calibration_fp'] + r['negatives']['heldout_fp']} of {r['negatives']['calibration_n'] + r['negatives']['heldout_n']}"),
        row("negative latency p50 / p95, ms", lambda r: f"{fmt_ms(r['negatives']['latency_p50'])} / {fmt_ms(r['negatives']['latency_p95'])}"),
        row("peak RSS, MB", lambda r: f"{r['peak_rss_mb']:.0f}"),
    ]
    head = f"# audiofp scale test, {results['started']}: index filled to {results['target_hours']:g} h\n\n"
    return head + "\n".join(md_table(["", *names], rows)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1000.0, help="index size to reach, hours of audio")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--corpus", type=Path, default=FULL_CORPUS)
    parser.add_argument("--queries", type=int, default=300, help="queries and negatives sampled from the corpus")
    parser.add_argument("--chunk-hours", type=float, default=50.0, help="filler hours per write transaction")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.strftime("%Y%m%d-%H%M%S")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = {"started": started, "target_hours": args.hours, "corpus": str(args.corpus),
               "runs": {kind: run_scale(kind, args, log) for kind in kinds}}
    args.out.mkdir(parents=True, exist_ok=True)
    text_out = render(results)
    (args.out / f"{started}-scale.json").write_text(json.dumps(results, indent=1, default=float))
    (args.out / f"{started}-scale.md").write_text(text_out)
    sys.stdout.write(text_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
