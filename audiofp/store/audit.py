"""The audit log: who did what, when."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEntry
from .records import AuditRecord, utc
from .translate import translated


@translated
def insert_audit(
    session: Session,
    *,
    key_id: int | None,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None,
) -> None:
    """Append one entry, in the caller's transaction."""
    # Targets embed caller-supplied ids (an account id from a URL can be any
    # length); the column is bounded, and an audit write must never fail a request.
    session.add(
        AuditEntry(
            at=datetime.now(timezone.utc),
            key_id=key_id,
            actor=actor[:255],
            action=action[:64],
            target=target[:255] if target is not None else None,
            detail_json=json.dumps(detail, sort_keys=True, default=str) if detail else None,
        )
    )
    session.flush()


@translated
def audit_entries(
    session: Session, *, after_id: int = 0, limit: int = 100, action: str | None = None
) -> list[AuditRecord]:
    """Up to ``limit`` entries with an id above ``after_id``, oldest first; ``action`` filters."""
    stmt = select(AuditEntry).where(AuditEntry.id > after_id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    rows = session.scalars(stmt.order_by(AuditEntry.id).limit(limit))
    return [
        AuditRecord(
            r.id, utc(r.at), r.key_id, r.actor, r.action, r.target,
            json.loads(r.detail_json) if r.detail_json else None,
        )
        for r in rows
    ]
