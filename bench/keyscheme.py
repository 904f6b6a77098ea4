"""Key-scheme study: what a candidate index key would cost and keep, before building it.

Usage::

    python -m bench.keyscheme [--corpus DIR] [--schemes current,stage-a,...] [--hours 1000]

The index's cost at scale is the number of postings a query touches: every
query probe returns the postings stored under its key, and at H hours almost
all of them are chance collisions whose number grows with H. This study
measures, for each candidate key scheme and without touching a database:

- ``postings/h``: index entries per hour of reference audio;
- ``probes``: distinct keys one query looks up (every cell within tolerance);
- ``chance postings @H``: postings of unrelated audio those probes return in an
  index of H hours, measured against a distractor index and scaled to H;
- ``true postings``: postings of the right reference at the right alignment;
- the share of queries with at least 1, 2, 3 and 5 distinct agreeing anchors,
  per edit and clip length (an upper bound on what a matcher on those keys can
  recall: it is told the truth and only counts).

Half of the references (alternate ids) are indexed and queried; the other half
feed the distractor, built from 2 s stretches of their peaks at random pitch
offsets, so no query's own audio is ever in it. Peaks come from the engine
(``audiofp.engine``) with the shipped parameters; tuples and keys are formed
here, generalised to quads and to fields the engine does not use yet, which is
the point of the study. The figures in bench/README.md ("Designing the next
index") come from this module.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiofp.engine.audio import decode
from audiofp.engine.params import DEFAULT_PARAMS, FingerprintParams
from audiofp.engine.peaks import find_peaks
from audiofp.engine.spectrogram import spectrogram

from . import manifest
from .report import md_table
from .run import FULL_CORPUS, load_corpus


@dataclass(frozen=True)
class KeyField:
    """One quantised quantity of a key.

    A value ``v`` is stored in cell ``floor((v - lo) / step)`` (clipped to
    ``cells``); a query looks up every cell that ``[v + query_lo, v + query_hi]``
    touches. An invariant field has a small symmetric window (peak jitter); a
    field that an edit moves (anchor band under pitch shift, log span under
    speed change) has the whole searched range as its window, so widening the
    searched range later changes the query, not the index.
    """

    name: str
    step: float
    query_lo: float
    query_hi: float
    lo: float
    cells: int

    def cell(self, values: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((values - self.lo) / self.step), 0, self.cells - 1).astype(np.int64)


@dataclass(frozen=True)
class KeyScheme:
    """A candidate index key: which peaks form a tuple, and which fields its key holds."""

    name: str
    order: int
    """Peaks per tuple: 3 (anchor and two targets) or 4 (quads)."""
    ref_fanout: int
    """Targets per anchor when indexing (the first valid later peaks in time)."""
    query_fanout: int
    """Targets per anchor when querying; larger forms a superset of the index's tuples."""
    fields: tuple[KeyField, ...]
    min_gap: float = 3.0
    max_span: float = 62.0
    max_df: float = 30.0


def _df(name: str, tolerance: float = 0.35, step: float = 1.0) -> KeyField:
    return KeyField(name, step, -tolerance, tolerance, -32.0, int(round(64 / step)))


def _ratio(name: str, tolerance: float = 0.012, step: float = 1 / 32) -> KeyField:
    return KeyField(name, step, -tolerance, tolerance, 0.0, int(round(1 / step)))


#: The anchor's band, searched over +-14 bins (the pitch range), as the shipped layout does.
_BAND = KeyField("f0", 12.0, -14.0, 14.0, 0.0, 16)


def _log_span(min_speed: float = 0.8, max_speed: float = 1.25) -> KeyField:
    # A clip played ``speed`` times faster spans ``speed`` times fewer frames:
    # the reference's span is the clip's times ``speed``.
    jitter = 0.03
    return KeyField("log_span", 0.25, float(np.log2(min_speed)) - jitter, float(np.log2(max_speed)) + jitter, 1.5, 20)


