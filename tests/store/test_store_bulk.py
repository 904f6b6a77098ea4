"""Reads over huge id lists: chunked under every backend's bind-parameter limit.

``audiofp ingest ARCHIVE --removal-label X`` links every sound of an archive at
once, so the services read tens of thousands of sound ids in one call.
PostgreSQL carries at most 65,535 bind parameters per statement; one
``IN (...)`` parameter per id fails there past that, whatever SQLite allows.
"""

from __future__ import annotations

import pytest

from api_fixtures import seed_sound, seed_upload
from audiofp import store as db
from audiofp.errors import NotFoundError
from audiofp.services import CLI_ACTOR, tag_sounds, link_sounds_to_removal, linked_removals, sound_details

#: More ids than PostgreSQL's 65,535 bind parameters.
MANY = 70_000


def test_linking_an_archive_of_70000_mostly_unknown_sounds_names_the_first_unknown(store):
    known = [seed_sound(store, name) for name in ("a", "b", "c")]
    ids = known + list(range(1_000, 1_000 + MANY))
    with pytest.raises(NotFoundError, match=r"no sound with id 1000$"):
        link_sounds_to_removal(store, ids, policy_label="terrorist-content", tags=["archive"], actor=CLI_ACTOR)
    with pytest.raises(NotFoundError, match=r"no sound with id 1000$"):
        tag_sounds(store, ids, ["archive"], actor=CLI_ACTOR)
    # All or nothing: the known sounds were neither tagged nor linked.
    details = sound_details(store, known[0], actor=CLI_ACTOR)
    assert details.status == "clear" and details.linked_removals == [] and details.tags == []


@pytest.fixture
def world(store):
    """Sound S introduced by account A (upload removed) and reused by B; sound T used by B, tagged, linked directly."""
    s, t = seed_sound(store, "S"), seed_sound(store, "T")
    removed = seed_upload(store, "c-a", "acct-A", {s: "original"}, minutes=0)
    other = seed_upload(store, "c-b", "acct-B", {s: "reuse", t: "reuse"}, minutes=10)
    with store.session() as session:
        db.add_sound_tags(session, t, ["campaign", "archive"])
        by_upload = db.insert_removal(session, upload_id=removed, policy_label="spam", reason=None, by=None)
        direct = db.insert_removal(session, sound_id=t, policy_label="archive", reason=None, by=None)
    return store, s, t, removed, other, by_upload, direct


def test_store_reads_of_70000_ids_return_exactly_the_stored_rows(world):
    store, s, t, removed, other, by_upload, direct = world
    ids = [s, t, *range(10_000, 10_000 + MANY)]
    with store.session(readonly=True) as session:
        assert sorted(db.get_sounds(session, ids)) == [s, t]
        tags = db.tags_of_sounds(session, ids)
        assert len(tags) == MANY + 2 and tags[t] == ["archive", "campaign"] and tags[s] == []
        via = db.removals_via_uses(session, ids, include_disputed_uses=False, include_reversed=False)
        assert [(sound, r.id, r.content_id) for sound, r in via] == [(s, by_upload, "c-a")]
        assert [r.id for r in db.removals_of_sounds(session, ids, include_reversed=False)] == [direct]
        uses = db.uses_of_sounds(session, ids, include_disputed=True)
        assert [(u.upload.content_id, u.use.sound_id) for u in uses] == [("c-a", s), ("c-b", s), ("c-b", t)]
        shared = db.accounts_sharing_sounds(session, "acct-A", ids, include_disputed=False)
        assert [(r.account_id, r.sound_id, r.uses) for r in shared] == [("acct-B", s, 1), ("acct-B", t, 1)]
        upload_ids = [removed, other, *range(10_000, 10_000 + MANY)]
        assert [r.id for r in db.removals_of_uploads(session, upload_ids, include_reversed=False)] == [by_upload]
        links = linked_removals(session, ids)
    assert len(links) == MANY + 2
    assert [r.id for r in links[s]] == [by_upload] and [r.id for r in links[t]] == [direct]


def test_a_page_over_several_chunks_holds_the_lowest_use_ids(world, monkeypatch):
    store, s, t, *_ = world
    monkeypatch.setattr("audiofp.store.common.IN_CHUNK", 1)  # one query per sound id
    with store.session(readonly=True) as session:
        everything = db.uses_of_sounds(session, [t, s], include_disputed=True)
        first_two = db.uses_of_sounds(session, [t, s], include_disputed=True, limit=2)
        after_first = db.uses_of_sounds(session, [t, s], include_disputed=True, after_id=everything[0].use.id)
    ids = [row.use.id for row in everything]
    assert ids == sorted(ids) and len(ids) == 3
    assert [row.use.id for row in first_two] == ids[:2]
    assert [row.use.id for row in after_first] == ids[1:]
