"""Crafted media for the hostile-input tests: WAV files whose header declares what no real file does.

A WAV header is 44 bytes anyone can write by hand, and every field of it
reaches FFmpeg unchecked: bits per sample, channel count, sample rate and
format tag. These files are what an attacker (or a broken encoder) sends.
"""

from __future__ import annotations

import struct

import numpy as np


def tone_pcm16(seconds: float = 1.0, rate: int = 8000, frequency: float = 440.0) -> bytes:
    """A mono 16-bit little-endian tone: enough signal to fingerprint when the header is right."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * t) * 32767).astype("<i2").tobytes()


def wav_bytes(data: bytes | None = None, *, channels: int = 1, sample_rate: int = 8000, bits_per_sample: int = 16,
              format_tag: int = 1) -> bytes:
    """A RIFF/WAVE file with exactly these header fields around ``data`` (a 1 s tone by default)."""
    data = tone_pcm16() if data is None else data
    block_align = (channels * bits_per_sample // 8) & 0xFFFF
    byte_rate = (sample_rate * block_align) & 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", format_tag, channels, sample_rate, byte_rate, block_align, bits_per_sample)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


#: Headers that declare no decodable audio; each must be refused as bad media, never crash.
UNDECODABLE_HEADERS: dict[str, bytes] = {
    "bits_per_sample_0": wav_bytes(bits_per_sample=0),
    "bits_per_sample_65535": wav_bytes(bits_per_sample=65535),
    "float_with_0_bits": wav_bytes(format_tag=3, bits_per_sample=0),
    "float_with_16_bits": wav_bytes(format_tag=3, bits_per_sample=16),
    "format_tag_0": wav_bytes(format_tag=0),
    "extensible_without_extension": wav_bytes(format_tag=0xFFFE),
    "channels_0": wav_bytes(channels=0),
    "channels_65535": wav_bytes(channels=65535),
    "sample_rate_0": wav_bytes(sample_rate=0),
    "sample_rate_4294967295": wav_bytes(sample_rate=0xFFFFFFFF),
}
