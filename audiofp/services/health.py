"""Readiness of the store behind the services."""

from __future__ import annotations

from .. import store as db
from ..store import Store


def ping(store: Store) -> None:
    """Raise if the store cannot answer a query against the moderation schema."""
    with db.transaction(store, readonly=True) as session:
        db.last_event_id(session)
