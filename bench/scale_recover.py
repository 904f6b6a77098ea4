"""Figures of every size and mode in a scale run's clips file, including a mode the run did not live to summarise.

Usage::

    python -m bench.scale_recover bench/results/<time>-scale-<kind>-clips.jsonl --state STATE [--corpus DIR]

``bench.scale`` appends each clip's outcome to the clips file as it runs, but
writes a mode's summary only when the mode ends; if the process dies mid-mode
(the ``memory`` mode at a large size runs out of memory, say) the clips
already run are still on disk. This scores them again and prints the same
figures ``bench.scale`` reports, per ``<kind> <size> <mode>`` tag (modes
``snapshot`` and ``memory``), as markdown (and JSON with ``--json``). The
memory mode's first lookup, which builds the index, is not a clip of the file.

``STATE`` gives the real sounds' reference ids: the kept store's
``scale-<kind>.json``, or the run's ``<time>-scale.json`` (written as the run goes).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import NegativeOutcome, percentile, score_query, summarize_negatives, summarize_queries
from .report import fmt_ms, fmt_pct
from .run import FULL_CORPUS, load_corpus


def _stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "mean": float(np.mean(values)) if values else float("nan")}


def summarize(records: list[dict[str, Any]], queries: dict[str, Any], negatives: dict[str, Any],
              sound_to_ref: dict[int, str]) -> dict[str, Any]:
    q_out, n_out = [], []
    for r in records:
        if r["clip"] == "query":
            q_out.append(score_query(queries[r["id"]], r["matches"], sound_to_ref, r["latency"], r["error"]))
        else:
            neg = negatives[r["id"]]
            n_out.append(NegativeOutcome(neg.id, neg.transform, neg.length, neg.half, r["latency"], r["matches"], r["error"]))
    post = {kind: [float(r["postings"]) for r in records if r["clip"] == kind and r["postings"] is not None]
            for kind in ("query", "negative")}
    return {
        "clips_run": len(records),
        "queries": summarize_queries(q_out),
        "queries_by_length": {f"{length:g}": summarize_queries([o for o in q_out if o.length == length])
                              for length in sorted({o.length for o in q_out})},
        "negatives": summarize_negatives(n_out),
        "postings_queries": _stats(post["query"]),
        "postings_negatives": _stats(post["negative"]),
    }


def real_sounds(state: dict[str, Any], kinds: set[str]) -> dict[int, str]:
    """Sound id -> reference id, from a kept store's state or from a run's results (the run of ``kinds``)."""
    if "sound_to_ref" in state:
        mapping = state["sound_to_ref"]
    else:
        found = [state.get("runs", {}).get(kind, {}).get("sound_to_ref") for kind in kinds]
        if len(found) != 1 or found[0] is None:
            raise SystemExit(f"--state holds no sound_to_ref for the clips file's store kind {sorted(kinds)}")
        mapping = found[0]
    return {int(k): v for k, v in mapping.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_recover", description=__doc__.splitlines()[0])
    parser.add_argument("clips", type=Path)
    parser.add_argument("--state", type=Path, required=True,
                        help="the kept store's scale-<kind>.json, or the run's <time>-scale.json")
    parser.add_argument("--corpus", type=Path, default=FULL_CORPUS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    _, _, queries, negatives = load_corpus(args.corpus)
    by_id_q = {q.id: q for q in queries}
    by_id_n = {n.id: n for n in negatives}
    tags: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in args.clips.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            tags[rec["tag"]].append(rec)
    sound_to_ref = real_sounds(json.loads(args.state.read_text()), {tag.split()[0] for tag in tags})
    out = {tag: summarize(recs, by_id_q, by_id_n, sound_to_ref) for tag, recs in tags.items()}
    if args.json:
        print(json.dumps(out, indent=1, default=float))
        return 0
    print("| run | clips (q+n) | query p50 / p95 ms | 3 s | 5 s | 10 s | negatives p50 / p95 | recall@1 | false positives | postings/query p50 / mean |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tag, r in out.items():
        q, n, by = r["queries"], r["negatives"], r["queries_by_length"]
        lengths = [f"{fmt_ms(by[k]['latency_p50'])} / {fmt_ms(by[k]['latency_p95'])}" if k in by else "-" for k in ("3", "5", "10")]
        n_neg = n["calibration_n"] + n["heldout_n"]
        print(f"| {tag} | {q['n']}+{n_neg} | {fmt_ms(q['latency_p50'])} / {fmt_ms(q['latency_p95'])} | {' | '.join(lengths)} | "
              f"{fmt_ms(n['latency_p50'])} / {fmt_ms(n['latency_p95'])} | {fmt_pct(q['recall_at_1'])} | "
              f"{n['calibration_fp'] + n['heldout_fp']} of {n_neg} | "
              f"{r['postings_queries']['p50'] / 1e3:.0f} k / {r['postings_queries']['mean'] / 1e3:.0f} k |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
