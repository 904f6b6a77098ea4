"""A corpus of hostile requests for the upload endpoints, generated at test time.

Nothing binary is committed: a few seconds of tones and noise are written
with numpy and encoded with ffmpeg into every container an upload may arrive
in (wav, mp3, ogg, opus, m4a, mp4 with video, mkv, webm, flac), once, into a
cache folder (pytest's cache, kept across runs); every hostile case is then
built from those bytes (cut, corrupted, mislabelled, lying about their
length or channels) or from headers and multipart bodies written by hand. Each case is a
whole request to ``/v1/match`` or ``/v1/uploads``: the file part, the form
fields, the request headers, or a raw body for multipart the test client would
never write.

A case may say what it must be answered (``upload``, ``match``: a set of
statuses); the tests check every case, whatever it says, for what every
answer must be: a problem document or a correct verdict, never a 5xx
(``tests/api/test_hostile_inputs.py``). To add a case, add a ``Case`` to one of
the groups below; its id is the test id.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from crafted_media import wav_bytes

#: Seconds of audio in every generated file: enough to fingerprint, fast to decode.
BASE_SECONDS = 3.0
BASE_RATE = 22050

#: The upload time every case sends unless it changes it.
UPLOADED_AT = "2024-05-01T12:00:00Z"

#: Limits of the app the corpus runs against (the tests configure it so): small,
#: so that bombs and oversize bodies cost milliseconds, not minutes.
MAX_AUDIO_SECONDS = 60.0
MAX_UPLOAD_BYTES = 4 * 1024 * 1024


# --- base media ----------------------------------------------------------------

def _base_pcm() -> np.ndarray:
    """A deterministic signal with peaks to fingerprint: two gliding tones over soft noise."""
    t = np.arange(int(BASE_SECONDS * BASE_RATE)) / BASE_RATE
    rng = np.random.default_rng(20240501)
    sweep = np.sin(2 * np.pi * (300 * t + 200 * t ** 2))
    sweep += 0.6 * np.sin(2 * np.pi * 1250 * t * (1 + 0.1 * np.sin(3 * t)))
    pulses = (np.sin(2 * np.pi * 4 * t) > 0.7) * np.sin(2 * np.pi * 2300 * t)
    return (0.25 * (sweep + pulses) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def wav_of(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


#: Container -> the ffmpeg arguments encoding the base WAV (input 0) into it;
#: ``video`` ones also read a tiny colour source (input 1).
ENCODINGS: dict[str, tuple[list[str], bool]] = {
    "mp3": (["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"], False),
    "ogg": (["-c:a", "libvorbis", "-q:a", "2", "-f", "ogg"], False),
    "opus": (["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"], False),
    "m4a": (["-c:a", "aac", "-b:a", "64k", "-f", "ipod"], False),
    "flac": (["-c:a", "flac", "-f", "flac"], False),
    "mkv": (["-c:a", "libvorbis", "-q:a", "2", "-c:v", "mjpeg", "-f", "matroska"], True),
    "mp4": (["-c:a", "aac", "-b:a", "64k", "-c:v", "mpeg4", "-f", "mp4"], True),
    "webm": (["-c:a", "libopus", "-b:a", "32k", "-c:v", "libvpx", "-deadline", "realtime", "-f", "webm"], True),
}

FORMATS = ("wav", *ENCODINGS)


def _ffmpeg(args: list[str], out: Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args, str(out)],
                   check=True, timeout=60)


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


#: Bump when the base signal changes: cached files are named by what made them.
MEDIA_VERSION = 1


class Media:
    """The base files, encoded on first use into ``folder``.

    A file's name carries a digest of what made it (the ffmpeg arguments, the
    source bytes), so ``folder`` may be kept across runs (pytest's cache) and
    shared by xdist workers: a recipe that changes makes a new file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, bytes] = {}

    def _path(self, name: str, recipe: object) -> Path:
        digest = hashlib.sha1(repr((MEDIA_VERSION, recipe)).encode()).hexdigest()[:12]
        stem, dot, ext = name.partition(".")
        return self.folder / f"{stem}-{digest}{dot}{ext}"

    def _make(self, name: str, recipe: object, build: Callable[[Path], None]) -> bytes:
        path = self._path(name, recipe)
        if path.name not in self._cache:
            if not path.exists():
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                build(tmp)
                tmp.replace(path)  # atomic: xdist workers may build the same file at once
            self._cache[path.name] = path.read_bytes()
        return self._cache[path.name]

    def base_wav(self) -> bytes:
        recipe = ("base", BASE_SECONDS, BASE_RATE)
        return self._make("base.wav", recipe, lambda p: p.write_bytes(wav_of(_base_pcm(), BASE_RATE)))

    def base_wav_path(self) -> str:
        """The base WAV on disk, for ffmpeg to read."""
        self.base_wav()
        return str(self._path("base.wav", ("base", BASE_SECONDS, BASE_RATE)))

    def encoded(self, fmt: str) -> bytes:
        """The base audio in container ``fmt`` (one of :data:`FORMATS`)."""
        if fmt == "wav":
            return self.base_wav()
        args, video = ENCODINGS[fmt]
        source = self.base_wav_path()

        def build(out: Path) -> None:
            inputs = ["-i", source]
            if video:
                inputs += ["-f", "lavfi", "-i", f"color=c=navy:s=32x32:r=5:d={BASE_SECONDS}"]
            _ffmpeg([*inputs, *args, "-shortest"], out)

        return self._make(f"base.{fmt}", (source, args, video), build)

    def generated(self, name: str, args: list[str]) -> bytes:
        """Whatever ffmpeg writes with ``args``."""
        return self._make(name, args, lambda out: _ffmpeg(args, out))

    def transcoded(self, name: str, source: bytes, args: list[str]) -> bytes:
        """``source`` (a file ffmpeg reads) rewritten by ffmpeg with output ``args``."""
        def build(out: Path) -> None:
            src = out.with_name(out.name + ".src")
            src.write_bytes(source)
            try:
                _ffmpeg(["-i", str(src), *args], out)
            finally:
                src.unlink()

        return self._make(name, (hashlib.sha1(source).hexdigest(), args), build)


