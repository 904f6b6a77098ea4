"""Slow clients cannot starve the production deployment (deploy/: nginx in front of gunicorn).

A client that declares a large body and then sends it slowly, or not at all,
holds one of gunicorn's threads for as long as it likes: with 16 of them the
service stops answering (shown first, straight to gunicorn's socket). Behind
nginx (``deploy/serve.py``, the documented production command), the same
clients hold only nginx connections: liveness answers at once, a real upload
goes through, and nginx cuts each slow client off once it has been silent
for the client timeout.

CI installs nginx (.ci/run); without it the test is skipped locally and fails in CI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from audiofp.services import create_key
from audiofp.store import Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "deploy" / "serve.py"

#: nginx's client timeouts in this test (production: 10 s): short, to see slow clients cut off.
CLIENT_TIMEOUT = 3.0
#: Slow clients, more than gunicorn has threads here (1 worker x 2 threads) and than most deployments have.
SLOW_CLIENTS = 16
#: How long liveness may take to answer while the slow clients hang on.
LIVENESS_BUDGET = 2.0
DECLARED_BODY = 100 * 1024 * 1024


def _load_serve():  # deploy/ is not a package
    spec = importlib.util.spec_from_file_location("audiofp_deploy_serve", SERVE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nginx() -> str:
    found = _load_serve().find_nginx()
    if found is None:
        reason = "nginx is not installed (apt-get install nginx); deploy/ needs it"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI installs it: .ci/run)", pytrace=False)
        pytest.skip(reason)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Deployment:
    base: str
    port: int
    socket: Path
    run_dir: Path
    key: str
    stdout: Path
    stderr: Path


@pytest.fixture
def deployment(nginx, sqlite_url, tmp_path) -> Iterator[Deployment]:
    """``deploy/serve.py`` on a free loopback port: nginx -> gunicorn (1 worker, 2 threads) on a unix socket."""
    with Store.open(sqlite_url) as store:
        key = create_key(store, name="slow-client-test", role="pipeline").secret
    # Not under tmp_path: run as root, nginx's workers (nobody) must traverse to the socket.
    run_dir = Path(tempfile.mkdtemp(prefix="audiofp-deploy-"))
    port = _free_port()
    stdout, stderr = tmp_path / "serve.stdout", tmp_path / "serve.stderr"
    with stdout.open("w") as out, stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(SERVE), "--listen", f"127.0.0.1:{port}", "--run-dir", str(run_dir),
             "--workers", "1", "--threads", "2", "--client-timeout", f"{CLIENT_TIMEOUT:g}", "--nginx", nginx],
            cwd=ROOT, env={**os.environ, "AUDIOFP_DATABASE_URL": sqlite_url, "PYTHONPATH": str(ROOT)},
            stdout=out, stderr=err, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/health/ready", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "the deployment did not become ready in 30 s:\n" + stderr.read_text()
            time.sleep(0.2)
        yield Deployment(base, port, run_dir / "gunicorn.sock", run_dir, key, stdout, stderr)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        shutil.rmtree(run_dir, ignore_errors=True)


def _slow_upload(connect, key: str, request_id: str) -> socket.socket:
    """A client that declares a 100 MB upload, sends its first bytes, and stops."""
    s = connect()
    s.sendall((f"POST /v1/uploads HTTP/1.1\r\nHost: audiofp\r\nAuthorization: Bearer {key}\r\n"
               f"X-Request-Id: {request_id}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
               f"Content-Length: {DECLARED_BODY}\r\n\r\n--b\r\n").encode())
    return s


def _live_over_unix(path: Path, timeout: float) -> int | None:
    """GET /health/live straight to gunicorn's socket: the status, or None if none came within ``timeout``."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
            s.sendall(b"GET /health/live HTTP/1.1\r\nHost: audiofp\r\nConnection: close\r\n\r\n")
            status = s.recv(64).split(b" ", 2)
        except TimeoutError:
            return None
        return int(status[1]) if len(status) > 1 else None


def _cut_off_after(s: socket.socket, limit: float) -> float:
    """Seconds until the server closed ``s`` (it sends nothing first); fails past ``limit``."""
    start = time.monotonic()
    s.settimeout(limit)
    try:
        data = s.recv(4096)
    except ConnectionResetError:  # nginx resets a timed-out connection (reset_timedout_connection)
        data = b""
    except TimeoutError:
        pytest.fail(f"a slow client was still connected {limit:.0f} s later")
    assert data == b"", data[:200]
    return time.monotonic() - start


