"""The wire documents: domain values to JSON-ready dicts, one function per schema of ``api/openapi.yaml``.

This is the one place where a JSON key is spelled. The verdict is stored with
its upload and replayed byte for byte, and the API renders every other answer
from the same functions, so a field cannot be named two ways in two places.
Times are ISO 8601 strings in UTC; evidence values are rounded here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..engine.types import Evidence, Match
from ..store import ApiKeyRecord, AuditRecord, RemovalRecord, UseRecord

if TYPE_CHECKING:  # the service values rendered below; their modules import this one
    from .catalogue import TrackReport
    from .history import AccountSound, ClipMatch, HistoryItem, HistoryPage, SharedAccount, SoundDetails
    from .removals import EventPage, RemovalOutcome

Document = dict[str, Any]


def ts(value: datetime | None) -> str | None:
    """An ISO 8601 timestamp, or None."""
    return value.isoformat() if value is not None else None


# --------------------------------------------------------------------------- verdicts
def match_evidence(e: Evidence) -> Document:
    """The ``Evidence`` schema without its ``sound_id``: where and how a clip reuses a sound."""
    return {
        "query_start": round(float(e.query_start), 3),
        "query_end": round(float(e.query_end), 3),
        "sound_start": round(float(e.sound_start), 3),
        "sound_end": round(float(e.sound_end), 3),
        "speed": round(float(e.speed), 4),
        "pitch_semitones": round(float(e.pitch_semitones), 3),
        "landmarks": int(e.anchors),
        "score": round(float(e.score), 4),
        "confidence": float(e.confidence),
    }


def verdict_removal_doc(r: RemovalRecord) -> Document:
    """``VerdictRemoval``: a removal as a verdict reports it."""
    return {
        "id": r.id,
        "content_id": r.content_id,
        "account_id": r.account_id,
        "sound_id": r.sound_id,
        "policy_label": r.policy_label,
        "reason": r.reason,
        "removed_at": r.removed_at.isoformat(),
    }


def verdict_upload_doc(
    *, upload_id: int, content_id: str, account_id: str, uploaded_at: datetime, duration_seconds: float, state: str
) -> Document:
    """The ``upload`` of a recorded verdict, as the pipeline sent it (``uploaded_at`` keeps its offset)."""
    return {
        "id": upload_id,
        "content_id": content_id,
        "account_id": account_id,
        "uploaded_at": uploaded_at.isoformat(),
        "duration_seconds": round(duration_seconds, 3),
        "state": state,
    }


def verdict_doc(
    matches: Sequence[Match],
    *,
    links: dict[int, list[RemovalRecord]],
    tags: dict[int, list[str]],
    action: str,
    tracks: Sequence[TrackReport] = (),
    use_ids: dict[int, int] | None = None,
    upload: Document | None = None,
    original_sound_id: int | None = None,
    fingerprinted: bool = True,
) -> Document:
    """``Verdict``: the sounds an upload uses, their links to removed content, the recommended action.

    ``links`` and ``tags`` are by sound id; ``use_ids`` the recorded use of each
    sound (none for a dry run, which also has no ``upload``). ``fingerprinted``
    is False for audio too short or too flat to fingerprint that matched nothing.
    ``tracks`` is what the check found of each audio track of the file; a
    sound's ``track`` names the one it was found in.
    """
    sounds = []
    removals: dict[int, Document] = {}
    for m in matches:
        linked = links.get(m.sound_id, [])
        for r in linked:
            removals.setdefault(r.id, verdict_removal_doc(r))
        sounds.append(
            {
                "sound_id": m.sound_id,
                "use_id": (use_ids or {}).get(m.sound_id),
                "track": m.track,
                **match_evidence(m.evidence),
                "labels": tags.get(m.sound_id, []),
                "linked_to_removed_content": bool(linked),
                "removal_ids": [r.id for r in linked],
            }
        )
    return {
        "upload": upload,
        "recorded": upload is not None,
        "action": action,
        "linked_to_removed_content": any(s["linked_to_removed_content"] for s in sounds),
        "sounds": sounds,
        "removals": sorted(removals.values(), key=lambda d: d["id"]),
        "original_sound_id": original_sound_id,
        "fingerprinted": fingerprinted,
        "audible": any(t.audible for t in tracks),
        "tracks": [verdict_track_doc(t) for t in tracks],
    }


def verdict_track_doc(t: TrackReport) -> Document:
    """``VerdictTrack``: what the check found of one audio track."""
    return {"index": t.index, "duration_seconds": round(float(t.duration), 3), "decodable": t.decodable,
            "audible": t.audible}


# --------------------------------------------------------------------------- removals, uses, events
def removal_doc(r: RemovalRecord) -> Document:
    """``Removal``: the verdict's removal document plus its appeal state."""
    return {
        **verdict_removal_doc(r),
        "active": r.active,
        "reversed_at": ts(r.reversed_at),
        "reversal_reason": r.reversal_reason,
    }


