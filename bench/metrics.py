"""Scoring of query and negative outcomes, and their aggregation per cell.

A *cell* is one (transform, length) pair. Recall@1 counts a query as found
when the service's first match is the right reference and places the query
where it truly is: its ``sound_start`` is within :data:`OFFSET_TOLERANCE` of
the reference time that the match's ``query_start`` maps to under the true
edit (``offset + query_start * speed``; a match may start a little into the
query). On negatives any match at all is a false positive.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

OFFSET_TOLERANCE = 1.0


@dataclass(frozen=True)
class QueryOutcome:
    """What happened to one query."""

    id: str
    transform: str
    length: float
    latency: float
    found: bool
    """Recall@1 hit."""
    right_ref_top: bool
    """The first match is the right reference, wherever it places the query.

    Differs from ``found`` when a reference repeats itself (looped game music,
    a refrain): the audio at the reported place is then the same as at the true one.
    """
    right_ref_anywhere: bool
    offset_error: float | None
    """Seconds, when the top match is the right reference."""
    speed_error: float | None
    """Relative error of the reported speed, when the top match is the right reference."""
    top: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class NegativeOutcome:
    """What happened to one negative clip (``matches`` is the raw evidence, for calibration)."""

    id: str
    transform: str
    length: float
    half: str
    latency: float
    matches: list[dict[str, Any]]
    error: str | None = None

    @property
    def false_positive(self) -> bool:
        return bool(self.matches)


def score_query(query: Any, matches: list[dict[str, Any]], sound_to_ref: dict[int, str], latency: float, error: str | None = None) -> QueryOutcome:
    """Score one query (a ``bench.manifest.Query``) given the matches the service returned."""
    top = matches[0] if matches else None
    right = top is not None and sound_to_ref.get(top["sound_id"]) == query.ref_id
    offset_error = speed_error = None
    if right and top is not None:
        expected = query.offset + top["query_start"] * query.speed
        offset_error = abs(top["sound_start"] - expected)
        speed_error = abs(top["speed"] / query.speed - 1.0)
    return QueryOutcome(
        id=query.id,
        transform=query.transform,
        length=query.length,
        latency=latency,
        found=bool(right and offset_error is not None and offset_error <= OFFSET_TOLERANCE),
        right_ref_top=bool(right),
        right_ref_anywhere=any(sound_to_ref.get(m["sound_id"]) == query.ref_id for m in matches),
        offset_error=offset_error,
        speed_error=speed_error,
        top=top,
        error=error,
    )


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``; NaN when empty."""
    array = np.asarray(list(values), dtype=np.float64)
    return float(np.percentile(array, q)) if array.size else math.nan


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def query_cells(outcomes: list[QueryOutcome]) -> dict[tuple[str, float], dict[str, float]]:
    """Per (transform, length): n, recall@1, recall at any rank, median offset/speed error, latency p50/p95 (s)."""
    groups: dict[tuple[str, float], list[QueryOutcome]] = defaultdict(list)
    for o in outcomes:
        groups[(o.transform, o.length)].append(o)
    return {key: summarize_queries(group) for key, group in groups.items()}


def summarize_queries(group: list[QueryOutcome]) -> dict[str, float]:
    """Aggregate figures of a list of query outcomes."""
    n = len(group)
    return {
        "n": n,
        "recall_at_1": sum(o.found for o in group) / n if n else math.nan,
        "right_ref_top": sum(o.right_ref_top for o in group) / n if n else math.nan,
        "recall_any_rank": sum(o.right_ref_anywhere for o in group) / n if n else math.nan,
        "offset_error_median": _median([o.offset_error for o in group if o.offset_error is not None]),
        "speed_error_median": _median([o.speed_error for o in group if o.speed_error is not None]),
        "latency_p50": percentile((o.latency for o in group), 50),
        "latency_p95": percentile((o.latency for o in group), 95),
        "errors": sum(o.error is not None for o in group),
    }


def negative_cells(outcomes: list[NegativeOutcome]) -> dict[tuple[str, float], dict[str, float]]:
    """Per (transform, length): clips and false positives in each half, latency p50/p95 (s)."""
    groups: dict[tuple[str, float], list[NegativeOutcome]] = defaultdict(list)
    for o in outcomes:
        groups[(o.transform, o.length)].append(o)
    return {key: summarize_negatives(group) for key, group in groups.items()}


def summarize_negatives(group: list[NegativeOutcome]) -> dict[str, float]:
    """False positives per half, and latency, of a list of negative outcomes."""
    out: dict[str, float] = {}
    for half in ("calibration", "heldout"):
        members = [o for o in group if o.half == half]
        fp = sum(o.false_positive for o in members)
        out[f"{half}_n"] = len(members)
        out[f"{half}_fp"] = fp
        out[f"{half}_fp_rate"] = fp / len(members) if members else math.nan
    out["latency_p50"] = percentile((o.latency for o in group), 50)
    out["latency_p95"] = percentile((o.latency for o in group), 95)
    out["errors"] = sum(o.error is not None for o in group)
    return out
