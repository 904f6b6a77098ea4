"""Summarise the raw evidence recorded by ``python -m bench.run --calibrate``.

For each calibration negative the runner keeps its best candidate under an
open acceptance rule, and for each query the best candidate of its true
reference. This module puts the two distributions side by side, per evidence
figure (agreeing anchors, score, estimated false-match probability), and
finds the loosest threshold on each figure that still rejects every
calibration negative, with the query recall it would keep. Thresholds are
then checked on the held-out half by a normal run, never tuned on it.

``python -m bench.calibration CLIPS.jsonl`` prints the tables.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .report import md_table

#: Evidence figures, and whether a larger value means "more surely a match".
FIGURES = {"anchors": True, "score": True, "false_match_probability": False}


def load(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Calibration negatives and queries that carry a ``best_candidate`` entry."""
    negatives, queries = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if "best_candidate" not in row:
                continue
            if row.get("clip") == "negative" and row.get("half") == "calibration":
                negatives.append(row)
            elif row.get("clip") == "query":
                queries.append(row)
    return negatives, queries


def _values(rows: list[dict[str, Any]], figure: str, larger_is_surer: bool) -> np.ndarray:
    # A clip with no candidate at all has the weakest possible evidence.
    missing = -np.inf if larger_is_surer else np.inf
    return np.array([row["best_candidate"][figure] if row["best_candidate"] else missing for row in rows], dtype=np.float64)


def thresholds(negatives: list[dict[str, Any]], queries: list[dict[str, Any]]) -> list[list[str]]:
    """Per figure: strongest negative, the threshold that rejects all negatives, recall kept."""
    rows = []
    for figure, larger in FIGURES.items():
        neg = _values(negatives, figure, larger)
        pos = _values(queries, figure, larger)
        finite = neg[np.isfinite(neg)]
        if larger:
            worst = float(finite.max()) if finite.size else None
            kept = float(np.mean(pos > worst)) if worst is not None else float(np.mean(np.isfinite(pos)))
            rule = "-" if worst is None else f"> {worst:.3g}"
        else:
            worst = float(finite.min()) if finite.size else None
            kept = float(np.mean(pos < worst)) if worst is not None else float(np.mean(np.isfinite(pos)))
            rule = "-" if worst is None else f"< {worst:.3g}"
        p99 = float(np.percentile(finite, 99 if larger else 1)) if finite.size else float("nan")
        rows.append([figure, f"{finite.size}/{len(neg)}", "-" if worst is None else f"{worst:.3g}", f"{p99:.3g}", rule, f"{100 * kept:.1f}%"])
    return rows


def per_transform(queries: list[dict[str, Any]]) -> list[list[str]]:
    """Median and 10th percentile of the true candidate's anchors, per transform and length."""
    groups: dict[tuple[str, float], list[float]] = defaultdict(list)
    for row in queries:
        best = row["best_candidate"]
        groups[(row["transform"], row["length"])].append(best["anchors"] if best else 0.0)
    return [
        [t, f"{length:g}", f"{np.median(v):.0f}", f"{np.percentile(v, 10):.0f}"]
        for (t, length), v in sorted(groups.items())
    ]


def render(path: Path) -> str:
    negatives, queries = load(path)
    if not negatives or not queries:
        return f"no calibration evidence in {path} (run bench.run with --calibrate)\n"
    lines = [
        f"## Calibration evidence ({len(negatives)} calibration negatives, {len(queries)} queries)",
        "",
        "Best candidate of each negative under an open acceptance rule; 'recall kept' is the share of "
        "queries whose true reference's best candidate passes the threshold that rejects every negative.",
        "",
        *md_table(["figure", "negatives with a candidate", "strongest negative", "p99 of negatives",
                 "threshold rejecting all", "recall kept"], thresholds(negatives, queries)),
        "",
        "True reference's agreeing anchors per query cell:",
        "",
        *md_table(["transform", "len s", "median", "p10"], per_transform(queries)),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.calibration CLIPS.jsonl", file=sys.stderr)
        return 2
    sys.stdout.write(render(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
