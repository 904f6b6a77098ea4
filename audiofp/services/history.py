"""What investigators read: sounds, reuse histories, accounts, search by clip.

Every read here is an investigator search and is written to the audit log in
the same transaction, so a history cannot be read without a trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import catalogue
from ..errors import NotFoundError, ParameterError
from ..store import moderation_repository as repo
from ..store.moderation_repository import HistoryRow, RemovalRecord, UseStats
from .cursors import decode_cursor, encode_cursor
from .keys import Actor, audit
from ..config import Settings
from .uploads import Source, decode_source, match_evidence, usable_matches

HISTORY_CURSOR = "history"
MAX_PAGE = 500
STATES = ("live", "removed")


@dataclass(frozen=True)
class SoundDetails:
    id: int
    duration_seconds: float
    label: str | None
    source_name: str | None
    labels: list[str]
    status: str
    """``linked_to_removed_content`` or ``clear``."""
    created_at: datetime
    first_seen: datetime | None
    last_seen: datetime | None
    stats: UseStats
    linked_removals: list[RemovalRecord]


@dataclass(frozen=True)
class HistoryItem:
    row: HistoryRow
    removal: RemovalRecord | None
    """The upload's active removal, when it is removed."""


@dataclass(frozen=True)
class HistoryPage:
    sound_id: int
    items: list[HistoryItem]
    next_cursor: str | None


@dataclass(frozen=True)
class HistoryFilters:
    state: str | None = None
    account_id: str | None = None
    include_disputed: bool = True
    since: datetime | None = None
    until: datetime | None = None

    def check(self) -> None:
        if self.state is not None and self.state not in STATES:
            raise ParameterError(f"state must be one of {', '.join(STATES)}")


@dataclass(frozen=True)
class AccountSound:
    sound_id: int
    uses: int
    first_used: datetime
    last_used: datetime
    labels: list[str]
    linked_to_removed_content: bool


@dataclass(frozen=True)
class SharedAccount:
    account_id: str
    flagged_sound_ids: list[int]
    uses: int


@dataclass(frozen=True)
class ClipMatch:
    evidence: dict[str, Any]
    sound: SoundDetails
    history: HistoryPage


def _details(session: Any, sound_id: int) -> SoundDetails:
    info = repo.sound_info(session, [sound_id]).get(sound_id)
    if info is None:
        raise NotFoundError(f"no sound with id {sound_id}")
    stats = repo.sound_use_stats(session, sound_id)
    links = repo.linked_removals(session, [sound_id])[sound_id]
    return SoundDetails(
        id=info.id,
        duration_seconds=info.duration_seconds,
        label=info.label,
        source_name=info.source_name,
        labels=repo.labels_of_sounds(session, [sound_id])[sound_id],
        status="linked_to_removed_content" if links else "clear",
        created_at=info.created_at,
        first_seen=stats.first_seen or info.created_at,
        last_seen=stats.last_seen,
        stats=stats,
        linked_removals=links,
    )


def _history(session: Any, sound_id: int, after: int, limit: int, filters: HistoryFilters) -> HistoryPage:
    rows = repo.sound_uses(
        session, sound_id, after_id=after, limit=limit + 1, state=filters.state,
        account_id=filters.account_id, include_disputed=filters.include_disputed,
        since=filters.since, until=filters.until,
    )
    page, more = rows[:limit], len(rows) > limit
    removals = repo.removals_of_uploads(session, [r.upload.id for r in page if r.upload.state == "removed"])
    items = [HistoryItem(r, removals.get(r.upload.id)) for r in page]
    next_cursor = encode_cursor(HISTORY_CURSOR, page[-1].use.id) if more else None
    return HistoryPage(sound_id, items, next_cursor)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ParameterError(f"limit must be within 1..{MAX_PAGE}")


def sound_details(store: Any, sound_id: int, *, actor: Actor) -> SoundDetails:
    """A sound: status, labels, first seen, linked removals, use counts."""
    with store.session() as session:
        details = _details(session, sound_id)
        audit(session, actor, "sound.view", f"sound:{sound_id}")
    return details


def sound_history(
    store: Any, sound_id: int, *, actor: Actor, cursor: str | None = None, limit: int = 50,
    filters: HistoryFilters = HistoryFilters(),
) -> HistoryPage:
    """One page of every use of a sound, oldest first, disputed uses included and marked."""
    _check_limit(limit)
    filters.check()
    after = decode_cursor(HISTORY_CURSOR, cursor)
    with store.session() as session:
        if not repo.sound_info(session, [sound_id]):
            raise NotFoundError(f"no sound with id {sound_id}")
        page = _history(session, sound_id, after, limit, filters)
        audit(session, actor, "sound.history", f"sound:{sound_id}",
              {"cursor": cursor, "limit": limit, "state": filters.state, "account_id": filters.account_id})
    return page


def account_sounds(store: Any, account_id: str, *, actor: Actor) -> list[AccountSound]:
    """The sounds an account's uploads use, with whether each is linked to removed content."""
    with store.session() as session:
        rows = repo.account_sounds(session, account_id)
        if not rows:
            raise NotFoundError(f"no uploads from account {account_id!r}")
        ids = [r.sound_id for r in rows]
        links = repo.linked_removals(session, ids)
        labels = repo.labels_of_sounds(session, ids)
        audit(session, actor, "account.sounds", f"account:{account_id}")
    return [
        AccountSound(r.sound_id, r.uses, r.first_used, r.last_used, labels[r.sound_id], bool(links[r.sound_id]))
        for r in rows
    ]


def shared_accounts(store: Any, account_id: str, *, actor: Actor) -> list[SharedAccount]:
    """Other accounts that use the flagged sounds (linked to removed content) this account uses."""
    with store.session() as session:
        rows = repo.account_sounds(session, account_id)
        if not rows:
            raise NotFoundError(f"no uploads from account {account_id!r}")
        links = repo.linked_removals(session, [r.sound_id for r in rows])
        flagged = [s for s, linked in links.items() if linked]
        shared = repo.accounts_sharing_sounds(session, account_id, flagged)
        audit(session, actor, "account.shared", f"account:{account_id}", {"flagged_sounds": sorted(flagged)})
    by_account: dict[str, SharedAccount] = {}
    for r in shared:
        entry = by_account.setdefault(r.account_id, SharedAccount(r.account_id, [], 0))
        entry.flagged_sound_ids.append(r.sound_id)
        by_account[r.account_id] = SharedAccount(entry.account_id, entry.flagged_sound_ids, entry.uses + r.uses)
    return sorted(by_account.values(), key=lambda a: (-len(a.flagged_sound_ids), -a.uses, a.account_id))


def search_by_clip(
    store: Any, source: Source, *, settings: Settings, actor: Actor, history_limit: int = 20,
) -> list[ClipMatch]:
    """Sounds a clip matches, each with its details and the first page of its history."""
    _check_limit(history_limit)
    audio = decode_source(store, source, settings)
    matches = usable_matches(list(catalogue.identify_audio(store, audio, match_settings=settings.matching).matches), settings)
    out = []
    with store.session() as session:
        for m in matches:
            out.append(ClipMatch(
                evidence={"sound_id": m.sound_id, **match_evidence(m.evidence)},
                sound=_details(session, m.sound_id),
                history=_history(session, m.sound_id, 0, history_limit, HistoryFilters()),
            ))
        audit(session, actor, "search.clip", None,
              {"duration_seconds": round(audio.duration, 3), "sounds": [m.sound_id for m in matches]})
    return out
