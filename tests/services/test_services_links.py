"""The link rules, stated once in ``audiofp.services.links``, over the store's plain queries.

A sound is linked to a removal while the removal is active and either a
removed upload has an undisputed use of it or the sound was linked directly;
re-review concerns the undisputed uses by live uploads; use counts split by
upload state and dispute.
"""

from __future__ import annotations

import pytest

from api_fixtures import seed_sound, seed_upload
from audiofp import store as db
from audiofp.services import (
    CLI_ACTOR,
    dispute_use,
    link_sounds_to_removal,
    linked_removals,
    record_removal,
    reverse_removal,
    use_stats,
    uses_to_rereview,
)


@pytest.fixture
def world(store):
    """Sound S: introduced by A, reused by B (live), C and D (both disputed), C removed. Sound T: linked directly."""
    s, t = seed_sound(store, "S"), seed_sound(store, "T")
    for minutes, (content_id, kind) in enumerate(
        [("c-a", "original"), ("c-b", "reuse"), ("c-c", "reuse"), ("c-d", "reuse")]
    ):
        seed_upload(store, content_id, f"acct-{content_id}", {s: kind}, minutes=minutes)
    with store.session(readonly=True) as session:
        use_of = {r.upload.content_id: r.use.id for r in db.uses_of_sounds(session, [s], include_disputed=True)}
    for content_id in ("c-c", "c-d"):
        dispute_use(store, use_of[content_id], reason="false match", actor=CLI_ACTOR)
    record_removal(store, content_id="c-c", policy_label="spam", reason=None, actor=CLI_ACTOR)
    return store, s, t


def test_only_active_removals_through_undisputed_uses_or_direct_links_link_a_sound(world):
    store, s, t = world
    with store.session(readonly=True) as session:
        assert linked_removals(session, [s, t]) == {s: [], t: []}  # C's use of S is disputed
    removal_a = record_removal(store, content_id="c-a", policy_label="terror", reason=None, actor=CLI_ACTOR).removal
    (direct,) = link_sounds_to_removal(store, [t], policy_label="archive", actor=CLI_ACTOR)
    with store.session(readonly=True) as session:
        links = linked_removals(session, [s, t])
    assert [r.id for r in links[s]] == [removal_a.id] and [r.id for r in links[t]] == [direct.removal.id]
    reverse_removal(store, direct.removal.id, reason="wrong entry", actor=CLI_ACTOR)
    with store.session(readonly=True) as session:
        assert linked_removals(session, [t]) == {t: []}


def test_re_review_concerns_undisputed_uses_by_live_uploads_other_than_the_changed_one(world):
    store, s, _ = world
    with store.session(readonly=True) as session:
        everyone = uses_to_rereview(session, [s], except_upload_id=None)
        but_a = uses_to_rereview(session, [s], except_upload_id=everyone[0].upload.id)
    assert [r.upload.content_id for r in everyone] == ["c-a", "c-b"]  # c-c removed, c-d disputed
    assert [r.upload.content_id for r in but_a] == ["c-b"]


def test_use_counts_split_by_upload_state_and_dispute(world):
    store, s, t = world
    with store.session(readonly=True) as session:
        stats = use_stats(session, s)
        unused = use_stats(session, t)
    assert (stats.uses, stats.live_uses, stats.removed_uses, stats.disputed_uses, stats.accounts) == (4, 2, 0, 2, 4)
    assert stats.first_seen < stats.last_seen
    assert (unused.uses, unused.accounts, unused.first_seen, unused.last_seen) == (0, 0, None, None)
