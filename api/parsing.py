"""Reading request input: form fields, JSON bodies, query parameters, uploaded files.

Bad input raises :class:`api.errors.InvalidRequest` (400) or
:class:`api.errors.UnsupportedMedia` (415) naming the field to fix.
"""

from __future__ import annotations

from datetime import datetime
from typing import IO, Any

from flask import json, request

from .errors import InvalidRequest, UnsupportedMedia


def parse_time(name: str, value: str | None, *, required: bool = False) -> datetime | None:
    """An RFC 3339 timestamp with a time zone (``Z`` accepted)."""
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"{name} is required (RFC 3339, for instance 2024-05-01T12:00:00Z)")
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} must be an RFC 3339 timestamp, got {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"{name} must carry a time zone, for instance {value}Z")
    return parsed


def form_text(name: str, *, required: bool = True) -> str | None:
    value = request.form.get(name)
    if value is None or not value.strip():
        if required:
            raise InvalidRequest(f"form field {name!r} is required")
        return None
    return value.strip()


def uploaded_file(field: str = "file") -> IO[bytes]:
    """The file part of a multipart request (its stream; never read into memory here)."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMedia(
            f"send multipart/form-data with the audio or video in a {field!r} part, not {request.mimetype or 'no body'}"
        )
    part = request.files.get(field)
    if part is None:
        raise InvalidRequest(f"multipart part {field!r} with the audio or video file is required")
    return part.stream


def form_json_object(name: str) -> dict[str, Any] | None:
    raw = request.form.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidRequest(f"form field {name!r} must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"form field {name!r} must be a JSON object")
    return value


def json_body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise UnsupportedMedia("send a JSON object with Content-Type: application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def body_text(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"{name!r} is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name!r} must be a string")
    return value


def optional_body(*, allow_empty: bool = True) -> dict[str, Any]:
    """A JSON object body, or {} when the request has none."""
    if allow_empty and not request.get_data(cache=True):
        return {}
    return json_body()


def query_int(name: str, default: int, *, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"query parameter {name!r} must be an integer") from None
    if not low <= value <= high:
        raise InvalidRequest(f"query parameter {name!r} must be within {low}..{high}")
    return value


def query_bool(name: str, default: bool) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"query parameter {name!r} must be true or false")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def reject_nul_characters() -> None:
    """Refuse NUL in any text a request carries (path, query, form fields, JSON).

    PostgreSQL text cannot hold NUL, SQLite would store it, and no legitimate id
    or label contains one: refusing it here, once, keeps the backends alike and
    turns what would be a database error into a 400.
    """
    texts: list[Any] = [request.path, request.headers.get("Idempotency-Key", "")]
    texts += [v for pair in request.args.items(multi=True) for v in pair]
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        texts += [v for pair in request.form.items(multi=True) for v in pair]
    if request.mimetype == "application/json":
        texts.append(request.get_json(silent=True))
    if any(_has_nul(t) for t in texts):
        raise InvalidRequest("text fields, ids and query parameters must not contain NUL characters")
