"""Regenerate the audio in samples/ (needs espeak-ng on the PATH).

Everything here is made by this script: speech from espeak-ng and a chant
synthesised in numpy, so the files are free of third-party rights. Run from
the repository root: ``python samples/make_samples.py``.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

HERE = Path(__file__).resolve().parent
SR = 22050

SPEECHES = {
    "speech_en": ("en", "Brothers and sisters, listen to these words. The time has come to stand together. "
                  "Every voice carries further than the one who speaks it, and every word is remembered. "
                  "We will not forget the road that brought us here, nor the people who walked it before us."),
    "speech_ar": ("ar", "السلام عليكم ورحمة الله. هذه كلمات قليلة عن الطريق الطويل الذي سرنا فيه معا. "
                  "لن ننسى الذين ساروا قبلنا، وسنبقى نتذكر كل كلمة قيلت في تلك الأيام."),
    "voice_unrelated": ("en-us", "Hey everyone, welcome back to the channel. Today I am trying the new recipe "
                        "my grandmother sent me, and honestly I have no idea if it is going to work out."),
}


def espeak(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(wav), text], check=True)
        x, rate = sf.read(wav, dtype="float32")
    return soxr.resample(x, rate, SR).astype(np.float32)


def chant(seconds: float, seed: int = 7) -> np.ndarray:
    """A sung-like melody (harmonic voice with vibrato through vowel formants) over a frame drum."""
    rng = np.random.default_rng(seed)
    scale = np.array([0, 2, 3, 5, 7, 8, 10, 12])  # a minor mode
    t_note = 0.45
    n_notes = int(seconds / t_note)
    melody = 220.0 * 2 ** (scale[rng.integers(0, len(scale), n_notes)] / 12)
    out = np.zeros(int(seconds * SR), np.float32)
    n = int(t_note * SR)
    t = np.arange(n) / SR
    env = np.minimum(1, t / 0.04) * np.exp(-t * 1.2)
    for i, f in enumerate(melody):
        vib = 1 + 0.006 * np.sin(2 * np.pi * 5.5 * t)
        phase = 2 * np.pi * np.cumsum(f * vib) / SR
        tone = sum((0.8 ** k) * np.sin(k * phase) * (1.0 + 2.0 * np.exp(-((k * f - 700) / 250) ** 2)) for k in range(1, 14))
        out[i * n:(i + 1) * n] += (env * tone).astype(np.float32)
    drum_t = np.arange(int(0.25 * SR)) / SR
    drum = np.sin(2 * np.pi * 90 * drum_t * (1 - drum_t)) * np.exp(-drum_t * 18)
    for beat in np.arange(0, seconds - 0.3, t_note * 2):
        s = int(beat * SR)
        out[s:s + drum.size] += 0.6 * drum.astype(np.float32)
    return out


def normalise(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    return (x * (peak / max(1e-9, float(np.abs(x).max())))).astype(np.float32)


def write_ogg(name: str, x: np.ndarray) -> None:
    sf.write(HERE / f"{name}.ogg", normalise(x), SR, format="OGG", subtype="VORBIS")


def write_m4a(path: Path, x: np.ndarray) -> None:
    """AAC in an mp4 container, as a phone upload would arrive."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=SR, layout="mono")
        stream.bit_rate = 64000
        frame = av.AudioFrame.from_ndarray(normalise(x)[None, :], format="flt", layout="mono")
        frame.sample_rate = SR
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def main() -> None:
    speech = {name: espeak(voice, text) for name, (voice, text) in SPEECHES.items()}
    write_ogg("speech_en", speech["speech_en"])
    write_ogg("speech_ar", speech["speech_ar"])
    music = chant(30.0)
    write_ogg("chant", music)
    over = music.copy()
    ar = speech["speech_ar"][: over.size]
    over[: ar.size] += 1.5 * ar
    write_ogg("speech_over_chant", over)
    write_ogg("queries/voice_unrelated", speech["voice_unrelated"])

    # The demo's altered reuse: 8 s of the speech over the chant, sped up 1.15x
    # (pitch and tempo together), talked over by an unrelated voice at equal
    # loudness, and re-encoded to AAC.
    start = int(6.0 * SR)
    excerpt = normalise(over)[start:start + int(8 * 1.15 * SR)]
    sped = soxr.resample(excerpt, SR * 1.15, SR).astype(np.float32)
    voice = speech["voice_unrelated"][: sped.size]
    voice = np.pad(voice, (0, sped.size - voice.size))
    gain = np.sqrt(np.mean(sped**2) / max(1e-12, np.mean(voice**2)))
    write_m4a(HERE / "queries" / "altered_reuse.m4a", sped + gain * voice)


if __name__ == "__main__":
    main()
