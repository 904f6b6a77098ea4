"""API benchmark: end-to-end latency and throughput of ``POST /v1/uploads``.

Usage::

    python -m bench.api_bench --db sqlite|postgresql [--hours 1000] [--corpus DIR]
                              [--requests 60] [--clients 8] [--seconds 30] [--workers 4]
                              [--index snapshot|memory]

Builds a fresh store, ingests the project's samples (and the corpus references
if ``--corpus`` is given) for real, fills it to ``--hours`` with the scale
test's synthetic filler (``bench.scale``: backwards, pitch-moved stretches of
the real sounds' peaks, registered through the product's write path), then
starts gunicorn (``api.wsgi:app``, ``--workers`` processes) on a free local
port and measures over HTTP:

* latency p50/p95 of uploads of a 10 s clip (the chant sped up 1.1x, WAV) and
  of a 60 s video with audio (H.264 + AAC in MP4, the chant and the talked-over
  chant), one request at a time, each with a new content id, so every request
  is decoded, matched and recorded (a use; no new sound);
* throughput (uploads per second, 10 s clips) with ``--clients`` concurrent
  clients for ``--seconds``.

``--index snapshot`` (the default) builds an index snapshot before the server
starts and the workers map it; ``--index memory`` gives them no snapshot
folder, so each worker indexes every sound's stored peaks in its own memory at
its first lookup (the server is warmed with concurrent uploads first, timed,
so that every worker has built its index before the timing starts).

Writes ``bench/results/<time>-api.md`` and ``.json``. The target is a p95 of
100 ms or less for the 10 s clip.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import av
import numpy as np
import requests
import soundfile as sf
import soxr

from audiofp import services
from audiofp.config import Settings
from audiofp.services import create_key
from audiofp.services.operations import build_index_snapshot
from audiofp.store import Store

from .run import FULL_CORPUS
from .filler import FillerModel, add_filler
from .stores import DEFAULT_PG, fresh_store

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
RESULTS = ROOT / "bench" / "results"
TARGET_P95_MS = 100.0
#: A single upload slower than this stops the timing (one figure is reported).
SLOW_SECONDS = 30.0


def clip_10s() -> bytes:
    """10 s of the chant sped up 1.1x, as 16-bit WAV."""
    y, sr = sf.read(SAMPLES / "chant.ogg", dtype="float32")
    x = soxr.resample(y[sr * 5: sr * 16], sr * 1.1, sr).astype(np.float32)[: sr * 10]
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def video_60s() -> bytes:
    """60 s MP4: a small H.264 picture and AAC audio (the chant, then the chant talked over)."""
    a, sr = sf.read(SAMPLES / "chant.ogg", dtype="float32")
    b, _ = sf.read(SAMPLES / "speech_over_chant.ogg", dtype="float32")
    audio = np.concatenate([a, b])[: sr * 60]
    audio = (audio * (0.9 / max(1e-9, float(np.abs(audio).max())))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        with av.open(str(path), "w", format="mp4") as out:
            video = out.add_stream("libx264", rate=10)
            video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
            sound = out.add_stream("aac", rate=sr, layout="mono")
            for i in range(60 * 10):
                img = np.full((120, 160, 3), (i * 4) % 256, np.uint8)
                for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
            frame.sample_rate = sr
            for packet in sound.encode(frame):
                out.mux(packet)
            for stream in (video, sound):
                for packet in stream.encode(None):
                    out.mux(packet)
        return path.read_bytes()


def prepare(store: Store, hours: float, corpus: Path | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Real references, then filler up to ``hours``."""
    started = time.perf_counter()
    refs = sorted(SAMPLES.glob("*.ogg"))
    if corpus is not None:
        refs += sorted((corpus / "references").glob("*.flac"))
    real_seconds = 0.0
    real_sounds: list[int] = []
    for path in refs:
        outcome = services.ingest(store, path, settings=Settings())
        real_seconds += outcome.duration
        real_sounds.append(outcome.sound_id)
    log(f"ingested {len(refs)} references, {real_seconds / 3600:.2f} h")
    filler_hours = max(0.0, hours - real_seconds / 3600)
    figures: dict[str, Any] = {"references": len(refs), "real_hours": real_seconds / 3600,
                               "filler_hours": filler_hours}
    if filler_hours > 0:
        model = FillerModel.from_store(store, real_sounds)
        filled = add_filler(store, model, filler_hours, chunk_hours=50.0, seed=1, log=log)
        figures.update({k: v for k, v in filled.items() if k != "chunks"})
    figures["prepare_seconds"] = time.perf_counter() - started
    return figures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn serving ``api.wsgi:app`` on the store, started and stopped by this process."""

    def __init__(self, url: str, workers: int, logfile: Path, index_dir: Path | None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AUDIOFP_DATABASE_URL": url, "AUDIOFP_RATE_LIMIT_PER_MINUTE": "0",
               "AUDIOFP_INDEX_DIR": str(index_dir) if index_dir is not None else "off",
               "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self._log = logfile.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", "2", "-b", f"127.0.0.1:{self.port}",
             "--timeout", "900", "--access-logfile", "-", "--access-logformat", '%(r)s %(s)s %(M)sms',
             "api.wsgi:app"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gunicorn exited; see its log")
            try:
                r = requests.get(f"{self.base}/health/ready", timeout=10)
                if r.status_code == 200:
                    return
                last = r.text
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.3)
        # A frequent cause: the engine's parameters changed since the index was built.
        raise RuntimeError(f"gunicorn did not become ready: {last}")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()


class Uploader:
    """Sends uploads with fresh content ids; thread-safe counter."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"}
        self._n = 0
        self._lock = threading.Lock()

    def send(self, data: bytes, name: str, session: requests.Session, split: list[dict[str, float]] | None = None) -> float:
        with self._lock:
            self._n += 1
            n = self._n
        form = {"content_id": f"bench-{n}", "account_id": f"acct-{n % 50}", "uploaded_at": "2024-05-01T12:00:00Z"}
        started = time.perf_counter()
        r = session.post(f"{self.base}/v1/uploads", headers=self.headers, data=form, files={"file": (name, data)},
                         timeout=900)
        elapsed = time.perf_counter() - started
        if r.status_code != 201:
            raise RuntimeError(f"upload answered {r.status_code}: {r.text[:300]}")
        if not r.json()["sounds"]:
            raise RuntimeError("the benchmark clip matched nothing: the index is not what the benchmark expects")
        if split is not None:
            parts = (p.split(";dur=") for p in r.headers.get("Server-Timing", "").split(", ") if ";dur=" in p)
            split.append({k: float(v) for k, v in parts})
        return elapsed


