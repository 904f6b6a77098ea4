"""The edits applied to query and negative clips, and how each is written to disk.

Every transform maps a mono float32 excerpt at :data:`bench.sources.SR` to a
new one, and declares how the reference is consumed: ``speed`` is reference
seconds per query second (1.25 = the query plays 25 % faster, the convention of
``audiofp.engine.types.Match.speed``), so a query of ``L`` seconds is cut from
``L * speed`` seconds of reference. ``pitch`` is the expected pitch change in
semitones. Numpy does what it does exactly (mixing, resampling); sox does
pitch shift, time stretch, reverb and band limiting; ffmpeg does the lossy codecs.
"""

from __future__ import annotations

import math
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .sources import SR


@dataclass
class Banks:
    """Long recordings that queries are mixed with; never indexed.

    Attributes
    ----------
    voices : np.ndarray of float32
        Unrelated speech (prompts and espeak), for voice-over.
    music : np.ndarray of float32
        Unrelated music, for music beds.
    """

    voices: np.ndarray
    music: np.ndarray

    def window(self, which: str, n: int, rng: random.Random) -> np.ndarray:
        """A random window of ``n`` samples of the ``voices`` or ``music`` bank."""
        bank = self.voices if which == "voices" else self.music
        if len(bank) <= n:
            return np.resize(bank, n).astype(np.float32)
        start = rng.randrange(0, len(bank) - n)
        return bank[start : start + n]


