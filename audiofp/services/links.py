"""The rules that turn removals and uses into links, re-review work and use counts.

"Linked to removed content" is never stored: it is derived here, at read time,
from the removals and uses the store keeps, so that reversing a removal or
disputing a use changes every verdict and sound page at once, with no flag to
update and nothing that can drift out of step. Every reader of links (verdicts,
sound details, account pages) goes through this module, so the rule is
stated once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .. import store as db
from ..store import HistoryRow, RemovalRecord, Session, UploadState


def linked_removals(session: Session, sound_ids: Iterable[int]) -> dict[int, list[RemovalRecord]]:
    """The removals each sound is linked to, by sound id (an empty list for a clear sound).

    A sound is linked to a removal while the removal is active (not reversed)
    and either the removed upload has an *undisputed* use of the sound, or an
    operator linked the sound itself (archive seeding). A disputed use was
    judged a false match by a reviewer, so it must not carry the removal over
    to the sound. Per sound: removals through uses first, then direct ones,
    each in removal id order.
    """
    ids = sorted({int(i) for i in sound_ids})
    links: dict[int, list[RemovalRecord]] = {i: [] for i in ids}
    for sound_id, removal in db.removals_via_uses(session, ids, include_disputed_uses=False, include_reversed=False):
        links[sound_id].append(removal)
    for removal in db.removals_of_sounds(session, ids, include_reversed=False):
        links[removal.sound_id].append(removal)  # type: ignore[index]  # a direct removal names its sound
    return links


def uses_to_rereview(session: Session, sound_ids: Iterable[int], *, except_upload_id: int | None) -> list[HistoryRow]:
    """The uses a pipeline should look at again after the links of ``sound_ids`` changed.

    Those are the undisputed uses by *live* uploads: a removed upload is
    already down, and a disputed use does not carry a link either way. The
    upload whose removal (or reversal) changed the links is left out
    (``except_upload_id``): its pipeline made that change itself.
    """
    return db.uses_of_sounds(
        session, sound_ids, include_disputed=False, state=UploadState.LIVE, exclude_upload_id=except_upload_id
    )


@dataclass(frozen=True)
class UseStats:
    """How a sound has been used.

    ``live_uses`` and ``removed_uses`` count undisputed uses by live and by
    removed uploads; ``disputed_uses`` the uses reviewers judged false
    matches, whatever their upload's state; ``uses`` all of them. ``accounts``,
    ``first_seen`` and ``last_seen`` are over every use.
    """

    uses: int
    live_uses: int
    removed_uses: int
    disputed_uses: int
    accounts: int
    first_seen: datetime | None
    last_seen: datetime | None


def use_stats(session: Session, sound_id: int) -> UseStats:
    """The use counts of one sound (see :class:`UseStats` for what each counts)."""
    tallies = db.use_tallies(session, sound_id)
    span = db.use_span(session, sound_id)

    def undisputed(state: UploadState) -> int:
        return sum(t.uses for t in tallies if t.state == state and not t.disputed)

    return UseStats(
        uses=sum(t.uses for t in tallies),
        live_uses=undisputed(UploadState.LIVE),
        removed_uses=undisputed(UploadState.REMOVED),
        disputed_uses=sum(t.uses for t in tallies if t.disputed),
        accounts=span.accounts,
        first_seen=span.first_seen,
        last_seen=span.last_seen,
    )