def test_slow_clients_starve_bare_gunicorn_but_not_the_deployment_behind_nginx(deployment: Deployment):
    # 1. Straight to gunicorn, 16 slow uploads hold every thread: liveness gets no answer.
    assert _live_over_unix(deployment.socket, 5.0) == 200

    def connect_unix() -> socket.socket:
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(deployment.socket))
        return s

    direct = [_slow_upload(connect_unix, deployment.key, f"direct-{i}") for i in range(SLOW_CLIENTS)]
    time.sleep(0.3)
    assert _live_over_unix(deployment.socket, LIVENESS_BUDGET) is None, "the slow clients did not starve gunicorn"
    for s in direct:
        s.close()
    deadline = time.monotonic() + 10
    while _live_over_unix(deployment.socket, 1.0) != 200:  # their threads come back once they hang up
        assert time.monotonic() < deadline, "gunicorn did not recover once the slow clients hung up"

    # 2. The same clients through nginx: 8 go silent, 8 trickle a byte every 0.5 s.
    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", deployment.port))

    silent = [_slow_upload(connect, deployment.key, f"silent-{i}") for i in range(SLOW_CLIENTS // 2)]
    silent_since = time.monotonic()
    trickling = [_slow_upload(connect, deployment.key, f"trickle-{i}") for i in range(SLOW_CLIENTS // 2)]
    stop_trickling = threading.Event()

    def trickle() -> None:
        while not stop_trickling.wait(0.5):
            for s in trickling:
                try:
                    s.sendall(b"x")
                except OSError:
                    pass

    def still_connected(clients: list[socket.socket]) -> None:
        for s in clients:
            s.setblocking(False)
            with pytest.raises(BlockingIOError):  # nothing to read, and not closed
                s.recv(1)
            s.setblocking(True)

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(0.3)
        for _ in range(5):
            started = time.monotonic()
            r = requests.get(f"{deployment.base}/health/live", timeout=LIVENESS_BUDGET)
            assert r.status_code == 200 and time.monotonic() - started < LIVENESS_BUDGET
        assert time.monotonic() - silent_since < CLIENT_TIMEOUT, "too slow to have checked while all were connected"

        # 3. nginx cuts off the silent clients once they have been silent for the client timeout...
        for s in silent:
            _cut_off_after(s, CLIENT_TIMEOUT + 3)
        waited = time.monotonic() - silent_since
        assert CLIENT_TIMEOUT - 0.5 < waited < CLIENT_TIMEOUT + 3, waited
        # ...while the trickling ones are still connected, and a real upload goes through meanwhile,
        # with the request id the client chose.
        still_connected(trickling)
        chant = (ROOT / "samples" / "chant.ogg").read_bytes()
        upload = requests.post(
            f"{deployment.base}/v1/uploads", headers={"Authorization": f"Bearer {deployment.key}",
                                                      "X-Request-Id": "real-upload-1"},
            data={"content_id": "slow-1", "account_id": "acct", "uploaded_at": "2024-05-01T12:00:00Z"},
            files={"file": ("chant.ogg", chant, "audio/ogg")}, timeout=30)
        assert upload.status_code == 201, upload.text
        assert upload.json()["original_sound_id"] and upload.headers["X-Request-Id"] == "real-upload-1"
        assert requests.get(f"{deployment.base}/health/live", timeout=LIVENESS_BUDGET).status_code == 200
        still_connected(trickling)
    finally:
        stop_trickling.set()
        trickler.join(timeout=5)
    # ...and the trickling ones too, once they stop sending (their last byte went at most 0.5 s before).
    stopped = time.monotonic()
    for s in trickling:
        s.setblocking(True)
        _cut_off_after(s, CLIENT_TIMEOUT + 3)
        assert time.monotonic() - stopped > CLIENT_TIMEOUT - 1.0
    for s in silent + trickling:
        s.close()

    # A body larger than the upload limit is refused at once, in problem+json, before gunicorn sees it.
    too_large = socket.create_connection(("127.0.0.1", deployment.port), timeout=10)
    too_large.sendall(b"POST /v1/uploads HTTP/1.1\r\nHost: audiofp\r\nContent-Length: 300000000\r\n\r\n")
    head, _, body = too_large.recv(65536).partition(b"\r\n\r\n")
    too_large.close()
    assert head.startswith(b"HTTP/1.1 413 ") and b"Content-Type: application/problem+json" in head, head
    problem = json.loads(body)
    assert problem["type"] == "/problems/too-large" and f"X-Request-Id: {problem['request_id']}".encode() in head

    # nginx's log shows the slow clients cut off (408) and never proxied; the app's log shows the upload.
    nginx_log = [json.loads(line) for line in (deployment.run_dir / "nginx-access.log").read_text().splitlines()]
    cut = {line["request_id"]: line for line in nginx_log if line["request_id"].startswith(("silent-", "trickle-"))}
    assert len(cut) == SLOW_CLIENTS and all(line["status"] == 408 and not line["upstream_status"]
                                            for line in cut.values())
    app_log = [json.loads(line) for line in deployment.stdout.read_text().splitlines()]
    assert not [line for line in app_log if line["request_id"].startswith(("silent-", "trickle-"))]
    upload_line = next(line for line in app_log if line["request_id"] == "real-upload-1")
    assert upload_line == {**upload_line, "method": "POST", "path": "/v1/uploads", "status": 201,
                           "key_name": "slow-client-test", "remote_addr": "127.0.0.1"}
    assert upload_line["bytes_in"] > len(chant)