# --- hand-written headers ------------------------------------------------------

def riff_lie(riff_size: int, data_size: int, data: bytes | None = None) -> bytes:
    """A WAV whose RIFF and data chunk sizes say what the caller wants, around real PCM."""
    wav = wav_bytes(data)
    fmt_end = 12 + 8 + 16
    pcm = wav[fmt_end + 8:]
    return (b"RIFF" + struct.pack("<I", riff_size & 0xFFFFFFFF) + wav[8:fmt_end]
            + b"data" + struct.pack("<I", data_size & 0xFFFFFFFF) + pcm)


def rf64_huge(samples: int) -> bytes:
    """An RF64 (64-bit WAV) whose ds64 chunk declares ``samples`` 16-bit mono samples at 8 kHz."""
    pcm = wav_bytes()[44:]
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    data_bytes = samples * 2
    ds64 = struct.pack("<QQQI", data_bytes + 36 + 28, data_bytes, samples, 0)
    body = (b"WAVE" + b"ds64" + struct.pack("<I", len(ds64)) + ds64 + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", 0xFFFFFFFF) + pcm)
    return b"RF64" + struct.pack("<I", 0xFFFFFFFF) + body


def flac_total_samples(flac: bytes, total: int) -> bytes:
    """A FLAC whose STREAMINFO declares ``total`` samples (36 bits), whatever it holds."""
    assert flac[:4] == b"fLaC"
    data = bytearray(flac)
    # STREAMINFO follows the 4-byte block header at offset 8; total samples are the low
    # 4 bits of byte 21 and the 4 bytes after (after min/max block and frame sizes).
    off = 8 + 13
    data[off] = (data[off] & 0xF0) | ((total >> 32) & 0x0F)
    data[off + 1:off + 5] = struct.pack(">I", total & 0xFFFFFFFF)
    return bytes(data)


def wav_with(samples_bytes: bytes, *, channels: int = 1, rate: int = 8000, bits: int = 16, tag: int = 1) -> bytes:
    return wav_bytes(samples_bytes, channels=channels, sample_rate=rate, bits_per_sample=bits, format_tag=tag)


def float_wav(values: np.ndarray, rate: int = 8000) -> bytes:
    return wav_with(values.astype("<f4").tobytes(), rate=rate, bits=32, tag=3)


def png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def xor_range(data: bytes, start: int, length: int) -> bytes:
    """``data`` with ``length`` bytes from ``start`` inverted (a corrupted header or packet)."""
    out = bytearray(data)
    for i in range(start, min(len(out), start + length)):
        out[i] ^= 0xFF
    return bytes(out)


def noise_over(data: bytes, start: int, length: int, seed: int = 7) -> bytes:
    out = bytearray(data)
    end = min(len(out), start + length)
    out[start:end] = np.random.default_rng(seed).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    return bytes(out)


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def ogg_edit_first_packet(ogg: bytes, offset: int, value: bytes) -> bytes:
    """``ogg`` with bytes of its first packet (the codec's identification header) replaced,
    and the page checksum recomputed so that the demuxer believes the lie."""
    assert ogg[:4] == b"OggS"
    segments = ogg[26]
    header_len = 27 + segments
    page_len = header_len + sum(ogg[27:header_len])
    page = bytearray(ogg[:page_len])
    start = header_len + offset
    page[start:start + len(value)] = value
    page[22:26] = b"\0\0\0\0"
    page[22:26] = struct.pack("<I", _ogg_crc(bytes(page)))
    return bytes(page) + ogg[page_len:]


def flac_streaminfo_channels(flac: bytes, channels: int) -> bytes:
    """A FLAC whose STREAMINFO declares ``channels`` (1-8) channels, whatever its frames hold."""
    data = bytearray(flac)
    off = 8 + 12  # sample rate (20 bits), channels - 1 (3 bits), bits per sample - 1 (5 bits)
    data[off] = (data[off] & 0xF1) | (((channels - 1) & 0x7) << 1)
    return bytes(data)


def playlist(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# --- multipart written by hand ------------------------------------------------

BOUNDARY = "hostile-boundary-7MA4YWxkTrZu0gW"


@dataclass(frozen=True)
class Part:
    name: str | None
    value: bytes
    filename: str | None = None
    content_type: str | None = None
    raw_disposition: bytes | None = None  # replaces the whole Content-Disposition line


def encode_multipart(parts: list[Part], boundary: str = BOUNDARY, *, close: bool = True) -> bytes:
    out = io.BytesIO()
    for part in parts:
        out.write(f"--{boundary}\r\n".encode())
        if part.raw_disposition is not None:
            out.write(part.raw_disposition + b"\r\n")
        else:
            disposition = f'form-data; name="{part.name}"'
            if part.filename is not None:
                disposition += f'; filename="{part.filename}"'
            out.write(f"Content-Disposition: {disposition}\r\n".encode())
        if part.content_type is not None:
            out.write(f"Content-Type: {part.content_type}\r\n".encode())
        out.write(b"\r\n" + part.value + b"\r\n")
    if close:
        out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


@dataclass(frozen=True)
class Request:
    """One request, as bytes: what the test client sends."""

    body: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # a declared length other than the body's
    watch_udp_port: int | None = None  # a port the server must not open because of this request
    query: str = ""  # appended to the path after "?", already encoded


#: Marks a default field the case leaves out.
OMIT = object()


@dataclass(frozen=True)
class Case:
    """A hostile request to both upload endpoints.

    By default the request is a well-formed multipart upload of ``file`` with
    the usual fields; a case changes the file, the filename and the part's type,
    overrides or omits fields (``fields``; values may be bytes), adds parts,
    or replaces the whole body (``raw``). ``upload`` and ``match`` are the
    statuses allowed on each endpoint when the case knows them (None: any
    4xx problem or 2xx verdict).
    """

    id: str
    file: Callable[[Media], bytes] | None = None
    filename: str = "upload.bin"
    file_type: str | None = "application/octet-stream"
    fields: dict[str, object] = field(default_factory=dict)
    extra_parts: tuple[Part, ...] = ()
    parts: Callable[[Media, dict[str, bytes]], list[Part]] | None = None
    raw: Callable[[Media, dict[str, bytes]], Request] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""
    #: Builds the file around a free UDP port the server must never listen on (see ``Request.watch_udp_port``).
    file_with_port: Callable[[int], bytes] | None = None
    upload: frozenset[int] | None = None
    match: frozenset[int] | None = None
    #: Why the case fails today, for a bug outside the files this corpus may fix (xfail, strict).
    xfail: str | None = None
    #: Whether the request may crash the process that answers it (the decoder reads hostile media):
    #: the tests then answer it in a forked worker. Requests that are hostile only in their shape
    #: (multipart, fields, labels) around intact media are answered in-process, which is cheaper.
    isolate: bool = True

    def form_fields(self, content_id: str) -> dict[str, bytes]:
        """The form fields this case sends to ``/v1/uploads`` (the defaults, as the case changes them)."""
        fields = {"content_id": content_id.encode(), "account_id": f"acct-{content_id[-12:]}".encode(),
                  "uploaded_at": UPLOADED_AT.encode()}
        for name, value in self.fields.items():
            if value is OMIT:
                fields.pop(name, None)
            else:
                fields[name] = value if isinstance(value, bytes) else str(value).encode()
        return fields

    def request(self, media: Media, content_id: str) -> Request:
        fields = self.form_fields(content_id)
        if self.raw is not None:
            request = self.raw(media, fields)
            return Request(request.body, request.content_type, {**request.headers, **self.headers},
                           request.content_length, query=self.query)
        port = None
        if self.parts is not None:
            parts = self.parts(media, fields)
        else:
            if self.file_with_port is not None:
                port = free_udp_port_pair()
                data = self.file_with_port(port)
            else:
                data = (self.file or base("wav"))(media)
            parts = [Part("file", data, self.filename, self.file_type)]
            parts += [Part(name, value) for name, value in fields.items()]
        parts += list(self.extra_parts)
        return Request(encode_multipart(parts), f"multipart/form-data; boundary={BOUNDARY}", dict(self.headers),
                       watch_udp_port=port, query=self.query)


def free_udp_port_pair() -> int:
    """An even UDP port that is free on 127.0.0.1, with the odd one after it (RTP and RTCP)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1] & ~1
        if port > 1024 and udp_port_is_free(port) and udp_port_is_free(port + 1):
            return port
    raise RuntimeError("no free UDP port pair")


def udp_port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def udp_ports_listening() -> set[int] | None:
    """Local UDP ports with a socket bound, read from /proc (never by binding, which would race
    the process being watched); None where /proc/net/udp does not exist."""
    ports: set[int] = set()
    found = False
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as lines:
                next(lines)
                found = True
                for line in lines:
                    local = line.split()[1]
                    ports.add(int(local.rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports if found else None


def base(fmt: str) -> Callable[[Media], bytes]:
    return lambda media: media.encoded(fmt)


def _s(*codes: int) -> frozenset[int]:
    return frozenset(codes)


OK_UPLOAD = _s(200, 201)
OK_MATCH = _s(200)
BAD_MEDIA = _s(422)
TOO_LONG = _s(413)


def _cut(fmt: str, where: int | float) -> Callable[[Media], bytes]:
    """The first ``where`` bytes (an int) or that fraction (a float) of the base ``fmt`` file."""

    def build(media: Media) -> bytes:
        data = media.encoded(fmt)
        n = where if isinstance(where, int) else max(1, int(len(data) * where))
        return data[:n]

    return build


def _xor(fmt: str, start: int, length: int) -> Callable[[Media], bytes]:
    return lambda media: xor_range(media.encoded(fmt), start, length)


def _noise(fmt: str, fraction: float, length: int) -> Callable[[Media], bytes]:
    def build(media: Media) -> bytes:
        data = media.encoded(fmt)
        return noise_over(data, int(len(data) * fraction), length)

    return build


def _const(data: bytes) -> Callable[[Media], bytes]:
    return lambda media: data


# --- the corpus ----------------------------------------------------------------

def _container_cases() -> list[Case]:
    cases = []
    for fmt in FORMATS:
        cases.append(Case(f"{fmt}-intact", base(fmt), filename=f"clip.{fmt}", upload=OK_UPLOAD, match=OK_MATCH))
        for where in (1, 12, 45, 300):
            cases.append(Case(f"{fmt}-cut-at-{where}-bytes", _cut(fmt, where), filename=f"clip.{fmt}"))
        for fraction in (0.1, 0.6):
            cases.append(Case(f"{fmt}-cut-at-{int(fraction * 100)}pct", _cut(fmt, fraction), filename=f"clip.{fmt}"))
        cases.append(Case(f"{fmt}-header-inverted", _xor(fmt, 0, 64), filename=f"clip.{fmt}"))
        cases.append(Case(f"{fmt}-magic-intact-header-inverted", _xor(fmt, 4, 40), filename=f"clip.{fmt}"))
        cases.append(Case(f"{fmt}-noise-mid-file", _noise(fmt, 0.4, 2048), filename=f"clip.{fmt}"))
    return cases


def _long_silence(media: Media, fmt: str, codec: list[str], seconds: int) -> bytes:
    return media.generated(f"silence-{seconds}s.{fmt}", [
        "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", str(seconds), *codec, "-f", fmt])


def _bomb_cases() -> list[Case]:
    seconds = int(MAX_AUDIO_SECONDS * 10)
    return [
        # a tiny file of long silence: refused as too long or as silence, without decoding it all
        Case("flac-long-silence", lambda m: _long_silence(m, "flac", ["-c:a", "flac"], seconds), filename="s.flac",
             upload=_s(413, 422), match=_s(413, 422)),
        # the same, streaming: FLAC with 0 (unknown) total samples, so nothing declares the length
        Case("flac-long-silence-length-undeclared",
             lambda m: flac_total_samples(_long_silence(m, "flac", ["-c:a", "flac"], seconds), 0), filename="s.flac",
             upload=_s(413, 422), match=_s(413, 422)),
        Case("ogg-long-silence", lambda m: _long_silence(m, "ogg", ["-c:a", "libvorbis", "-q:a", "0"], seconds),
             filename="s.ogg", upload=_s(413, 422), match=_s(413, 422)),
        Case("mp3-long-tone-no-header", lambda m: m.generated("tone-long.mp3", [
            "-f", "lavfi", "-i", "sine=f=1000:r=8000", "-t", str(seconds), "-c:a", "libmp3lame", "-b:a", "8k",
            "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3"]), filename="t.mp3", upload=TOO_LONG,
             match=TOO_LONG),
        Case("flac-declares-2-to-36-samples", lambda m: flac_total_samples(m.encoded("flac"), 2 ** 36 - 1),
             filename="c.flac"),
        Case("wav-data-size-4-GB", _const(riff_lie(0xFFFFFFFF, 0xFFFFFFF0)), filename="huge.wav"),
        Case("wav-riff-size-4-GB", _const(riff_lie(0xFFFFFFFF, 16000)), filename="huge.wav"),
        Case("wav-riff-size-says-4-bytes", _const(riff_lie(4, 16000)), filename="small.wav"),
        Case("wav-data-size-0", _const(riff_lie(36, 0)), filename="zero.wav"),
        Case("wav-data-size-odd", _const(riff_lie(0xFFFFFFFF, 15999)), filename="odd.wav"),
        Case("rf64-declares-2-to-62-samples", _const(rf64_huge(2 ** 62)), filename="huge.wav"),
        Case("wav-1-hz-long-declared", _const(wav_with(bytes(2 * 8000), rate=1)), filename="slow.wav"),
        Case("wav-2-to-31-hz", _const(wav_with(wav_bytes()[44:], rate=2 ** 31 - 1)), filename="fast.wav"),
        Case("wav-384-khz", _const(wav_of(np.sin(np.arange(384000) * 0.05).astype(np.float32) * 0.3, 384000)),
             filename="hi.wav", upload=OK_UPLOAD, match=OK_MATCH),
    ]


def _tiny_cases() -> list[Case]:
    dc = np.full(8000 * 2, 0.5, np.float32)
    return [
        Case("empty-file", _const(b""), upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("one-byte", _const(b"\x00"), upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("wav-1-sample", _const(wav_of(np.array([0.5], np.float32), 8000)), filename="one.wav",
             upload=OK_UPLOAD, match=OK_MATCH),
        Case("flac-1-sample", lambda m: m.generated("one-sample.flac", [
            "-f", "lavfi", "-i", "aevalsrc=0.5:s=8000:d=0.000125", "-c:a", "flac", "-f", "flac"]), filename="one.flac"),
        Case("wav-dc-half", _const(wav_of(dc, 8000)), filename="dc.wav", upload=OK_UPLOAD, match=OK_MATCH),
        Case("wav-dc-full-scale", _const(wav_with(b"\xff\x7f" * 16000)), filename="dc.wav", upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("wav-dc-negative-full-scale", _const(wav_with(b"\x00\x80" * 16000)), filename="dc.wav"),
        Case("flac-dc", lambda m: m.generated("dc.flac", [
            "-f", "lavfi", "-i", "aevalsrc=0.5:s=8000:d=2", "-c:a", "flac", "-f", "flac"]), filename="dc.flac"),
        Case("wav-digital-silence", _const(wav_with(bytes(32000))), filename="quiet.wav"),
        Case("wav-float-nan", _const(float_wav(np.full(8000, np.nan))), filename="nan.wav", upload=BAD_MEDIA,
             match=BAD_MEDIA),
        Case("wav-float-inf", _const(float_wav(np.concatenate([np.zeros(4000), np.full(4000, np.inf)]))),
             filename="inf.wav"),
        Case("wav-float-1e30", _const(float_wav(np.sin(np.arange(16000) * 0.3) * 1e30)), filename="loud.wav"),
        Case("wav-8-bit-unsigned", _const(wav_of(_base_pcm(), BASE_RATE, "PCM_U8")), filename="u8.wav",
             upload=OK_UPLOAD, match=OK_MATCH),
        Case("wav-24-bit", _const(wav_of(_base_pcm(), BASE_RATE, "PCM_24")), filename="s24.wav", upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("wav-255-channels", _const(wav_with(np.tile(np.frombuffer(wav_bytes()[44:], "<i2")[:800], (255, 1))
                                                 .T.astype("<i2").tobytes(), channels=255)), filename="many.wav"),
        Case("wav-255-channels-extensible", _const(wav_extensible(channels=255)), filename="many.wav"),
        Case("wav-255-channels-no-data", _const(wav_with(b"", channels=255)), filename="many.wav"),
        Case("wav-3-channels-odd-block", _const(wav_with(wav_bytes()[44:44 + 16001], channels=3)),
             filename="three.wav"),
        Case("wav-stereo-odd-data", _const(wav_with(wav_bytes()[44:44 + 3], channels=2)), filename="odd.wav"),
        Case("text-file", _const(b"this is not audio\n" * 100), filename="notes.txt", upload=BAD_MEDIA,
             match=BAD_MEDIA),
        Case("png-image", _const(png_1x1()), filename="image.png", file_type="image/png", upload=BAD_MEDIA,
             match=BAD_MEDIA),
        Case("random-bytes", _const(np.random.default_rng(11).integers(0, 256, 64_000, dtype=np.uint8).tobytes()),
             upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("zip-bomb-shaped", _const(b"PK\x03\x04" + bytes(26) + zlib.compress(bytes(4_000_000), 9)),
             filename="a.zip", upload=BAD_MEDIA, match=BAD_MEDIA),
    ]


def wav_extensible(channels: int) -> bytes:
    """A WAVE_FORMAT_EXTENSIBLE header with ``channels`` channels and an all-bits channel mask."""
    frames = 400
    data = np.zeros((frames, channels), "<i2")
    data[:, 0] = (np.sin(np.arange(frames) * 0.3) * 8000).astype("<i2")
    pcm = data.tobytes()
    block = channels * 2
    pcm_guid = bytes.fromhex("0100000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, 8000, 8000 * block, block, 16, 22, 16, 0xFFFFFFFF) + pcm_guid
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _label_cases() -> list[Case]:
    return [
        Case("mp3-named-wav", base("mp3"), filename="clip.wav", file_type="audio/wav", upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("wav-named-mp4", base("wav"), filename="clip.mp4", file_type="video/mp4", upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("ogg-typed-image-png", base("ogg"), filename="clip.png", file_type="image/png", upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("flac-typed-text-html", base("flac"), filename="index.html", file_type="text/html; charset=utf-8",
             upload=OK_UPLOAD, match=OK_MATCH),
        Case("m4a-no-part-type", base("m4a"), filename="clip", file_type=None, upload=OK_UPLOAD, match=OK_MATCH),
        Case("filename-path-traversal", base("wav"), filename="../../../../etc/passwd", upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("filename-unicode-and-control", base("wav"), filename="\u202eevil\u0007\U0001f3b5.wav",
             upload=OK_UPLOAD, match=OK_MATCH),
        Case("filename-4-kb", base("wav"), filename="a" * 4096 + ".wav", upload=OK_UPLOAD, match=OK_MATCH),
        Case("empty-filename", base("wav"), filename="", upload=_s(200, 201, 400), match=_s(200, 400)),
        Case("part-type-garbage", base("wav"), file_type="\x7f;;;==;charset", upload=OK_UPLOAD, match=OK_MATCH),
    ]


def _parts_with(file_parts: list[Part]) -> Callable[[Media, dict[str, bytes]], list[Part]]:
    return lambda media, fields: file_parts + [Part(k, v) for k, v in fields.items()]


def _wav_part(media: Media | None = None, filename: str = "a.wav", name: str = "file") -> Part:
    return Part(name, wav_of(_base_pcm(), BASE_RATE), filename, "audio/wav")


def _raw_multipart(content_type: str, *, close: bool = True, boundary: str = BOUNDARY,
                   length: Callable[[int], int] | None = None, transform: Callable[[bytes], bytes] = lambda b: b):
    """A raw request: the usual upload, encoded (and then ``transform``-ed) by hand, sent as ``content_type``;
    ``length`` maps the body's real length to the Content-Length declared."""

    def build(media: Media, fields: dict[str, bytes]) -> Request:
        parts = [Part("file", media.base_wav(), "a.wav", "audio/wav")] + [Part(k, v) for k, v in fields.items()]
        body = transform(encode_multipart(parts, boundary, close=close))
        return Request(body, content_type, content_length=None if length is None else length(len(body)))

    return build


def _raw(body: bytes, content_type: str | None) -> Callable[[Media, dict[str, bytes]], Request]:
    return lambda media, fields: Request(body, content_type)


def _multipart_cases() -> list[Case]:
    multipart = f"multipart/form-data; boundary={BOUNDARY}"
    return [
        Case("missing-file-part", parts=lambda m, f: [Part(k, v) for k, v in f.items()], upload=_s(400),
             match=_s(400)),
        Case("file-sent-as-plain-field", parts=lambda m, f: [Part("file", m.base_wav())]
             + [Part(k, v) for k, v in f.items()], upload=_s(400), match=_s(400)),
        Case("file-part-under-another-name", parts=lambda m, f: [_wav_part(name="audio")]
             + [Part(k, v) for k, v in f.items()], upload=_s(400), match=_s(400)),
        Case("two-file-parts", parts=lambda m, f: [_wav_part(), Part("file", b"not audio", "b.wav")]
             + [Part(k, v) for k, v in f.items()], upload=OK_UPLOAD, match=OK_MATCH),
        Case("two-file-parts-junk-first", parts=lambda m, f: [Part("file", b"not audio", "b.wav"), _wav_part()]
             + [Part(k, v) for k, v in f.items()], upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("content-id-repeated", extra_parts=(Part("content_id", b"second-id"),), upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("every-field-repeated-50-times", parts=lambda m, f: [_wav_part()]
             + [Part(k, v) for _ in range(50) for k, v in f.items()], upload=OK_UPLOAD, match=OK_MATCH),
        Case("2000-parts", extra_parts=tuple(Part(f"x{i}", b"1") for i in range(2000)), upload=_s(413),
             match=_s(413)),
        Case("field-of-1-MB", extra_parts=(Part("note", b"n" * 1_000_000),), upload=_s(413), match=_s(413)),
        Case("part-name-missing", extra_parts=(Part(None, b"v", raw_disposition=b"Content-Disposition: form-data"),)),
        Case("part-disposition-garbage",
             extra_parts=(Part(None, b"v", raw_disposition=b"Content-Disposition: \xff\x00;;"),)),
        Case("no-content-type", raw=lambda m, f: Request(_raw_multipart(multipart)(m, f).body, None),
             upload=_s(415), match=_s(415)),
        Case("multipart-without-boundary", raw=_raw_multipart("multipart/form-data"), upload=_s(400), match=_s(400)),
        Case("multipart-empty-boundary", raw=_raw_multipart('multipart/form-data; boundary=""'), upload=_s(400),
             match=_s(400)),
        Case("multipart-wrong-boundary", raw=_raw_multipart("multipart/form-data; boundary=other"), upload=_s(400),
             match=_s(400)),
        Case("multipart-boundary-200-chars", raw=_raw_multipart("multipart/form-data; boundary=" + "b" * 200,
                                                                boundary="b" * 200)),
        Case("multipart-unterminated", raw=_raw_multipart(multipart, close=False)),
        Case("multipart-cut-in-file-part", raw=_raw_multipart(multipart, transform=lambda b: b[:2000])),
        Case("multipart-cut-in-headers", raw=_raw_multipart(multipart, transform=lambda b: b[:60])),
        Case("multipart-lf-line-endings", raw=_raw_multipart(multipart, transform=lambda b: b.replace(b"\r\n", b"\n"))),
        Case("multipart-empty-body", raw=_raw(b"", multipart), upload=_s(400), match=_s(400)),
        Case("multipart-only-closing-boundary", raw=_raw(f"--{BOUNDARY}--\r\n".encode(), multipart), upload=_s(400),
             match=_s(400)),
        Case("multipart-mixed", raw=_raw_multipart(f"multipart/mixed; boundary={BOUNDARY}"), upload=_s(415),
             match=_s(415)),
        Case("json-body", raw=_raw(b'{"file": "UklGRg==", "content_id": "x"}', "application/json"), upload=_s(415),
             match=_s(415)),
        Case("urlencoded-body", raw=_raw(b"file=RIFF&content_id=x&account_id=a", "application/x-www-form-urlencoded"),
             upload=_s(415), match=_s(415)),
        Case("raw-wav-body", raw=lambda m, f: Request(m.base_wav(), "audio/wav"), upload=_s(415), match=_s(415)),
        Case("text-plain-body", raw=_raw(b"hello", "text/plain; charset=utf-8"), upload=_s(415), match=_s(415)),
        Case("content-length-beyond-body", raw=_raw_multipart(multipart, length=lambda n: n + 5000),
             upload=_s(400), match=_s(400)),
        Case("content-length-over-the-limit", raw=_raw_multipart(multipart, length=lambda n: MAX_UPLOAD_BYTES * 4),
             upload=_s(413), match=_s(413)),
        Case("content-length-short", raw=_raw_multipart(multipart, length=lambda n: 100), upload=_s(400),
             match=_s(400)),
        Case("content-length-zero", raw=_raw_multipart(multipart, length=lambda n: 0), upload=_s(400),
             match=_s(400)),
        Case("body-over-the-limit", raw=lambda m, f: Request(
            encode_multipart([Part("file", m.base_wav() + bytes(MAX_UPLOAD_BYTES + 1), "a.wav")]
                             + [Part(k, v) for k, v in f.items()]), multipart), upload=_s(413), match=_s(413)),
    ]


def _json_nested(depth: int) -> bytes:
    return ('{"a": [' * (depth // 2) + ("[]" if depth % 2 else "1") + "]}" * (depth // 2)).encode()


def _field_cases() -> list[Case]:
    ten_kb = "i" * 10_240
    cases = [
        Case("uploaded-at-missing", fields={"uploaded_at": OMIT}, upload=_s(400), match=OK_MATCH),
        Case("uploaded-at-empty", fields={"uploaded_at": ""}, upload=_s(400), match=OK_MATCH),
        Case("uploaded-at-year-1", fields={"uploaded_at": "0001-01-01T00:00:00Z"}, upload=_s(422), match=OK_MATCH),
        Case("uploaded-at-year-9999-minus-14h", fields={"uploaded_at": "9999-12-31T23:59:59-14:00"}, upload=_s(422),
             match=OK_MATCH),
        Case("uploaded-at-year-10000", fields={"uploaded_at": "10000-01-01T00:00:00Z"}, upload=_s(400),
             match=OK_MATCH),
        Case("uploaded-at-negative-year", fields={"uploaded_at": "-2024-05-01T00:00:00Z"}, upload=_s(400),
             match=OK_MATCH),
        Case("uploaded-at-february-30", fields={"uploaded_at": "2024-02-30T00:00:00Z"}, upload=_s(400),
             match=OK_MATCH),
        Case("uploaded-at-hour-25", fields={"uploaded_at": "2024-05-01T25:00:00Z"}, upload=_s(400), match=OK_MATCH),
        Case("uploaded-at-offset-99-hours", fields={"uploaded_at": "2024-05-01T00:00:00+99:00"}, upload=_s(400),
             match=OK_MATCH),
        Case("uploaded-at-no-time-zone", fields={"uploaded_at": "2024-05-01T00:00:00"}, upload=_s(400),
             match=OK_MATCH),
        Case("uploaded-at-epoch-number", fields={"uploaded_at": "1714560000"}, upload=_s(400), match=OK_MATCH),
        Case("uploaded-at-1e400", fields={"uploaded_at": "1e400"}, upload=_s(400), match=OK_MATCH),
        Case("uploaded-at-fullwidth-digits", fields={"uploaded_at": "\uff12\uff10\uff12\uff14-05-01T00:00:00Z"},
             upload=_s(400, 201), match=OK_MATCH),
        Case("uploaded-at-nanoseconds", fields={"uploaded_at": "2024-05-01T00:00:00.123456789Z"},
             upload=_s(400, 201), match=OK_MATCH),
        Case("uploaded-at-10-kb", fields={"uploaded_at": "2024-05-01T00:00:00Z" + " " * 10_000 + "x"},
             upload=_s(400), match=OK_MATCH),
        Case("content-id-missing", fields={"content_id": OMIT}, upload=_s(400), match=OK_MATCH),
        Case("content-id-blank", fields={"content_id": "   "}, upload=_s(400), match=OK_MATCH),
        Case("content-id-10-kb", fields={"content_id": ten_kb}, upload=_s(400), match=OK_MATCH),
        Case("account-id-10-kb", fields={"account_id": ten_kb}, upload=_s(400), match=OK_MATCH),
        Case("content-id-256-chars", fields={"content_id": "c" * 256}, upload=_s(400), match=OK_MATCH),
        Case("account-id-255-astral-chars", fields={"account_id": "\U0001f3b5" * 255}, upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("content-id-with-nul", fields={"content_id": "vid\x00-1"}, upload=_s(400), match=_s(400)),
        Case("account-id-only-nul", fields={"account_id": "\x00"}, upload=_s(400), match=_s(400)),
        Case("content-id-invalid-utf8", fields={"content_id": b"vid-\xff\xfe\xed\xa0\x80"}),
        Case("content-id-rtl-and-zero-width", fields={"account_id": "\u202e\u200b\u2066acct\u0301"},
             upload=OK_UPLOAD, match=OK_MATCH),
        Case("content-id-sent-as-file", parts=lambda m, f: [_wav_part(), Part("content_id", b"x", "id.txt")]
             + [Part(k, v) for k, v in f.items() if k != "content_id"], upload=_s(400), match=OK_MATCH),
        Case("content-id-json-number", fields={"content_id": "12345678901234567890123"}, upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("idempotency-key-10-kb", headers={"Idempotency-Key": ten_kb}, upload=_s(400), match=OK_MATCH),
        Case("idempotency-key-256-chars", headers={"Idempotency-Key": "k" * 256}, upload=_s(400), match=OK_MATCH),
        Case("idempotency-key-latin1", headers={"Idempotency-Key": "cl\u00e9-\u00ff"}, upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("metadata-not-json", fields={"metadata": "{caption: hi"}, upload=_s(400), match=OK_MATCH),
        Case("metadata-array", fields={"metadata": "[1, 2]"}, upload=_s(400), match=OK_MATCH),
        Case("metadata-string", fields={"metadata": '"hello"'}, upload=_s(400), match=OK_MATCH),
        Case("metadata-nested-32", fields={"metadata": _json_nested(32)}, upload=OK_UPLOAD, match=OK_MATCH),
        Case("metadata-nested-33", fields={"metadata": _json_nested(33)}, upload=_s(400), match=OK_MATCH),
        Case("metadata-nested-100000", fields={"metadata": _json_nested(100_000)}, upload=_s(400), match=OK_MATCH),
        Case("metadata-unicode", fields={"metadata": json.dumps({"caption": "\u0646\u0634\u064a\u062f \U0001f3b5",
                                                                 "\u00e9": ["\u202e", "\ufeff"]})},
             upload=OK_UPLOAD, match=OK_MATCH),
        Case("metadata-escaped-nul", fields={"metadata": '{"caption": "a\\u0000b"}'}, upload=_s(400),
             match=OK_MATCH),
        Case("metadata-escaped-nul-key", fields={"metadata": '{"a\\u0000": 1}'}, upload=_s(400), match=OK_MATCH),
        Case("metadata-raw-nul", fields={"metadata": b'{"caption": "a\x00b"}'}, upload=_s(400), match=_s(400)),
        Case("metadata-lone-surrogate", fields={"metadata": '{"caption": "\\ud800"}'}, upload=_s(400),
             match=OK_MATCH),
        Case("metadata-nan", fields={"metadata": '{"score": NaN}'}, upload=_s(400), match=OK_MATCH),
        Case("metadata-infinity", fields={"metadata": '{"score": -Infinity}'}, upload=_s(400), match=OK_MATCH),
        Case("metadata-1e400", fields={"metadata": '{"score": 1e400}'}, upload=_s(400), match=OK_MATCH),
        Case("metadata-5000-digit-integer", fields={"metadata": '{"n": ' + "9" * 5000 + "}"}, upload=_s(400),
             match=OK_MATCH),
        Case("metadata-duplicate-keys", fields={"metadata": '{"a": 1, "a": 2}'}, upload=OK_UPLOAD, match=OK_MATCH),
        Case("metadata-10000-keys", fields={"metadata": json.dumps({f"k{i}": i for i in range(10_000)})},
             upload=OK_UPLOAD, match=OK_MATCH),
        Case("metadata-utf16", fields={"metadata": '{"a": 1}'.encode("utf-16")}, upload=_s(400), match=_s(400)),
        Case("metadata-empty-object", fields={"metadata": "{}"}, upload=OK_UPLOAD, match=OK_MATCH),
    ]
    return cases


#: FFmpeg demuxers that read other files or the network, named by what an upload's bytes say.
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "chant.ogg"

# An SDP file made FFmpeg's sdp demuxer bind the UDP ports it names (RTP on the given address, RTCP on
# 0.0.0.0) and wait ~20 s for packets, past DECODE_TIMEOUT_SECONDS; the decoder now opens uploads with a
# demuxer whitelist and no protocol but "file". The case watches the ports while the request runs.


def sdp(port: int, streams: int = 1) -> bytes:
    """A session description: FFmpeg's sdp demuxer listens for RTP on ``port`` (and RTCP on the next one)."""
    lines = ["v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=upload", "c=IN IP4 127.0.0.1", "t=0 0"]
    for i in range(streams):
        lines += [f"m=audio {port + 2 * i} RTP/AVP 0", "a=rtpmap:0 PCMU/8000"]
    return ("\r\n".join(lines) + "\r\n").encode()


def _reference_cases() -> list[Case]:
    """Files whose bytes point elsewhere: a local file, another URL, a network port."""
    local = SAMPLE.as_posix()
    return [
        Case("hls-playlist-of-a-local-file", _const(playlist(
            "#EXTM3U", "#EXT-X-TARGETDURATION:10", "#EXTINF:10,", f"file://{local}", "#EXT-X-ENDLIST")),
             filename="list.m3u8", upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("hls-playlist-of-a-local-path", _const(playlist(
            "#EXTM3U", "#EXT-X-TARGETDURATION:10", "#EXTINF:10,", local, "#EXT-X-ENDLIST")),
             filename="list.m3u8", upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("hls-playlist-of-a-url", _const(playlist(
            "#EXTM3U", "#EXT-X-TARGETDURATION:10", "#EXTINF:10,", "http://127.0.0.1:9/seg.ts", "#EXT-X-ENDLIST")),
             filename="list.m3u8", upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("ffconcat-of-a-local-file", _const(playlist("ffconcat version 1.0", f"file {local}")),
             filename="list.txt", upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("dash-manifest-of-a-url", _const((
            '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
            'mediaPresentationDuration="PT10S"><Period><AdaptationSet mimeType="audio/mp4"><Representation id="a" '
            'bandwidth="64000"><BaseURL>http://127.0.0.1:9/a.mp4</BaseURL></Representation></AdaptationSet>'
            '</Period></MPD>').encode()), filename="a.mpd", upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("sdp-session-listening-on-udp", file_with_port=sdp, filename="clip.wav", upload=BAD_MEDIA,
             match=BAD_MEDIA),
    ]


# Audio of 8 or more planar channels (7.1 AAC, Vorbis, Opus) killed the worker with SIGSEGV: PyAV's
# AudioFrame.to_ndarray walks frame->extended_data until a NULL pointer that is not there. The decoder now
# has FFmpeg mix such frames to mono; these cases (and the Vorbis headers that lie about their channels)
# keep it so.


def _eight_channels(media: Media, codec: list[str], fmt: str, name: str) -> bytes:
    """Real 7.1 audio (the base signal on every channel), as an ordinary encoder writes it."""
    return media.generated(name, [
        "-i", media.base_wav_path(), "-filter_complex",
        "[0:a]pan=7.1|c0=c0|c1=c0|c2=0.5*c0|c3=0.1*c0|c4=c0|c5=c0|c6=c0|c7=c0[out]", "-map", "[out]", "-t", "2",
        *codec, "-f", fmt])


def _header_lie_cases() -> list[Case]:
    return [
        Case("mp4-aac-7.1-surround", lambda m: _eight_channels(
            m, ["-c:a", "aac", "-b:a", "192k"], "mp4", "surround.mp4"), filename="movie.mp4", upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("ogg-vorbis-7.1-surround", lambda m: _eight_channels(
            m, ["-c:a", "libvorbis"], "ogg", "surround.ogg"), filename="surround.ogg", upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("flac-7.1-surround", lambda m: _eight_channels(
            m, ["-c:a", "flac"], "flac", "surround.flac"), filename="surround.flac", upload=OK_UPLOAD,
             match=OK_MATCH),
        # Vorbis identification header: "\x01vorbis", version (4 bytes), channels, rate (4 bytes)
        Case("ogg-vorbis-header-says-255-channels", lambda m: ogg_edit_first_packet(m.encoded("ogg"), 11, b"\xff"),
             filename="c.ogg"),
        Case("ogg-vorbis-header-says-9-channels", lambda m: ogg_edit_first_packet(m.encoded("ogg"), 11, b"\x09"),
             filename="c.ogg"),
        Case("ogg-vorbis-header-says-rate-0", lambda m: ogg_edit_first_packet(m.encoded("ogg"), 12, bytes(4)),
             filename="c.ogg"),
        # Opus identification header: "OpusHead", version, channels, pre-skip (2 bytes), rate (4 bytes)
        Case("opus-header-says-255-channels", lambda m: ogg_edit_first_packet(m.encoded("opus"), 9, b"\xff"),
             filename="c.opus"),
        Case("opus-header-says-0-channels", lambda m: ogg_edit_first_packet(m.encoded("opus"), 9, b"\x00"),
             filename="c.opus"),
        Case("opus-header-pre-skip-65535", lambda m: ogg_edit_first_packet(m.encoded("opus"), 10, b"\xff\xff"),
             filename="c.opus"),
        Case("flac-streaminfo-says-8-channels", lambda m: flac_streaminfo_channels(m.encoded("flac"), 8),
             filename="c.flac"),
        Case("mkv-255-channels-pcm", lambda m: m.transcoded("c255.mkv", wav_with(
            (np.random.default_rng(5).standard_normal((800, 255)) * 3000).astype("<i2").tobytes(), channels=255),
            ["-c:a", "pcm_s16le", "-f", "matroska"]), filename="c.mkv"),
        Case("mp4-video-only", lambda m: m.generated("video-only.mp4", [
            "-f", "lavfi", "-i", "color=c=red:s=32x32:r=5:d=1", "-c:v", "mpeg4", "-f", "mp4"]), filename="v.mp4",
             upload=BAD_MEDIA, match=BAD_MEDIA),
        Case("mkv-audio-track-then-garbage-track", lambda m: m.generated("two-tracks.mkv", [
            "-i", m.base_wav_path(), "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "2",
            "-map", "0:a", "-map", "1:a", "-c:a", "pcm_s16le", "-f", "matroska"]),
             filename="two.mkv"),
    ]


def _url_cases() -> list[Case]:
    """Oversized and odd URLs and headers around an ordinary upload (the app ignores what it does not read;
    gunicorn refuses a request line past 8190 bytes before the app sees it, see test_api_gunicorn.py)."""
    return [
        Case("url-query-100-kb", query="x=" + "q" * 100_000, upload=OK_UPLOAD, match=OK_MATCH),
        Case("url-query-5000-parameters", query="&".join(f"p{i}={i}" for i in range(5000)), upload=OK_UPLOAD,
             match=OK_MATCH),
        Case("url-query-with-nul", query="content_id=a%00b", upload=_s(400), match=_s(400)),
        Case("url-query-invalid-utf8", query="x=%ff%fe%ed%a0%80", upload=OK_UPLOAD, match=OK_MATCH),
        Case("url-query-shadows-fields", query="content_id=from-query&account_id=q&uploaded_at=garbage",
             upload=OK_UPLOAD, match=OK_MATCH),
        Case("header-of-64-kb", headers={"X-Padding": "p" * 65_536}, upload=OK_UPLOAD, match=OK_MATCH),
        Case("valid-bearer-key-beside-an-unknown-x-api-key", headers={"X-API-Key": "afp_not-a-key"},
             upload=OK_UPLOAD, match=OK_MATCH),
    ]


def _in_process(cases: list[Case]) -> list[Case]:
    return [replace(c, isolate=False) for c in cases]


def _build_corpus() -> list[Case]:
    cases = (_container_cases() + _bomb_cases() + _tiny_cases() + _header_lie_cases() + _reference_cases()
             + _in_process(_label_cases() + _multipart_cases() + _field_cases() + _url_cases()))
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, duplicates
    return cases


CORPUS: list[Case] = _build_corpus()


def content_id_for(case: Case, endpoint: str, store: str) -> str:
    """A content id unique to the case, endpoint and store (so no case replays another's upload)."""
    return "hostile-" + hashlib.sha1(f"{case.id}|{endpoint}|{store}".encode()).hexdigest()[:16]


# --- a database per backend for a whole module -------------------------------------

@contextmanager
def scratch_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database on ``backend`` ("sqlite" in ``folder``, or "postgresql"), dropped after.

    For module-scoped fixtures (conftest's ``sqlite_url`` and ``pg_url`` are per test); PostgreSQL is
    reached, skipped or failed exactly as conftest does it.
    """
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'audiofp.sqlite'}"
        return
    from conftest import ADMIN_URL, _admin_connection
    from psycopg import conninfo, sql

    name = f"audiofp_scratch_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = conninfo.conninfo_to_dict(ADMIN_URL)
    try:
        yield (f"postgresql+psycopg://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}:"
               f"{info.get('port', '5432')}/{name}")
    finally:
        with _admin_connection() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
