"""Peak memory and wall time of one long upload, each in a process of its own.

Usage::

    python -m bench.memory [--corpus DIR] [--minutes 60] [--formats flac,m4a,mp4] [--paths service,cli,api]
                           [--max-gb 12]
    python -m bench.memory report RESULTS.json

Makes (once, cached in ``<corpus>/memory/``) a ``--minutes`` long recording of
the corpus's references joined end to end (all of it known audio: the upload
that makes the matcher work hardest), written as:

* ``flac``: FLAC, mono, 22.05 kHz, 16 bit (60 min is about 100 MB, under the
  200 MiB upload limit; 44.1 kHz stereo FLAC would exceed it);
* ``m4a``: AAC-LC 128 kbit/s, stereo, 44.1 kHz, in MP4 (what a phone records);
* ``mp4``: the same AAC track with a 160x120 black H.264 picture at 10 fps (a video).

It indexes the references into a fresh SQLite store, then measures each
(path, format) in a new process, on its own copy of the store:

* ``service``: ``audiofp.services.submit_upload`` on the open file, as
  ``POST /v1/uploads`` calls it (decode, fingerprint, match, record the uses);
  the process reports its resident memory before the upload and its peak
  (``VmHWM``), and the parent samples ``VmRSS`` every 20 ms to attribute the
  peak to the decode+fingerprint, match and record phases (the service's own
  ``timings``);
* ``cli``: ``audiofp match FILE --json`` (``audiofp.cli.main``); peak from
  ``wait4``'s ``ru_maxrss``; also on a 10 s clip, for the baseline of the
  process itself;
* ``api``: one gunicorn worker (``--config python:api.server``, timeout raised
  to 900 s) answering one ``POST /v1/uploads`` of the file; the worker's
  ``VmHWM`` before and after.

Children run with one BLAS thread and an address-space cap (``--max-gb``), so
that a runaway measurement fails with MemoryError in its own process instead of
waking the OOM killer on a shared machine. Writes
``bench/results/<time>-memory.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

RESULTS = Path("bench/results")
FULL_CORPUS = Path("bench/corpus/full")
FOLDER = "memory"
FORMATS = ("flac", "m4a", "mp4")
PATHS = ("service", "cli", "api")
SR = 22050
CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


# /proc helpers (unit-tested) ------------------------------------------------------------


def status_kib(text: str, field: str) -> int | None:
    """A ``kB`` field (``VmHWM``, ``VmRSS``...) of a ``/proc/<pid>/status`` text, in KiB."""
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def read_status(pid: int | str, field: str) -> int | None:
    try:
        return status_kib(Path(f"/proc/{pid}/status").read_text(), field)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class Sampler:
    """Samples a process's ``VmRSS`` every ``interval`` seconds in a thread: (wall time, MiB).

    With ``follow_child``, the process sampled is ``pid``'s child once it has
    one (the measured command under :data:`WRAPPER`).
    """

    def __init__(self, pid: int, interval: float = 0.02, *, follow_child: bool = False) -> None:
        self.pid, self.interval, self.follow_child = pid, interval, follow_child
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        target = None if self.follow_child else self.pid
        while not self._stop.is_set():
            if target is None:
                kids = children_of(self.pid)
                target = kids[0] if kids else None
            kib = None if target is None else read_status(target, "VmRSS")
            if kib is not None:
                self.samples.append((time.time(), kib / 1024))
            self._stop.wait(self.interval)

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join()
        return self.samples

    @staticmethod
    def peak_between(samples: list[tuple[float, float]], start: float, end: float) -> float | None:
        inside = [mb for t, mb in samples if start <= t <= end]
        return max(inside) if inside else None


#: Runs the measured command and writes its exit code and ``ru_maxrss`` (KiB) to ``argv[1]``.
#: A child's ``ru_maxrss`` counts what it had resident before ``exec``, which after a fork is
#: its parent's memory: this small process is that parent, not the benchmark (which holds
#: an index and numpy), so the figure is the measured command's own.
WRAPPER = (
    "import json, os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    json.dump({'code': os.waitstatus_to_exitcode(status), 'maxrss_kib': usage.ru_maxrss}, f)\n"
)


def run_measured(cmd: list[str], *, env: dict[str, str], max_bytes: int | None, timeout: float,
                 cwd: str | None = None) -> tuple[int, float, float, str, str, list[tuple[float, float]]]:
    """Run ``cmd``; return (exit code, wall s, its peak RSS in MiB, stdout, stderr, RSS samples).

    ``max_bytes`` caps its address space (RLIMIT_AS); past ``timeout`` seconds it is killed.
    """

    def limit() -> None:
        if max_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-S", "-c", WRAPPER, report.name, *cmd], env=env, cwd=cwd,
                                stdout=out, stderr=err, preexec_fn=limit, start_new_session=True)
        sampler = Sampler(proc.pid, follow_child=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        wall = time.perf_counter() - started
        samples = sampler.stop()
        try:
            figures = json.loads(Path(report.name).read_text())
        except (OSError, ValueError):
            figures = {"code": proc.returncode if proc.returncode else -9, "maxrss_kib": float("nan")}
        out.seek(0)
        err.seek(0)
        return (int(figures["code"]), wall, figures["maxrss_kib"] / 1024, out.read().decode(errors="replace"),
                err.read().decode(errors="replace"), samples)


# Inputs --------------------------------------------------------------------------------


def make_inputs(corpus: Path, minutes: float, formats: list[str], log: Callable[[str], None]) -> dict[str, Path]:
    """The long upload in each format (cached), and a 10 s clip of it (WAV)."""
    import numpy as np
    import soundfile as sf

    from . import manifest
    from .manifest import Reference

    folder = corpus / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"long-{minutes:g}min"
    flac = folder / f"{stem}.flac"
    if not flac.exists():
        log(f"writing {flac}")
        refs = manifest.read_jsonl(corpus / manifest.REFERENCES, Reference)
        need = int(round(minutes * 60 * SR))
        parts, have = [], 0
        for ref in refs:
            if have >= need:
                break
            data, rate = sf.read(corpus / ref.path, dtype="float32")
            assert rate == SR, ref.path
            parts.append(data)
            have += len(data)
        if have < need:
            raise SystemExit(f"the references hold {have / SR / 60:.0f} min, fewer than {minutes:g}")
        sf.write(flac, np.concatenate(parts)[:need], SR, subtype="PCM_16")
    paths = {"flac": flac}
    m4a = folder / f"{stem}.m4a"
    if ("m4a" in formats or "mp4" in formats) and not m4a.exists():
        log(f"writing {m4a}")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(flac), "-ac", "2", "-ar", "44100", "-c:a", "aac",
                        "-b:a", "128k", str(m4a)], check=True)
    paths["m4a"] = m4a
    mp4 = folder / f"{stem}.mp4"
    if "mp4" in formats and not mp4.exists():
        log(f"writing {mp4}")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=160x120:r=10",
                        "-i", str(m4a), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
                        "-tune", "stillimage", "-pix_fmt", "yuv420p", "-c:a", "copy", "-shortest", str(mp4)],
                       check=True)
    paths["mp4"] = mp4
    clip = folder / "clip-10s.wav"
    if not clip.exists():
        data, _ = sf.read(flac, frames=SR * 70, dtype="float32")
        sf.write(clip, data[SR * 60:], SR, subtype="PCM_16")
    paths["clip10"] = clip
    return {k: v for k, v in paths.items() if k in formats or k == "clip10"}


def upload_references(corpus: Path, minutes: float) -> list[str]:
    """The references the long upload holds (joined in manifest order, the last one cut)."""
    from . import manifest
    from .manifest import Reference

    start, ids = 0.0, []
    for ref in manifest.read_jsonl(corpus / manifest.REFERENCES, Reference):
        if start >= minutes * 60:
            break
        start += ref.duration
        ids.append(ref.id)
    return ids


def classify(sound_ids: list[int], sound_to_ref: dict[int, str], inside: list[str]) -> dict[str, Any]:
    """Split the sounds an upload was matched to into references it holds and others."""
    refs = [sound_to_ref.get(int(s), f"sound {s}") for s in dict.fromkeys(sound_ids)]
    return {"sounds": len(refs), "sounds_in_upload": sum(r in inside for r in refs),
            "other_sounds": sorted(r for r in refs if r not in inside)}


def audio_seconds(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=duration",
                          "-of", "default=nw=1:nk=1", str(path)], capture_output=True, text=True).stdout.strip()
    try:
        return float(out)
    except ValueError:
        return float("nan")


def build_store(corpus: Path, url_path: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Index the corpus references into a new SQLite file; make an API key. Returns what was made."""
    from audiofp.services import create_key
    from audiofp.store import Store

    from . import manifest
    from .manifest import Reference
    from .run import ingest_all

    refs = manifest.read_jsonl(corpus / manifest.REFERENCES, Reference)
    store = Store.open(f"sqlite:///{url_path}")
    try:
        log(f"indexing {len(refs)} references")
        sound_to_ref, figures = ingest_all(store, corpus, refs, log)
        key = create_key(store, name="bench-memory", role="pipeline").secret
    finally:
        store.dispose()
    return {"sounds": figures["sounds"], "hours": figures["audio_seconds"] / 3600, "key": key,
            "sound_to_ref": {str(k): v for k, v in sound_to_ref.items()}}


