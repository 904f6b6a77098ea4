"""Reading request input: form fields, JSON bodies, query parameters, uploaded files.

Bad input raises :class:`api.errors.InvalidRequest` (400) or
:class:`api.errors.UnsupportedMedia` (415) naming the field to fix.
"""

from __future__ import annotations

import json as stdlib_json
import re
from datetime import datetime
from typing import IO, Any

from flask import json, request

from .errors import InvalidRequest, UnsupportedMedia

#: Deepest nesting of arrays and objects accepted in any JSON a request carries.
#: No document of ours needs more than a few levels; past a few hundred, parsing,
#: the NUL check and re-serialising would each recurse until Python gives up.
MAX_JSON_DEPTH = 32

#: A JSON string literal (brackets inside it are text), or one bracket.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether JSON ``text`` opens more than ``limit`` arrays or objects at once.

    A scan, not a parse, so that a hostile depth is refused before any
    recursive parser sees it.
    """
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        first = token.group()[0]
        if first in "[{":
            depth += 1
            if depth > limit:
                return True
        elif first in "]}":
            depth -= 1
    return False


def _check_depth(raw: str | bytes, what: str) -> None:
    # Bytes are decoded the way the JSON parser will read them (UTF-8, or UTF-16/32
    # by their first bytes): scanning UTF-16 as bytes would see quotes that are not there.
    text = raw.decode(stdlib_json.detect_encoding(raw), "replace") if isinstance(raw, bytes) else raw
    if _nesting_exceeds(text, MAX_JSON_DEPTH):
        raise InvalidRequest(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects")


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
    _check_depth(raw, f"form field {name!r}")
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


def reject_deep_json() -> None:
    """Refuse a JSON body nested deeper than :data:`MAX_JSON_DEPTH`, before anything parses it.

    Runs first among the request hooks: the NUL check below already parses the body.
    """
    if request.mimetype == "application/json":
        _check_depth(request.get_data(cache=True), "the JSON body")


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
