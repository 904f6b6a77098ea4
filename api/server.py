"""Serving the API under gunicorn: the settings of every deployment, and a worker that refuses in problem+json.

gunicorn reads and parses a request before the app sees it, and refuses on
its own what it will not read: a request line past ``limit_request_line``
(414), more or larger header fields than allowed (431), a malformed request
(400). Its stock answer is an HTML page, while clients of this API read
problem+json for every error. :class:`ProblemWorker` answers those refusals
in the shape ``api.errors`` gives every other error; the bounds stay
gunicorn's, enforced before a worker reads any further.

The app logs every request it answers as one JSON line (``api.requestlog``);
:class:`AccessLogger` sends those lines to gunicorn's access log (stdout by
default, ``--access-logfile`` to move it) in place of gunicorn's own. The
refusals above are logged the same way, and carry a request id too.

``audiofp serve`` applies these settings (:data:`GUNICORN_SETTINGS`); a
gunicorn started by hand reads them from this module as a config file:
``gunicorn --config python:api.server api.wsgi:app``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from gunicorn import glogging, util
from gunicorn.http import errors as http
from gunicorn.workers.gthread import ThreadWorker
from werkzeug import exceptions as status

from .errors import problem_document, problem_slug
from .requestlog import (ACCESS_LOGGER, ENVIRON_ID, REQUEST_ID_HEADER, access_record, bounded_path, log_access,
                         logged_path, new_request_id, remote_addr)

# gunicorn settings, by their gunicorn names (module-level so that --config reads them).
worker_class = "api.server.ProblemWorker"
logger_class = "api.server.AccessLogger"
#: The access log (one JSON line per request): "-" is stdout.
accesslog = "-"
#: Longest request line (method, path with query, version) a worker reads: gunicorn's maximum.
limit_request_line = 8190
#: Most header fields, and the longest one, a worker reads (gunicorn's defaults, pinned here).
limit_request_fields = 100
limit_request_field_size = 8190
timeout = 120

GUNICORN_SETTINGS: dict[str, Any] = {
    "worker_class": worker_class,
    "logger_class": logger_class,
    "accesslog": accesslog,
    "limit_request_line": limit_request_line,
    "limit_request_fields": limit_request_fields,
    "limit_request_field_size": limit_request_field_size,
    "timeout": timeout,
}

#: gunicorn's refusals of a request it would not parse, as the HTTP error each is; the others are 400.
REFUSALS: tuple[tuple[type[Exception], type[status.HTTPException]], ...] = (
    (http.LimitRequestLine, status.RequestURITooLarge),
    (http.LimitRequestHeaders, status.RequestHeaderFieldsTooLarge),
    (http.ExpectationFailed, status.ExpectationFailed),
    (http.UnsupportedTransferCoding, status.NotImplemented),
    (http.ForbiddenProxyRequest, status.Forbidden),
    (http.ConfigurationProblem, status.InternalServerError),
)

#: Errors of the response the app built, not of the request: gunicorn's own handling (a 500).
_RESPONSE_ERRORS = (http.InvalidResponseHeader, http.InvalidResponseHeaderName)

#: Longest detail echoed back: gunicorn's messages may quote what the client sent.
MAX_DETAIL = 200


def _refusal(exc: Exception) -> status.HTTPException:
    return next((kind for cause, kind in REFUSALS if isinstance(exc, cause)), status.BadRequest)()


def refusal_status(exc: Exception) -> int:
    """The HTTP status refusing a request gunicorn could not parse."""
    return _refusal(exc).code or 400


def refusal_response(exc: Exception, request_id: str | None = None) -> bytes:
    """The whole HTTP response (head and problem+json body) refusing a request gunicorn could not parse."""
    error = _refusal(exc)
    code, title = error.code or 400, error.name
    request_id = request_id or new_request_id()
    detail = str(exc) or title
    if len(detail) > MAX_DETAIL:
        detail = detail[:MAX_DETAIL] + "..."
    body = json.dumps(problem_document(code, problem_slug(title), title, detail, request_id=request_id)).encode()
    head = (f"HTTP/1.1 {code} {title}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\n{REQUEST_ID_HEADER}: {request_id}\r\n\r\n")
    return head.encode("latin-1") + body


class AccessLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, whose access log carries the app's JSON lines (``api.requestlog``) instead of its own."""

    _routed: list[logging.Handler] = []

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # (re)creates the access log's handlers, on start and on every reload
        log = logging.getLogger(ACCESS_LOGGER)
        for handler in self._routed:
            log.removeHandler(handler)
        # An operator's own logging config for the access logger wins; else it shares gunicorn's.
        self._routed = [] if log.handlers else list(self.access_log.handlers)
        for handler in self._routed:
            log.addHandler(handler)
        if self._routed:
            log.propagate = False

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if ENVIRON_ID in environ:  # answered by the app: RequestLog has logged it
            return
        # Answered by gunicorn itself (its 500 page when a request broke the worker):
        # the same JSON line, without an id since its answer carries none.
        seconds = request_time.total_seconds()
        log_access(access_record(
            started=time.time() - seconds, request_id=None, method=environ.get("REQUEST_METHOD"),
            path=logged_path(environ), status=getattr(resp, "status_code", None) or 500,
            duration_ms=seconds * 1000.0, bytes_in=0,
            bytes_out=getattr(resp, "sent", 0) or getattr(resp, "response_length", None) or 0,
            remote_addr=remote_addr(environ)))


class ProblemWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, answering the requests it refuses to parse with problem+json."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        if not isinstance(exc, http.ParseException) or isinstance(exc, _RESPONSE_ERRORS):
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], str(exc)[:MAX_DETAIL])
        request_id = new_request_id()  # the client's X-Request-Id, if any, was not read
        response = refusal_response(exc, request_id)
        try:
            util.write_nonblock(client, response)
        except Exception:  # the client may be gone; nothing more to tell it
            self.log.debug("Failed to send error message.")
        req = req or getattr(exc, "req", None)
        path = getattr(req, "path", None)
        log_access(access_record(
            started=time.time(), request_id=request_id, method=getattr(req, "method", None),
            path=bounded_path(path) if isinstance(path, str) else None, status=refusal_status(exc),
            duration_ms=None, bytes_in=0, bytes_out=len(response.partition(b"\r\n\r\n")[2]),
            remote_addr=str(addr[0]) if isinstance(addr, tuple) and addr and addr[0] else None))