def removal_outcome_doc(o: RemovalOutcome) -> Document:
    """``RemovalOutcome``: what a removal or a reversal changed."""
    return {
        "removal": removal_doc(o.removal),
        "sound_ids": o.sound_ids,
        "affected_live_uploads": o.affected_live_uploads,
        "events": o.events,
        "events_cursor": o.events_cursor,
    }


def use_doc(u: UseRecord) -> Document:
    """``Use``: an upload's use of a sound, with the evidence and the dispute state."""
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


def event_page_doc(page: EventPage) -> Document:
    """``EventPage``: feed entries after a cursor, and the cursor to resume from."""
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


# --------------------------------------------------------------------------- investigators
def history_item_doc(item: HistoryItem) -> Document:
    """``HistoryItem``: a use, its upload, and the upload's active removal if it is removed."""
    up = item.row.upload
    return {
        **use_doc(item.row.use),
        "upload": {
            "id": up.id,
            "content_id": up.content_id,
            "account_id": up.account_id,
            "uploaded_at": ts(up.uploaded_at),
            "state": up.state,
            "metadata": up.metadata,
        },
        "removal": removal_doc(item.removal) if item.removal is not None else None,
    }


def history_page_doc(page: HistoryPage) -> Document:
    """``HistoryPage``: one page of a sound's uses, oldest first."""
    return {
        "sound_id": page.sound_id,
        "uses": [history_item_doc(i) for i in page.items],
        "next_cursor": page.next_cursor,
    }


def sound_doc(s: SoundDetails) -> Document:
    """``Sound``: a sound's status, tags (key ``labels``), use counts and linked removals."""
    return {
        "id": s.id,
        "duration_seconds": s.duration_seconds,
        "label": s.label,
        "source_name": s.source_name,
        "labels": s.tags,
        "status": s.status,
        "created_at": ts(s.created_at),
        "first_seen": ts(s.first_seen),
        "last_seen": ts(s.last_seen),
        "uses": s.stats.uses,
        "live_uses": s.stats.live_uses,
        "removed_uses": s.stats.removed_uses,
        "disputed_uses": s.stats.disputed_uses,
        "accounts": s.stats.accounts,
        "linked_removals": [removal_doc(r) for r in s.linked_removals],
    }


def account_sound_doc(a: AccountSound) -> Document:
    """``AccountSound``: a sound an account uses, and whether it is linked to removed content."""
    return {
        "sound_id": a.sound_id,
        "uses": a.uses,
        "first_used": ts(a.first_used),
        "last_used": ts(a.last_used),
        "labels": a.tags,
        "linked_to_removed_content": a.linked_to_removed_content,
    }


def shared_account_doc(a: SharedAccount) -> Document:
    """Another account that uses flagged sounds an account uses."""
    return {"account_id": a.account_id, "flagged_sound_ids": a.flagged_sound_ids, "uses": a.uses}


def clip_match_doc(m: ClipMatch) -> Document:
    """A sound a clip matches: the evidence, the sound, the first page of its history."""
    return {
        "match": {"sound_id": m.match.sound_id, **match_evidence(m.match.evidence)},
        "sound": sound_doc(m.sound),
        "history": history_page_doc(m.history),
    }


# --------------------------------------------------------------------------- administration
def key_doc(k: ApiKeyRecord) -> Document:
    """``ApiKey``: a key as listed (never its secret)."""
    return {"id": k.id, "name": k.name, "role": k.role, "prefix": k.prefix,
            "created_at": ts(k.created_at), "revoked_at": ts(k.revoked_at)}


def audit_entry_doc(a: AuditRecord) -> Document:
    """``AuditEntry``: who did what, when."""
    return {"id": a.id, "at": ts(a.at), "key_id": a.key_id, "actor": a.actor, "action": a.action,
            "target": a.target, "detail": a.detail}
