"""The API over a real socket: gunicorn with 2 workers, as in production.

``--preload`` loads the app (and opens the store) in the master before forking,
the harder case: each worker must drop the inherited connection pool.
(``audiofp serve`` runs gunicorn without it; see test_moderation.py.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from audiofp.services import create_key
from audiofp.store import Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_refusals_are_problems(base: str, headers: dict[str, str]) -> None:
    """What gunicorn refuses before the app sees it (too long a URL, too large headers) is problem+json too."""
    refusals = {
        414: requests.get(f"{base}/v1/events?cursor={'a' * 100_000}", headers=headers, timeout=10),
        431: requests.get(f"{base}/v1/events", headers={**headers, "X-Padding": "a" * 20_000}, timeout=10),
    }
    for status, r in refusals.items():
        assert r.status_code == status and r.headers["Content-Type"] == "application/problem+json", r.text[:200]
        problem = r.json()
        assert problem["status"] == status and problem["type"].startswith("/problems/") and problem["detail"]
        assert len(r.content) < 1000  # the 100 KB URL is not echoed back
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:  # not HTTP at all
        raw.sendall(b"\x16\x03\x01 not a request line\r\n\r\n")
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"Content-Type: application/problem+json" in head, answer
    assert json.loads(body)["type"] == "/problems/bad-request"
    assert requests.get(f"{base}/health/live", timeout=10).status_code == 200  # the worker is still serving


def test_gunicorn_workers_serve_uploads_over_a_socket(store_url, tmp_path):
    with Store.open(store_url) as store:  # migrate and issue a key before the workers start
        key = create_key(store, name="socket-test", role="pipeline").secret
    port = _free_port()
    env = {**os.environ, "AUDIOFP_DATABASE_URL": store_url, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "python:api.server", "-w", "2", "--threads", "2",
         "-b", f"127.0.0.1:{port}", "--timeout", "60", "--preload", "api.wsgi:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/health/ready", timeout=10).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn did not become ready in 30 s"
            time.sleep(0.2)

        auth = {"Authorization": f"Bearer {key}"}
        assert requests.get(f"{base}/v1/events", timeout=10).status_code == 401
        chant = (ROOT / "samples" / "chant.ogg").read_bytes()
        form = {"content_id": "sock-1", "account_id": "acct", "uploaded_at": "2024-05-01T12:00:00Z"}
        first = requests.post(f"{base}/v1/uploads", headers=auth, data=form,
                              files={"file": ("chant.ogg", chant, "audio/ogg")}, timeout=60)
        assert first.status_code == 201, first.text
        sound_id = first.json()["original_sound_id"]
        # retries may land on the other worker: same answer either way
        for _ in range(3):
            again = requests.post(f"{base}/v1/uploads", headers=auth, data=form,
                                  files={"file": ("chant.ogg", chant, "audio/ogg")}, timeout=60)
            assert again.status_code == 200 and again.content == first.content
        match = requests.post(f"{base}/v1/match", headers=auth, files={"file": ("c.ogg", chant, "audio/ogg")},
                              timeout=60)
        assert [s["sound_id"] for s in match.json()["sounds"]] == [sound_id]
        bad = requests.post(f"{base}/v1/match", headers=auth, files={"file": ("x.ogg", b"junk" * 100)}, timeout=60)
        assert bad.status_code == 422 and bad.headers["Content-Type"] == "application/problem+json"
        assert_refusals_are_problems(base, auth)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()
