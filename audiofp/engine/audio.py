"""The only audio I/O of audiofp: any container or codec in, mono analysis-rate samples out.

Decoding runs in-process through PyAV (FFmpeg's libraries), which reads every
format an upload may arrive in (wav, flac, ogg/vorbis, opus, mp3, m4a/aac, and
every audio track of mp4/mov/webm/mkv video) and resamples while decoding,
handing out blocks of about a second, so a file never sits in memory whole at
its original rate. Limits are enforced before the cost is paid: the input
size and track count up front, the duration as samples arrive, and a
wall-clock budget (a :class:`Deadline` the later stages share) between
packets, so that a hostile file cannot hold a worker.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import soxr

from ..errors import (
    AudioFPError,
    AudioTooLongError,
    BadAudioError,
    CheckTimeoutError,
    InputTooLargeError,
    SilentAudioError,
)
from .types import Audio

Source = str | os.PathLike[str] | bytes | BinaryIO

#: Audio whose peak stays below this (about -66 dBFS) carries nothing to fingerprint.
SILENCE_PEAK = 5e-4

# Keep FFmpeg's probing bounded: a crafted file can otherwise make it read and
# analyse far into the input before the first packet is returned.
_OPEN_OPTIONS = {
    "probesize": str(5 * 1024 * 1024),
    "analyzeduration": str(5_000_000),
    # An upload is one file: never let a demuxer open another file, a URL or a
    # socket (a session description makes FFmpeg listen for RTP; a playlist
    # or concat list names other files). Only these demuxers may read it.
    "protocol_whitelist": "file",
    "format_whitelist": ",".join([
        "wav", "w64", "flac", "ogg", "mp3", "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "aac",
        "ac3", "eac3", "aiff", "caf", "amr", "avi", "flv", "mpegts", "mpeg", "asf", "au", "wv", "ape", "tta", "dts",
        "truehd", "mlp", "wsaud", "voc", "rm", "nut",
    ]),
}

#: Planar frames with this many channels or more are mixed to mono by FFmpeg,
#: not read in numpy: PyAV's ``to_ndarray`` reads past the plane pointers of
#: such frames (7.1 AAC or Vorbis crashed the worker). Packed frames hold one
#: plane whatever their channel count, and are read directly.
_FFMPEG_DOWNMIX_CHANNELS = 8


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


class Deadline:
    """A wall-clock budget shared by every stage that handles one input.

    Decoding, fingerprinting and matching each check it between bounded
    pieces of work, so a hostile or merely huge input cannot hold a worker
    past the budget, whichever stage it makes slow. The budget is a fixed
    part plus an allowance per second of audio decoded: a long upload earns
    the time its length needs, a file that decodes to nothing earns none.

    Parameters
    ----------
    seconds : float or None
        The fixed part; None for no limit.
    per_audio_second : float
        Seconds added for each second of audio decoded.
    """

    def __init__(self, seconds: float | None, per_audio_second: float = 0.0) -> None:
        self.seconds = seconds
        self.per_audio_second = per_audio_second
        self._ends = None if seconds is None else time.monotonic() + seconds

    def credit(self, audio_seconds: float) -> None:
        """Extend the budget for ``audio_seconds`` more of decoded audio."""
        if self._ends is not None:
            self._ends += audio_seconds * self.per_audio_second
            self.seconds = (self.seconds or 0.0) + audio_seconds * self.per_audio_second

    def check(self, what: str) -> None:
        """Raise :class:`CheckTimeoutError` if the budget is spent."""
        if self._ends is not None and time.monotonic() > self._ends:
            raise CheckTimeoutError(f"{what} took longer than the limit of {self.seconds:.3g} s")


@dataclass(frozen=True)
class Track:
    """One audio track of a file, decoded lazily.

    ``blocks`` yields mono float32 samples at the analysis rate, in pieces of
    about a second; it must be consumed before the next track is opened.
    ``decodable`` is False when FFmpeg has no decoder for what the track
    declares; its ``blocks`` is then empty.
    """

    index: int
    decodable: bool
    blocks: Iterator[np.ndarray]


def tracks(
    source: Source,
    *,
    sample_rate: int,
    max_bytes: int | None = None,
    max_seconds: float | None = None,
    max_tracks: int | None = None,
    deadline: Deadline | None = None,
) -> Iterator[Track]:
    """Every audio track of a file, one after the other, decoded in blocks.

    Each track is read in a pass of its own (packets of the other streams are
    skipped, not decoded), so memory holds one block of one track at a time,
    whatever the file's length and track count.

    Parameters
    ----------
    source : path, bytes or seekable binary file object
        The encoded media (audio file or video with audio tracks).
    sample_rate : int
        Output rate in Hz.
    max_bytes : int, optional
        Refuse inputs larger than this before reading them.
    max_seconds : float, optional
        Refuse a track once more than this much of it has been decoded.
    max_tracks : int, optional
        Refuse files with more audio tracks than this (each would be checked).
    deadline : Deadline, optional
        Checked between packets.

    Yields
    ------
    Track

    Raises
    ------
    InputTooLargeError, AudioTooLongError, BadAudioError, CheckTimeoutError
        Raised when the track list is read or, for a track, while its blocks are consumed.
    """
    name = _describe(source)
    size = _source_size(source)
    if size == 0:
        raise BadAudioError(f"{name} is empty (0 bytes)")
    if max_bytes is not None and size is not None and size > max_bytes:
        raise InputTooLargeError(f"{name} is {size:,} bytes; the limit is {max_bytes:,}")
    deadline = deadline or Deadline(None)
    reopen = _opener(source)

    with _reading(name):
        container = reopen()  # the first track is read from this opening; each other track reopens the file
    try:
        count = len(container.streams.audio)
    except BaseException:
        container.close()
        raise
    if count == 0 or (max_tracks is not None and count > max_tracks):
        container.close()
        if count == 0:
            raise BadAudioError(f"{name} has no audio track")
        raise BadAudioError(f"{name} has {count} audio tracks; at most {max_tracks} are checked, so it is refused")
    for index in range(count):
        if index:
            with _reading(name):
                container = reopen()
        try:
            stream = container.streams.audio[index]
            decodable = stream.codec_context is not None
            label = name if count == 1 else f"{name} (audio track {index})"
            blocks = _decode_stream(container, stream, label, sample_rate, max_seconds, deadline) if decodable else iter(())
            yield Track(index=index, decodable=decodable, blocks=blocks)
        finally:
            container.close()


def decode(
    source: Source,
    *,
    sample_rate: int,
    max_bytes: int | None = None,
    max_seconds: float | None = None,
    timeout_seconds: float | None = None,
) -> Audio:
    """Decode the first audio track of a file to mono float32 at ``sample_rate``.

    The whole track is returned as one array: for the CLI and the benchmark,
    which add or check files one at a time. Uploads go through :func:`tracks`,
    which checks every track in bounded memory.

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
    InputTooLargeError, AudioTooLongError, BadAudioError, SilentAudioError, CheckTimeoutError
    """
    name = _describe(source)
    all_tracks = tracks(source, sample_rate=sample_rate, max_bytes=max_bytes, max_seconds=max_seconds,
                        deadline=Deadline(timeout_seconds))
    try:
        first = next(all_tracks)
        if not first.decodable:
            # FFmpeg found no decoder for what the header declares (a WAV saying
            # 0 bits per sample or an unknown format tag): there is nothing to open.
            raise BadAudioError(
                f"{name} declares an audio encoding that cannot be decoded (malformed or unknown header)")
        pieces = list(first.blocks)
    finally:
        all_tracks.close()  # the first track's container stays open until its blocks are read
    samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if samples.size == 0:
        raise BadAudioError(f"{name} holds no audio samples (empty or truncated)")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise SilentAudioError(f"{name} is silent: nothing to fingerprint")
    return Audio(samples=samples, sample_rate=sample_rate)


def _opener(source: Source) -> Callable[[], av.container.InputContainer]:
    """A function that opens ``source`` afresh, once per track."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return lambda: av.open(io.BytesIO(data), mode="r", options=_OPEN_OPTIONS)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        return lambda: av.open(path, mode="r", options=_OPEN_OPTIONS)
    start = source.tell()

    def reopen() -> av.container.InputContainer:
        source.seek(start)
        return av.open(source, mode="r", options=_OPEN_OPTIONS)

    return reopen