SCHEMES: dict[str, KeyScheme] = {
    s.name: s
    for s in (
        KeyScheme("current", 3, 4, 8, (_df("df1"), _df("df2"), _ratio("r1"), _BAND)),
        KeyScheme("current+log-span", 3, 4, 8, (_df("df1"), _df("df2"), _ratio("r1"), _BAND, _log_span())),
        KeyScheme("index-f3", 3, 3, 8, (_df("df1"), _df("df2"), _ratio("r1"), _BAND)),
        KeyScheme("index-f2", 3, 2, 8, (_df("df1"), _df("df2"), _ratio("r1"), _BAND)),
        KeyScheme("stage-a", 3, 4, 4, (_df("df1"), _df("df2"), _ratio("r1"), _BAND)),
        KeyScheme("stage-a-f3+log-span", 3, 3, 4, (_df("df1"), _df("df2"), _ratio("r1"), _BAND, _log_span())),
        KeyScheme("stage-a-f3+log-span-0.7-1.5", 3, 3, 4,
                  (_df("df1"), _df("df2"), _ratio("r1"), _BAND, _log_span(0.7, 1.5))),
        KeyScheme("quads", 4, 4, 7, (_df("df1"), _df("df2"), _df("df3"), _ratio("r1"), _ratio("r2"), _BAND)),
        KeyScheme("quads-f5", 4, 5, 7, (_df("df1"), _df("df2"), _df("df3"), _ratio("r1"), _ratio("r2"), _BAND)),
    )
}


@dataclass(frozen=True)
class Tuples:
    """Peak tuples of one signal and the quantities a key may hold, one array per name."""

    values: dict[str, np.ndarray]
    anchor: np.ndarray
    """Index of each tuple's anchor peak: tuples of one anchor are one piece of evidence."""

    def __len__(self) -> int:
        return int(self.anchor.size)


def form_tuples(time: np.ndarray, freq: np.ndarray, *, order: int, fanout: int, min_gap: float,
                max_span: float, max_df: float) -> Tuples:
    """Every anchor with each ``order - 1`` of its first ``fanout`` valid later peaks.

    Same target rule as ``audiofp.engine.triplets.form_triplets``, for any order.
    Values: ``t0``, ``f0`` (anchor frame and bin), ``df<j>`` (target minus anchor,
    bins), ``r<j>`` (gap to target j over the whole span), ``log_span`` (log2 frames).
    """
    n = time.size
    empty = Tuples({}, np.zeros(0, np.int64))
    if n < order:
        return empty
    ends = np.searchsorted(time, time + max_span, side="right")
    window = int(np.max(ends - np.arange(n))) - 1
    if window < 1:
        return empty
    cand = np.arange(n)[:, None] + np.arange(1, window + 1)[None, :]
    in_range = cand < n
    cand = np.where(in_range, cand, 0)
    gap = time[cand] - time[:, None]
    valid = in_range & (gap >= min_gap) & (gap <= max_span) & (np.abs(freq[cand] - freq[:, None]) <= max_df)
    rank = np.cumsum(valid, axis=1) - 1
    targets = np.full((n, fanout), -1, dtype=np.int64)
    rows, cols = np.nonzero(valid & (rank < fanout))
    targets[rows, rank[rows, cols]] = cand[rows, cols]
    combos = np.array(list(itertools.combinations(range(fanout), order - 1)), dtype=np.int64)
    anchor = np.repeat(np.arange(n), len(combos))
    chosen = targets[:, combos].reshape(-1, order - 1)
    ok = (chosen >= 0).all(axis=1)
    if order > 2:
        ok &= (np.diff(np.where(chosen >= 0, time[chosen], 0.0), axis=1) >= min_gap).all(axis=1)
    anchor, chosen = anchor[ok], chosen[ok]
    span = time[chosen[:, -1]] - time[anchor]
    values = {"t0": time[anchor], "f0": freq[anchor], "log_span": np.log2(span)}
    for j in range(order - 1):
        values[f"df{j + 1}"] = freq[chosen[:, j]] - freq[anchor]
    for j in range(order - 2):
        values[f"r{j + 1}"] = (time[chosen[:, j]] - time[anchor]) / span
    return Tuples(values, anchor)


def index_keys(tuples: Tuples, fields: Sequence[KeyField]) -> np.ndarray:
    """One int64 key per tuple: each field's cell, mixed radix in field order."""
    key = np.zeros(len(tuples), np.int64)
    for f in fields:
        key = key * f.cells + f.cell(tuples.values[f.name])
    return key


