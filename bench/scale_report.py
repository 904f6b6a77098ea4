"""The report of a scale run (``bench.scale``): its results as markdown.

Everything it shows comes from the results dictionary the run saves, so a
saved ``<time>-scale.json`` can be rendered again as it was.
"""

from __future__ import annotations

import math
from typing import Any

from .report import fmt_ms, fmt_pct, md_table


def _mb(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0f}"


def _rate(rate: dict[str, Any] | None) -> str:
    """A write rate: sounds and audio hours per second, and the postings that makes."""
    if not rate or "sounds_per_second" not in rate:
        return "-"
    return (f"{rate['sounds_per_second']:.1f} sounds/s = {rate['audio_hours_per_second']:.2f} h/s "
            f"({rate['postings_per_second'] / 1e6:.2f} M postings/s)")


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def _build(build: dict[str, Any] | None) -> str:
    if not build:
        return "-"
    return f"{_seconds(build['build_seconds'])} s, {build['bytes'] / 1e6:.0f} MB"


def render(results: dict[str, Any]) -> str:
    last_hours = results.get("last_hours", 10.0)
    modes = results.get("modes", ("snapshot", "memory"))
    lines = [f"# audiofp scale test, {results['started']}: sizes {', '.join(f'{s:g}' for s in results['sizes'])} h\n",
             f"{results.get('machine', '')}. Corpus {results['corpus']} ({results.get('corpus_hours', float('nan')):.1f} h real). "
             f"Sample: {results['sample']['queries']} queries and {results['sample']['negatives']} negatives, "
             f"run interleaved after {results.get('warmup_clips', 3)} untimed warm-up clips per mode; latency includes decoding; "
             f"each query split over {results.get('match_threads', 1)} thread(s) (`AUDIOFP_MATCH_THREADS`). "
             f"Postings = index postings a clip's lookups returned (QueryResult.postings). "
             f"At each size the store is filled to {last_hours:g} h below it, a full snapshot is built, the last "
             f"{last_hours:g} h are written and the snapshot is built again (merging them in); the `snapshot` mode "
             f"looks up in it, the `memory` mode in an index built in memory from the stored peaks.\n"]
    for kind, run in results["runs"].items():
        lines.append(f"## {kind}\n")
        if run.get("error"):
            lines.append(f"**failed**: {run['error']}\n")
        sizes = run.get("sizes", {})
        model = run.get("filler_model")
        if model:
            filler = [r["write_rate_all_filler"] for r in sizes.values() if r.get("write_rate_all_filler")]
            made = ""
            if filler:
                seconds = filler[-1]["audio_hours"] * 3600
                made = (f"; the filler has {filler[-1]['peaks'] / seconds:.1f} peaks and "
                        f"{filler[-1]['postings'] / seconds:.1f} postings per second")
            lines.append(f"Filler cut from {model['real_sounds']} real sounds ({model['real_hours']:.2f} h: "
                         f"{model['real_peaks_per_second']:.1f} peaks and {model['real_postings_per_second']:.1f} "
                         f"postings per second of audio{made}).\n")
        lengths = ["3", "5", "10"]
        head = ["size", "mode", "clips (q+n)", "query p50 / p95 ms", *[f"{length} s p50 / p95" for length in lengths],
                "negatives p50 / p95", "recall@1", "false positives", "postings/query p50 / mean"]
        rows = []
        for key, rec in sizes.items():
            if rec.get("skipped"):
                rows.append([f"{key} h", "skipped: " + rec["skipped"]] + [""] * (len(head) - 2))
                continue
            for mode in modes:
                r = rec.get("modes", {}).get(mode)
                size_label = f"{rec['hours']:.1f} h" if "hours" in rec else f"{key} h"
                if r is None:
                    continue
                if "queries" not in r:
                    rows.append([size_label, mode, "error: " + r.get("error", "?")] + [""] * (len(head) - 3))
                    continue
                q, n = r["queries"], r["negatives"]
                by = r["queries_by_length"]
                rows.append([
                    size_label, mode, f"{q['n']}+{n['calibration_n'] + n['heldout_n']}",
                    f"{fmt_ms(q['latency_p50'])} / {fmt_ms(q['latency_p95'])}",
                    *[f"{fmt_ms(by[length]['latency_p50'])} / {fmt_ms(by[length]['latency_p95'])}" if length in by else "-" for length in lengths],
                    f"{fmt_ms(n['latency_p50'])} / {fmt_ms(n['latency_p95'])}",
                    fmt_pct(q["recall_at_1"]),
                    f"{n['calibration_fp'] + n['heldout_fp']} of {n['calibration_n'] + n['heldout_n']}",
                    f"{r['postings_queries']['p50'] / 1e3:.0f} k / {r['postings_queries']['mean'] / 1e3:.0f} k",
                ])
        lines.extend(md_table(head, rows))
        lines.append("")
        head2 = ["size", "sounds", "postings (M)", "SQL store MB (MB/h)", "snapshot MB/h",
                 "full build", "incremental build", "memory index: first lookup s",
                 "write rate, first chunk of store", f"write rate, last {last_hours:g} h", "peak RSS MB", "modes agree"]
        rows2 = []
        for key, rec in sizes.items():
            if "hours" not in rec:
                if rec.get("error"):
                    rows2.append([f"{key} h", "error: " + rec["error"]] + [""] * (len(head2) - 2))
                continue
            agreement = rec.get("agreement")
            agree = (f"{agreement['identical']} of {agreement['compared']}" if agreement else "-")
            inc = rec.get("build_incremental")
            inc_cell = _build(inc)
            if inc and not inc.get("base"):
                inc_cell += " (did not merge)"
            memory = rec.get("modes", {}).get("memory", {})
            rows2.append([
                f"{rec['hours']:.1f} h", str(rec["sounds"]), f"{rec['postings'] / 1e6:.1f}",
                f"{rec['total_bytes'] / 1e6:,.0f} ({rec['mb_per_hour']:.2f})", f"{rec['snapshot_mb_per_hour']:.2f}",
                _build(rec.get("build_full")), inc_cell,
                _seconds(memory["first_lookup_seconds"]) if "first_lookup_seconds" in memory else "-",
                _rate(rec.get("write_rate_first_chunk")), _rate(rec.get("write_rate_last")),
                _mb(rec.get("peak_rss_mb", rec.get("peak_rss_mb_after_fill"))), agree,
            ])
        lines.extend(md_table(head2, rows2))
        lines.append("")
        for key, rec in sizes.items():
            agreement = rec.get("agreement")
            if agreement and agreement["differences"]:
                lines.append(f"**{key} h: snapshot and memory modes differ on {len(agreement['differences'])} clips:** "
                             + ", ".join(f"{d['id']} ({'same sounds, other evidence' if d['same_sound_ids'] else 'other sounds'})"
                                         for d in agreement["differences"]) + "\n")
            if rec.get("snapshot_holds_every_posting") is False:
                lines.append(f"**{key} h: the merged snapshot holds {rec['build_incremental']['postings']:,} postings, "
                             f"the store counts {rec['postings']:,}**\n")
            for mode in modes:
                r = rec.get("modes", {}).get(mode, {})
                if r.get("error"):
                    lines.append(f"**{key} h {mode} failed**: {r['error']}\n")
            if rec.get("error"):
                lines.append(f"**{key} h failed**: {rec['error']}\n")
    return "\n".join(lines) + "\n"