@contextmanager
def _reading(name: str) -> Iterator[None]:
    """Turn FFmpeg's (and Python's) errors on unreadable input into :class:`BadAudioError`."""
    try:
        yield
    except AudioFPError:
        raise
    except _DECODE_FAILURES as exc:
        raise BadAudioError(f"{name} is not readable audio or video ({exc.__class__.__name__}: {exc})") from None


_DECODE_FAILURES = (av.FFmpegError, EOFError, UnicodeDecodeError, ValueError, OverflowError, MemoryError)


def _decode_stream(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    name: str,
    sample_rate: int,
    max_seconds: float | None,
    deadline: Deadline,
) -> Iterator[np.ndarray]:
    """Decode one audio stream to mono blocks at ``sample_rate`` (clipped to [-1, 1])."""
    with _reading(name):
        codec = stream.codec_context
        stream.thread_type = "AUTO"
        if max_seconds is not None and stream.duration is not None and stream.time_base is not None:
            declared = float(stream.duration * stream.time_base)
            if declared > max_seconds + 1.0:
                raise AudioTooLongError(f"{name} lasts {declared:.0f} s; the limit is {max_seconds:.0f} s")
        in_rate = codec.sample_rate or stream.rate
        if not in_rate:
            raise BadAudioError(f"{name} declares no sample rate")
        # FFmpeg hands out small frames (often ~20 ms); mixing each to mono in
        # numpy and resampling in ~1 s batches keeps the per-frame Python cost
        # low and the memory at one batch, whatever the input rate and length.
        resampler = soxr.ResampleStream(in_rate, sample_rate, 1, dtype="float32", quality="MQ")
    limit = None if max_seconds is None else int(max_seconds * sample_rate) + sample_rate
    pending: list[np.ndarray] = []
    pending_size = 0
    total = 0
    decoded_any = False

    def flush(last: bool) -> np.ndarray:
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
        total += out.size
        deadline.credit(out.size / sample_rate)
        if limit is not None and total > limit:
            raise AudioTooLongError(f"{name} is longer than the limit of {max_seconds:.0f} s")
        if not np.isfinite(out).all():
            raise BadAudioError(f"{name} decodes to invalid sample values")
        return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)

    downmix = _Downmix()
    frames = container.decode(stream)
    while True:
        deadline.check(f"checking {name}")
        try:
            with _reading(name):
                frame = next(frames, None)
        except BadAudioError:
            # A corrupt packet after good audio (a truncated upload): keep what
            # decoded cleanly, as players do; with nothing decoded it is refused.
            if not decoded_any:
                raise
            break
        if frame is None:
            break
        with _reading(name):
            mono = _to_mono(frame, downmix)
        decoded_any = True
        pending.append(mono)
        pending_size += mono.size
        if pending_size >= in_rate:
            block = flush(last=False)
            if block.size:
                yield block
    block = flush(last=True)
    if block.size:
        yield block


class _Downmix:
    """FFmpeg's own mix to mono, for frames with too many channels to read in numpy."""

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None

    def __call__(self, frame: av.AudioFrame) -> np.ndarray:
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=frame.sample_rate)
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)


def _to_mono(frame: av.AudioFrame, downmix: _Downmix) -> np.ndarray:
    """Average a frame's channels to float32 mono, whatever its sample format."""
    channels = len(frame.layout.channels)
    fmt = frame.format
    if fmt.is_planar and (channels == 0 or channels >= _FFMPEG_DOWNMIX_CHANNELS):
        return downmix(frame)
    data = frame.to_ndarray()
    if not fmt.is_planar:
        data = data.reshape(-1, channels).T
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
