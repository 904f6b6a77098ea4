"""Filler for the scale test: sounds cut from the real references' peaks, registered as the product registers sounds.

A filler sound is a run of 5-10 s stretches of real peaks, each played
backwards and moved in log-frequency (see :class:`FillerModel`): the hash
distribution and the chance hits per posting of real audio, without ever
truly matching a real reference or a query. :func:`add_filler` writes it
through ``services.catalogue.add_sound_fingerprint`` in timed chunks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text

import audiofp.store as _db
from audiofp.engine.fingerprint import index_from_peaks
from audiofp.engine.params import FingerprintParams
from audiofp.engine.types import Peaks
from audiofp.services.catalogue import NewSound, add_sound_fingerprint
from audiofp.store import Store

FILLER_SECONDS = 240.0
FILLER_LABEL = "filler"

# --------------------------------------------------------------------------- filler
#: Lengths of the stretches of real peaks a filler sound is assembled from, seconds (uniform).
SEGMENT_SECONDS = (5.0, 10.0)
#: How far each stretch is moved in log-frequency, bins, up or down (uniform; 36 bins an octave: 2 to 8 semitones).
SHIFT_BINS = (6, 24)


@dataclass(frozen=True)
class FillerModel:
    """The real sounds' stored peaks, which filler sounds are cut from.

    A filler sound is a run of 5-10 s stretches of the real sounds' peaks laid
    end to end, each played backwards in time and moved in log-frequency.
    The local shapes the triplets are formed from, and so the hash
    distribution, are those of real audio (on the benchmark corpus, unrelated
    clips collide with filler postings as often, per posting, as with the real
    references' own, within 3%); but no edit the matcher searches reverses
    time, so a filler sound never truly matches a real reference or a query
    (it adds the chance collisions of a large catalogue and nothing else).
    A peak moved past an edge of the band is reflected back in, so the filler
    keeps the real audio's peaks per second and, nearly, its distribution of
    anchor frequencies (both are reported with each run, beside the real
    audio's).

    ``sources`` are the real sounds' peaks in a fixed order (the same store
    gives the same filler); ``frames`` their lengths; ``freq_low`` /
    ``freq_high`` the band their peaks occupy.
    """

    sound_ids: tuple[int, ...]
    sources: tuple[Peaks, ...]
    frames: np.ndarray
    freq_low: float
    freq_high: float
    frame_seconds: float
    real_seconds: float
    real_postings: int

    @classmethod
    def from_store(cls, store: Store, sound_ids: list[int]) -> "FillerModel":
        """The model of the sounds ``sound_ids`` (in that order: it fixes the filler drawn from a seed)."""
        ids = list(dict.fromkeys(int(i) for i in sound_ids))
        with store.session(readonly=True) as session:
            blobs = _db.peaks_of_sounds(session, ids)
            sounds = _db.get_sounds(session, ids)
        missing = [i for i in ids if i not in blobs or i not in sounds]
        if missing:
            raise RuntimeError(f"{len(missing)} real sounds have no stored peaks (first: {missing[:5]}); "
                               "the filler is cut from them")
        frame_seconds = store.params.frame_seconds
        sources = tuple(Peaks.from_bytes(blobs[i]) for i in ids)
        if not ids or not sum(len(p) for p in sources):
            raise RuntimeError("the store holds no real peaks to cut filler from")
        freqs = np.concatenate([p.freq for p in sources])
        return cls(
            sound_ids=tuple(ids), sources=sources,
            frames=np.array([sounds[i].duration_seconds / frame_seconds for i in ids], np.float64),
            freq_low=float(freqs.min()), freq_high=float(freqs.max()), frame_seconds=frame_seconds,
            real_seconds=float(sum(sounds[i].duration_seconds for i in ids)),
            real_postings=int(sum(sounds[i].fingerprint_count for i in ids)),
        )

    @property
    def peaks_per_second(self) -> float:
        return sum(len(p) for p in self.sources) / self.real_seconds

    @property
    def postings_per_second(self) -> float:
        return self.real_postings / self.real_seconds

    def sound_peaks(self, gen: np.random.Generator, seconds: float) -> Peaks:
        """The peaks of one filler sound ``seconds`` long, sorted by time."""
        total = seconds / self.frame_seconds
        # Stretches are drawn in proportion to the sources' lengths: every second of real audio is equally likely.
        cumulative = np.cumsum(self.frames) / self.frames.sum()
        times: list[np.ndarray] = []
        freqs: list[np.ndarray] = []
        strengths: list[np.ndarray] = []
        cursor = 0.0
        while cursor < total:
            src = min(int(np.searchsorted(cumulative, gen.random(), side="right")), len(self.sources) - 1)
            length = min(gen.uniform(*SEGMENT_SECONDS) / self.frame_seconds, float(self.frames[src]), total - cursor)
            start = gen.uniform(0.0, float(self.frames[src]) - length)
            peaks = self.sources[src]
            lo, hi = np.searchsorted(peaks.time, [start, start + length], side="left")
            shift = float(gen.integers(SHIFT_BINS[0], SHIFT_BINS[1] + 1)) * (1.0 if gen.random() < 0.5 else -1.0)
            # Backwards: a peak x frames into the stretch lands length - x frames into its place here,
            # which keeps the peaks sorted by time (within (cursor, cursor + length]).
            t = cursor + ((start + length) - peaks.time[lo:hi][::-1].astype(np.float64))
            f = peaks.freq[lo:hi][::-1] + np.float32(shift)
            # A peak moved past an edge of the band is reflected back into it rather than
            # dropped, so the filler keeps the real audio's peaks (and postings) per second.
            f = np.where(f > self.freq_high, 2 * self.freq_high - f, f)
            f = np.where(f < self.freq_low, 2 * self.freq_low - f, f)
            times.append(t)
            freqs.append(np.clip(f, self.freq_low, self.freq_high))
            strengths.append(peaks.strength[lo:hi][::-1])
            cursor += length
        return Peaks(time=np.concatenate(times).astype(np.float32), freq=np.concatenate(freqs).astype(np.float32),
                     strength=np.concatenate(strengths).astype(np.float32))


def filler_digest(seed: int, index: int) -> str:
    """Content digest of filler sound ``index`` (counted over the store's life) of ``seed``."""
    return hashlib.sha256(f"filler:{seed}:{index}".encode()).hexdigest()


def filler_sounds(model: FillerModel, params: FingerprintParams, seed: int, first: int,
                  count: int) -> Iterator[tuple[int, NewSound]]:
    """Filler sounds ``first`` .. ``first + count - 1`` of ``seed``, fingerprinted as the product indexes peaks.

    One generator seeded by ``(seed, first)`` draws them in order, so the same
    chunk always holds the same sounds.
    """
    gen = np.random.default_rng([seed, first])
    for i in range(first, first + count):
        peaks = model.sound_peaks(gen, FILLER_SECONDS)
        yield i, NewSound(index_from_peaks(peaks, params, duration=FILLER_SECONDS), filler_digest(seed, i),
                          FILLER_SECONDS)


def real_sound_order(sound_to_ref: dict[int, str]) -> list[int]:
    """The real sounds in reference-id order: the same corpus gives the same filler whatever ids the store gave."""
    return sorted(sound_to_ref, key=lambda sound_id: (sound_to_ref[sound_id], sound_id))


def filler_count(store: Store) -> int:
    """Filler sounds already in the store (the index of the next one)."""
    with store.session(readonly=True) as session:
        return int(session.execute(text("SELECT COUNT(*) FROM sounds WHERE label = :f"), {"f": FILLER_LABEL}).scalar_one())


def _rates(sounds: int, audio_hours: float, postings: int, seconds: float) -> dict[str, float]:
    def per(x: float) -> float:
        return x / seconds if seconds > 0 else float("nan")

    return {"sounds_per_second": per(sounds), "audio_hours_per_second": per(audio_hours),
            "postings_per_second": per(postings)}


def summarize_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Write rate over several chunks (their sounds, hours and derived postings over their write seconds)."""
    if not chunks:
        return None
    sounds = sum(c["sounds"] for c in chunks)
    hours = sum(c["audio_hours"] for c in chunks)
    postings = sum(c["postings"] for c in chunks)
    write = sum(c["write_seconds"] for c in chunks)
    return {"chunks": len(chunks), "sounds": sounds, "audio_hours": hours, "postings": postings,
            "peaks": sum(c.get("peaks", 0) for c in chunks), "write_seconds": write,
            "generate_seconds": sum(c.get("generate_seconds", 0.0) for c in chunks),
            **_rates(sounds, hours, postings, write)}


def add_filler(store: Store, model: FillerModel, hours: float, *, chunk_hours: float, seed: int,
               log: Callable[[str], None], first_index: int = 0,
               on_chunk: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Register ``hours`` of filler sounds through the product's write path; return timing figures and one record per chunk.

    Each filler sound goes through ``services.catalogue.add_sound_fingerprint``
    (the sound row and what the store keeps of it), a chunk of sounds per
    transaction. Filler sound ``i`` (counted over the store's life, from
    ``first_index``) has digest ``sha256("filler:<seed>:<i>")``, and each
    chunk's sounds are drawn from a generator seeded by ``(seed, first sound
    of the chunk)``, so a store filled in steps of whole chunks holds the same
    filler as one filled at once.

    ``write_seconds`` is the transaction (registering and committing);
    ``generate_seconds`` assembling the peaks and forming their hashes (which
    the product does while decoding an upload, not in the transaction).
    """
    n_sounds = max(0, int(np.ceil(hours * 3600 / FILLER_SECONDS - 1e-9)))
    per_chunk = max(1, int(chunk_hours * 3600 / FILLER_SECONDS))
    started = time.perf_counter()
    chunks: list[dict[str, Any]] = []
    for first in range(first_index, first_index + n_sounds, per_chunk):
        count = min(per_chunk, first_index + n_sounds - first)
        generate = 0.0
        postings = peaks = 0
        t0 = time.perf_counter()
        with _db.transaction(store) as session:
            sounds = filler_sounds(model, store.params, seed, first, count)
            while True:
                g0 = time.perf_counter()
                item = next(sounds, None)
                generate += time.perf_counter() - g0
                if item is None:
                    break
                _, sound = item
                outcome = add_sound_fingerprint(session, store, sound, label=FILLER_LABEL,
                                                source_name="bench.scale filler")
                if not outcome.created:
                    raise RuntimeError(f"filler sound {sound.digest[:12]} was already in the store: "
                                       "the filler count and the seed disagree")
                postings += outcome.fingerprints
                peaks += len(sound.fingerprint.peaks) if sound.fingerprint.peaks is not None else 0
        wall = time.perf_counter() - t0
        write = wall - generate
        chunk_audio_hours = count * FILLER_SECONDS / 3600
        record = {
            "first_sound": first, "sounds": count, "audio_hours": chunk_audio_hours, "postings": postings,
            "peaks": peaks, "generate_seconds": generate, "write_seconds": write,
            **_rates(count, chunk_audio_hours, postings, write),
            "filler_sounds_after": first + count,
        }
        chunks.append(record)
        if on_chunk is not None:
            on_chunk(record)
        done = first + count - first_index
        log(f"  filler {done}/{n_sounds} sounds (#{first + count} in store), {postings / 1e6:.2f} M postings in the "
            f"chunk; written at {record['sounds_per_second']:.1f} sounds/s ({record['audio_hours_per_second']:.2f} h/s, "
            f"{record['postings_per_second'] / 1e6:.2f} M postings/s) in {write:.1f} s, generated in {generate:.1f} s")
    elapsed = time.perf_counter() - started
    overall = summarize_chunks(chunks) or {}
    return {"filler_sounds": n_sounds, "filler_postings": overall.get("postings", 0),
            "filler_peaks": overall.get("peaks", 0), "filler_seconds": elapsed,
            "filler_write_seconds": overall.get("write_seconds", 0.0),
            "filler_generate_seconds": overall.get("generate_seconds", 0.0),
            "write_rate": overall or None, "chunks": chunks}


