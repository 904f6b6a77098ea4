"""Measuring one lookup mode of a scale run (``bench.scale``): every clip identified as the service does it.

A mode is whatever lookup path is attached to the store when :func:`run_mode`
runs (a snapshot, or an index built in memory); :func:`compare_modes` checks
that two modes returned the same matches, clip by clip.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from audiofp import services
from audiofp.config import Settings
from audiofp.errors import AudioFPError
from audiofp.store import Store

from .manifest import Negative, Query
from .metrics import NegativeOutcome, percentile, score_query, summarize_negatives, summarize_queries
from .run import match_dict, peak_rss_mb

#: Untimed identifications run before each mode's timed pass (first-call costs: imports, caches).
WARMUP_CLIPS = 3


def current_rss_mb() -> float:
    """Resident memory of this process now."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def identify_clip(store: Store, path: Path, settings: Settings) -> dict[str, Any]:
    """One identification as the service runs it (decode included), with the cost figures of its QueryResult."""
    t0 = time.perf_counter()
    try:
        result = services.identify(store, str(path), settings=settings)
    except AudioFPError as exc:
        return {"latency": time.perf_counter() - t0, "error": f"{type(exc).__name__}: {exc}", "matches": [],
                "postings": None, "lookups": None, "hits": None}
    return {"latency": time.perf_counter() - t0, "error": None, "matches": [match_dict(m) for m in result.matches],
            "postings": int(result.postings), "lookups": int(result.lookups), "hits": int(result.hits)}


def _stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "mean": float(np.mean(values)) if values else math.nan}


def run_mode(store: Store, corpus: Path, clips: list[Query | Negative], sound_to_ref: dict[int, str], *,
             settings: Settings, log: Callable[[str], None], tag: str, clips_file: Any = None) -> dict[str, Any]:
    """Run ``clips`` (in order) with the lookup path attached to the store now; figures and per-clip records."""
    for clip in clips[:WARMUP_CLIPS]:
        identify_clip(store, corpus / clip.path, settings)
    load_before = os.getloadavg()
    started = time.perf_counter()
    records: dict[str, dict[str, Any]] = {}
    q_out = []
    n_out = []
    for i, clip in enumerate(clips):
        out = identify_clip(store, corpus / clip.path, settings)
        is_query = isinstance(clip, Query)
        records[clip.id] = {"clip": "query" if is_query else "negative", **out}
        if is_query:
            q_out.append(score_query(clip, out["matches"], sound_to_ref, out["latency"], out["error"]))
        else:
            n_out.append(NegativeOutcome(clip.id, clip.transform, clip.length, clip.half, out["latency"], out["matches"], out["error"]))
        if clips_file is not None:
            clips_file.write(json.dumps({"tag": tag, "id": clip.id, "length": clip.length, "transform": clip.transform,
                                         **records[clip.id]}) + "\n")
        if (i + 1) % 50 == 0:
            elapsed = time.perf_counter() - started
            log(f"  {tag}: {i + 1}/{len(clips)} clips, {elapsed:.0f} s, {elapsed / (i + 1) * 1000:.0f} ms/clip")
    seconds = time.perf_counter() - started
    lengths = sorted({o.length for o in q_out})
    q_post = [float(r["postings"]) for r in records.values() if r["clip"] == "query" and r["postings"] is not None]
    n_post = [float(r["postings"]) for r in records.values() if r["clip"] == "negative" and r["postings"] is not None]
    return {
        "clips_run": len(records),
        "clips_planned": len(clips),
        "seconds": seconds,
        "queries": summarize_queries(q_out),
        "queries_by_length": {f"{length:g}": summarize_queries([o for o in q_out if o.length == length]) for length in lengths},
        "negatives": summarize_negatives(n_out),
        "negatives_by_length": {f"{length:g}": summarize_negatives([o for o in n_out if o.length == length])
                                for length in sorted({o.length for o in n_out})},
        "postings_queries": _stats(q_post),
        "postings_negatives": _stats(n_post),
        "postings_all": _stats(q_post + n_post),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "rss_mb_after": current_rss_mb(),
        "peak_rss_mb_after": peak_rss_mb(),
        "_records": records,
    }


def compare_modes(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]],
                  names: tuple[str, str] = ("snapshot", "memory")) -> dict[str, Any]:
    """Clip by clip, whether two modes returned the same matches (exactly, every field)."""
    common = [cid for cid in a if cid in b]
    differences = []
    for cid in common:
        ra, rb = a[cid], b[cid]
        if ra["error"] != rb["error"] or ra["matches"] != rb["matches"]:
            same_sounds = [m["sound_id"] for m in ra["matches"]] == [m["sound_id"] for m in rb["matches"]]
            differences.append({
                "id": cid, "same_sound_ids": same_sounds,
                names[0]: {"error": ra["error"], "matches": ra["matches"][:3]},
                names[1]: {"error": rb["error"], "matches": rb["matches"][:3]},
            })
    postings_differ = [cid for cid in common if a[cid]["postings"] != b[cid]["postings"]]
    return {"modes": list(names), "compared": len(common), "identical": len(common) - len(differences),
            "differences": differences, "postings_differ": postings_differ[:50],
            "postings_differ_count": len(postings_differ)}
