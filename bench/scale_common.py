"""Latency of both lookup modes of a scale run on the clips both ran (when a time budget cut one mode's sample).

Usage::

    python -m bench.scale_common bench/results/<time>-scale-<kind>-clips.jsonl

Reads the clips file ``bench.scale`` writes and prints, per size, the query
(and negative) latency p50/p95 of each mode, overall and per clip length,
restricted to the clips that ran in every mode of that size, with the ratio
snapshot / sql clip by clip.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_common", description=__doc__.splitlines()[0])
    parser.add_argument("clips", type=Path)
    args = parser.parse_args(argv)
    runs: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for line in args.clips.read_text().splitlines():
        rec = json.loads(line)
        *where, mode = rec["tag"].split()
        runs[" ".join(where)][mode][rec["id"]] = rec
    print("| run | clips | mode | query p50 / p95 ms | 3 s | 5 s | 10 s | negatives p50 / p95 ms | snapshot/sql per clip, median |")
    print("|---|---|---|---|---|---|---|---|---|")
    for where, modes in runs.items():
        common = set.intersection(*(set(m) for m in modes.values()))
        ratio = None
        if {"sql", "snapshot"} <= set(modes):
            ratio = float(np.median([modes["snapshot"][c]["latency"] / modes["sql"][c]["latency"] for c in common]))
        for mode, clips in modes.items():
            chosen = [clips[c] for c in common]

            def ms(recs: list[dict]) -> str:
                lat = [r["latency"] * 1000 for r in recs]
                return f"{np.percentile(lat, 50):.0f} / {np.percentile(lat, 95):.0f}" if lat else "-"

            queries = [r for r in chosen if r["clip"] == "query"]
            negatives = [r for r in chosen if r["clip"] == "negative"]
            by_length = [ms([r for r in queries if r["length"] == length]) for length in (3.0, 5.0, 10.0)]
            n = f"{len(queries)}+{len(negatives)}"
            print(f"| {where} | {n} | {mode} | {ms(queries)} | {' | '.join(by_length)} | {ms(negatives)} | "
                  f"{'' if ratio is None or mode == 'sql' else f'{ratio:.2f}'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
