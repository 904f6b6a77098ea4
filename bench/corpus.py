"""Build the benchmark corpus: references, edited queries, edited negatives.

Usage: ``python -m bench.corpus [--out bench/corpus] [--seed 7] [--quick]``.

Sources are split into disjoint pools before anything is generated
(:func:`bench.sources.split_pools`): references, music used under espeak
speech in references, negatives, and the voice / music banks that queries are
mixed with. Negatives are themselves split by source recording into a
calibration half (to set thresholds on) and a held-out half (to report on).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from . import manifest
from .manifest import Negative, Query, Reference
from .sources import ESPEAK_LANGUAGES, SR, find_music, find_prompts, find_sentences, load_mono, split_pools
from .speech import Voice, join_prompts, speak_sentences
from .transforms import TRANSFORMS, Banks, Transform, apply, mix_at_snr, rms, write_clip

LENGTHS = (3.0, 5.0, 10.0)
MAX_REF_SECONDS = 240.0
MIN_REF_SECONDS = 30.0
#: RMS below which audio counts as silence (-50 dBFS); the soundtracks include a
#: track of pure silence, and silence tests the decoder, not the matcher.
SILENCE_RMS = 10 ** (-50 / 20)


@dataclass(frozen=True)
class Plan:
    """How much of everything to make."""

    music_refs: int | None
    """Music references (None: every file of the reference pool)."""
    prompt_speeches_per_language: int
    espeak_speeches: dict[str, int]
    """Reference speeches per espeak voice; every other one is laid over music."""
    queries_per_cell: int
    """Queries per (transform, length)."""
    negatives_per_cell: int
    """Negative clips per (transform, length) in each half."""
    negative_music: int | None
    negative_speeches: int
    """Negative espeak speeches per voice."""


FULL = Plan(
    music_refs=None,
    prompt_speeches_per_language=99,
    espeak_speeches={"ar": 14, **{v: 3 for v in ESPEAK_LANGUAGES if v != "ar"}},
    queries_per_cell=30,
    negatives_per_cell=18,
    negative_music=None,
    negative_speeches=2,
)
QUICK = Plan(
    music_refs=4,
    prompt_speeches_per_language=1,
    espeak_speeches={"ar": 2, "en-us": 1},
    queries_per_cell=2,
    negatives_per_cell=2,
    negative_music=3,
    negative_speeches=1,
)


def _rng(seed: int, stage: str) -> random.Random:
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and
    # independent of PYTHONHASHSEED, and each stage gets its own stream.
    return random.Random(f"{seed}:{stage}")


def _write_ref(out: Path, ref_id: str, samples: np.ndarray) -> str:
    rel = f"references/{ref_id}.flac"
    sf.write(out / rel, samples, SR, subtype="PCM_16")
    return rel


def _ref_voice(voice: str, rng: random.Random) -> Voice:
    return Voice(voice, pitch=rng.randint(40, 60), speed=rng.randint(150, 175))


def _neg_voice(voice: str, rng: random.Random) -> Voice:
    # Other timbre, pitch and rate than any reference voice: espeak is deterministic,
    # so the same words in the same voice would otherwise be the same audio.
    variant = rng.choice(["f2", "f4", "m3", "m6", "klatt"])
    return Voice(f"{voice}+{variant}", pitch=rng.choice([rng.randint(15, 32), rng.randint(68, 85)]), speed=rng.randint(125, 142))


def cut_clip(audio: np.ndarray, t: Transform, length: float, rng: random.Random, banks: Banks) -> tuple[float, np.ndarray]:
    """Pick a seeded offset whose excerpt is not silent, and return it with the edited clip.

    Gives up after 20 draws and keeps the last one (a recording that is all
    silence never reaches this point: sources are checked when loaded).
    """
    need = length * t.speed
    duration = len(audio) / SR
    for _ in range(20):
        offset = round(rng.uniform(0.0, max(duration - need - 0.05, 0.0)), 3)
        first = int(offset * SR)
        segment = audio[first : first + int(np.ceil(need * SR))]
        if rms(segment) >= SILENCE_RMS:
            break
    return offset, apply(t, segment, length, rng, banks)


class Builder:
    """Generates one corpus folder; see the module docstring."""

    def __init__(self, out: Path, seed: int, plan: Plan, log: Callable[[str], None] = print) -> None:
        self.out, self.seed, self.plan, self.log = out, seed, plan, log
        self.references: list[Reference] = []
        self.ref_audio: dict[str, np.ndarray] = {}
        self.neg_sources: list[tuple[str, str, np.ndarray]] = []  # (name, kind, samples)

    # Pools -------------------------------------------------------------
    def discover(self) -> None:
        music = find_music()
        long_music = [m for m in music if m.duration >= MIN_REF_SECONDS]
        short_music = [m for m in music if m.duration < MIN_REF_SECONDS]
        self.music = split_pools(long_music, {"ref": 0.55, "mix": 0.12, "neg": 0.2, "bed": 0.13}, self.seed)
        # Tracks too short to be a reference still make good negatives and beds.
        extra = split_pools(short_music, {"neg": 0.5, "bed": 0.5}, self.seed)
        self.music["neg"] += extra["neg"]
        self.music["bed"] += extra["bed"]
        self.prompts = {
            lang: split_pools(files, {"ref": 0.55, "neg": 0.3, "overlay": 0.15}, self.seed)
            for lang, files in find_prompts().items()
        }
        self.sentences = {
            voice: split_pools(find_sentences(voice), {"ref": 0.5, "neg": 0.3, "overlay": 0.2}, self.seed)
            for voice in ESPEAK_LANGUAGES
        }
        self.log(
            f"sources: {len(music)} music files, "
            + ", ".join(f"{k} {len(v['ref']) + len(v['neg']) + len(v['overlay'])} prompts" for k, v in self.prompts.items())
        )

    # References ----------------------------------------------------------
    def _add_ref(self, kind: str, language: str, samples: np.ndarray, sources: list[str]) -> None:
        ref_id = f"{kind}-{len(self.references):04d}"
        rel = _write_ref(self.out, ref_id, samples)
        self.references.append(Reference(ref_id, rel, kind, language, round(len(samples) / SR, 3), sources))
        self.ref_audio[ref_id] = samples

    def build_references(self) -> None:
        rng = _rng(self.seed, "references")
        pool = self.music["ref"][: self.plan.music_refs]
        for m in pool:
            start = rng.uniform(0, m.duration - MAX_REF_SECONDS) if m.duration > MAX_REF_SECONDS else 0.0
            samples = load_mono(m.path, start=start, max_seconds=MAX_REF_SECONDS)
            if rms(samples) >= SILENCE_RMS:
                self._add_ref("music", "", samples, [m.path])
        for lang, pools in self.prompts.items():
            files = list(pools["ref"])
            for _ in range(self.plan.prompt_speeches_per_language):
                speech, used = join_prompts(files, rng.uniform(MIN_REF_SECONDS, 120.0), rng)
                if len(speech) < MIN_REF_SECONDS * SR:
                    break
                self._add_ref("prompts", lang, speech, used)
        mix_music = list(self.music["mix"])
        for voice, count in self.plan.espeak_speeches.items():
            texts = list(self.sentences[voice]["ref"])
            for i in range(count):
                v = _ref_voice(voice, rng)
                speech, _ = speak_sentences(texts, v, rng.uniform(MIN_REF_SECONDS, 120.0), rng)
                if len(speech) < MIN_REF_SECONDS * SR:
                    break
                if i % 2 == 1 and mix_music:
                    # Speech over a chant or song: what much propaganda audio is.
                    bed = mix_music.pop()
                    music = np.resize(load_mono(bed.path, max_seconds=len(speech) / SR + 1), len(speech))
                    mixed = mix_at_snr(speech, music, rng.uniform(4.0, 10.0))
                    mixed *= 0.9 / max(float(np.max(np.abs(mixed))), 1e-9)
                    self._add_ref("espeak_over_music", voice, mixed, [v.label, bed.path])
                else:
                    self._add_ref("espeak", voice, speech, [v.label])
        hours = sum(r.duration for r in self.references) / 3600
        self.log(f"references: {len(self.references)} ({hours:.2f} h)")

    # Banks and negative sources -------------------------------------------
    def build_banks(self) -> Banks:
        rng = _rng(self.seed, "banks")
        voices: list[np.ndarray] = []
        for lang, pools in self.prompts.items():
            files = list(pools["overlay"])
            speech, _ = join_prompts(files, 300.0, rng)
            voices.append(speech)
        for voice in ("ar", "en-us", "fr-fr", "ru"):
            texts = list(self.sentences[voice]["overlay"])
            speech, _ = speak_sentences(texts, _neg_voice(voice, rng), 120.0, rng)
            voices.append(speech)
        music = [load_mono(m.path, max_seconds=120.0) for m in self.music["bed"]]
        rng.shuffle(voices)
        rng.shuffle(music)
        return Banks(np.concatenate(voices), np.concatenate(music))

    def build_negative_sources(self) -> None:
        rng = _rng(self.seed, "negatives-sources")
        for m in self.music["neg"][: self.plan.negative_music]:
            samples = load_mono(m.path, max_seconds=MAX_REF_SECONDS)
            if rms(samples) >= SILENCE_RMS:
                self.neg_sources.append((m.path, "music", samples))
        for lang, pools in self.prompts.items():
            files = list(pools["neg"])
            while files:
                speech, used = join_prompts(files, 60.0, rng)
                if len(speech) >= 12 * SR:
                    self.neg_sources.append((f"prompts:{lang}:{Path(used[0]).stem}+{len(used) - 1}", "prompts", speech))
        neg_music = [m for m in self.music["neg"]]
        for voice in ESPEAK_LANGUAGES:
            texts = list(self.sentences[voice]["neg"])
            for i in range(self.plan.negative_speeches):
                v = _neg_voice(voice, rng)
                speech, _ = speak_sentences(texts, v, 60.0, rng)
                if len(speech) < 12 * SR:
                    break
                if i % 2 == 1 and neg_music:
                    bed = neg_music[rng.randrange(len(neg_music))]
                    music = np.resize(load_mono(bed.path, max_seconds=len(speech) / SR + 1), len(speech))
                    speech = mix_at_snr(speech, music, rng.uniform(4.0, 10.0))
                    self.neg_sources.append((f"{v.label} over {bed.path}", "espeak_over_music", speech))
                else:
                    self.neg_sources.append((v.label, "espeak", speech))
        hours = sum(len(s) for _, _, s in self.neg_sources) / SR / 3600
        self.log(f"negative sources: {len(self.neg_sources)} recordings ({hours:.2f} h)")

    # Clips ------------------------------------------------------------------
    def build_queries(self, banks: Banks) -> list[Query]:
        rng = _rng(self.seed, "queries")
        out: list[Query] = []
        for t in TRANSFORMS.values():
            for length in LENGTHS:
                for _ in range(self.plan.queries_per_cell):
                    ref = rng.choice(self.references)
                    offset, clip = cut_clip(self.ref_audio[ref.id], t, length, rng, banks)
                    qid = f"q{len(out):05d}"
                    path = write_clip(clip, self.out / "queries" / qid, t.container)
                    out.append(Query(qid, str(path.relative_to(self.out)), ref.id, offset, t.speed, round(t.pitch, 3), t.name, length))
        return out

    def build_negatives(self, banks: Banks) -> dict[str, list[Negative]]:
        rng = _rng(self.seed, "negatives")
        order = list(range(len(self.neg_sources)))
        rng.shuffle(order)
        halves = {"calibration": order[0::2], "heldout": order[1::2]}
        out: dict[str, list[Negative]] = {}
        for half, members in halves.items():
            clips: list[Negative] = []
            for t in TRANSFORMS.values():
                for length in LENGTHS:
                    for _ in range(self.plan.negatives_per_cell):
                        name, kind, audio = self.neg_sources[rng.choice(members)]
                        offset, clip = cut_clip(audio, t, length, rng, banks)
                        nid = f"n{half[0]}{len(clips):05d}"
                        path = write_clip(clip, self.out / "negatives" / nid, t.container)
                        clips.append(Negative(nid, str(path.relative_to(self.out)), name, kind, offset, t.name, length, half))
            out[half] = clips
        return out

    def run(self) -> dict:
        started = time.perf_counter()
        for sub in ("references", "queries", "negatives"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self.discover()
        self.build_references()
        manifest.write_jsonl(self.out / manifest.REFERENCES, self.references)
        banks = self.build_banks()
        self.build_negative_sources()
        queries = self.build_queries(banks)
        manifest.write_jsonl(self.out / manifest.QUERIES, queries)
        self.log(f"queries: {len(queries)}")
        negatives = self.build_negatives(banks)
        for half, clips in negatives.items():
            manifest.write_jsonl(self.out / manifest.NEGATIVES[half], clips)
        self.log("negatives: " + ", ".join(f"{h} {len(c)}" for h, c in negatives.items()))
        kinds: dict[str, float] = {}
        for r in self.references:
            kinds[r.kind] = kinds.get(r.kind, 0.0) + r.duration / 3600
        summary = {
            "seed": self.seed,
            "plan": self.plan.__dict__,
            "references": len(self.references),
            "reference_hours": round(sum(kinds.values()), 3),
            "reference_hours_by_kind": {k: round(v, 3) for k, v in kinds.items()},
            "queries": len(queries),
            "negatives": {h: len(c) for h, c in negatives.items()},
            "negative_source_hours": round(sum(len(s) for _, _, s in self.neg_sources) / SR / 3600, 3),
            "transforms": list(TRANSFORMS),
            "lengths": list(LENGTHS),
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        (self.out / manifest.SUMMARY).write_text(json.dumps(summary, indent=2))
        return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corpus", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/corpus"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a small corpus for smoke runs")
    args = parser.parse_args(argv)
    if args.out.exists():
        shutil.rmtree(args.out)
    summary = Builder(args.out, args.seed, QUICK if args.quick else FULL, log=lambda s: print(s, file=sys.stderr)).run()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
