"""Request ids and the access log (api/requestlog.py): under the Flask test client, and under gunicorn.

Every response carries ``X-Request-Id`` (the client's when sane, else a fresh
one), every problem+json body repeats it as ``request_id``, and every request
is one JSON line on the ``audiofp.access`` logger that names the key by id and
name but never by its secret. Under gunicorn (the documented command, no
logging flags) those lines are gunicorn's access log, and gunicorn's own
refusals carry an id too.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from gunicorn.config import KNOWN_SETTINGS, Config

from api.requestlog import ACCESS_LOGGER, MAX_LOGGED_PATH, access_record, log_access, remote_addr
from api.server import GUNICORN_SETTINGS, AccessLogger
from audiofp.services import create_key
from audiofp.store import Store

from api_fixtures import ApiHarness, make_harness

ROOT = Path(__file__).resolve().parents[2]
#: gunicorn 25.1+ opens a control socket in $HOME by default, shared by every gunicorn there.
NO_CONTROL_SOCKET = ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []
FRESH_ID = re.compile(r"[0-9a-f]{32}")
FIELDS = ["time", "request_id", "method", "path", "status", "duration_ms", "bytes_in", "bytes_out", "remote_addr",
          "key_id", "key_name"]


@pytest.fixture
def api(sqlite_url):
    h = make_harness(sqlite_url)
    try:
        yield h
    finally:
        h.app.extensions["audiofp"].close()


@pytest.fixture
def access_lines(caplog):
    """The access log lines written so far, parsed; each must be one JSON object on one line.

    A request is logged once its answer has been sent: under the test client,
    once the test has read the response body.
    """
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)

    def lines() -> list[dict]:
        out = []
        for record in caplog.records:
            if record.name == ACCESS_LOGGER:
                message = record.getMessage()
                assert "\n" not in message and "\r" not in message
                out.append(json.loads(message))
        return out

    return lines


def test_every_response_carries_a_request_id_and_a_sane_client_id_is_reused(api: ApiHarness, access_lines):
    c = api.client
    ours = c.get("/health/live")
    assert FRESH_ID.fullmatch(ours.headers["X-Request-Id"])
    assert c.get("/health/live").headers["X-Request-Id"] != ours.headers["X-Request-Id"]  # fresh each time
    for sane in ["abc", "trace-1.2_3", "A" * 128, "0"]:
        assert c.get("/health/live", headers={"X-Request-Id": sane}).headers["X-Request-Id"] == sane
    for insane in ["A" * 129, "has space", "semi;colon", "quote\"", "caf\u00e9", "line\\nbreak", "", "a/b"]:
        given = c.get("/health/live", headers={"X-Request-Id": insane}).headers["X-Request-Id"]
        assert FRESH_ID.fullmatch(given), (insane, given)
    logged = [line["request_id"] for line in access_lines()]
    assert logged[2:6] == ["abc", "trace-1.2_3", "A" * 128, "0"]
    assert all(FRESH_ID.fullmatch(rid) for rid in logged[6:])


def test_one_json_line_per_request_names_the_key_never_its_secret(api: ApiHarness, access_lines):
    c = api.client
    secret = api.keys["investigator"]
    ok = c.get("/v1/events?limit=5&api_key=" + secret, headers={"X-API-Key": api.keys["pipeline"],
                                                                         "X-Request-Id": "ev-1"})
    assert ok.status_code == 200
    denied = c.get("/v1/events", headers={"Authorization": "Bearer afp_not_a_key", "X-Request-Id": "ev-2"})
    assert denied.status_code == 401
    body = json.dumps({"content_id": "nothing-here", "policy_label": "p"}).encode()
    missing = c.post("/v1/removals", data=body, content_type="application/json",
                     headers={**api.auth("admin"), "X-Request-Id": "rm-1"})
    assert missing.status_code == 404
    forbidden = c.post("/v1/removals", data=body, content_type="application/json",
                       headers={**api.auth("investigator"), "X-Request-Id": "rm-2"})
    assert forbidden.status_code == 403

    lines = access_lines()
    assert [line["request_id"] for line in lines] == ["ev-1", "ev-2", "rm-1", "rm-2"]  # one line each, in order
    for line in lines:
        assert list(line) == FIELDS
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
        assert line["duration_ms"] >= 0 and line["remote_addr"] == "127.0.0.1"
    events, unauthorized, removal, refused = lines
    # a key refused for its role is named, so an operator sees which key tried what
    assert refused["status"] == 403 and refused["key_name"] == "test-investigator"
    assert events["method"] == "GET" and events["path"] == "/v1/events"  # no query string, no secret in it
    assert events["status"] == 200 and events["bytes_in"] == 0 and events["bytes_out"] == len(ok.data)
    assert events["key_name"] == "test-pipeline" and isinstance(events["key_id"], int)
    assert unauthorized["status"] == 401 and unauthorized["key_id"] is None and unauthorized["key_name"] is None
    assert removal == {**removal, "method": "POST", "path": "/v1/removals", "status": 404, "bytes_in": len(body),
                       "bytes_out": len(missing.data), "key_name": "test-admin"}
    text = "\n".join(json.dumps(line) for line in lines)
    for key in api.keys.values():
        assert key not in text
    assert "afp_not_a_key" not in text


def test_every_problem_carries_the_request_id_of_its_header_and_log_line(sqlite_url, access_lines):
    h = make_harness(sqlite_url, MAX_UPLOAD_BYTES=1000)
    try:
        c = h.client  # SpecClient: each problem must also match the spec's Problem (request_id required)
        raw = c.client  # for paths and methods the spec does not have
        answers = [
            raw.get("/v1/nowhere"),  # 404 from routing
            c.get("/v1/events"),  # 401
            raw.delete("/health/live"),  # 405
            c.get("/v1/sounds/1", headers=h.auth("pipeline")),  # 403
            c.post("/v1/match", headers={**h.auth("pipeline"), "X-Request-Id": "big-1"},
                   data={"file": (io.BytesIO(b"x" * 200_000), "a.wav")}),  # 413, body not read
            c.post("/v1/removals", headers=h.auth("pipeline"), data="[" * 40 + "]" * 40,
                   content_type="application/json"),  # 400
        ]
        assert [r.status_code for r in answers] == [404, 401, 405, 403, 413, 400]
        for response in answers:
            assert response.mimetype == "application/problem+json"
            assert response.get_json()["request_id"] == response.headers["X-Request-Id"]
        # A line is written once the answer has been read (the raw client reads it lazily).
        lines = {line["request_id"]: line for line in access_lines()}
        assert len(lines) == len(answers)
        for response in answers:
            assert lines[response.headers["X-Request-Id"]]["status"] == response.status_code
        assert answers[4].headers["X-Request-Id"] == "big-1" and lines["big-1"]["bytes_in"] == 0
    finally:
        h.app.extensions["audiofp"].close()


def test_hostile_paths_stay_one_bounded_line_and_forwarded_for_is_believed_only_over_a_unix_socket(
        api: ApiHarness, access_lines):
    raw = api.client.client  # the spec has no such paths; each answer is read so that it is logged in turn
    assert raw.get("/v1/sounds/%0A%22%7D%7B/uses").data
    assert raw.get("/v1/" + "a" * 5000).data
    assert raw.get("/health/live", headers={"X-Forwarded-For": "203.0.113.7"}).data  # over TCP: not believed
    assert raw.get("/health/live", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"},
                   environ_base={"REMOTE_ADDR": ""}).data  # from the local proxy's unix socket
    hostile, long, tcp, proxied = access_lines()
    assert hostile["path"] == '/v1/sounds/\n"}{/uses'  # escaped in the line, intact once parsed
    assert len(long["path"]) == MAX_LOGGED_PATH + 3 and long["path"].endswith("...")
    assert tcp["remote_addr"] == "127.0.0.1"
    assert proxied["remote_addr"] == "203.0.113.7"
    assert remote_addr({"REMOTE_ADDR": "", "HTTP_X_FORWARDED_FOR": ""}) is None


def test_gunicorns_access_log_carries_the_apps_lines(tmp_path):
    cfg = Config()
    for name, value in GUNICORN_SETTINGS.items():
        cfg.set(name, value)
    cfg.set("accesslog", str(tmp_path / "access.log"))
    logger = AccessLogger(cfg)
    try:
        log_access(access_record(started=0.0, request_id="r-1", method="GET", path="/health/live", status=200,
                                 duration_ms=1.0, bytes_in=0, bytes_out=16, remote_addr="127.0.0.1"))
        logger.setup(cfg)  # a reload sets up again: still one handler, not two
        log_access(access_record(started=0.0, request_id="r-2", method="GET", path="/health/live", status=200,
                                 duration_ms=1.0, bytes_in=0, bytes_out=16, remote_addr="127.0.0.1"))
        for handler in logging.getLogger(ACCESS_LOGGER).handlers:
            handler.flush()
        lines = (tmp_path / "access.log").read_text().splitlines()
        assert [json.loads(line)["request_id"] for line in lines] == ["r-1", "r-2"]
    finally:  # leave logging as the other tests expect it
        for log in (logging.getLogger(ACCESS_LOGGER), logger.access_log, logger.error_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
                handler.close()
        logging.getLogger(ACCESS_LOGGER).propagate = True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_documented_gunicorn_command_logs_json_lines_and_its_refusals_carry_ids(sqlite_url, tmp_path):
    with Store.open(sqlite_url) as store:
        key = create_key(store, name="log-test", role="pipeline")
    port = _free_port()
    out, err = (tmp_path / "stdout").open("w"), (tmp_path / "stderr").open("w")
    proc = subprocess.Popen(  # README: gunicorn --config python:api.server --workers .. --threads .. --bind .. api.wsgi:app
        [sys.executable, "-m", "gunicorn", "--config", "python:api.server", "--workers", "1", "--threads", "2",
         "--bind", f"127.0.0.1:{port}", *NO_CONTROL_SOCKET, "api.wsgi:app"],
        cwd=ROOT, env={**os.environ, "AUDIOFP_DATABASE_URL": sqlite_url, "PYTHONPATH": str(ROOT)},
        stdout=out, stderr=err, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/health/ready", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr").read_text()
            time.sleep(0.2)
        events = requests.get(f"{base}/v1/events?api_key=x", headers={"X-API-Key": key.secret,
                                                                      "X-Request-Id": "gunicorn-1"}, timeout=10)
        assert events.status_code == 200 and events.headers["X-Request-Id"] == "gunicorn-1"
        refused = requests.get(f"{base}/v1/events", headers={"X-Pad": "a" * 20_000}, timeout=10)
        assert refused.status_code == 431
        assert FRESH_ID.fullmatch(refused.headers["X-Request-Id"])
        assert refused.json()["request_id"] == refused.headers["X-Request-Id"]

        deadline = time.monotonic() + 10
        while (tmp_path / "stdout").read_text().count("\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        out.close()
        err.close()
    lines = [json.loads(line) for line in (tmp_path / "stdout").read_text().splitlines()]  # JSON lines only
    by_id = {line["request_id"]: line for line in lines}
    assert by_id["gunicorn-1"] == {**by_id["gunicorn-1"], "method": "GET", "path": "/v1/events", "status": 200,
                                   "key_id": key.record.id, "key_name": "log-test", "remote_addr": "127.0.0.1"}
    refusal = by_id[refused.headers["X-Request-Id"]]
    assert refusal["status"] == 431 and refusal["bytes_out"] == len(refused.content)
    assert key.secret not in (tmp_path / "stdout").read_text() + (tmp_path / "stderr").read_text()
