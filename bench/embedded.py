"""The embedded family: known clips inside long uploads of other audio.

Usage::

    python -m bench.embedded build  [--corpus DIR] [--clips 40] [--hosts 120,600] [--seed N]
    python -m bench.embedded run    [--corpus DIR] [--db sqlite|postgresql] [--rebuild] [build options]
    python -m bench.embedded report RESULTS.json

An upload is often minutes long and reuses a known sound for a few seconds of
it. ``build`` takes the corpus's 5 s and 10 s queries (under their own edits),
decodes each and writes, into ``<corpus>/embedded/``:

* ``<query>-<H>s-{start,middle,end}.flac``: the clip inside ``H`` seconds of
  other audio (default ``H`` = 2 and 10 minutes), at the very start, in the
  middle, at the very end; the three share one filler, so they differ only in
  where the clip is;
* ``<query>-<H>s-host.flac``: that filler alone (``H`` minus the clip's length),
  a control: any match in it is a false positive of long never-indexed audio;
* ``<query>-alone.flac``: the decoded clip alone, written the same way as the
  hosts, so that "alone" and "embedded" differ only by the audio around it.
  The run also sends the corpus's own clip file (``original``).

The filler is never-indexed audio: the corpus's negative source recordings
(regenerated with the corpus's seed and plan: the same pools, checked against
the negatives manifests), cut into 30 s chunks. Some negative sources hold
audio that *is* indexed under another name (Asterisk's spliced ``spy-*``
prompts, a tracker module that reuses another's patterns: see the calibration
notes in the README), so every chunk is screened at build time against a
fresh index of the references, with a rule looser than the shipped one; a
chunk with any candidate is dropped, and the manifest says which. Each chunk is
scaled to the clip's RMS (peak-limited), so a level jump does not mark where
the clip is. Clips are picked round-robin over the transforms, seeded.

``run`` ingests the references into a fresh store and sends every file through
``audiofp.services.identify`` (decode included), like ``bench.run``. A clip
in a file counts as found (recall@1) when the first match is its reference and
places it where it truly is: the match's ``sound_start`` is within 1 s of
``offset + (query_start - at) * speed``, ``at`` being where the clip starts in
the file. The reported time range *covers* the clip when ``query_start`` and
``query_end`` are each within 1 s of the clip's start and end in the file.

Why a separate command and not part of ``bench.run``: its uploads are 2 and
10 minutes long, so its cost and its latency figures are of another kind
(``bench.run``'s latency percentiles are of 3-10 s clips and would be swamped);
its table has other dimensions (position x host length x clip length, paired
against the same clip alone) than ``bench.run``'s transform x length pivots; and
its files depend on a screening index, built at its own build step. It writes
``bench/results/<time>-embedded.md`` / ``.json`` and
``<time>-embedded-<store>-clips.jsonl``, like ``bench.scale`` and
``bench.api_bench``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Iterable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from . import manifest  # noqa: E402
from .manifest import Negative, Query, Reference  # noqa: E402
from .metrics import OFFSET_TOLERANCE, percentile  # noqa: E402
from .report import fmt_ms, fmt_pct, md_table  # noqa: E402
from .sources import SR  # noqa: E402
from .transforms import rms  # noqa: E402

HOSTS = (120.0, 600.0)
POSITIONS = ("start", "middle", "end")
CLIP_LENGTHS = (5.0, 10.0)
CHUNK_SECONDS = 30.0
MIN_CHUNK_SECONDS = 10.0
#: Chunks quieter than this (-50 dBFS) are silence, not filler.
SILENCE_RMS = 10 ** (-50 / 20)
PEAK = 0.95
FOLDER = "embedded"
MANIFEST = "embedded.jsonl"
SUMMARY = "embedded.json"
RESULTS = Path("bench/results")
FULL_CORPUS = Path("bench/corpus/full")


@dataclass(frozen=True)
class Embedded:
    """One file of the embedded family and where the clip is in it.

    ``role`` is ``embedded`` (clip inside a host), ``alone`` (the decoded clip
    written as the hosts are), ``original`` (the corpus's clip file) or
    ``host`` (the filler alone; no clip: ``query_id`` and ``ref_id`` name the
    clip it was made for). ``at`` is where the clip starts in the file and
    ``clip_length`` how long it is (seconds); ``offset``, ``speed`` and
    ``pitch`` are the clip's ground truth against its reference.
    """

    id: str
    path: str
    role: str
    query_id: str
    ref_id: str
    transform: str
    clip_length: float
    offset: float
    speed: float
    pitch: float
    host_seconds: float
    position: str
    at: float
    duration: float
    filler: list[int] = field(default_factory=list)
    """Indices of the screened filler chunks used (``chunks`` of the summary)."""


# Pure pieces (unit-tested) ------------------------------------------------------


def select_clips(queries: Sequence[Query], per_length: int, rng: random.Random,
                 lengths: Iterable[float] = CLIP_LENGTHS) -> list[Query]:
    """``per_length`` queries of each length, round-robin over the transforms in a seeded order.

    Each transform gets its turn before any gets a second one, so a small
    sample still spans the edits; within a transform the pick is random and
    without replacement.
    """
    chosen: list[Query] = []
    for length in lengths:
        groups: dict[str, list[Query]] = defaultdict(list)
        for q in queries:
            if q.length == length:
                groups[q.transform].append(q)
        order = sorted(groups)
        rng.shuffle(order)
        pools = {t: list(groups[t]) for t in order}
        picked = 0
        while picked < per_length and any(pools.values()):
            for t in order:
                if picked == per_length:
                    break
                if pools[t]:
                    chosen.append(pools[t].pop(rng.randrange(len(pools[t]))))
                    picked += 1
    return chosen


def positions_in(filler_samples: int) -> dict[str, int]:
    """Sample index at which the clip goes in a filler of ``filler_samples``: start, middle, end."""
    return {"start": 0, "middle": filler_samples // 2, "end": filler_samples}


def embed(filler: np.ndarray, clip: np.ndarray, at: int) -> np.ndarray:
    """``filler`` with ``clip`` inserted at sample ``at`` (the filler is split, nothing is overwritten)."""
    if not 0 <= at <= len(filler):
        raise ValueError(f"position {at} outside a filler of {len(filler)} samples")
    return np.concatenate([filler[:at], clip, filler[at:]]).astype(np.float32)


def level(chunk: np.ndarray, target_rms: float, peak: float = PEAK) -> np.ndarray:
    """``chunk`` scaled to ``target_rms``, or less if that would lift its peak above ``peak``."""
    gain = target_rms / max(rms(chunk), 1e-12)
    top = float(np.max(np.abs(chunk))) if len(chunk) else 0.0
    if top * gain > peak:
        gain = peak / top
    return (chunk * gain).astype(np.float32)


def assemble(chunks: Sequence[np.ndarray], order: Sequence[int], first: int, n_samples: int,
             target_rms: float) -> tuple[np.ndarray, list[int]]:
    """``n_samples`` of filler: the chunks ``order[first], order[first + 1], ...`` (cyclic), each levelled.

    Returns the samples and the chunk indices used, in order. A chunk is never
    used twice in one filler unless the whole pool is shorter than it.
    """
    if n_samples <= 0:
        return np.zeros(0, np.float32), []
    parts: list[np.ndarray] = []
    used: list[int] = []
    have = 0
    i = first
    while have < n_samples:
        index = order[i % len(order)]
        part = level(chunks[index], target_rms)
        parts.append(part)
        used.append(int(index))
        have += len(part)
        i += 1
    return np.concatenate(parts)[:n_samples].astype(np.float32), used


def cut_chunks(samples: np.ndarray, seconds: float = CHUNK_SECONDS,
               min_seconds: float = MIN_CHUNK_SECONDS) -> list[tuple[float, np.ndarray]]:
    """Consecutive pieces of ``seconds`` (start time, samples); a last piece shorter than
    ``min_seconds`` and silent pieces are dropped."""
    step = int(seconds * SR)
    out = []
    for start in range(0, len(samples), step):
        piece = samples[start:start + step]
        if len(piece) >= min_seconds * SR and rms(piece) >= SILENCE_RMS:
            out.append((start / SR, piece))
    return out


def score(rec: Embedded, matches: list[dict[str, Any]], sound_to_ref: dict[int, str],
          tolerance: float = OFFSET_TOLERANCE) -> dict[str, Any]:
    """What the matcher made of one file.

    For a file holding a clip:

    * ``found``: the first match is the clip's reference, placed right (its
      ``sound_start`` within ``tolerance`` of where the reference is at the
      match's ``query_start``: ``offset + (query_start - at) * speed``);
    * ``found_any``: some match of the reference is placed right;
    * ``covers``: the best-ranked such match's ``query_start`` and ``query_end``
      are each within ``tolerance`` of the clip's start and end in the file;
      ``inside``: its range does not reach more than ``tolerance`` past either;
      ``start_error`` / ``end_error``: its ends minus the clip's (s);
    * ``others``: matches of other sounds (audio around the clip, or another
      reference holding the same audio).

    For a ``host`` file (no clip) every match is a false positive: ``others``.
    """
    if rec.role == "host":
        return {"others": len(matches), "found": False, "found_any": False, "covers": False, "inside": False,
                "start_error": None, "end_error": None, "anchors": None}

    def placed(m: dict[str, Any]) -> bool:
        expected = rec.offset + (m["query_start"] - rec.at) * rec.speed
        return abs(m["sound_start"] - expected) <= tolerance

    right = [m for m in matches if sound_to_ref.get(m["sound_id"]) == rec.ref_id]
    good = [m for m in right if placed(m)]
    judged = good[0] if good else None
    out: dict[str, Any] = {
        "found": bool(matches) and sound_to_ref.get(matches[0]["sound_id"]) == rec.ref_id and placed(matches[0]),
        "found_any": judged is not None,
        "others": len(matches) - len(right),
        "covers": False,
        "inside": False,
        "start_error": None,
        "end_error": None,
        "anchors": None,
    }
    if judged is not None:
        start_error = judged["query_start"] - rec.at
        end_error = judged["query_end"] - (rec.at + rec.clip_length)
        out.update(
            start_error=start_error,
            end_error=end_error,
            covers=abs(start_error) <= tolerance and abs(end_error) <= tolerance,
            inside=start_error >= -tolerance and end_error <= tolerance,
            anchors=judged.get("anchors"),
        )
    return out


def row_key(rec: Embedded) -> tuple[float, float, str]:
    """(clip length, host seconds, position) of a record; the alone rows have host 0."""
    if rec.role in ("alone", "original"):
        return (rec.clip_length, 0.0, rec.role)
    return (rec.clip_length, rec.host_seconds, rec.position or rec.role)


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def summarize(records: Sequence[Embedded], outcomes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rows per (clip length, host, position), the paired comparison with the clip alone, and the host controls.

    ``outcomes[i]`` is :func:`score` of ``records[i]`` plus ``latency`` (s)
    and ``error`` (None or the service's refusal).
    """
    alone = {r.query_id: o["found_any"] for r, o in zip(records, outcomes) if r.role == "alone"}
    rows: dict[tuple[float, float, str], list[tuple[Embedded, dict[str, Any]]]] = defaultdict(list)
    hosts: dict[float, list[tuple[Embedded, dict[str, Any]]]] = defaultdict(list)
    for r, o in zip(records, outcomes):
        if r.role == "host":
            hosts[r.host_seconds].append((r, o))
        else:
            rows[row_key(r)].append((r, o))
    order = {"original": 0, "alone": 1, **{p: 2 + i for i, p in enumerate(POSITIONS)}}
    out_rows = []
    for key in sorted(rows, key=lambda k: (k[0], k[1], order.get(k[2], 9))):
        group = rows[key]
        n = len(group)
        paired = [(r, o) for r, o in group if r.query_id in alone]
        out_rows.append({
            "clip_length": key[0],
            "host_seconds": key[1],
            "position": key[2],
            "n": n,
            "recall_at_1": sum(o["found"] for _, o in group) / n,
            "found_any": sum(o["found_any"] for _, o in group) / n,
            "covers": sum(o["covers"] for _, o in group) / n,
            "inside": sum(o["inside"] for _, o in group) / n,
            "start_error_median": _median([abs(o["start_error"]) for _, o in group if o["start_error"] is not None]),
            "end_error_median": _median([abs(o["end_error"]) for _, o in group if o["end_error"] is not None]),
            "anchors_median": _median([o["anchors"] for _, o in group if o["anchors"] is not None]),
            "lost_vs_alone": sum(alone[r.query_id] and not o["found_any"] for r, o in paired),
            "gained_vs_alone": sum(o["found_any"] and not alone[r.query_id] for r, o in paired),
            "with_other_sounds": sum(o["others"] > 0 for _, o in group),
            "latency_p50": percentile((o["latency"] for _, o in group), 50),
            "latency_p95": percentile((o["latency"] for _, o in group), 95),
            "audio_seconds_median": _median([r.duration for r, _ in group]),
            "errors": sum(o.get("error") is not None for _, o in group),
        })
    out_hosts = []
    for seconds in sorted(hosts):
        group = hosts[seconds]
        out_hosts.append({
            "host_seconds": seconds,
            "n": len(group),
            "hours": sum(r.duration for r, _ in group) / 3600,
            "with_matches": sum(o["others"] > 0 for _, o in group),
            "matches": sum(o["others"] for _, o in group),
            "latency_p50": percentile((o["latency"] for _, o in group), 50),
            "latency_p95": percentile((o["latency"] for _, o in group), 95),
            "errors": sum(o.get("error") is not None for _, o in group),
        })
    return {"rows": out_rows, "hosts": out_hosts}


# Rendering ------------------------------------------------------------------------


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _host(seconds: float, position: str) -> str:
    if seconds == 0:
        return {"original": "alone (corpus file)", "alone": "alone (FLAC, as hosts)"}.get(position, position)
    return f"{seconds / 60:g} min, {position}"


def render(results: dict[str, Any]) -> str:
    """The markdown report of one run (``results`` as ``run`` writes it)."""
    b = results["build"]
    out = [
        f"# Embedded clips, {results['started']}",
        "",
        f"Corpus `{results['corpus']}`: {b['clips']} clips ({', '.join(f'{n} of {k} s' for k, n in b['clips_by_length'].items())}), "
        f"hosts of {', '.join(f'{h / 60:g}' for h in b['hosts'])} min; filler: {b['chunks_kept']} of {b['chunks']} "
        f"never-indexed 30 s chunks ({b['filler_hours']:.2f} h) after screening. Store: {results['db']}. "
        f"Machine: {results['machine']}. Code: {results['code']}. Engine params digest `{results['params_digest']}`.",
        "",
        f"recall@1: the first match is the clip's reference, placed within {OFFSET_TOLERANCE:g} s. "
        "found: some match of it placed right. covers: that match's query_start and query_end are each within "
        f"{OFFSET_TOLERANCE:g} s of the clip's start and end in the upload; inside: its range does not spill more than "
        f"{OFFSET_TOLERANCE:g} s past them. start/end err: median |reported - true| of those ends. lost / gained: clips "
        "found alone (FLAC) and not here / the reverse. other sounds: uploads with a match of another sound. "
        "Latency: wall time of identify, decode included.",
    ]
    header = ["clip", "upload", "n", "recall@1", "found", "covers ±1 s", "inside ±1 s", "start err s", "end err s",
              "anchors med", "lost / gained", "other sounds", "p50 / p95 ms", "errors"]
    for length in sorted({r["clip_length"] for r in results["rows"]}):
        rows = []
        for r in results["rows"]:
            if r["clip_length"] != length:
                continue
            rows.append([
                f"{length:g} s", _host(r["host_seconds"], r["position"]), str(r["n"]), fmt_pct(r["recall_at_1"]),
                fmt_pct(r["found_any"]), fmt_pct(r["covers"]), fmt_pct(r["inside"]), _num(r["start_error_median"]),
                _num(r["end_error_median"]), _num(r["anchors_median"], "{:.0f}"),
                f"{r['lost_vs_alone']} / {r['gained_vs_alone']}", str(r["with_other_sounds"]),
                f"{fmt_ms(r['latency_p50'])} / {fmt_ms(r['latency_p95'])}", str(r["errors"]),
            ])
        out += ["", f"## {length:g} s clips", "", *md_table(header, rows)]
    out += ["", "## Hosts alone (never-indexed audio: every match is a false positive)", "",
            *md_table(["host", "uploads", "hours", "uploads with a match", "matches", "p50 / p95 ms", "errors"], [
                [f"{h['host_seconds'] / 60:g} min (less the clip)", str(h["n"]), f"{h['hours']:.2f}", str(h["with_matches"]),
                 str(h["matches"]), f"{fmt_ms(h['latency_p50'])} / {fmt_ms(h['latency_p95'])}", str(h["errors"])]
                for h in results["hosts"]])]
    if b.get("dropped"):
        out += ["", f"Filler chunks dropped at screening ({len(b['dropped'])}): "
                + "; ".join(f"{d['source']} @{d['start']:.0f} s -> {d['ref']}" for d in b["dropped"][:12])
                + (" ..." if len(b["dropped"]) > 12 else "")]
    return "\n".join(out) + "\n"


# Build ------------------------------------------------------------------------------


def decode_clip(path: Path) -> np.ndarray:
    """Any corpus clip (wav, mp3, mp4, mu-law) as mono float32 at :data:`SR`, by ffmpeg."""
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(SR), "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, check=True)
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def _wav_bytes(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def negative_sources(corpus: Path, log: Callable[[str], None]) -> list[tuple[str, str, np.ndarray]]:
    """The corpus's negative source recordings, regenerated with its seed and plan.

    Raises SystemExit if they are not the ones the corpus's negatives were cut
    from (other packages installed since it was built).
    """
    from .corpus import Builder, Plan

    summary = json.loads((corpus / manifest.SUMMARY).read_text())
    plan = Plan(**{**summary["plan"], "espeak_speeches": dict(summary["plan"]["espeak_speeches"])})
    with tempfile.TemporaryDirectory() as tmp:
        builder = Builder(Path(tmp), summary["seed"], plan, log=log)
        builder.discover()
        builder.build_negative_sources()
    names = {name for name, _, _ in builder.neg_sources}
    used = {n.source for half in manifest.NEGATIVES.values() for n in manifest.read_jsonl(corpus / half, Negative)}
    missing = used - names
    if missing:
        raise SystemExit(f"the negative sources regenerated now are not the corpus's ({len(missing)} missing, e.g. "
                         f"{sorted(missing)[0]!r}): rebuild the corpus with the packages installed now")
    return builder.neg_sources


def screen(chunks: list[np.ndarray], corpus: Path, refs: list[Reference], log: Callable[[str], None]) -> list[dict[str, Any] | None]:
    """The strongest candidate each chunk gets against a fresh index of the references (None: no candidate).

    The rule is looser than the shipped one (p <= 1e-4 instead of 1e-8), so a
    chunk that shares audio with a reference is dropped even where the shipped
    rule would pass it in a short clip.
    """
    from audiofp import services
    from audiofp.config import Settings
    from audiofp.engine.matching import MatchSettings
    from audiofp.errors import AudioFPError

    from .run import ingest_all, match_dict
    from .stores import fresh_store

    loose = Settings(matching=MatchSettings(max_false_match_probability=1e-4))
    out: list[dict[str, Any] | None] = []
    with tempfile.TemporaryDirectory(prefix="audiofp-embedded-") as tmp, fresh_store("sqlite", Path(tmp)) as store:
        log(f"screening: indexing {len(refs)} references")
        sound_to_ref, _ = ingest_all(store, corpus, refs, log)
        log(f"screening {len(chunks)} filler chunks")
        for chunk in chunks:
            try:
                matches = [match_dict(m) for m in services.identify(store, _wav_bytes(chunk), settings=loose).matches]
            except AudioFPError as exc:
                raise SystemExit(f"screening a filler chunk failed: {exc}") from exc
            best = max(matches, key=lambda m: m["anchors"], default=None)
            out.append(None if best is None else {**best, "ref": sound_to_ref.get(best["sound_id"], "?")})
    return out


def build(corpus: Path, *, clips: int = 40, hosts: Sequence[float] = HOSTS, seed: int | None = None,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write ``<corpus>/embedded``: the files, ``embedded.jsonl`` and ``embedded.json``; return the summary."""
    started = time.perf_counter()
    summary = json.loads((corpus / manifest.SUMMARY).read_text())
    seed = summary["seed"] if seed is None else seed
    out = corpus / FOLDER
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    refs = manifest.read_jsonl(corpus / manifest.REFERENCES, Reference)
    queries = manifest.read_jsonl(corpus / manifest.QUERIES, Query)
    rng = random.Random(f"{seed}:embedded")
    chosen = select_clips(queries, clips // len(CLIP_LENGTHS), rng)

    sources = negative_sources(corpus, log)
    chunk_meta: list[dict[str, Any]] = []
    chunks: list[np.ndarray] = []
    for name, kind, samples in sources:
        for start, piece in cut_chunks(samples):
            chunk_meta.append({"source": name, "kind": kind, "start": round(start, 3), "seconds": round(len(piece) / SR, 3)})
            chunks.append(piece)
    verdicts = screen(chunks, corpus, refs, log)
    kept = [i for i, v in enumerate(verdicts) if v is None]
    dropped = [{**chunk_meta[i], "ref": v["ref"], "anchors": v["anchors"], "false_match_probability": v["false_match_probability"]}
               for i, v in enumerate(verdicts) if v is not None]
    log(f"filler: {len(kept)} of {len(chunks)} chunks kept ({len(dropped)} share audio with a reference)")
    if not kept:
        raise SystemExit("no filler chunk survived screening")
    order = list(kept)
    rng.shuffle(order)

    records: list[Embedded] = []
    for q in chosen:
        clip = decode_clip(corpus / q.path)[: int(round(q.length * SR))]
        truth = dict(query_id=q.id, ref_id=q.ref_id, transform=q.transform, clip_length=q.length, offset=q.offset,
                     speed=q.speed, pitch=q.pitch)
        rel = f"{FOLDER}/{q.id}-alone.flac"
        sf.write(corpus / rel, clip, SR, subtype="PCM_16")
        records.append(Embedded(f"{q.id}-original", q.path, "original", host_seconds=0.0, position="", at=0.0,
                                duration=q.length, **truth))
        records.append(Embedded(f"{q.id}-alone", rel, "alone", host_seconds=0.0, position="", at=0.0,
                                duration=round(len(clip) / SR, 3), **truth))
        target = rms(clip)
        for seconds in hosts:
            n_filler = int(round(seconds * SR)) - len(clip)
            filler, used = assemble(chunks, order, rng.randrange(len(order)), n_filler, target)
            rel = f"{FOLDER}/{q.id}-{seconds:g}s-host.flac"
            sf.write(corpus / rel, filler, SR, subtype="PCM_16")
            records.append(Embedded(f"{q.id}-{seconds:g}s-host", rel, "host", host_seconds=seconds, position="",
                                    at=0.0, duration=round(len(filler) / SR, 3), filler=used, **truth))
            for position, at in positions_in(len(filler)).items():
                rel = f"{FOLDER}/{q.id}-{seconds:g}s-{position}.flac"
                sf.write(corpus / rel, embed(filler, clip, at), SR, subtype="PCM_16")
                records.append(Embedded(f"{q.id}-{seconds:g}s-{position}", rel, "embedded", host_seconds=seconds,
                                        position=position, at=round(at / SR, 4),
                                        duration=round((len(filler) + len(clip)) / SR, 3), filler=used, **truth))
        log(f"  {q.id} ({q.transform}, {q.length:g} s) done")
    manifest.write_jsonl(out / MANIFEST, records)
    by_length: dict[str, int] = defaultdict(int)
    for q in chosen:
        by_length[f"{q.length:g}"] += 1
    built = {
        "seed": seed,
        "clips": len(chosen),
        "clips_by_length": dict(by_length),
        "transforms": sorted({q.transform for q in chosen}),
        "hosts": list(hosts),
        "positions": list(POSITIONS),
        "files": len(records),
        "chunks": len(chunks),
        "chunks_kept": len(kept),
        "filler_hours": sum(len(chunks[i]) for i in kept) / SR / 3600,
        "chunk_list": chunk_meta,
        "dropped": dropped,
        "screened_with": code_version(),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (out / SUMMARY).write_text(json.dumps(built, indent=1))
    return built


# Run -----------------------------------------------------------------------------------


def code_version() -> str:
    """Which audiofp is imported: its folder and commit (a ``.commit`` file beside it, or git), dirty or not."""
    import audiofp

    root = Path(audiofp.__file__).resolve().parent.parent
    marker = root / ".commit"
    if marker.exists():
        return f"{root} at {marker.read_text().strip()[:12]} (exported)"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "audiofp", "api", "migrations"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(root)
    return f"{root} at {head}" + (" + uncommitted changes" if dirty else "")


def load(corpus: Path) -> tuple[dict[str, Any], list[Embedded]]:
    folder = corpus / FOLDER
    return json.loads((folder / SUMMARY).read_text()), manifest.read_jsonl(folder / MANIFEST, Embedded)


def run(corpus: Path, db: str, out: Path, *, pg_base: str, log: Callable[[str], None]) -> dict[str, Any]:
    from audiofp.engine.params import DEFAULT_PARAMS

    from .run import identify_timed, ingest_all
    from .stores import fresh_store

    built, records = load(corpus)
    refs = manifest.read_jsonl(corpus / manifest.REFERENCES, Reference)
    started = time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    clips_path = out / f"{started}-embedded-{db}-clips.jsonl"
    outcomes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="audiofp-bench-") as tmp, fresh_store(db, Path(tmp), pg_base=pg_base) as store:
        log(f"[{db}] ingesting {len(refs)} references")
        sound_to_ref, _ = ingest_all(store, corpus, refs, log)
        log(f"[{db}] {len(records)} files")
        with open(clips_path, "w", encoding="utf-8") as clips:
            for i, rec in enumerate(records):
                matches, latency, error = identify_timed(store, corpus / rec.path)
                outcome = {**score(rec, matches, sound_to_ref), "latency": latency, "error": error}
                outcomes.append(outcome)
                clips.write(json.dumps({**asdict(rec), **outcome, "matches": matches,
                                        "match_refs": [sound_to_ref.get(m["sound_id"]) for m in matches]}) + "\n")
                clips.flush()
                if (i + 1) % 20 == 0:
                    log(f"  {i + 1}/{len(records)}")
    return {
        "started": started,
        "db": db,
        "corpus": str(corpus),
        "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "code": code_version(),
        "params_digest": DEFAULT_PARAMS.digest(),
        "build": {k: v for k, v in built.items() if k != "chunk_list"},
        "clips_file": str(clips_path),
        **summarize(records, outcomes),
    }


def main(argv: list[str] | None = None) -> int:
    from .stores import DEFAULT_PG

    parser = argparse.ArgumentParser(prog="python -m bench.embedded", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "run"):
        p = sub.add_parser(name)
        p.add_argument("--corpus", type=Path, default=FULL_CORPUS)
        p.add_argument("--clips", type=int, default=40, help="clips in all, half 5 s and half 10 s (default 40)")
        p.add_argument("--hosts", default=",".join(f"{h:g}" for h in HOSTS), help="host lengths, seconds (default 120,600)")
        p.add_argument("--seed", type=int, help="default: the corpus's seed")
        if name == "run":
            p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
            p.add_argument("--pg", default=DEFAULT_PG)
            p.add_argument("--out", type=Path, default=RESULTS)
            p.add_argument("--rebuild", action="store_true", help="rebuild the files even if they exist")
    p = sub.add_parser("report")
    p.add_argument("results", type=Path)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.command == "report":
        sys.stdout.write(render(json.loads(args.results.read_text())))
        return 0
    if not (args.corpus / manifest.SUMMARY).exists():
        log(f"no corpus at {args.corpus}: build it with `python -m bench.corpus --out {args.corpus}`")
        return 2
    hosts = [float(h) for h in args.hosts.split(",") if h.strip()]
    if args.command == "build" or args.rebuild or not (args.corpus / FOLDER / MANIFEST).exists():
        built = build(args.corpus, clips=args.clips, hosts=hosts, seed=args.seed, log=log)
        log(f"built {built['files']} files in {built['build_seconds']:.0f} s")
        if args.command == "build":
            return 0
    results = run(args.corpus, args.db, args.out, pg_base=args.pg, log=log)
    text = render(results)
    stem = args.out / f"{results['started']}-embedded"
    Path(f"{stem}.json").write_text(json.dumps(results, indent=1, default=float))
    Path(f"{stem}.md").write_text(text)
    sys.stdout.write(text)
    log(f"written {stem}.md and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
