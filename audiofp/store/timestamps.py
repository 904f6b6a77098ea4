"""Stored times that Python cannot hold are read as the nearest time it can.

A ``timestamptz`` column on PostgreSQL holds instants from 4713 BC to
294276 AD and ``infinity``; a SQLite column holds any text. Python's
``datetime`` stops at years 1 and 9999, and PostgreSQL hands an instant over
in the session's time zone, where year 1 in UTC may be year 0. Writes are
bounded by the services, but a value older code, a hand edit or a restore left
behind must not make every read that touches its row fail: each backend's
reader is wrapped here so that such a value comes back as :data:`UTC_MIN` or
:data:`UTC_MAX`, whichever it lies beyond.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg.adapt import Loader
from psycopg.pq import Format
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: The earliest and latest instants a stored time can be read as.
UTC_MIN = datetime.min.replace(tzinfo=timezone.utc)
UTC_MAX = datetime.max.replace(tzinfo=timezone.utc)

_YEAR = re.compile(r"\s*([+-]?\d+)-")


def _bound_of_text(value: str) -> datetime:
    """The bound nearest to a time written as text that Python could not read."""
    if value.lstrip().startswith("-") or value.rstrip().upper().endswith("BC"):
        return UTC_MIN  # -infinity, or an instant before Christ
    if value.strip().lower() in ("infinity", "+infinity"):
        return UTC_MAX
    year = _YEAR.match(value)
    return UTC_MAX if year is not None and int(year.group(1)) > 9999 else UTC_MIN


class StoredTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` whose reads never fail on an out-of-range value (SQLite's text).

    The schema is the impl's; only the conversion of what is read changes.
    PostgreSQL values are converted by the driver before this runs (see
    :func:`clamp_postgresql_times`).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        inner = super().result_processor(dialect, coltype)
        if inner is None:
            return None

        def process(value: Any) -> Any:
            try:
                return inner(value)
            except (ValueError, OverflowError):
                return _bound_of_text(str(value))

        return process


class _Clamping(Loader):
    """A timestamptz loader that delegates to psycopg's and clamps what it cannot load."""

    inner_format = Format.TEXT

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        inner = psycopg.adapters.get_loader(oid, self.inner_format)
        assert inner is not None  # psycopg always has a timestamptz loader
        self._inner = inner(oid, context)

    def load(self, data: Any) -> datetime:
        try:
            return self._inner.load(data)  # type: ignore[no-any-return]
        except psycopg.DataError:
            if self.format == Format.BINARY:
                # Microseconds since 2000-01-01 as a signed 64-bit integer.
                return UTC_MIN if int.from_bytes(bytes(data), "big", signed=True) < 0 else UTC_MAX
            return _bound_of_text(bytes(data).decode("ascii", "replace"))


class _ClampingBinary(_Clamping):
    format = Format.BINARY
    inner_format = Format.BINARY


def clamp_postgresql_times(connection: psycopg.Connection[Any]) -> None:
    """Make ``connection`` read out-of-range ``timestamptz`` values as the nearest bound."""
    connection.adapters.register_loader("timestamptz", _Clamping)
    connection.adapters.register_loader("timestamptz", _ClampingBinary)