# Children --------------------------------------------------------------------------------


def child_service(store_url: str, file: str) -> int:
    """In a fresh process: open the store, submit one upload from the open file, print the figures as JSON."""
    from datetime import datetime, timezone

    from audiofp.config import Settings
    from audiofp.services import submit_upload
    from audiofp.store import Store

    settings = Settings.load()
    store = Store.open(store_url)
    before = read_status("self", "VmHWM")
    rss_before = read_status("self", "VmRSS")
    result: dict[str, Any] = {"rss_before_mb": (rss_before or 0) / 1024, "hwm_before_mb": (before or 0) / 1024}
    t0 = time.time()
    started = time.perf_counter()
    try:
        with open(file, "rb") as fh:
            sub = submit_upload(store, fh, content_id=f"memory-{os.getpid()}", account_id="bench",
                                uploaded_at=datetime.now(timezone.utc), settings=settings)
        result.update(ok=True, timings_ms=sub.timings, sound_ids=[s["sound_id"] for s in sub.verdict.get("sounds", [])])
    except MemoryError:
        result.update(ok=False, error="MemoryError (address-space cap reached)")
    except Exception as exc:  # report any refusal as the outcome of the measurement
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    result.update(wall=time.perf_counter() - started, t0=t0, peak_mb=(read_status("self", "VmHWM") or 0) / 1024)
    store.dispose()
    print(json.dumps(result))
    return 0


