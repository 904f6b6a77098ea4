"""Readiness of the store behind the catalogue."""

from __future__ import annotations

from typing import Any

from ..store import moderation_repository as repo


def ping(store: Any) -> None:
    """Raise if the store cannot answer a query against the moderation schema."""
    with store.session(readonly=True) as session:
        repo.last_event_id(session)