def query_keys(tuples: Tuples, fields: Sequence[KeyField]) -> tuple[np.ndarray, np.ndarray]:
    """Every key within each tuple's query window, and the tuple each one belongs to."""
    owner = np.arange(len(tuples))
    key = np.zeros(owner.size, np.int64)
    for f in fields:
        v = tuples.values[f.name][owner]
        first, last = f.cell(v + f.query_lo), f.cell(v + f.query_hi)
        count = last - first + 1
        owner = np.repeat(owner, count)
        within = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
        key = np.repeat(key, count) * f.cells + np.repeat(first, count) + within
    return key, owner


@dataclass(frozen=True)
class Constellation:
    """Peaks of one recording: frames, log-frequency bins, seconds of audio."""

    time: np.ndarray
    freq: np.ndarray
    duration: float


def constellation(path: Path, params: FingerprintParams, *, query: bool) -> Constellation:
    """The engine's peaks of a file, with the index's or the query's peak settings."""
    audio = decode(str(path), sample_rate=params.sample_rate)
    spec = spectrogram(audio, params)
    if query:
        radii, density = (params.query_peak_time_radius, params.query_peak_freq_radius), params.query_peaks_per_second
    else:
        radii, density = (params.peak_time_radius, params.peak_freq_radius), params.ref_peaks_per_second
    peaks = find_peaks(spec, time_radius=radii[0], freq_radius=radii[1], floor_db=params.peak_floor_db,
                       peaks_per_second=density)
    return Constellation(peaks.time.astype(np.float64), peaks.freq.astype(np.float64), audio.duration)


def distractor(sources: Sequence[Constellation], hours: float, *, n_bins: int, frame_seconds: float,
               seed: int = 1) -> Constellation:
    """``hours`` of unrelated peaks: 2 s stretches of ``sources`` at random pitch offsets, end to end."""
    gen = np.random.default_rng(seed)
    stretch = 2.0 / frame_seconds
    usable = [c for c in sources if c.duration / frame_seconds > stretch]
    times, freqs = [], []
    position, total = 0.0, hours * 3600 / frame_seconds
    while position < total:
        c = usable[gen.integers(len(usable))]
        start = gen.random() * (c.duration / frame_seconds - stretch)
        inside = (c.time >= start) & (c.time < start + stretch)
        shifted = c.freq[inside] + gen.integers(-12, 13)
        keep = (shifted >= 0) & (shifted < n_bins)
        times.append(c.time[inside][keep] - start + position)
        freqs.append(shifted[keep])
        position += stretch
    return Constellation(np.concatenate(times), np.concatenate(freqs), hours * 3600)


@dataclass
class SchemeResult:
    """Figures of one scheme; ``clips`` holds (transform, length, probes, anchors, chance, true) rows."""

    name: str
    postings_per_hour: float
    clips: list[tuple[str, float, int, int, float, int]] = field(default_factory=list)