def warm_workers(up: Uploader, data: bytes, name: str, workers: int, rounds: int = 3) -> dict[str, Any]:
    """Send rounds of ``2 * workers`` concurrent uploads, so that every worker has served one (and built its index).

    gunicorn hands a connection to whichever worker accepts it first; with as
    many uploads in flight as the workers have threads, a busy worker leaves
    the others to accept the rest. Returns each round's wall time and slowest upload.
    """
    figures: list[dict[str, float]] = []
    for _ in range(rounds):
        times: list[float] = []
        lock = threading.Lock()

        def one() -> None:
            with requests.Session() as s:
                elapsed = up.send(data, name, s)
            with lock:
                times.append(elapsed)

        started = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(2 * workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        figures.append({"seconds": time.perf_counter() - started, "slowest_upload_seconds": max(times, default=float("nan")),
                        "uploads": len(times)})
    return {"rounds": figures}


def latency(up: Uploader, data: bytes, name: str, n: int) -> dict[str, float]:
    with requests.Session() as s:
        for _ in range(3):  # warm every worker's caches
            first = up.send(data, name, s)
            if first > SLOW_SECONDS:  # the index is too slow at this size to be worth timing n times
                ms = first * 1000
                return {"n": 1, "p50_ms": ms, "p95_ms": ms, "mean_ms": ms, "max_ms": ms, "too_slow": True,
                        "decode_p50_ms": float("nan"), "match_p50_ms": float("nan"), "record_p50_ms": float("nan")}
        split: list[dict[str, float]] = []
        times = np.array([up.send(data, name, s, split) for _ in range(n)]) * 1000
    server = {f"{k}_p50_ms": float(np.median([t[k] for t in split])) for k in ("decode", "match", "record")}
    return {"n": n, "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "mean_ms": float(times.mean()), "max_ms": float(times.max()), **server}


def throughput(up: Uploader, data: bytes, name: str, clients: int, seconds: float) -> dict[str, float]:
    stop_at = time.monotonic() + seconds
    counts = [0] * clients
    errors: list[str] = []

    def run(i: int) -> None:
        with requests.Session() as s:
            while time.monotonic() < stop_at:
                try:
                    up.send(data, name, s)
                    counts[i] += 1
                except Exception as exc:  # report, keep measuring
                    errors.append(str(exc))

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"clients": clients, "seconds": elapsed, "uploads": sum(counts),
            "uploads_per_second": sum(counts) / elapsed, "errors": len(errors)}


def _split(lat: dict[str, float]) -> str:
    return " / ".join(f"{lat[f'{k}_p50_ms']:.0f}" for k in ("decode", "match", "record")) + " ms"


def _warm_lines(r: dict[str, Any]) -> list[str]:
    warm = r.get("warm_up")
    if not warm:
        return []
    first = warm["rounds"][0]
    return [f"Warm-up (every worker builds its in-memory index at its first lookup): the first round of "
            f"{first['uploads']} concurrent uploads took {first['seconds']:.1f} s (slowest upload "
            f"{first['slowest_upload_seconds']:.1f} s); later rounds "
            + ", ".join(f"{w['seconds']:.1f} s" for w in warm["rounds"][1:]) + ".", ""]


def render(r: dict[str, Any]) -> str:
    lat10, lat60, tp = r["latency_10s_clip"], r["latency_60s_video"], r["throughput_10s_clip"]
    verdict = "meets" if lat10["p95_ms"] <= TARGET_P95_MS else "misses"
    return "\n".join([
        f"# API benchmark ({r['db']}, {r['index_hours']:.0f} h index, {r['workers']} gunicorn workers, "
        f"lookups from {'a snapshot' if r.get('index', 'snapshot') == 'snapshot' else 'in-memory indexes built by each worker'})",
        "",
        f"Machine: {os.cpu_count()} cores. Index: {r['prepare']['real_hours']:.2f} h real audio + "
        f"{r['prepare']['filler_hours']:.1f} h filler. Every request decodes, matches and records a use.",
        "",
        *_warm_lines(r),
        "| upload | requests | p50 | p95 | mean | max | server p50: decode / match / record |",
        "|---|---|---|---|---|---|---|",
        f"| 10 s clip (WAV) | {lat10['n']} | {lat10['p50_ms']:.0f} ms | {lat10['p95_ms']:.0f} ms | "
        f"{lat10['mean_ms']:.0f} ms | {lat10['max_ms']:.0f} ms | {_split(lat10)} |",
        f"| 60 s video (MP4, H.264 + AAC, {r['video_bytes'] / 1e6:.1f} MB) | {lat60['n']} | {lat60['p50_ms']:.0f} ms | "
        f"{lat60['p95_ms']:.0f} ms | {lat60['mean_ms']:.0f} ms | {lat60['max_ms']:.0f} ms | {_split(lat60)} |",
        "",
        "Server split from the `Server-Timing` header; the rest of the end-to-end time is HTTP, multipart "
        "parsing, authentication and the idempotency check.",
        "",
        f"Throughput, 10 s clips, {tp['clients']} concurrent clients: **{tp['uploads_per_second']:.1f} uploads/s** "
        f"({tp['uploads']} in {tp['seconds']:.0f} s, {tp['errors']} errors).",
        "",
        f"Target p95 <= {TARGET_P95_MS:.0f} ms for the 10 s clip: {verdict} it.",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL (a database is created and dropped).")
    p.add_argument("--hours", type=float, default=1000.0, help="Index size to fill to (real + filler).")
    p.add_argument("--corpus", type=Path, default=FULL_CORPUS if FULL_CORPUS.is_dir() else None,
                   help="Also ingest this corpus's references (default: bench/corpus/full if built). The filler is "
                        "cut from the real references' peaks, so it needs hours of them.")
    p.add_argument("--requests", type=int, default=60, help="Sequential requests per latency figure.")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0, help="Duration of the throughput run.")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--index", choices=("snapshot", "memory"), default="snapshot",
                   help="lookups from an index snapshot built before the server starts, or from an index each "
                        "worker builds in memory from the stored peaks (no snapshot folder)")
    args = p.parse_args(argv)
    if args.corpus is None and args.hours > 10:
        p.error("filling to more than 10 h needs --corpus (build one with python -m bench.corpus): a filler "
                "cut from the two minutes of samples/ repeats them thousands of times")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    clip, video = clip_10s(), video_60s()
    with tempfile.TemporaryDirectory() as tmp, fresh_store(args.db, Path(tmp), pg_base=args.pg) as store:
        prepared = prepare(store, args.hours, args.corpus, log)
        key = create_key(store, name="bench", role="pipeline").secret
        index_dir = None
        if args.index == "snapshot":
            # What an operator does before opening traffic (README, "Deploying").
            index_dir = Path(tmp) / "index"
            built = build_index_snapshot(store, index_dir)
            prepared["snapshot_seconds"] = built.build_seconds
            log(f"index snapshot: {built.postings:,} postings in {built.build_seconds:.1f} s")
        server = Server(store.url, args.workers, RESULTS / f"{stamp}-api-gunicorn.log", index_dir)
        try:
            server.wait_ready()
            up = Uploader(server.base, key)
            warm = None
            if args.index == "memory":
                log("warming the workers (each builds its index in memory) ...")
                warm = warm_workers(up, clip, "clip.wav", args.workers)
                log(f"warm-up rounds: {[round(w['seconds'], 1) for w in warm['rounds']]} s")
            log("latency, 10 s clip ...")
            lat10 = latency(up, clip, "clip.wav", args.requests)
            log("latency, 60 s video ...")
            lat60 = latency(up, video, "video.mp4", max(10, args.requests // 3))
            log("throughput ...")
            if lat10.get("too_slow"):
                tp = {"clients": args.clients, "seconds": 0.0, "uploads": 0, "uploads_per_second": float("nan"),
                      "errors": 0}
            else:
                tp = throughput(up, clip, "clip.wav", args.clients, args.seconds)
        finally:
            server.stop()
    results = {"db": args.db, "index_hours": args.hours, "workers": args.workers, "index": args.index,
               "prepare": prepared, "warm_up": warm,
               "video_bytes": len(video), "latency_10s_clip": lat10, "latency_60s_video": lat60,
               "throughput_10s_clip": tp}
    report = render(results)
    (RESULTS / f"{stamp}-api.json").write_text(json.dumps(results, indent=2))
    (RESULTS / f"{stamp}-api.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
