"""Every hostile request of ``tests/hostile_corpus.py`` against both upload endpoints, on SQLite and PostgreSQL.

Whatever a request holds (a truncated or lying container, a decompression
bomb, a playlist pointing elsewhere, multipart no client would write, absurd
fields), the answer is a problem document (4xx, ``application/problem+json``
with ``title``, ``status`` and ``detail``) or a correct verdict (2xx), as the
spec documents it; never a 5xx, never a hang, never a dead worker; and a
refused upload records nothing.

A request whose media reaches the decoder runs in a forked copy of the app
(as a gunicorn worker runs it), so one that hangs is killed at
:data:`REQUEST_SECONDS` and one that crashes the process (a segfault in a
decoder) fails its own case instead of taking the test session down with it;
requests hostile only in their shape run in-process, bounded by a thread.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import hostile_corpus as corpus
from api_fixtures import ApiHarness, check_against_spec, harness, make_harness  # noqa: F401
from audiofp.store.models import FingerprintPostings, Sound, Upload, Use

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="each request runs in a forked worker"),
    pytest.mark.skipif(not corpus.ffmpeg_available(), reason="the corpus is encoded with ffmpeg"),
]

#: Longest any request may take: the decode budget below, plus ample room for a loaded CI machine.
REQUEST_SECONDS = 30.0

#: The app under attack: small limits, so that bombs and oversized bodies are refused in milliseconds.
APP_CONFIG = {
    "MAX_AUDIO_SECONDS": corpus.MAX_AUDIO_SECONDS,
    "MAX_UPLOAD_BYTES": corpus.MAX_UPLOAD_BYTES,
    "DECODE_TIMEOUT_SECONDS": 5,
}

ENDPOINTS = {"match": "/v1/match", "uploads": "/v1/uploads"}

#: Rows a refused upload (and any dry run) must leave alone.
RECORDS = {"uploads": Upload, "sounds": Sound, "uses": Use, "fingerprints": FingerprintPostings}


# --- fixtures ------------------------------------------------------------------

@pytest.fixture(scope="session")
def media(request, tmp_path_factory) -> corpus.Media:
    """The encoded media, in pytest's cache (kept across runs, shared by xdist workers) when it is on."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return corpus.Media(Path(cache.mkdir("audiofp-hostile-media")))
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    return corpus.Media(root / "hostile-media")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hostile(request, tmp_path_factory, media) -> Iterator[ApiHarness]:
    """One app per backend for the whole corpus: each case checks only what its own request changed."""
    with corpus.scratch_database(request.param, tmp_path_factory.mktemp("hostile-db")) as url:
        h = make_harness(url, **APP_CONFIG)
        try:
            # One dry run in this process first: what it loads and caches (the engine's modules, the
            # store's parameters) is then inherited by every forked worker instead of loaded by each.
            warm = h.client.post("/v1/match", data={"file": (io.BytesIO(media.encoded("mp3")), "warm.mp3")},
                                 headers=h.auth("pipeline"))
            assert warm.status_code == 200, warm.get_data(as_text=True)[:300]
            yield h
        finally:
            h.app.extensions["audiofp"].close()


# --- one request in a forked worker ----------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    mimetype: str
    headers: dict[str, str]
    data: bytes
    seconds: float

    def json(self) -> Any:
        """The body as strict JSON (NaN and Infinity are not JSON)."""
        return strict_json(self.data)


def strict_json(data: bytes | str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"the body is not JSON: it holds {constant}")

    return json.loads(data, parse_constant=refuse)


