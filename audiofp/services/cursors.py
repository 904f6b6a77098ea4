"""Opaque pagination cursors.

A cursor wraps the last id a client has seen, tagged with the list it belongs
to, so a history cursor cannot be replayed against the event feed. Clients must
treat it as opaque; we keep the freedom to change what is inside.
"""

from __future__ import annotations

import base64
import binascii

from ..errors import ParameterError

#: Ids are 64-bit signed integers in every table that pages.
MAX_ID = 2**63 - 1


def encode_cursor(kind: str, last_id: int) -> str:
    raw = f"{kind}:{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int:
    """The id a cursor stands for; 0 (the start) when ``cursor`` is empty."""
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        tag, _, value = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        last_id = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ParameterError("cursor is not one this service issued") from None
    if tag != kind or not 0 <= last_id <= MAX_ID:
        raise ParameterError(f"cursor does not belong to the {kind} list")
    return last_id