def _python() -> list[str]:
    return [sys.executable]


def _env() -> dict[str, str]:
    return {**os.environ, **CHILD_ENV}


def measure_service(store_url: str, file: Path, max_bytes: int | None, timeout: float) -> dict[str, Any]:
    cmd = [*_python(), "-m", "bench.memory", "_child-service", store_url, str(file)]
    code, wall, maxrss, out, err, samples = run_measured(cmd, env=_env(), max_bytes=max_bytes, timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        return {"ok": False, "error": f"exit {code}: {err.strip()[-300:]}", "process_wall": wall, "peak_mb": maxrss}
    r = json.loads(lines[-1])
    r.update(process_wall=wall, ru_maxrss_mb=maxrss)
    if r.get("timings_ms"):
        t = r["t0"]
        phases = {}
        for name in ("decode", "match", "record"):
            span = r["timings_ms"].get(name, 0.0) / 1000
            phases[name] = Sampler.peak_between(samples, t, t + span + 0.05)
            t += span
        r["phase_peak_mb"] = phases
    return r


def measure_cli(store_url: str, file: Path, max_bytes: int | None, timeout: float) -> dict[str, Any]:
    code = "import sys; from audiofp.cli import main; sys.argv[0] = 'audiofp'; main()"
    cmd = [*_python(), "-c", code, "--database-url", store_url, "match", str(file), "--json"]
    rc, wall, maxrss, out, err, _ = run_measured(cmd, env=_env(), max_bytes=max_bytes, timeout=timeout)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    r: dict[str, Any] = {"ok": rc == 0, "wall": wall, "peak_mb": maxrss, "exit_code": rc}
    if lines and "matches" in lines[-1]:
        r.update(sound_ids=[m["sound_id"] for m in lines[-1]["matches"]], seconds=lines[-1].get("seconds"))
    if rc != 0:
        r["error"] = err.strip()[-300:]
    return r


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_api(store_url: str, key: str, file: Path, max_bytes: int | None, timeout: float, log: Callable[[str], None]) -> dict[str, Any]:
    """One gunicorn worker (the deployment's config file), one upload of ``file``."""
    import audiofp
    import requests

    root = Path(audiofp.__file__).resolve().parent.parent  # serve the code this process measures
    port = _free_port()
    env = {**_env(), "AUDIOFP_DATABASE_URL": store_url, "AUDIOFP_RATE_LIMIT_PER_MINUTE": "0",
           "PYTHONPATH": str(root)}

    def limit() -> None:
        if max_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    with tempfile.TemporaryFile() as logfile:
        proc = subprocess.Popen(
            [*_python(), "-m", "gunicorn", "--config", "python:api.server", "-w", "1", "--threads", "2",
             "--timeout", str(int(timeout)), "-b", f"127.0.0.1:{port}", "api.wsgi:app"],
            cwd=root, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=limit,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    logfile.seek(0)
                    return {"ok": False, "error": "gunicorn did not start: " + logfile.read().decode()[-300:]}
                try:
                    if requests.get(f"{base}/health/ready", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.3)
            workers = children_of(proc.pid)
            if len(workers) != 1:
                return {"ok": False, "error": f"expected one worker, found {workers}"}
            worker = workers[0]
            before = (read_status(worker, "VmHWM") or 0) / 1024
            rss_before = (read_status(worker, "VmRSS") or 0) / 1024
            sampler = Sampler(worker, interval=0.05)
            started = time.perf_counter()
            with open(file, "rb") as fh:
                r = requests.post(f"{base}/v1/uploads", headers={"Authorization": f"Bearer {key}"},
                                  data={"content_id": f"memory-{file.name}", "account_id": "bench",
                                        "uploaded_at": "2024-05-01T12:00:00Z"},
                                  files={"file": (file.name, fh)}, timeout=timeout + 60)
            wall = time.perf_counter() - started
            samples = sampler.stop()
            peak = read_status(worker, "VmHWM")
            out: dict[str, Any] = {
                "ok": r.status_code == 201, "status": r.status_code, "wall": wall, "rss_before_mb": rss_before,
                "hwm_before_mb": before,
                "peak_mb": (peak / 1024) if peak is not None else max((mb for _, mb in samples), default=float("nan")),
                "worker_alive": peak is not None,
            }
            if r.status_code == 201:
                out["sound_ids"] = [s["sound_id"] for s in r.json().get("sounds", [])]
                parts = (p.split(";dur=") for p in r.headers.get("Server-Timing", "").split(", ") if ";dur=" in p)
                out["timings_ms"] = {k: float(v) for k, v in parts}
            else:
                out["error"] = r.text[:300]
            return out
        except requests.RequestException as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


# Report ------------------------------------------------------------------------------------


def _mb(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and x != x) else f"{x:,.0f}"


def _sounds(r: dict[str, Any]) -> str:
    if "sounds_in_upload" in r:
        return f"{r['sounds_in_upload']} + {len(r['other_sounds'])}"
    return str(r.get("sounds", "-"))


def render(results: dict[str, Any]) -> str:
    lines = [
        f"# Memory of one long upload, {results['started']}",
        "",
        f"Upload: {results['minutes']:g} min of the corpus's references joined end to end (all known audio: "
        f"{results.get('references_in_upload', '?')} references; sounds: how many the upload was matched to, as "
        "references it holds + others). "
        f"Store: SQLite with {results['store']['sounds']} references ({results['store']['hours']:.2f} h). "
        f"One process per measurement, 1 BLAS thread, address space capped at {results['max_gb']:g} GB. "
        f"Machine: {results['machine']}. Code: {results['code']}. Engine params digest `{results['params_digest']}`.",
        "",
        "| path | input | MB | audio s | wall s | peak RSS MB | RSS before upload MB | peak - before MB | decode+fp / match / record s | peak in decode+fp / match / record MB | sounds | outcome |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in results["measurements"]:
        r = m["result"]
        t = r.get("timings_ms") or {}
        split = " / ".join(f"{t[k] / 1000:.1f}" for k in ("decode", "match", "record") if k in t) or "-"
        phases = r.get("phase_peak_mb") or {}
        phase = " / ".join(_mb(phases.get(k)) for k in ("decode", "match", "record")) if phases else "-"
        before = r.get("rss_before_mb")
        peak = r.get("peak_mb")
        outcome = "ok" if r.get("ok") else f"**failed**: {r.get('error', '')[:120]}"
        lines.append(
            f"| {m['path']} | {m['format']} | {m['bytes'] / 1e6:.0f} | {m['audio_seconds']:.0f} | "
            f"{r.get('wall', r.get('process_wall', float('nan'))):.1f} | {_mb(peak)} | {_mb(before)} | "
            f"{_mb(None if before is None or peak is None else peak - before)} | {split} | {phase} | "
            f"{_sounds(r)} | {outcome} |"
        )
    lines += ["", "service: `submit_upload` in a fresh process (peak = VmHWM; before = VmRSS after imports and opening "
              "the store). cli: `audiofp match --json` (peak = ru_maxrss; its 10 s row is the process's own baseline). "
              "api: one gunicorn worker, VmHWM before and after one `POST /v1/uploads`; wall is the HTTP request."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_child-service"]:
        return child_service(argv[1], argv[2])
    if argv[:1] == ["report"] and len(argv) == 2:  # re-render a saved run
        sys.stdout.write(render(json.loads(Path(argv[1]).read_text())))
        return 0
    from audiofp.engine.params import DEFAULT_PARAMS

    from .embedded import code_version

    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=FULL_CORPUS)
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--formats", default=",".join(FORMATS))
    p.add_argument("--paths", default=",".join(PATHS))
    p.add_argument("--max-gb", type=float, default=12.0, help="address-space cap of each measured process (0: none)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds one measurement may take")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    formats = [f for f in args.formats.split(",") if f]
    paths = [x for x in args.paths.split(",") if x]
    max_bytes = int(args.max_gb * 2**30) if args.max_gb else None
    inputs = make_inputs(args.corpus, args.minutes, formats, log)
    started = time.strftime("%Y%m%d-%H%M%S")
    measurements: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="audiofp-memory-") as tmp:
        base = Path(tmp) / "base.sqlite"
        store = build_store(args.corpus, base, log)
        jobs = [(path, fmt) for path in paths for fmt in formats]
        if "cli" in paths:
            jobs.insert(paths.index("cli") * len(formats), ("cli", "clip10"))
        inside = upload_references(args.corpus, args.minutes)
        sound_to_ref = {int(k): v for k, v in store["sound_to_ref"].items()}
        for path, fmt in jobs:
            file = inputs[fmt]
            db = Path(tmp) / f"{path}-{fmt}.sqlite"
            shutil.copyfile(base, db)
            url = f"sqlite:///{db}"
            log(f"{path}, {fmt} ({file.name}) ...")
            if path == "service":
                result = measure_service(url, file, max_bytes, args.timeout)
            elif path == "cli":
                result = measure_cli(url, file, max_bytes, args.timeout)
            else:
                result = measure_api(url, store["key"], file, max_bytes, args.timeout, log)
            db.unlink(missing_ok=True)
            if "sound_ids" in result:
                result.update(classify(result["sound_ids"], sound_to_ref, inside))
            log(f"  -> {json.dumps({k: v for k, v in result.items() if k in ('ok', 'wall', 'peak_mb', 'error')})}")
            measurements.append({"path": path, "format": "wav (10 s clip)" if fmt == "clip10" else fmt, "file": str(file),
                                 "bytes": file.stat().st_size, "audio_seconds": audio_seconds(file), "result": result})
    results = {
        "started": started,
        "minutes": args.minutes,
        "max_gb": args.max_gb,
        "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "code": code_version(),
        "params_digest": DEFAULT_PARAMS.digest(),
        "store": {k: v for k, v in store.items() if k != "key"},
        "references_in_upload": len(upload_references(args.corpus, args.minutes)),
        "measurements": measurements,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = render(results)
    (args.out / f"{started}-memory.json").write_text(json.dumps(results, indent=1, default=float))
    (args.out / f"{started}-memory.md").write_text(text)
    sys.stdout.write(text)
    log(f"written {args.out / (started + '-memory.md')} and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
