"""Manifest records of a corpus, one JSON object per line.

A corpus folder holds ``references.jsonl``, ``queries.jsonl``,
``negatives_calibration.jsonl``, ``negatives_heldout.jsonl`` and
``corpus.json`` (how it was built). Paths inside records are relative to the
corpus folder so that a corpus can be moved.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable, TypeVar

REFERENCES = "references.jsonl"
QUERIES = "queries.jsonl"
NEGATIVES = {"calibration": "negatives_calibration.jsonl", "heldout": "negatives_heldout.jsonl"}
SUMMARY = "corpus.json"


@dataclass(frozen=True)
class Reference:
    """A recording to ingest.

    ``kind`` is ``music``, ``prompts`` (joined recorded voice prompts),
    ``espeak`` or ``espeak_over_music``; ``sources`` names what it was made of.
    """

    id: str
    path: str
    kind: str
    language: str
    duration: float
    sources: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Query:
    """An edited excerpt of a reference, with its ground truth.

    ``offset`` is where the excerpt starts in the reference (seconds);
    ``speed`` is reference seconds per query second; ``pitch`` semitones.
    """

    id: str
    path: str
    ref_id: str
    offset: float
    speed: float
    pitch: float
    transform: str
    length: float


@dataclass(frozen=True)
class Negative:
    """An edited excerpt of audio that is never ingested; any match is false."""

    id: str
    path: str
    source: str
    kind: str
    offset: float
    transform: str
    length: float
    half: str


R = TypeVar("R", Reference, Query, Negative)


def write_jsonl(path: Path, records: Iterable[object]) -> int:
    """Write dataclass records as JSON lines; return how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(asdict(rec), ensure_ascii=False) + "\n")  # type: ignore[call-overload]
            n += 1
    return n


def read_jsonl(path: Path, cls: type[R]) -> list[R]:
    """Read records of type ``cls`` from a JSON-lines file (unknown keys are ignored)."""
    names = {f.name for f in fields(cls)}
    out: list[R] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                raw = json.loads(line)
                out.append(cls(**{k: v for k, v in raw.items() if k in names}))
    return out
