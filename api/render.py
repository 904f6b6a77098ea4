"""Domain values to JSON documents, one function per schema of ``openapi.yaml``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from audiofp.services import (
    AccountSound,
    ClipMatch,
    EventPage,
    HistoryItem,
    HistoryPage,
    RemovalOutcome,
    SharedAccount,
    SoundDetails,
)
from audiofp.services.uploads import match_evidence, removal_doc
from audiofp.store.moderation_repository import ApiKeyRecord, AuditRecord, RemovalRecord, UseRecord


def ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def removal(r: RemovalRecord) -> dict[str, Any]:
    # The verdict's removal document (the domain's), plus the appeal state.
    return {
        **removal_doc(r),
        "active": r.active,
        "reversed_at": ts(r.reversed_at),
        "reversal_reason": r.reversal_reason,
    }


def removal_outcome(o: RemovalOutcome) -> dict[str, Any]:
    return {
        "removal": removal(o.removal),
        "sound_ids": o.sound_ids,
        "affected_live_uploads": o.affected_live_uploads,
        "events": o.events,
        "events_cursor": o.events_cursor,
    }


def use(u: UseRecord) -> dict[str, Any]:
    return {
        "id": u.id,
        "upload_id": u.upload_id,
        "sound_id": u.sound_id,
        "kind": u.kind,
        **match_evidence(u.evidence),
        "disputed": u.disputed,
        "disputed_at": ts(u.disputed_at),
        "dispute_reason": u.dispute_reason,
    }


def history_item(item: HistoryItem) -> dict[str, Any]:
    up = item.row.upload
    return {
        **use(item.row.use),
        "upload": {
            "id": up.id,
            "content_id": up.content_id,
            "account_id": up.account_id,
            "uploaded_at": ts(up.uploaded_at),
            "state": up.state,
            "metadata": up.metadata,
        },
        "removal": removal(item.removal) if item.removal is not None else None,
    }


def history_page(page: HistoryPage) -> dict[str, Any]:
    return {
        "sound_id": page.sound_id,
        "uses": [history_item(i) for i in page.items],
        "next_cursor": page.next_cursor,
    }


def sound(s: SoundDetails) -> dict[str, Any]:
    return {
        "id": s.id,
        "duration_seconds": s.duration_seconds,
        "label": s.label,
        "source_name": s.source_name,
        "labels": s.labels,
        "status": s.status,
        "created_at": ts(s.created_at),
        "first_seen": ts(s.first_seen),
        "last_seen": ts(s.last_seen),
        "uses": s.stats.uses,
        "live_uses": s.stats.live_uses,
        "removed_uses": s.stats.removed_uses,
        "disputed_uses": s.stats.disputed_uses,
        "accounts": s.stats.accounts,
        "linked_removals": [removal(r) for r in s.linked_removals],
    }


def event_page(page: EventPage) -> dict[str, Any]:
    return {
        "events": [
            {
                "id": e.id,
                "kind": e.kind,
                "created_at": ts(e.created_at),
                "removal_id": e.removal_id,
                "sound_id": e.sound_id,
                "use_id": e.use_id,
                "upload": {"id": e.upload_id, "content_id": e.content_id, "account_id": e.account_id,
                           "state": e.upload_state},
            }
            for e in page.events
        ],
        "next_cursor": page.next_cursor,
    }


def account_sound(a: AccountSound) -> dict[str, Any]:
    return {
        "sound_id": a.sound_id,
        "uses": a.uses,
        "first_used": ts(a.first_used),
        "last_used": ts(a.last_used),
        "labels": a.labels,
        "linked_to_removed_content": a.linked_to_removed_content,
    }


def shared_account(a: SharedAccount) -> dict[str, Any]:
    return {"account_id": a.account_id, "flagged_sound_ids": a.flagged_sound_ids, "uses": a.uses}


def clip_match(m: ClipMatch) -> dict[str, Any]:
    return {"match": m.evidence, "sound": sound(m.sound), "history": history_page(m.history)}


def key(k: ApiKeyRecord) -> dict[str, Any]:
    return {"id": k.id, "name": k.name, "role": k.role, "prefix": k.prefix,
            "created_at": ts(k.created_at), "revoked_at": ts(k.revoked_at)}


def audit_entry(a: AuditRecord) -> dict[str, Any]:
    return {"id": a.id, "at": ts(a.at), "key_id": a.key_id, "actor": a.actor, "action": a.action,
            "target": a.target, "detail": a.detail}
