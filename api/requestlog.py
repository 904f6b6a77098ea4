"""Request ids and the access log: one JSON line per request, an id on every response.

:class:`RequestLog` wraps the WSGI app (``create_app`` installs it), so it sees
every request the app answers, errors included. It gives each request an id:
the client's ``X-Request-Id`` when that is sane (1 to 128 characters of
``[A-Za-z0-9._-]``), else a fresh one. It sends the id back in the
``X-Request-Id`` header, keeps it in the WSGI environ for problem+json bodies
(:func:`current_request_id`), and once the response body has been sent (or the
server closed it) logs one JSON object on the ``audiofp.access`` logger::

    {"time": "2024-05-01T12:00:00.123Z", "request_id": "...", "method": "POST",
     "path": "/v1/uploads", "status": 201, "duration_ms": 84.2, "bytes_in": 48213,
     "bytes_out": 913, "remote_addr": "203.0.113.9", "key_id": 3, "key_name": "upload-pipeline"}

``path`` never carries the query string, and the key is named by its id and
name, never by its secret (``key_id`` and ``key_name`` are null unless the
key was let through: ``api.auth`` records the caller only once its role and
rate allow the request, so a 401, 403 or 429 names no key). ``bytes_in`` counts the body bytes the app
read (a refused body is not read); ``bytes_out`` the body bytes sent.
``remote_addr`` is the peer's address; a request that came over a unix socket
came from the local reverse proxy (deploy/), whose ``X-Forwarded-For`` names the
client.

Under gunicorn, ``api.server`` sends this logger to gunicorn's access log;
elsewhere (the Flask test client) records reach the root logger like any other.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from flask import Flask, g, request

#: The header that carries a request's id, both ways.
REQUEST_ID_HEADER = "X-Request-Id"
#: Where the id of the request being served lives in the WSGI environ.
ENVIRON_ID = "audiofp.request_id"
#: Where the app leaves the authenticated key (id, name) for the log line.
ENVIRON_KEY = "audiofp.api_key"
#: The logger of the access log; its messages are JSON objects, one per line.
ACCESS_LOGGER = "audiofp.access"
#: A client-supplied id that is reused; anything else is replaced.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: Longest path logged: a hostile client's URL must not bloat the log.
MAX_LOGGED_PATH = 1024

access_log = logging.getLogger(ACCESS_LOGGER)
access_log.setLevel(logging.INFO)


def new_request_id() -> str:
    """A fresh id: 32 hex digits (a random UUID)."""
    return uuid.uuid4().hex


def request_id_for(supplied: str | None) -> str:
    """The id of a request whose client sent ``supplied`` as ``X-Request-Id`` (or nothing)."""
    return supplied if supplied is not None and SANE_REQUEST_ID.fullmatch(supplied) else new_request_id()


def current_request_id() -> str:
    """The id of the request being served (Flask request context)."""
    environ = request.environ
    if ENVIRON_ID not in environ:  # the app runs without RequestLog: still answer with some id
        environ[ENVIRON_ID] = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
    return str(environ[ENVIRON_ID])


def _iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _wsgi_text(value: str) -> str:
    """A WSGI environ string (bytes as latin-1) as the UTF-8 text the client meant."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value


def bounded_path(path: str) -> str:
    """``path`` cut to at most :data:`MAX_LOGGED_PATH` characters."""
    return path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "..."


def logged_path(environ: dict[str, Any]) -> str:
    """The request's path, without the query string, at most :data:`MAX_LOGGED_PATH` characters."""
    return bounded_path(_wsgi_text(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")))


def remote_addr(environ: dict[str, Any]) -> str | None:
    """The client's address: the peer's, or over a unix socket the last ``X-Forwarded-For`` entry.

    Only a local process can reach a unix socket (the proxy in deploy/, which
    overwrites ``X-Forwarded-For``); a header sent over TCP could be forged and
    is not believed.
    """
    peer = environ.get("REMOTE_ADDR") or ""
    if peer and peer[0] not in "/@":  # an IP address: a TCP peer
        return str(peer)
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
    return forwarded[:64] or peer or None


def access_record(*, started: float, request_id: str | None, method: str | None, path: str | None, status: int,
                  duration_ms: float | None, bytes_in: int, bytes_out: int, remote_addr: str | None,
                  key: tuple[int | None, str] | None = None) -> dict[str, Any]:
    """One line of the access log (see the module docstring for its members)."""
    return {
        "time": _iso_time(started), "request_id": request_id, "method": method, "path": path,
        "status": status, "duration_ms": None if duration_ms is None else round(duration_ms, 1),
        "bytes_in": bytes_in, "bytes_out": bytes_out, "remote_addr": remote_addr,
        "key_id": key[0] if key else None, "key_name": key[1] if key else None,
    }


def log_access(record: dict[str, Any]) -> None:
    """Write ``record`` as one JSON line on the access log (control characters escaped)."""
    access_log.info(json.dumps(record, ensure_ascii=True, separators=(",", ":")))


class _CountingInput:
    """The request body stream, counting the bytes the app reads."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self.count += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self.count += len(data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        self.count += sum(map(len, lines))
        return lines

    def readinto(self, buffer: Any) -> int:
        if hasattr(self._stream, "readinto"):
            n = self._stream.readinto(buffer) or 0
        else:
            data = self._stream.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.count += n
        return n

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self.count += len(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _LoggedBody:
    """The response body: counts what is sent, and logs the request once it is all sent or closed."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done: Callable[[], None] | None = done
        self.sent = 0

    def _finish(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self.sent += len(chunk)
            yield chunk
        # The server asks for the next chunk only once it has sent the last
        # one; a client that goes away mid-answer is logged at close().
        self._finish()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish()


class RequestLog:
    """WSGI middleware: request ids on every request and response, and the access log."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started_wall, started = time.time(), time.monotonic()
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        environ[ENVIRON_ID] = request_id
        body_in = _CountingInput(environ["wsgi.input"]) if "wsgi.input" in environ else None
        if body_in is not None:
            environ["wsgi.input"] = body_in
        status = [500]
        written = [0]

        def start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            status[0] = int(status_line.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != REQUEST_ID_HEADER.lower()]
            headers.append((REQUEST_ID_HEADER, request_id))
            write = start_response(status_line, headers, exc_info)

            def counted_write(data: bytes) -> Any:  # the legacy write() callable
                written[0] += len(data)
                return write(data)

            return counted_write

        def done(sent: int) -> None:
            try:
                log_access(access_record(
                    started=started_wall, request_id=request_id, method=environ.get("REQUEST_METHOD"),
                    path=logged_path(environ), status=status[0],
                    duration_ms=(time.monotonic() - started) * 1000.0,
                    bytes_in=body_in.count if body_in is not None else 0, bytes_out=sent + written[0],
                    remote_addr=remote_addr(environ), key=environ.get(ENVIRON_KEY)))
            except Exception:  # the log must never break a response
                logging.getLogger(__name__).exception("could not write the access log line")

        try:
            body = self.app(environ, start)
        except BaseException:
            status[0] = 500
            done(0)
            raise
        logged = _LoggedBody(body, lambda: done(logged.sent))
        return logged


def _note_key(_exc: BaseException | None) -> None:
    """Leave the authenticated key (never its secret) where the access log finds it."""
    actor = g.get("actor")
    if actor is not None:
        request.environ[ENVIRON_KEY] = (actor.key_id, actor.name)


def init_app(app: Flask) -> None:
    """Log every request of ``app`` and give each an id (install before any other middleware)."""
    app.teardown_request(_note_key)
    app.wsgi_app = RequestLog(app.wsgi_app)  # type: ignore[method-assign]
