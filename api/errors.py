"""Every error the API returns, as RFC 9457 problem+json, mapped in this one place.

Domain errors (``audiofp.errors``) and the API's own (authentication, roles,
rate limits, request shape) become a status, a stable problem ``type`` and a
detail that tells the caller what to fix. A lost race or a database that is
down is a 503 with ``Retry-After``: the same request may well succeed later.
Anything unexpected becomes a 500 problem without internals, and is logged.
Every problem carries the request's id (``request_id``), the one in its
``X-Request-Id`` header and its access log line (``api.requestlog``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, json, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from audiofp import errors as domain

from .requestlog import current_request_id

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "/problems/"


class ApiError(Exception):
    """An error raised by the API layer itself."""

    status = 400
    slug = "invalid-request"
    title = "Invalid request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class Unauthorized(ApiError):
    status, slug, title = 401, "unauthorized", "Missing or invalid API key"


class Forbidden(ApiError):
    status, slug, title = 403, "forbidden", "The API key's role may not do this"


class RateLimited(ApiError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class UnsupportedMedia(ApiError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported request media type"


class StoreUnavailable(ApiError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class InvalidRequest(ApiError):
    status, slug, title = 400, "invalid-request", "Invalid request"


#: Domain error -> (status, type slug, title). The most specific class wins
#: because the lookup walks the exception's MRO.
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str, str]] = {
    domain.SilentAudioError: (422, "silent-audio", "The audio holds no signal to fingerprint"),
    domain.AudioTooLongError: (413, "audio-too-long", "The audio is longer than allowed"),
    domain.InputTooLargeError: (413, "too-large", "The file is larger than allowed"),
    domain.BadAudioError: (422, "bad-media", "The file could not be decoded as audio"),
    domain.OutOfRangeError: (422, "out-of-range", "A value is outside the range the service accepts"),
    domain.ParameterError: (400, "invalid-request", "Invalid request"),
    domain.NotFoundError: (404, "not-found", "Not found"),
    domain.IdempotencyMismatchError: (422, "idempotency-mismatch",
                                      "The content id or Idempotency-Key was already used for a different upload"),
    domain.ConflictError: (409, "conflict", "Conflict with the current state"),
    domain.IndexMismatchError: (503, "index-mismatch", "The index does not match this service's parameters"),
    domain.RetryableError: (503, "unavailable", "Service unavailable"),
    domain.StoreUnavailableError: (503, "unavailable", "Service unavailable"),
    domain.AudioFPError: (400, "invalid-request", "Invalid request"),
}


def problem_slug(title: str) -> str:
    """The ``type`` slug of an HTTP error's title: ``Request URI Too Long`` -> ``request-uri-too-long``."""
    return title.lower().replace(" ", "-")


def problem_document(status: int, slug: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The problem+json body (``Problem`` in the spec); ``instance``, ``request_id`` and the like go in ``extra``."""
    return {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": detail, **extra}


def problem(status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None,
            **extra: Any) -> Response:
    """A problem+json response to the current request; ``request_id`` is the one its log line and header carry."""
    body = problem_document(status, slug, title, detail, instance=request.path, request_id=current_request_id(),
                            **extra)
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


#: Seconds a client is told to wait before retrying a 503.
RETRY_AFTER_SECONDS = "5"

#: Errors after which the same request may succeed, answered with ``Retry-After`` and
#: a fixed detail: the driver's message may name hosts and is only logged.
TRANSIENT_DETAILS: dict[type[Exception], str] = {
    domain.RetryableError: "a concurrent request changed the same data; retry",
    domain.StoreUnavailableError: "the database is unavailable; retry later",
}


def _domain(exc: domain.AudioFPError) -> Response:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_ERRORS:
            status, slug, title = DOMAIN_ERRORS[cls]
            if cls in TRANSIENT_DETAILS:
                log.warning("%s: %s", cls.__name__, exc)
                return problem(status, slug, title, TRANSIENT_DETAILS[cls], {"Retry-After": RETRY_AFTER_SECONDS})
            return problem(status, slug, title, str(exc) or title)
    raise exc  # pragma: no cover - AudioFPError itself is in the table


def _http(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 413:
        return _too_large()
    title = exc.name or "Error"
    response = problem(status, problem_slug(title), title, exc.description or title)
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def _too_large() -> Response:
    """413, saying which limit the request broke: the body's size, or the shape of its form.

    Werkzeug raises the same error for a body past ``MAX_CONTENT_LENGTH`` and
    for a small form with too many parts or a text field too large; telling
    the second caller to shrink a file within the limit would mislead them.
    """
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    length = request.content_length
    if limit is None or length is None or length > limit:
        return problem(413, "too-large", "The request body is larger than allowed",
                       "the upload exceeds the configured maximum size (MAX_UPLOAD_BYTES)")
    return problem(413, "form-too-large", "The form has too many parts or too large a field",
                   f"a form may have at most {request.max_form_parts} parts and text fields of at most "
                   f"{request.max_form_memory_size:,} bytes; send the file and the documented fields only")


def _unexpected(exc: Exception) -> Response:
    # The store raises our errors; this catches a database failure raised
    # outside it (opening the store, committing a session).
    if isinstance(exc, OperationalError):
        log.warning("database unavailable: %s", exc)
        return problem(503, "unavailable", "Service unavailable", "the database is unavailable; retry later",
                       {"Retry-After": RETRY_AFTER_SECONDS})
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, "internal", "Internal error", "an unexpected error occurred; it has been logged")


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, lambda e: problem(e.status, e.slug, e.title, e.detail, e.headers))
    app.register_error_handler(domain.AudioFPError, _domain)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)
