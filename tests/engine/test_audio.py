"""Decoding: every format an upload arrives in, and every way input can be bad."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from audiofp.engine.audio import content_digest, decode
from audiofp.errors import AudioTooLongError, BadAudioError, InputTooLargeError, SilentAudioError
from crafted_media import UNDECODABLE_HEADERS, tone_pcm16, wav_bytes

SR_IN = 44100
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def signal(seconds: float = 3.0, channels: int = 2, rate: int = SR_IN) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    left = 0.4 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    right = 0.4 * np.sin(2 * np.pi * 660 * t)
    return np.stack([left, right][:channels]).astype(np.float32)


def encode(path: Path, fmt: str, codec: str, *, video: bool = False, rate: int = SR_IN) -> Path:
    """Write ``signal()`` with PyAV, optionally next to a short video stream."""
    x = signal(rate=rate)
    with av.open(str(path), "w", format=fmt) as out:
        if video:
            v = out.add_stream("mpeg4" if fmt != "webm" else "libvpx", rate=10)
            v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream(codec, rate=rate, layout="stereo")
        # Float planar frames, converted by PyAV to whatever the encoder takes.
        convert = av.AudioResampler(format=a.codec_context.format, layout="stereo", rate=rate)
        if video:
            for i in range(30):
                img = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 8, np.uint8), format="rgb24")
                for packet in v.encode(img):
                    out.mux(packet)
        chunk = 1024
        for start in range(0, x.shape[1], chunk):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, start:start + chunk]), format="fltp", layout="stereo")
            frame.sample_rate = rate
            for converted in convert.resample(frame):
                for packet in a.encode(converted):
                    out.mux(packet)
        for packet in a.encode(None):
            out.mux(packet)
        if video:
            for packet in v.encode(None):
                out.mux(packet)
    return path


@pytest.mark.parametrize(
    "name,fmt,codec,video",
    [
        ("a.mp3", "mp3", "libmp3lame", False),
        ("a.m4a", "ipod", "aac", False),
        ("a.opus", "ogg", "libopus", False),
        ("a.flac", "flac", "flac", False),
        ("v.mp4", "mp4", "aac", True),
        ("v.mov", "mov", "aac", True),
        ("v.mkv", "matroska", "libopus", True),
        ("v.webm", "webm", "libopus", True),
    ],
)
def test_decodes_every_upload_format_to_mono_at_the_analysis_rate(tmp_path, name, fmt, codec, video):
    rate = 48000 if codec == "libopus" else SR_IN
    path = encode(tmp_path / name, fmt, codec, video=video, rate=rate)
    audio = decode(path, sample_rate=8000)
    assert audio.sample_rate == 8000 and audio.samples.ndim == 1
    # Encoders add priming and padding (Opus up to a few hundred ms here).
    assert abs(audio.duration - 3.0) < 0.3
    # The 440 Hz tone survives the trip: it is the strongest component.
    spectrum = np.abs(np.fft.rfft(audio.samples[:8000]))
    assert abs(np.argmax(spectrum) - 440) <= 3 or abs(np.argmax(spectrum) - 660) <= 3


def test_decodes_wav_and_ogg_from_bytes_and_file_objects(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, signal().T, SR_IN)
    from_path = decode(wav, sample_rate=8000)
    from_bytes = decode(wav.read_bytes(), sample_rate=8000)
    from_file = decode(io.BytesIO(wav.read_bytes()), sample_rate=8000)
    np.testing.assert_array_equal(from_path.samples, from_bytes.samples)
    np.testing.assert_array_equal(from_path.samples, from_file.samples)
    assert decode(SAMPLES / "chant.ogg", sample_rate=8000).duration == pytest.approx(30.0, abs=0.05)


def test_any_input_rate_and_channel_count(tmp_path):
    for rate, channels in [(8000, 1), (22050, 2), (96000, 1)]:
        path = tmp_path / f"x{rate}.wav"
        t = np.arange(2 * rate) / rate
        x = np.stack([0.3 * np.sin(2 * np.pi * 500 * t)] * channels, axis=1)
        sf.write(path, x, rate)
        audio = decode(path, sample_rate=8000)
        assert abs(audio.duration - 2.0) < 0.01


def test_same_decoded_content_has_the_same_digest(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.flac"
    pcm = np.round(signal().T * 32767).astype(np.int16)  # identical samples in both files
    sf.write(a, pcm, SR_IN)
    sf.write(b, pcm, SR_IN)
    assert content_digest(decode(a, sample_rate=8000)) == content_digest(decode(b, sample_rate=8000))
    sf.write(b, signal(2.0).T, SR_IN)
    assert content_digest(decode(a, sample_rate=8000)) != content_digest(decode(b, sample_rate=8000))


# --- bad input ---------------------------------------------------------------

def test_empty_input_is_refused(tmp_path):
    (tmp_path / "empty.mp3").write_bytes(b"")
    with pytest.raises(BadAudioError, match="empty"):
        decode(tmp_path / "empty.mp3", sample_rate=8000)
    with pytest.raises(BadAudioError, match="empty"):
        decode(b"", sample_rate=8000)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(BadAudioError, match="no such file"):
        decode(tmp_path / "nope.wav", sample_rate=8000)


@pytest.mark.parametrize("payload", [b"hello, this is a text file\n" * 50, b"\x00" * 4096, b"%PDF-1.4\n" + bytes(range(256)) * 20])
def test_non_audio_is_refused(payload):
    with pytest.raises(BadAudioError):
        decode(payload, sample_rate=8000)


def test_truncated_file_keeps_what_decoded_or_is_refused(tmp_path):
    path = encode(tmp_path / "a.mp3", "mp3", "libmp3lame")
    data = path.read_bytes()
    partial = decode(data[: len(data) // 2], sample_rate=8000)
    assert 0.5 < partial.duration < 2.5
    with pytest.raises(BadAudioError):
        decode(data[:100], sample_rate=8000)


def test_video_without_audio_track_is_refused(tmp_path):
    path = tmp_path / "silent_video.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            for packet in v.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
                out.mux(packet)
        for packet in v.encode(None):
            out.mux(packet)
    with pytest.raises(BadAudioError, match="no audio track"):
        decode(path, sample_rate=8000)


def test_silence_is_refused(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR_IN * 2, np.float32), SR_IN)
    with pytest.raises(SilentAudioError):
        decode(path, sample_rate=8000)


def test_limits_on_size_and_duration(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(signal(1.0, channels=1)[0], 20), SR_IN)
    with pytest.raises(InputTooLargeError):
        decode(path, sample_rate=8000, max_bytes=1000)
    with pytest.raises(AudioTooLongError):
        decode(path, sample_rate=8000, max_seconds=5.0)
    assert decode(path, sample_rate=8000, max_seconds=30.0).duration == pytest.approx(20.0, abs=0.01)


# --- crafted headers -----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(UNDECODABLE_HEADERS))
def test_a_header_declaring_no_decodable_audio_is_bad_audio_not_a_crash(name):
    with pytest.raises(BadAudioError) as caught:
        decode(UNDECODABLE_HEADERS[name], sample_rate=8000, max_seconds=3600.0, timeout_seconds=60.0)
    assert str(caught.value).startswith("input ")  # one readable line naming the input


def test_255_declared_channels_decode_to_their_mono_mix():
    tone = np.frombuffer(tone_pcm16(seconds=1.0, rate=8000), dtype="<i2")
    interleaved = np.repeat(tone, 255)  # every channel carries the same tone
    audio = decode(wav_bytes(interleaved.tobytes(), channels=255), sample_rate=8000)
    assert audio.duration == pytest.approx(1.0, abs=0.01)
    assert abs(int(np.argmax(np.abs(np.fft.rfft(audio.samples)))) - 440) <= 2


def test_the_check_budget_grows_with_audio_decoded_and_only_with_it():
    import time

    from audiofp.engine.audio import Deadline
    from audiofp.errors import CheckTimeoutError

    stalled = Deadline(0.05, per_audio_second=1.0)  # nothing decoded: no more time
    time.sleep(0.08)
    with pytest.raises(CheckTimeoutError, match="took longer than the limit of 0.05 s"):
        stalled.check("checking x")
    long = Deadline(0.05, per_audio_second=1.0)
    long.credit(10.0)  # ten seconds of audio earned ten seconds
    time.sleep(0.08)
    long.check("checking x")
    assert long.seconds == pytest.approx(10.05)
    Deadline(None, per_audio_second=1.0).check("never")
