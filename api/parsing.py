"""Reading request input: form fields, JSON bodies, query parameters, uploaded files.

Bad input raises :class:`api.errors.InvalidRequest` (400) or
:class:`api.errors.UnsupportedMedia` (415) naming the field to fix.
"""

from __future__ import annotations

import json as stdlib_json
import math
import re
from datetime import datetime
from typing import IO, Any

from flask import request

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


class _NotJson(ValueError):
    """A token Python's parser accepts but JSON (RFC 8259) does not."""


def _refuse_constant(token: str) -> Any:
    raise _NotJson(f"{token} is not a JSON number")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NotJson(f"{token[:20]}{'...' if len(token) > 20 else ''} is too large for a number")
    return value


def form_json_object(name: str) -> dict[str, Any] | None:
    """A form field holding a JSON object, parsed as strictly as JSON is written.

    NaN, Infinity and numbers that overflow a double are refused (Python's
    parser would take them, and every answer that repeats the object would
    then be invalid JSON), and so are strings the NUL rule of
    :func:`reject_nul_characters` refuses elsewhere: a ``\\u0000`` escape or a
    lone surrogate escape (``\\ud800``) is text no store keeps as sent.
    """
    raw = request.form.get(name)
    if raw is None or raw.strip() == "":
        return None
    _check_depth(raw, f"form field {name!r}")
    try:
        value = stdlib_json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotJson as exc:
        raise InvalidRequest(f"form field {name!r} must be a JSON object: {exc}") from None
    except ValueError:  # malformed, or an integer past Python's digit limit
        raise InvalidRequest(f"form field {name!r} must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"form field {name!r} must be a JSON object")
    problem = _text_problem(value)
    if problem is not None:
        raise InvalidRequest(f"form field {name!r}: {problem}")
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


#: A UTF-16 surrogate on its own: JSON's ``\ud800`` escape parses to one, but it is no
#: character, UTF-8 cannot encode it, and both database drivers refuse it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

NUL_DETAIL = "text fields, ids and query parameters must not contain NUL characters"
SURROGATE_DETAIL = ("text fields, ids and query parameters must be Unicode text: a lone surrogate "
                    "(an escape from \\ud800 to \\udfff not part of a pair) is not a character")


def _text_problem(value: Any) -> str | None:
    """Why ``value`` (a string, or JSON made of them) holds text no store keeps, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return NUL_DETAIL
        if _LONE_SURROGATE.search(value):
            return SURROGATE_DETAIL
        return None
    if isinstance(value, dict):
        items = [t for pair in value.items() for t in pair]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        problem = _text_problem(item)
        if problem is not None:
            return problem
    return None


def reject_deep_json() -> None:
    """Refuse a JSON body nested deeper than :data:`MAX_JSON_DEPTH`, before anything parses it.

    Runs first among the request hooks: the NUL check below already parses the body.
    """
    if request.mimetype == "application/json":
        _check_depth(request.get_data(cache=True), "the JSON body")


def reject_nul_characters() -> None:
    """Refuse NUL, and lone surrogates, in any text a request carries (path, query, form fields, JSON).

    PostgreSQL text cannot hold NUL, SQLite would store it, and no legitimate id
    or label contains one: refusing it here, once, keeps the backends alike and
    turns what would be a database error into a 400. A lone surrogate (only a
    JSON body can carry one, as an escape) is not even text: neither driver can
    encode it, so it would be a 500 on both.
    """
    texts: list[Any] = [request.path, request.headers.get("Idempotency-Key", "")]
    texts += [v for pair in request.args.items(multi=True) for v in pair]
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        texts += [v for pair in request.form.items(multi=True) for v in pair]
    if request.mimetype == "application/json":
        texts.append(request.get_json(silent=True))
    problems = {_text_problem(t) for t in texts} - {None}
    if problems:
        raise InvalidRequest(NUL_DETAIL if NUL_DETAIL in problems else SURROGATE_DETAIL)