def study(scheme: KeyScheme, references: dict[str, Constellation], queries: list[tuple[manifest.Query, Constellation]],
          *, hours: float, distractor_hours: float, params: FingerprintParams) -> SchemeResult:
    """Index half the references under ``scheme``, query their clips, count true and chance postings."""
    def tuples_of(c: Constellation, fanout: int) -> Tuples:
        return form_tuples(c.time, c.freq, order=scheme.order, fanout=fanout, min_gap=scheme.min_gap,
                           max_span=scheme.max_span, max_df=scheme.max_df)

    ids = sorted(references)
    indexed = set(ids[0::2])
    keys, owners, anchor_times, seconds = [], [], [], 0.0
    for number, ref_id in enumerate(ids):
        if ref_id not in indexed:
            continue
        t = tuples_of(references[ref_id], scheme.ref_fanout)
        seconds += references[ref_id].duration
        keys.append(index_keys(t, scheme.fields))
        owners.append(np.full(len(t), number))
        anchor_times.append(t.values.get("t0", np.zeros(0)))
    key, owner, anchor_time = (np.concatenate(a) for a in (keys, owners, anchor_times))
    order = np.argsort(key, kind="stable")
    key, owner, anchor_time = key[order], owner[order], anchor_time[order]
    postings_per_hour = key.size / seconds * 3600

    noise = distractor([references[i] for i in ids if i not in indexed], distractor_hours,
                       n_bins=params.n_bins, frame_seconds=params.frame_seconds)
    noise_keys = np.sort(index_keys(tuples_of(noise, scheme.ref_fanout), scheme.fields))
    scale = postings_per_hour * hours / max(noise_keys.size, 1)

    result = SchemeResult(scheme.name, postings_per_hour)
    number_of = {ref_id: k for k, ref_id in enumerate(ids)}
    for q, peaks in queries:
        if q.ref_id not in indexed:
            continue
        t = tuples_of(peaks, scheme.query_fanout)
        probes, probe_owner = query_keys(t, scheme.fields)
        distinct = np.unique(probes)
        chance = float((np.searchsorted(noise_keys, distinct, "right") - np.searchsorted(noise_keys, distinct, "left")).sum())
        lo, hi = np.searchsorted(key, probes, "left"), np.searchsorted(key, probes, "right")
        count = hi - lo
        posting = np.repeat(lo, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        tuple_of_hit = np.repeat(probe_owner, count)
        expected = q.offset / params.frame_seconds + q.speed * t.values["t0"][tuple_of_hit] if len(t) else np.zeros(0)
        true = (owner[posting] == number_of[q.ref_id]) & (np.abs(anchor_time[posting] - expected) <= 3.0)
        anchors = int(np.unique(t.anchor[tuple_of_hit[true]]).size)
        result.clips.append((q.transform, q.length, int(distinct.size), anchors, chance * scale, int(true.sum())))
    return result


def report(results: list[SchemeResult], hours: float) -> str:
    """Markdown: one summary table over schemes, then the weakest edits of each scheme."""
    lines = [f"# Key-scheme study (chance postings scaled to {hours:,.0f} h)", ""]
    rows = []
    for r in results:
        a = np.array([c[2:] for c in r.clips], dtype=float)
        five = [c for c in r.clips if c[1] == 5.0]
        three = [c for c in r.clips if c[1] == 3.0]
        share = lambda clips, k: f"{np.mean([c[3] >= k for c in clips]):.1%}" if clips else "-"  # noqa: E731
        rows.append([r.name, f"{r.postings_per_hour:,.0f}", f"{a[:, 0].mean():,.0f}", f"{a[:, 2].mean():,.0f}",
                     f"{a[:, 3].mean():,.0f}", share(five, 1), share(five, 2), share(five, 5), share(three, 2),
                     share(three, 5)])
    lines += md_table(["scheme", "postings/h", "probes", f"chance postings @{hours:,.0f} h", "true postings",
                       "5 s >=1", "5 s >=2", "5 s >=5", "3 s >=2", "3 s >=5"], rows)
    for r in results:
        by_edit: dict[tuple[str, float], list[int]] = defaultdict(list)
        for transform, length, _, anchors, _, _ in r.clips:
            by_edit[(transform, length)].append(anchors)
        worst = sorted(by_edit.items(), key=lambda kv: np.mean(np.array(kv[1]) >= 2))[:5]
        lines += ["", f"{r.name}: weakest edits (share with >= 2 / >= 5 agreeing anchors): " + "; ".join(
            f"{t} {L:g} s {np.mean(np.array(v) >= 2):.0%} / {np.mean(np.array(v) >= 5):.0%}" for (t, L), v in worst)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.keyscheme", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=FULL_CORPUS)
    parser.add_argument("--schemes", default=",".join(SCHEMES), help=f"comma-separated, of: {', '.join(SCHEMES)}")
    parser.add_argument("--hours", type=float, default=1000.0, help="index size the chance postings are scaled to")
    parser.add_argument("--distractor-hours", type=float, default=20.0)
    parser.add_argument("--lengths", default="3,5", help="clip lengths (s) to query")
    parser.add_argument("--json", type=Path, help="also write the per-clip figures here")
    args = parser.parse_args(argv)
    unknown = [s for s in args.schemes.split(",") if s not in SCHEMES]
    if unknown:
        parser.error(f"unknown scheme(s): {', '.join(unknown)}")
    params = DEFAULT_PARAMS
    lengths = {float(x) for x in args.lengths.split(",")}
    _, refs, all_queries, _ = load_corpus(args.corpus)
    references = {r.id: constellation(args.corpus / r.path, params, query=False) for r in refs}
    queries = [(q, constellation(args.corpus / q.path, params, query=True)) for q in all_queries if q.length in lengths]
    results = [study(SCHEMES[name], references, queries, hours=args.hours, distractor_hours=args.distractor_hours,
                     params=params) for name in args.schemes.split(",")]
    sys.stdout.write(report(results, args.hours))
    if args.json:
        args.json.write_text(json.dumps([{"scheme": r.name, "postings_per_hour": r.postings_per_hour,
                                          "clips": r.clips} for r in results]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
