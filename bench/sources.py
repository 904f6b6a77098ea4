"""Discover and load the raw material of the corpus.

The sources are Debian-packaged recordings (game soundtracks, Asterisk voice
prompts) and sentences for espeak-ng taken from the translation catalogues
installed under ``/usr/share/locale``. Every source item is assigned to exactly
one *pool* (references, negatives, overlays...) by a seeded shuffle, so that
audio used for negatives or for talking over a query can never also be indexed.
"""

from __future__ import annotations

import gettext
import glob
import hashlib
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

#: Sample rate of every array the corpus builder handles (espeak-ng's native rate).
SR = 22050

MUSIC_GLOBS = (
    "/usr/share/games/supertux2/music/**/*.ogg",
    "/usr/share/games/wesnoth/*/data/core/music/*.ogg",
    "/usr/share/games/supertuxkart/data/music/*.ogg",
)
PROMPT_DIRS = {
    "es": "/usr/share/asterisk/sounds/es",
    "fr": "/usr/share/asterisk/sounds/fr",
    "it": "/usr/share/asterisk/sounds/it_IT_f_Menardi",
}

#: espeak-ng voice -> locale catalogue folder holding sentences in that language.
ESPEAK_LANGUAGES = {
    "ar": "ar",
    "en-us": "en_GB",
    "fr-fr": "fr",
    "de": "de",
    "es": "es",
    "ru": "ru",
    "tr": "tr",
    "id": "id",
    "hi": "hi",
    "fa": "fa",
}

_BAD_TEXT = re.compile(r"[%{}<>_\\/|@#=\[\]\n\t&$*^~`]|\.\.\.|[A-Z]{3,}|\d")


@dataclass(frozen=True)
class MusicFile:
    """One track of a game soundtrack."""

    path: str
    duration: float


def find_music(min_seconds: float = 10.0) -> list[MusicFile]:
    """All installed soundtrack files of at least ``min_seconds``, sorted by path."""
    found: list[MusicFile] = []
    for pattern in MUSIC_GLOBS:
        for path in sorted(glob.glob(pattern, recursive=True)):
            try:
                info = sf.info(path)
            except RuntimeError:
                continue
            if info.duration >= min_seconds:
                found.append(MusicFile(path, float(info.duration)))
    return sorted(found, key=lambda m: m.path)


def find_prompts() -> dict[str, list[str]]:
    """Asterisk voice prompt files per language (recorded human speech, 8 kHz GSM)."""
    out: dict[str, list[str]] = {}
    for lang, folder in PROMPT_DIRS.items():
        if os.path.isdir(folder):
            files = sorted(glob.glob(os.path.join(folder, "**", "*.gsm"), recursive=True))
            # A prompt shorter than half a second is a digit or a beep: too little speech.
            files = [f for f in files if os.path.getsize(f) >= 1650 // 2]
            # Some prompts ship twice under two names (es/invalid == es/pbx-invalid):
            # one copy in a reference and one in a negative would be a true match.
            unique: dict[str, str] = {}
            for f in files:
                with open(f, "rb") as fh:
                    unique.setdefault(hashlib.sha256(fh.read()).hexdigest(), f)
            if unique:
                out[lang] = sorted(unique.values())
    return out


def find_sentences(voice: str, min_chars: int = 25, max_chars: int = 220) -> list[str]:
    """Distinct natural-language sentences for an espeak-ng voice, sorted.

    They come from the installed gettext catalogues of the matching locale
    (messages of real programs, translated by people), which gives real text in
    Arabic, Farsi, Hindi... without any download.
    """
    folder = ESPEAK_LANGUAGES[voice]
    seen: set[str] = set()
    for mo in sorted(glob.glob(f"/usr/share/locale/{folder}/LC_MESSAGES/*.mo")):
        try:
            with open(mo, "rb") as fh:
                catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
        except (OSError, ValueError):  # unreadable or non-UTF-8 catalogue
            continue
        for value in catalog.values():
            if isinstance(value, str) and min_chars <= len(value) <= max_chars and not _BAD_TEXT.search(value):
                seen.add(" ".join(value.split()))
    return sorted(seen)


def split_pools(items: list, fractions: dict[str, float], seed: int) -> dict[str, list]:
    """Shuffle ``items`` with ``seed`` and cut them into named pools by fraction.

    The last pool takes the remainder, so every item lands in exactly one pool.
    """
    order = list(items)
    random.Random(seed).shuffle(order)
    pools: dict[str, list] = {}
    start = 0
    names = list(fractions)
    for i, name in enumerate(names):
        end = len(order) if i == len(names) - 1 else start + int(round(fractions[name] * len(order)))
        pools[name] = order[start:end]
        start = end
    return pools


def load_mono(path: str | Path, *, max_seconds: float | None = None, start: float = 0.0) -> np.ndarray:
    """Decode a file to mono float32 at :data:`SR`, optionally a window of it."""
    info = sf.info(str(path))
    first = int(start * info.samplerate)
    frames = -1 if max_seconds is None else int(max_seconds * info.samplerate)
    data, rate = sf.read(str(path), start=first, frames=frames, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != SR:
        mono = soxr.resample(mono, rate, SR)
    return np.ascontiguousarray(mono, dtype=np.float32)
