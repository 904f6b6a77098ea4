"""What investigators read: sounds, reuse histories, accounts, search by clip.

Every read here is an investigator search and is written to the audit log in
the same transaction, so a history cannot be read without a trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .. import store as db
from ..config import Settings
from ..engine.types import Match
from ..errors import NotFoundError, ParameterError
from ..store import HistoryRow, RemovalRecord, Session, Store, UploadState
from . import catalogue
from .cursors import decode_cursor, encode_cursor
from .keys import Actor, audit
from .links import UseStats, linked_removals, use_stats
from .uploads import Source, usable_matches

HISTORY_CURSOR = "history"
MAX_PAGE = 500
STATES = tuple(state.value for state in UploadState)


@dataclass(frozen=True)
class SoundDetails:
    id: int
    duration_seconds: float
    label: str | None
    source_name: str | None
    tags: list[str]
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
    """An ``UploadState`` value: only uses by uploads in that state."""
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
    tags: list[str]
    linked_to_removed_content: bool


@dataclass(frozen=True)
class SharedAccount:
    account_id: str
    flagged_sound_ids: list[int]
    uses: int


@dataclass(frozen=True)
class ClipMatch:
    match: Match
    sound: SoundDetails
    history: HistoryPage


def _details(session: Session, sound_id: int) -> SoundDetails:
    sound = db.get_sounds(session, [sound_id]).get(sound_id)
    if sound is None:
        raise NotFoundError(f"no sound with id {sound_id}")
    stats = use_stats(session, sound_id)
    links = linked_removals(session, [sound_id])[sound_id]
    return SoundDetails(
        id=sound.id,
        duration_seconds=sound.duration_seconds,
        label=sound.label,
        source_name=sound.source_name,
        tags=db.tags_of_sounds(session, [sound_id])[sound_id],
        status="linked_to_removed_content" if links else "clear",
        created_at=sound.created_at,
        first_seen=stats.first_seen or sound.created_at,
        last_seen=stats.last_seen,
        stats=stats,
        linked_removals=links,
    )


def _history(session: Session, sound_id: int, after: int, limit: int, filters: HistoryFilters) -> HistoryPage:
    rows = db.uses_of_sounds(
        session, [sound_id], after_id=after, limit=limit + 1,
        state=UploadState(filters.state) if filters.state is not None else None,
        account_id=filters.account_id, include_disputed=filters.include_disputed,
        since=filters.since, until=filters.until,
    )
    page, more = rows[:limit], len(rows) > limit
    removed = [r.upload.id for r in page if r.upload.state == UploadState.REMOVED]
    removals = {r.upload_id: r for r in db.removals_of_uploads(session, removed, include_reversed=False)}
    items = [HistoryItem(r, removals.get(r.upload.id)) for r in page]
    next_cursor = encode_cursor(HISTORY_CURSOR, page[-1].use.id) if more else None
    return HistoryPage(sound_id, items, next_cursor)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ParameterError(f"limit must be within 1..{MAX_PAGE}")


def _account_rows(session: Session, account_id: str) -> list[db.AccountSoundRow]:
    # Disputed uses were judged false matches: they say nothing about what an account uses.
    rows = db.account_sounds(session, account_id, include_disputed=False)
    if not rows:
        raise NotFoundError(f"no uploads from account {account_id!r}")
    return rows


def sound_details(store: Store, sound_id: int, *, actor: Actor) -> SoundDetails:
    """A sound: status, tags, first seen, linked removals, use counts."""
    with db.transaction(store) as session:
        details = _details(session, sound_id)
        audit(session, actor, "sound.view", f"sound:{sound_id}")
    return details


def sound_history(
    store: Store, sound_id: int, *, actor: Actor, cursor: str | None = None, limit: int = 50,
    filters: HistoryFilters = HistoryFilters(),
) -> HistoryPage:
    """One page of every use of a sound, oldest first, disputed uses included and marked."""
    _check_limit(limit)
    filters.check()
    after = decode_cursor(HISTORY_CURSOR, cursor)
    with db.transaction(store) as session:
        if not db.get_sounds(session, [sound_id]):
            raise NotFoundError(f"no sound with id {sound_id}")
        page = _history(session, sound_id, after, limit, filters)
        audit(session, actor, "sound.history", f"sound:{sound_id}",
              {"cursor": cursor, "limit": limit, "state": filters.state, "account_id": filters.account_id})
    return page


def account_sounds(store: Store, account_id: str, *, actor: Actor) -> list[AccountSound]:
    """The sounds an account's uploads use, with whether each is linked to removed content."""
    with db.transaction(store) as session:
        rows = _account_rows(session, account_id)
        ids = [r.sound_id for r in rows]
        links = linked_removals(session, ids)
        tags = db.tags_of_sounds(session, ids)
        audit(session, actor, "account.sounds", f"account:{account_id}")
    return [
        AccountSound(r.sound_id, r.uses, r.first_used, r.last_used, tags[r.sound_id], bool(links[r.sound_id]))
        for r in rows
    ]


def shared_accounts(store: Store, account_id: str, *, actor: Actor) -> list[SharedAccount]:
    """Other accounts that use the flagged sounds (linked to removed content) this account uses."""
    with db.transaction(store) as session:
        rows = _account_rows(session, account_id)
        links = linked_removals(session, [r.sound_id for r in rows])
        flagged = [s for s, linked in links.items() if linked]
        shared = db.accounts_sharing_sounds(session, account_id, flagged, include_disputed=False)
        audit(session, actor, "account.shared", f"account:{account_id}", {"flagged_sounds": sorted(flagged)})
    by_account: dict[str, SharedAccount] = {}
    for r in shared:
        entry = by_account.setdefault(r.account_id, SharedAccount(r.account_id, [], 0))
        entry.flagged_sound_ids.append(r.sound_id)
        by_account[r.account_id] = SharedAccount(entry.account_id, entry.flagged_sound_ids, entry.uses + r.uses)
    return sorted(by_account.values(), key=lambda a: (-len(a.flagged_sound_ids), -a.uses, a.account_id))


def search_by_clip(
    store: Store, source: Source, *, settings: Settings, actor: Actor, history_limit: int = 20,
) -> list[ClipMatch]:
    """Sounds a clip matches, each with its details and the first page of its history."""
    _check_limit(history_limit)
    result = catalogue.identify(store, source, settings=settings)
    matches = usable_matches(result.matches, settings)
    with db.transaction(store) as session:
        out = [
            ClipMatch(m, _details(session, m.sound_id), _history(session, m.sound_id, 0, history_limit, HistoryFilters()))
            for m in matches
        ]
        audit(session, actor, "search.clip", None,
              {"duration_seconds": round(result.duration, 3), "sounds": [m.sound_id for m in matches]})
    return out
