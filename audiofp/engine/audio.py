"""The only audio I/O of audiofp: any container or codec in, mono analysis-rate samples out.

Decoding runs in-process through PyAV (FFmpeg's libraries), which reads every
format an upload may arrive in (wav, flac, ogg/vorbis, opus, mp3, m4a/aac, and
the audio track of mp4/mov/webm/mkv video) and resamples while decoding, so
the whole file never sits in memory at its original rate. Limits are enforced
while decoding, before the cost is paid: the input size up front, the
duration as samples arrive, and a wall-clock budget between packets so that
a hostile file cannot hold a worker.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import soxr

from ..errors import AudioTooLongError, BadAudioError, InputTooLargeError, SilentAudioError
from .types import Audio

Source = str | os.PathLike[str] | bytes | BinaryIO

#: Audio whose peak stays below this (about -66 dBFS) carries nothing to fingerprint.
SILENCE_PEAK = 5e-4

# Keep FFmpeg's probing bounded: a crafted file can otherwise make it read and
# analyse far into the input before the first packet is returned.
_OPEN_OPTIONS = {"probesize": str(5 * 1024 * 1024), "analyzeduration": str(5_000_000)}


def _source_size(source: Source) -> int | None:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            return os.stat(source).st_size
        except FileNotFoundError:
            raise BadAudioError(f"no such file: {os.fspath(source)}") from None
        except OSError as exc:
            raise BadAudioError(f"cannot read {os.fspath(source)}: {exc.strerror}") from None
    try:
        here = source.tell()
        end = source.seek(0, io.SEEK_END)
        source.seek(here)
        return end - here
    except (AttributeError, OSError):
        return None


def _describe(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return "input"


def decode(
    source: Source,
    *,
    sample_rate: int,
    max_bytes: int | None = None,
    max_seconds: float | None = None,
    timeout_seconds: float | None = None,
) -> Audio:
    """Decode the first audio track of a file to mono float32 at ``sample_rate``.

    Parameters
    ----------
    source : path, bytes or binary file object
        The encoded media (audio file or video with an audio track).
    sample_rate : int
        Output rate in Hz.
    max_bytes : int, optional
        Refuse inputs larger than this before reading them.
    max_seconds : float, optional
        Stop and refuse once more than this much audio has been decoded.
    timeout_seconds : float, optional
        Stop and refuse once decoding has taken this long (wall clock).

    Returns
    -------
    Audio
        Mono samples in [-1, 1].

    Raises
    ------
    InputTooLargeError, AudioTooLongError, BadAudioError, SilentAudioError
    """
    name = _describe(source)
    size = _source_size(source)
    if size == 0:
        raise BadAudioError(f"{name} is empty (0 bytes)")
    if max_bytes is not None and size is not None and size > max_bytes:
        raise InputTooLargeError(f"{name} is {size:,} bytes; the limit is {max_bytes:,}")

    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    opened = os.fspath(source) if isinstance(source, (str, os.PathLike)) else source
    started = time.monotonic()
    try:
        with av.open(opened, mode="r", options=_OPEN_OPTIONS) as container:
            samples = _decode_container(container, name, sample_rate, max_seconds, timeout_seconds, started)
    except (BadAudioError, AudioTooLongError):
        raise
    except (av.FFmpegError, EOFError, UnicodeDecodeError, ValueError, OverflowError, MemoryError) as exc:
        raise BadAudioError(f"{name} is not readable audio or video ({exc.__class__.__name__}: {exc})") from None

    if samples.size == 0:
        raise BadAudioError(f"{name} holds no audio samples (empty or truncated)")
    if not np.isfinite(samples).all():
        raise BadAudioError(f"{name} decodes to invalid sample values")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise SilentAudioError(f"{name} is silent: nothing to fingerprint")
    return Audio(samples=samples, sample_rate=sample_rate)


def _decode_container(
    container: av.container.InputContainer,
    name: str,
    sample_rate: int,
    max_seconds: float | None,
    timeout_seconds: float | None,
    started: float,
) -> np.ndarray:
    if not container.streams.audio:
        raise BadAudioError(f"{name} has no audio track")
    stream = container.streams.audio[0]
    codec = stream.codec_context
    if codec is None:
        # FFmpeg found no decoder for what the header declares (a WAV saying
        # 0 bits per sample or an unknown format tag): there is nothing to open.
        raise BadAudioError(f"{name} declares an audio encoding that cannot be decoded (malformed or unknown header)")
    stream.thread_type = "AUTO"
    if max_seconds is not None and stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
        if declared > max_seconds + 1.0:
            raise AudioTooLongError(f"{name} lasts {declared:.0f} s; the limit is {max_seconds:.0f} s")

    # FFmpeg hands out small frames (often ~20 ms); mixing each to mono in numpy
    # and resampling in ~1 s batches keeps the per-frame Python cost low and the
    # memory at the analysis rate, whatever the input rate and length.
    in_rate = codec.sample_rate or stream.rate
    if not in_rate:
        raise BadAudioError(f"{name} declares no sample rate")
    resampler = soxr.ResampleStream(in_rate, sample_rate, 1, dtype="float32", quality="MQ")
    limit = None if max_seconds is None else int(max_seconds * sample_rate) + sample_rate
    pending: list[np.ndarray] = []
    pending_size = 0
    chunks: list[np.ndarray] = []
    total = 0

    def flush(last: bool) -> None:
        # Batches are cut at whole multiples of the input rate, not at codec
        # frame edges, so equal PCM resamples to equal samples whatever the
        # container's frame size (the content digest depends on it).
        nonlocal pending_size, total
        joined = np.concatenate(pending) if pending else np.zeros(0, dtype=np.float32)
        cut = joined.size if last else (joined.size // in_rate) * in_rate
        batch, rest = joined[:cut], joined[cut:]
        pending.clear()
        if rest.size:
            pending.append(rest)
        pending_size = rest.size
        out = resampler.resample_chunk(batch, last=last)
        chunks.append(out)
        total += out.size
        if limit is not None and total > limit:
            raise AudioTooLongError(f"{name} is longer than the limit of {max_seconds:.0f} s")

    try:
        for frame in container.decode(stream):
            if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
                raise BadAudioError(f"decoding {name} took longer than {timeout_seconds:.0f} s")
            mono = _to_mono(frame)
            pending.append(mono)
            pending_size += mono.size
            if pending_size >= in_rate:
                flush(last=False)
    except av.FFmpegError:
        # A corrupt packet after good audio (a truncated upload): keep what decoded
        # cleanly, as players do; a file with nothing decodable is refused by the caller.
        if not chunks and not pending:
            raise
    flush(last=True)
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    np.clip(samples, -1.0, 1.0, out=samples)
    return samples


def _to_mono(frame: av.AudioFrame) -> np.ndarray:
    """Average a frame's channels to float32 mono, whatever its sample format."""
    data = frame.to_ndarray()
    fmt = frame.format
    if not fmt.is_planar:
        data = data.reshape(-1, len(frame.layout.channels)).T
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        scale = float(max(-int(info.min), int(info.max)))
        offset = 0.0 if data.dtype.kind == "i" else (int(info.max) + 1) / 2.0
        data = (data.astype(np.float32) - offset) / scale
    mono = data.mean(axis=0, dtype=np.float32) if data.shape[0] > 1 else data[0].astype(np.float32, copy=False)
    return np.ascontiguousarray(mono)


def content_digest(audio: Audio) -> str:
    """SHA-256 of the decoded samples quantised to 16 bits: equal for equal decoded content."""
    pcm = np.round(audio.samples * 32767.0).astype("<i2")
    return hashlib.sha256(pcm.tobytes()).hexdigest()