def _serve_in_child(app: Any, path: str, request: corpus.Request, headers: dict[str, str], out: str) -> None:
    """In the forked child: answer the request as a worker would, write the answer to ``out``, exit."""
    code = 0
    try:
        svc = app.extensions["audiofp"]
        # A forked worker must not share the parent's pooled connections (api.services drops them
        # when it sees another pid); dropping them here keeps the open store and skips re-migrating.
        # The parent's pool is kept referenced until _exit, so that none of its connections is
        # garbage-collected (and closed) here.
        inherited = None  # noqa: F841 - held, not read
        if getattr(svc, "_store", None) is not None and hasattr(svc, "_pid"):
            inherited = svc._store.engine.pool
            svc._store.engine.dispose(close=False)
            svc._pid = os.getpid()
        extra = {}
        if request.content_length is not None:
            extra["environ_overrides"] = {"CONTENT_LENGTH": str(request.content_length)}
        started = time.monotonic()
        response = app.test_client().post(path, data=request.body, content_type=request.content_type,
                                          headers=headers, query_string=request.query or None, **extra)
        answer = (response.status_code, response.mimetype, dict(response.headers), response.get_data(),
                  time.monotonic() - started)
        with open(out, "wb") as f:
            pickle.dump(answer, f)
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the case
        with open(out + ".error", "w") as f:
            f.write(traceback.format_exc())
        code = 3
    finally:
        os._exit(code)


