"""Latency of a scale run's lookup modes on the clips every mode ran, with each mode's ratio to the snapshot mode.

Usage::

    python -m bench.scale_common bench/results/<time>-scale-<kind>-clips.jsonl

Reads the clips file ``bench.scale`` writes and prints, per size, the query
(and negative) latency p50/p95 of each mode (``snapshot``, ``memory``),
overall and per clip length, restricted to the clips that ran in every mode of
that size (a mode that died part-way ran fewer), with the median ratio clip by
clip of each mode's latency to the snapshot mode's.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

#: The mode the others are compared with: what a deployment runs.
BASELINE = "snapshot"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_common", description=__doc__.splitlines()[0])
    parser.add_argument("clips", type=Path)
    args = parser.parse_args(argv)
    runs: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for line in args.clips.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        *where, mode = rec["tag"].split()
        runs[" ".join(where)][mode][rec["id"]] = rec
    print(f"| run | clips | mode | query p50 / p95 ms | 3 s | 5 s | 10 s | negatives p50 / p95 ms | latency / {BASELINE} latency, per clip, median |")
    print("|---|---|---|---|---|---|---|---|---|")
    for where, modes in runs.items():
        common = set.intersection(*(set(m) for m in modes.values()))
        for mode, clips in modes.items():
            chosen = [clips[c] for c in common]
            ratio = ""
            if mode != BASELINE and BASELINE in modes and common:
                ratio = f"{float(np.median([clips[c]['latency'] / modes[BASELINE][c]['latency'] for c in common])):.2f}"

            def ms(recs: list[dict]) -> str:
                lat = [r["latency"] * 1000 for r in recs]
                return f"{np.percentile(lat, 50):.0f} / {np.percentile(lat, 95):.0f}" if lat else "-"

            queries = [r for r in chosen if r["clip"] == "query"]
            negatives = [r for r in chosen if r["clip"] == "negative"]
            by_length = [ms([r for r in queries if r["length"] == length]) for length in (3.0, 5.0, 10.0)]
            n = f"{len(queries)}+{len(negatives)}"
            print(f"| {where} | {n} | {mode} | {ms(queries)} | {' | '.join(by_length)} | {ms(negatives)} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