def rms(x: np.ndarray) -> float:
    """Root mean square of ``x`` (0 for an empty array)."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def pink_noise(n: int, rng: random.Random) -> np.ndarray:
    """``n`` samples of pink (1/f power) noise with unit RMS."""
    gen = np.random.default_rng(rng.getrandbits(63))
    spectrum = np.fft.rfft(gen.standard_normal(n))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return (noise / max(rms(noise), 1e-12)).astype(np.float32)


def mix_at_snr(signal: np.ndarray, other: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal`` plus ``other`` scaled so that signal RMS / other RMS is ``snr_db``."""
    other = other[: len(signal)]
    gain = rms(signal) / max(rms(other), 1e-12) / (10 ** (snr_db / 20))
    return (signal + gain * other).astype(np.float32)


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster by resampling (pitch and tempo together)."""
    return soxr.resample(x, SR * factor, SR).astype(np.float32)


def sox(x: np.ndarray, *effects: str) -> np.ndarray:
    """Run ``x`` through a sox effects chain (raw float32 in and out at :data:`SR`)."""
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-r", str(SR)]
    cmd = ["sox", "-V1", *raw, "-", *raw, "-", *effects]
    proc = subprocess.run(cmd, input=np.ascontiguousarray(x, np.float32).tobytes(), capture_output=True, check=True)
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


Effect = Callable[[np.ndarray, random.Random, Banks], np.ndarray]


@dataclass(frozen=True)
class Transform:
    """A named edit of a clip.

    Attributes
    ----------
    name : str
        Identifier used in manifests and report rows.
    effect : callable
        ``(samples, rng, banks) -> samples``.
    speed : float
        Reference seconds consumed per query second.
    pitch : float
        Expected pitch change, semitones.
    container : str
        How the clip is written: ``wav``, ``mp3`` (64 kbit/s), ``mp4`` (AAC 96 kbit/s)
        or ``ulaw`` (8 kHz mu-law WAV).
    """

    name: str
    effect: Effect = field(repr=False)
    speed: float = 1.0
    pitch: float = 0.0
    container: str = "wav"


def _identity(x: np.ndarray, rng: random.Random, banks: Banks) -> np.ndarray:
    return x


def _noise(snr_db: float) -> Effect:
    return lambda x, rng, banks: mix_at_snr(x, pink_noise(len(x), rng), snr_db)


def _voice_over(x: np.ndarray, rng: random.Random, banks: Banks) -> np.ndarray:
    return mix_at_snr(x, banks.window("voices", len(x), rng), 0.0)


def _music_bed(x: np.ndarray, rng: random.Random, banks: Banks) -> np.ndarray:
    # The bed sits 6 dB under the excerpt: a quieter song under the reused sound.
    return mix_at_snr(x, banks.window("music", len(x), rng), 6.0)


def _speed(factor: float) -> Effect:
    return lambda x, rng, banks: change_speed(x, factor)


def _pitch(semitones: float) -> Effect:
    return lambda x, rng, banks: sox(x, "pitch", f"{semitones * 100:.0f}")


def _tempo(factor: float) -> Effect:
    return lambda x, rng, banks: sox(x, "tempo", f"{factor}")


def _reverb(x: np.ndarray, rng: random.Random, banks: Banks) -> np.ndarray:
    # A mid-sized room: 50 % reverberance, 50 % damping, 80 % room scale, 20 ms pre-delay.
    return sox(x, "reverb", "50", "50", "80", "100", "20")


def _telephone(x: np.ndarray, rng: random.Random, banks: Banks) -> np.ndarray:
    return sox(x, "sinc", "300-3400")


def _combo(x: np.ndarray, rng: random.Random, banks: Banks) -> np.ndarray:
    return _voice_over(change_speed(x, 1.1), rng, banks)


def _speed_transform(factor: float) -> Transform:
    return Transform(f"speed_{factor}", _speed(factor), speed=factor, pitch=12 * math.log2(factor))


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in [
        Transform("clean", _identity),
        Transform("mp3_64k", _identity, container="mp3"),
        Transform("aac_mp4", _identity, container="mp4"),
        Transform("noise_10db", _noise(10)),
        Transform("noise_5db", _noise(5)),
        Transform("noise_0db", _noise(0)),
        Transform("voice_over", _voice_over),
        Transform("music_bed", _music_bed),
        _speed_transform(0.8),
        _speed_transform(0.9),
        _speed_transform(1.1),
        _speed_transform(1.25),
        Transform("pitch_-3", _pitch(-3), pitch=-3.0),
        Transform("pitch_+2", _pitch(2), pitch=2.0),
        Transform("tempo_0.85", _tempo(0.85), speed=0.85),
        Transform("tempo_1.15", _tempo(1.15), speed=1.15),
        Transform("reverb", _reverb),
        Transform("telephone", _telephone, container="ulaw"),
        Transform("combo_speed1.1_voice_mp3", _combo, speed=1.1, pitch=12 * math.log2(1.1), container="mp3"),
    ]
}

SUFFIX = {"wav": ".wav", "mp3": ".mp3", "mp4": ".mp4", "ulaw": ".wav"}


def apply(transform: Transform, segment: np.ndarray, seconds: float, rng: random.Random, banks: Banks) -> np.ndarray:
    """Apply ``transform`` to a reference segment and cut the result to ``seconds``.

    ``segment`` should hold ``seconds * transform.speed`` seconds of reference;
    the output is exactly ``round(seconds * SR)`` samples, peak-limited so that
    mixing never clips.
    """
    out = transform.effect(np.asarray(segment, np.float32), rng, banks)
    n = int(round(seconds * SR))
    out = out[:n] if len(out) >= n else np.pad(out, (0, n - len(out)))
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    if peak > 0.95:
        out = out * (0.95 / peak)
    return out.astype(np.float32)


def write_clip(samples: np.ndarray, stem: Path, container: str) -> Path:
    """Write ``samples`` (at :data:`SR`) to ``stem`` + the container's suffix; return the path."""
    path = stem.with_suffix(SUFFIX[container])
    if container == "wav":
        sf.write(path, samples, SR, subtype="PCM_16")
    elif container == "ulaw":
        sf.write(path, soxr.resample(samples, SR, 8000), 8000, subtype="ULAW")
    else:
        codec = ["-c:a", "libmp3lame", "-b:a", "64k"] if container == "mp3" else ["-c:a", "aac", "-b:a", "96k", "-f", "mp4"]
        cmd = ["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", str(SR), "-ac", "1", "-i", "pipe:0", *codec, str(path)]
        subprocess.run(cmd, input=np.ascontiguousarray(samples, np.float32).tobytes(), capture_output=True, check=True)
    return path