def answer_in_a_worker(h: ApiHarness, path: str, request: corpus.Request, headers: dict[str, str]) -> Answer:
    """Send ``request`` to a forked copy of the app; fail on a hang, a crash, or a port opened for the upload."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "answer")
        pid = os.fork()
        if pid == 0:
            _serve_in_child(h.app, path, request, headers, out)
        started = time.monotonic()
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            problem = None
            if request.watch_udp_port is not None:
                listening = corpus.udp_ports_listening() or set()
                opened = {request.watch_udp_port, request.watch_udp_port + 1} & listening
                if opened:
                    problem = (f"the server listens on UDP port(s) {sorted(opened)}, named by the uploaded file, "
                               f"{time.monotonic() - started:.2f} s into the request")
            if problem is None and time.monotonic() - started > REQUEST_SECONDS:
                problem = f"no answer within {REQUEST_SECONDS:.0f} s: the request hangs"
            if problem is not None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(problem, pytrace=False)
            time.sleep(0.005)
        if os.WIFSIGNALED(status):
            pytest.fail(f"the worker died of {signal.Signals(os.WTERMSIG(status)).name} while answering "
                        "(a crash in-process: gunicorn would lose the worker and every request on it)", pytrace=False)
        if os.WEXITSTATUS(status) != 0:
            error = Path(out + ".error")
            pytest.fail("the request raised in the test client:\n" + (error.read_text() if error.exists() else "?"))
        with open(out, "rb") as f:
            return Answer(*pickle.load(f))


def answer_in_process(h: ApiHarness, path: str, request: corpus.Request, headers: dict[str, str]) -> Answer:
    """Send ``request`` to the app in this process, in a thread: fail if no answer comes in time."""
    answers: list[Answer] = []
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            extra = {}
            if request.content_length is not None:
                extra["environ_overrides"] = {"CONTENT_LENGTH": str(request.content_length)}
            started = time.monotonic()
            response = h.app.test_client().post(path, data=request.body, content_type=request.content_type,
                                                headers=headers, query_string=request.query or None, **extra)
            answers.append(Answer(response.status_code, response.mimetype, dict(response.headers),
                                  response.get_data(), time.monotonic() - started))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    thread.join(REQUEST_SECONDS)
    if thread.is_alive():
        pytest.fail(f"no answer within {REQUEST_SECONDS:.0f} s: the request hangs", pytrace=False)
    if errors:
        raise errors[0]
    return answers[0]


# --- what every answer must be ------------------------------------------------------

def record_counts(h: ApiHarness) -> dict[str, int]:
    with h.store.session() as session:
        return {name: session.scalar(select(func.count()).select_from(model)) for name, model in RECORDS.items()}


def check_problem(answer: Answer) -> None:
    assert answer.mimetype == "application/problem+json", (answer.status, answer.mimetype, answer.data[:300])
    body = answer.json()
    assert isinstance(body, dict), body
    assert body.get("status") == answer.status, body
    for member in ("title", "detail"):
        assert isinstance(body.get(member), str) and body[member].strip(), (member, body)
    assert isinstance(body.get("type"), str) and body["type"].startswith("/problems/"), body


def check_verdict(h: ApiHarness, endpoint: str, answer: Answer, fields: dict[str, bytes]) -> dict[str, Any]:
    """A 2xx is a verdict the store agrees with (nothing in this store is linked to removed content)."""
    assert answer.mimetype == "application/json", (answer.status, answer.mimetype)
    verdict = answer.json()
    assert verdict["action"] == "allow" and verdict["linked_to_removed_content"] is False, verdict
    assert verdict["removals"] == [], verdict
    if verdict.get("fingerprinted") is False:
        assert verdict["sounds"] == [] and verdict["original_sound_id"] is None, verdict
    with h.store.session() as session:
        known = set(session.scalars(select(Sound.id)))
    listed = {s["sound_id"] for s in verdict["sounds"]} | {verdict["original_sound_id"]} - {None}
    assert listed <= known, f"the verdict names sounds the store does not hold: {sorted(listed - known)}"
    if endpoint == "match":
        assert answer.status == 200, answer.status
        assert verdict["upload"] is None and verdict["recorded"] is False, verdict
        assert verdict["original_sound_id"] is None, verdict
        assert all(s["use_id"] is None for s in verdict["sounds"]), verdict
        return verdict
    assert answer.status in (200, 201), answer.status
    content_id = fields["content_id"].decode("utf-8", "replace").strip()
    account_id = fields["account_id"].decode("utf-8", "replace").strip()
    upload = verdict["upload"]
    assert verdict["recorded"] is True and upload["state"] == "live", verdict
    assert (upload["content_id"], upload["account_id"]) == (content_id, account_id), upload
    assert all(isinstance(s["use_id"], int) for s in verdict["sounds"]), verdict
    with h.store.session() as session:
        row = session.scalars(select(Upload).where(Upload.content_id == content_id)).one()
        assert row.id == upload["id"]
        stored_metadata = row.metadata_json
    if stored_metadata is not None:
        metadata = strict_json(stored_metadata)
        assert isinstance(metadata, dict) and not _unstorable_text(metadata), stored_metadata[:300]
    return verdict


def _unstorable_text(value: Any) -> bool:
    """Whether a JSON value holds text no id or label may: NUL, or a lone surrogate (not Unicode at all)."""
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_unstorable_text(k) or _unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable_text(v) for v in value)
    return False


def check_history_reads_back(h: ApiHarness, verdict: dict[str, Any]) -> None:
    """The use just recorded reads back through the API as JSON the spec allows."""
    sound_ids = [s["sound_id"] for s in verdict["sounds"]] + [verdict["original_sound_id"]]
    sound_id = next((s for s in sound_ids if s is not None), None)
    if sound_id is None:
        return
    r = h.client.get(f"/v1/sounds/{sound_id}/uses", query_string={"account_id": verdict["upload"]["account_id"]},
                     headers=h.auth("investigator"))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    uses = strict_json(r.get_data())["uses"]
    assert verdict["upload"]["id"] in [u["upload"]["id"] for u in uses], uses


def _params() -> list[Any]:
    params = []
    for case in corpus.CORPUS:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("case", _params())
def test_a_hostile_request_is_refused_or_answered_never_crashes(hostile, media, case, endpoint):
    h = hostile
    path = ENDPOINTS[endpoint]
    content_id = corpus.content_id_for(case, endpoint, h.store.dialect)
    request = case.request(media, content_id)
    before = record_counts(h)

    send = answer_in_a_worker if case.isolate else answer_in_process
    answer = send(h, path, request, {**h.auth("pipeline"), **request.headers})

    assert answer.status < 500, f"{answer.status}: {answer.data[:500]!r}"
    body = answer.json()
    check_against_spec("POST", path, answer.status, answer.mimetype, body)
    after = record_counts(h)
    changed = {name: after[name] - before[name] for name in RECORDS}
    if 400 <= answer.status < 500:
        check_problem(answer)
        assert not any(changed.values()), f"a refused request changed the store: {changed}"
    else:
        verdict = check_verdict(h, endpoint, answer, case.form_fields(content_id))
        if endpoint == "match" or answer.status == 200:
            assert not any(changed.values()), f"a dry run or a replay changed the store: {changed}"
        else:
            new_sound = verdict["original_sound_id"] is not None
            assert changed["uploads"] == 1, changed
            assert changed["sounds"] == int(new_sound), (changed, verdict)
            assert changed["uses"] == len(verdict["sounds"]) + int(new_sound), (changed, verdict)
            if not new_sound:
                assert changed["fingerprints"] == 0, changed
            check_history_reads_back(h, verdict)
    allowed = case.upload if endpoint == "uploads" else case.match
    if allowed is not None:
        assert answer.status in allowed, (
            f"{endpoint} answered {answer.status}, expected one of {sorted(allowed)}: {body.get('detail', body)}")
    assert answer.seconds < REQUEST_SECONDS


#: JSON bodies whose strings are escapes of lone UTF-16 surrogates: valid JSON syntax, not Unicode text.
LONE_SURROGATE_BODIES = {
    "removal-content-id": ("/v1/removals", "pipeline", '{"content_id": "\\ud800", "policy_label": "p"}'),
    "removal-policy-label": ("/v1/removals", "pipeline", '{"content_id": "c-1", "policy_label": "p\\udfff"}'),
    "removal-reason": ("/v1/removals", "pipeline", '{"content_id": "c-1", "policy_label": "p", "reason": "\\udc00"}'),
    "removal-unknown-key": ("/v1/removals", "pipeline", '{"content_id": "c", "policy_label": "p", "\\ud83d": 1}'),
    "key-name": ("/v1/keys", "admin", '{"name": "\\ud83d", "role": "pipeline"}'),
    "reversal-reason": ("/v1/removals/1/reversal", "reviewer", '{"reason": "x\\ud800"}'),
    "dispute-reason": ("/v1/uses/1/dispute", "reviewer", '{"reason": "\\udfff"}'),
}


def test_json_strings_holding_lone_surrogates_are_400_not_500(harness):
    """``"\\ud800"`` parses to a string neither database driver can encode (a 500 on both, before)."""
    for name, (path, role, body) in LONE_SURROGATE_BODIES.items():
        r = harness.client.post(path, data=body, content_type="application/json", headers=harness.auth(role))
        assert r.status_code == 400, (name, r.status_code, r.get_data(as_text=True)[:300])
        assert "surrogate" in r.get_json()["detail"], (name, r.get_json())
    # a surrogate pair is one character (U+1F3B5), and is text like any other
    r = harness.client.post("/v1/keys", data='{"name": "\\ud83c\\udfb5 ops", "role": "pipeline"}',
                            content_type="application/json", headers=harness.auth("admin"))
    assert r.status_code == 201 and r.get_json()["name"] == "\U0001f3b5 ops", r.get_json()


@pytest.mark.parametrize("extra", [pytest.param([corpus.Part(f"x{i}", b"1") for i in range(2000)], id="2000-parts"),
                                   pytest.param([corpus.Part("note", b"n" * 600_000)], id="field-of-600-KB")])
def test_a_form_refused_for_its_shape_is_not_blamed_on_the_upload_size(sqlite_url, media, extra):
    h = make_harness(sqlite_url)  # the default limits: a 200 MB upload is allowed
    try:
        body = corpus.encode_multipart([corpus.Part("file", media.base_wav(), "a.wav", "audio/wav")] + extra)
        assert len(body) < 1_000_000  # far within the 200 MB the upload may be
        r = h.client.post("/v1/match", data=body, content_type=f"multipart/form-data; boundary={corpus.BOUNDARY}",
                          headers=h.auth("pipeline"))
        assert r.status_code == 413, r.get_json()
        assert "MAX_UPLOAD_BYTES" not in r.get_json()["detail"], r.get_json()
        assert r.get_json()["type"] == "/problems/form-too-large" and "parts" in r.get_json()["detail"]
    finally:
        h.app.extensions["audiofp"].close()
