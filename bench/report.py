"""Render benchmark results (the JSON the runner writes) as markdown tables.

``python -m bench.report RESULTS.json`` re-renders a saved run.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from .metrics import OFFSET_TOLERANCE


def fmt_pct(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def fmt_ms(x: float | None) -> str:
    return _num(None if x is None else x * 1000, "{:.0f}")


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _cells(run: dict[str, Any], part: str) -> dict[tuple[str, float], dict[str, Any]]:
    return {(c["transform"], c["length"]): c for c in run[part]["cells"]}


def summary_table(results: dict[str, Any]) -> list[str]:
    runs = results["runs"]
    names = list(runs)

    def row(label: str, fn) -> list[str]:
        return [label] + [fn(runs[n]) for n in names]

    rows = [
        row("references ingested (hours)", lambda r: f"{r['ingest']['sounds']} ({r['ingest']['audio_seconds'] / 3600:.2f} h)"),
        row("ingest, x realtime (wall, 1 thread)", lambda r: _num(r["ingest"]["realtime_wall"], "{:.0f}")),
        row("ingest, x realtime (CPU time)", lambda r: _num(r["ingest"]["realtime_cpu"], "{:.0f}")),
        row("postings per hour of audio", lambda r: _num(r["disk"]["postings_per_hour"], "{:,.0f}")),
        row("index MB per hour (index tables)", lambda r: _num(r["disk"]["index_mb_per_hour"])),
        row("store MB per hour (growth of the whole file / database)", lambda r: _num(r["disk"].get("growth_mb_per_hour"))),
        row("store size, MB (empty store)", lambda r: f"{r['disk']['total_bytes'] / 1e6:.1f} ({r['disk'].get('empty_store_bytes', 0) / 1e6:.1f})"),
        row("peak RSS after ingest / after queries, MB", lambda r: f"{r['memory']['peak_rss_mb_after_ingest']:.0f} / {r['memory']['peak_rss_mb_after_queries']:.0f}"),
        row("queries: recall@1 (all transforms, lengths)", lambda r: f"{fmt_pct(r['queries']['overall']['recall_at_1'])} of {r['queries']['overall']['n']}"),
        row("queries: first match is the right reference (any offset)", lambda r: fmt_pct(r["queries"]["overall"]["right_ref_top"])),
        row("negatives held out: false positives", lambda r: f"{r['negatives']['overall']['heldout_fp']} of {r['negatives']['overall']['heldout_n']}"),
        row("negatives calibration: false positives", lambda r: f"{r['negatives']['overall']['calibration_fp']} of {r['negatives']['overall']['calibration_n']}"),
        row("query latency p50 / p95, ms (decode incl.)", lambda r: f"{fmt_ms(r['queries']['overall']['latency_p50'])} / {fmt_ms(r['queries']['overall']['latency_p95'])}"),
        row("errors raised (queries + negatives)", lambda r: str(r["queries"]["overall"]["errors"] + r["negatives"]["overall"]["errors"])),
    ]
    return md_table(["", *names], rows)


def pivot(results: dict[str, Any], part: str, render) -> list[str]:
    """Transform rows x length columns; one value per store, joined by ' / ' when stores differ."""
    runs = results["runs"]
    lengths = results["corpus"]["lengths"]
    transforms = results["corpus"]["transforms"]
    cells = {name: _cells(run, part) for name, run in runs.items()}
    rows = []
    for t in transforms:
        row = [t]
        for length in lengths:
            values = [render(cells[name].get((t, length))) for name in runs]
            row.append(values[0] if len(set(values)) == 1 else " / ".join(values))
        rows.append(row)
    return md_table(["transform", *[f"{x:g} s" for x in lengths]], rows)


def detail(run: dict[str, Any], results: dict[str, Any]) -> list[str]:
    q = _cells(run, "queries")
    n = _cells(run, "negatives")
    rows = []
    for t in results["corpus"]["transforms"]:
        for length in results["corpus"]["lengths"]:
            qc, nc = q.get((t, length)), n.get((t, length))
            if qc is None:
                continue
            rows.append([
                t, f"{length:g}", str(qc["n"]), fmt_pct(qc["recall_at_1"]), fmt_pct(qc["right_ref_top"]), fmt_pct(qc["recall_any_rank"]),
                _num(qc["offset_error_median"]), _num(qc["speed_error_median"], "{:.3f}"),
                "-" if nc is None else f"{nc['heldout_fp']}/{nc['heldout_n']}",
                "-" if nc is None else f"{nc['calibration_fp']}/{nc['calibration_n']}",
                fmt_ms(qc["latency_p50"]), fmt_ms(qc["latency_p95"]),
            ])
    header = ["transform", "len s", "n", "recall@1", "right ref first", "right ref any rank", "offset err med s", "speed err med",
              "FP held-out", "FP calib.", "p50 ms", "p95 ms"]
    return md_table(header, rows)


def false_positive_pairs(results: dict[str, Any], limit: int = 15) -> list[str]:
    """Which never-indexed recordings matched which references (to look at before tuning).

    Game soundtracks reuse motifs and instrument samples and voice prompts reuse
    phrases, so some "false" matches may be real shared audio.
    """
    refs_path = Path(results["corpus"]["path"]) / "references.jsonl"
    if not refs_path.exists():
        return []
    refs = {}
    for line in refs_path.read_text(encoding="utf-8").splitlines():
        ref = json.loads(line)
        refs[ref["id"]] = ref
    lines: list[str] = []
    for name, run in results["runs"].items():
        clips = Path(run["clips_file"])
        if not clips.exists() or "sound_to_ref" not in run:
            continue
        pairs: dict[tuple[str, str], list[int]] = {}
        with open(clips, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if row.get("clip") != "negative" or not row["matches"]:
                    continue
                top = row["matches"][0]
                ref = refs.get(run["sound_to_ref"].get(str(top["sound_id"]), ""), {})
                made_of = Path(ref["sources"][0]).name if ref.get("sources") else "?"
                key = (f"{row['kind']}: {Path(row['source']).name}", f"{ref.get('id', '?')} ({made_of})")
                pairs.setdefault(key, []).append(int(top["anchors"]))
        if not pairs:
            continue
        ranked = sorted(pairs.items(), key=lambda kv: -len(kv[1]))[:limit]
        rows = [[src, ref, str(len(v)), str(max(v))] for (src, ref), v in ranked]
        lines += ["", f"## False positives by source ({name}, top {len(rows)} pairs of {len(pairs)})", "",
                  *md_table(["negative source", "matched reference (made of)", "clips", "max anchors"], rows)]
    return lines


def render(results: dict[str, Any]) -> str:
    c = results["corpus"]
    out = [
        f"# audiofp benchmark, {results['started']}",
        "",
        f"Corpus `{c['path']}`: {c['references']} references ({c['reference_hours']:.2f} h: "
        + ", ".join(f"{k} {v:.2f} h" for k, v in c["reference_hours_by_kind"].items())
        + f"), {results['query_count']} queries, {results['negative_count']} negative clips. "
        f"Machine: {results['machine']}. Engine params digest `{results['params_digest']}`."
        + (" **Quick run: figures are a smoke test, not a measurement.**" if results.get("quick") else ""),
        "",
        "## Summary",
        "",
        *summary_table(results),
        "",
        f"## Recall@1 (top match = right reference, sound_start within {OFFSET_TOLERANCE:g} s of truth)",
        "",
        *pivot(results, "queries", lambda cell: "-" if cell is None else fmt_pct(cell["recall_at_1"])),
        "",
        "## False positives on negatives (held-out + calibration halves; any match counts)",
        "",
        *pivot(results, "negatives", lambda cell: "-" if cell is None else f"{cell['heldout_fp'] + cell['calibration_fp']}/{cell['heldout_n'] + cell['calibration_n']}"),
        "",
    ]
    for name in results["runs"]:
        one = {**results, "runs": {name: results["runs"][name]}}
        out += ["", f"## Query latency p50 / p95, ms, {name} (wall time of identify, decode included)", "",
                *pivot(one, "queries", lambda cell: "-" if cell is None else f"{fmt_ms(cell['latency_p50'])} / {fmt_ms(cell['latency_p95'])}")]
    out += false_positive_pairs(results)
    for name, run in results["runs"].items():
        out += ["", f"## Detail: {name}", "", *detail(run, results)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.report RESULTS.json", file=sys.stderr)
        return 2
    sys.stdout.write(render(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
