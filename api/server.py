"""Serving the API under gunicorn: the settings of every deployment, and a worker that refuses in problem+json.

gunicorn reads and parses a request before the app sees it, and refuses on
its own what it will not read: a request line past ``limit_request_line``
(414), more or larger header fields than allowed (431), a malformed request
(400). Its stock answer is an HTML page, while clients of this API read
problem+json for every error. :class:`ProblemWorker` answers those refusals
in the shape ``api.errors`` gives every other error; the bounds stay
gunicorn's, enforced before a worker reads any further.

``audiofp serve`` applies these settings (:data:`GUNICORN_SETTINGS`); a
gunicorn started by hand reads them from this module as a config file:
``gunicorn --config python:api.server api.wsgi:app``.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util
from gunicorn.http import errors as http
from gunicorn.workers.gthread import ThreadWorker
from werkzeug import exceptions as status

from .errors import problem_document, problem_slug

# gunicorn settings, by their gunicorn names (module-level so that --config reads them).
worker_class = "api.server.ProblemWorker"
#: Longest request line (method, path with query, version) a worker reads: gunicorn's maximum.
limit_request_line = 8190
#: Most header fields, and the longest one, a worker reads (gunicorn's defaults, pinned here).
limit_request_fields = 100
limit_request_field_size = 8190
timeout = 120

GUNICORN_SETTINGS: dict[str, Any] = {
    "worker_class": worker_class,
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


def refusal_response(exc: Exception) -> bytes:
    """The whole HTTP response (head and problem+json body) refusing a request gunicorn could not parse."""
    error = next((kind for cause, kind in REFUSALS if isinstance(exc, cause)), status.BadRequest)()
    code, title = error.code or 400, error.name
    detail = str(exc) or title
    if len(detail) > MAX_DETAIL:
        detail = detail[:MAX_DETAIL] + "..."
    body = json.dumps(problem_document(code, problem_slug(title), title, detail)).encode()
    head = (f"HTTP/1.1 {code} {title}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class ProblemWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, answering the requests it refuses to parse with problem+json."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        if not isinstance(exc, http.ParseException) or isinstance(exc, _RESPONSE_ERRORS):
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], str(exc)[:MAX_DETAIL])
        try:
            util.write_nonblock(client, refusal_response(exc))
        except Exception:  # the client may be gone; nothing more to tell it
            self.log.debug("Failed to send error message.")
