"""Speeches: recorded voice prompts joined together, and espeak-ng speech.

A speech is built from items consumed from a pool (prompt files or sentences),
so that no item is ever spoken in two speeches: two references sharing a
recording would make "which reference is it" ambiguous by construction.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from .sources import SR, load_mono


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice setting: language (+variant), pitch 0-99, words per minute."""

    name: str
    pitch: int = 50
    speed: int = 160

    @property
    def label(self) -> str:
        return f"{self.name}/p{self.pitch}/s{self.speed}"


def espeak(text: str, voice: Voice) -> np.ndarray:
    """Synthesize ``text`` with espeak-ng; mono float32 at :data:`SR`.

    Returns an empty array when espeak-ng produces no audio for the text.
    """
    # A file rather than --stdout: the streamed WAV header carries no length,
    # which libsndfile rejects for some outputs.
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        # Text on stdin: a sentence starting with "-" must not be read as an option.
        cmd = ["espeak-ng", "-v", voice.name, "-p", str(voice.pitch), "-s", str(voice.speed), "-w", tmp.name, "--stdin"]
        proc = subprocess.run(cmd, input=text.encode(), capture_output=True, timeout=60)
        if proc.returncode != 0:
            return np.zeros(0, np.float32)
        try:
            data, rate = sf.read(tmp.name, dtype="float32")
        except sf.LibsndfileError:
            return np.zeros(0, np.float32)
    if rate != SR:
        raise RuntimeError(f"espeak-ng produced {rate} Hz, expected {SR}")
    return np.asarray(data, dtype=np.float32)


def _pause(rng: random.Random, low: float, high: float) -> np.ndarray:
    return np.zeros(int(rng.uniform(low, high) * SR), dtype=np.float32)


def join_prompts(files: list[str], target_seconds: float, rng: random.Random) -> tuple[np.ndarray, list[str]]:
    """Join voice prompts from the front of ``files`` until ``target_seconds``.

    Consumed files are removed from ``files``. Returns the speech and the files used.
    """
    parts: list[np.ndarray] = []
    used: list[str] = []
    total = 0
    while files and total < target_seconds * SR:
        path = files.pop()
        clip = load_mono(path)
        parts += [clip, _pause(rng, 0.25, 0.7)]
        used.append(path)
        total += sum(len(p) for p in parts[-2:])
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), used


def speak_sentences(
    sentences: list[str], voice: Voice, target_seconds: float, rng: random.Random
) -> tuple[np.ndarray, int]:
    """Speak sentences popped from ``sentences`` until ``target_seconds``.

    Returns the speech and the number of sentences consumed.
    """
    parts: list[np.ndarray] = []
    total = 0
    used = 0
    while sentences and total < target_seconds * SR:
        text = sentences.pop()
        clip = espeak(text, voice)
        # espeak pads each utterance with silence; keep the speech, add our own pause.
        active = np.flatnonzero(np.abs(clip) > 1e-3)
        if not active.size:
            continue
        clip = clip[active[0] : active[-1] + 1]
        parts += [clip, _pause(rng, 0.3, 0.9)]
        total += len(clip) + len(parts[-1])
        used += 1
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), used
