"""The API without audio: health, spec, keys and roles, removals, events, histories, disputes, errors.

Uploads and uses are seeded through the store exactly as ``submit_upload``
records them, so these tests exercise every non-audio endpoint on SQLite and
PostgreSQL; the audio paths are in ``test_api_story.py``.
"""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from sqlalchemy import select

from api import create_app
from api.config import load_settings
from audiofp import store as store_functions
from audiofp.errors import ParameterError, RetryableError, StoreUnavailableError
from audiofp.store.models import ApiKey

from api_fixtures import SpecClient, harness, make_harness, seed_sound, seed_upload  # noqa: F401


def test_liveness_readiness_and_the_served_spec_is_valid_openapi(harness):
    c = harness.client
    assert c.get("/health/live").get_json() == {"status": "ok"}
    assert c.get("/health/ready").get_json() == {"status": "ready"}
    spec = c.get("/openapi.json").get_json()
    validate(spec)
    assert "/v1/uploads" in spec["paths"]
    assert harness.client.client.get("/openapi.yaml").data.startswith(b"openapi: 3.1")


def test_readiness_is_503_when_the_database_cannot_be_opened(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    app = create_app({"DATABASE_URL": f"sqlite:///{blocker}/db.sqlite"})
    c = SpecClient(app)
    assert c.get("/health/live").status_code == 200
    r = c.get("/health/ready")
    assert r.status_code == 503
    assert r.mimetype == "application/problem+json"
    r = c.get("/v1/events", headers={"X-API-Key": "afp_anything"})
    assert r.status_code == 503 and r.get_json()["type"] == "/problems/unavailable" and r.headers["Retry-After"]


@pytest.mark.parametrize("error", [RetryableError("deadlock detected (host db-1)"),
                                   StoreUnavailableError("connection refused (host db-1)")])
def test_a_lost_race_or_a_lost_database_is_503_with_retry_after(harness, monkeypatch, error):
    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(store_functions, "events_after", fails)
    r = harness.client.get("/v1/events", headers=harness.auth("pipeline"))
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.get_json()["type"] == "/problems/unavailable"
    assert "db-1" not in r.get_json()["detail"]  # the driver's message is logged, not shown


def test_missing_unknown_and_revoked_keys_are_401_wrong_role_is_403(harness):
    c = harness.client
    r = c.get("/v1/events")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.get_json()["type"] == "/problems/unauthorized"
    assert c.get("/v1/events", headers={"Authorization": "Bearer afp_nope"}).status_code == 401
    assert c.get("/v1/events", headers={"X-API-Key": harness.keys["pipeline"]}).status_code == 200
    # investigators read but cannot write; pipelines write but cannot read histories
    r = c.post("/v1/removals", json={"content_id": "x", "policy_label": "p"}, headers=harness.auth("investigator"))
    assert r.status_code == 403 and "investigator" in r.get_json()["detail"]
    assert c.get("/v1/sounds/1", headers=harness.auth("pipeline")).status_code == 403
    assert c.get("/v1/keys", headers=harness.auth("reviewer")).status_code == 403

    created = c.post("/v1/keys", json={"name": "temp", "role": "investigator"}, headers=harness.auth("admin"))
    assert created.status_code == 201
    secret = created.get_json()["key"]
    assert c.get("/v1/events", headers={"X-API-Key": secret}).status_code == 200
    key_id = created.get_json()["id"]
    assert c.delete(f"/v1/keys/{key_id}", headers=harness.auth("admin")).get_json()["revoked_at"]
    assert c.get("/v1/events", headers={"X-API-Key": secret}).status_code == 401
    assert c.delete(f"/v1/keys/{key_id}", headers=harness.auth("admin")).status_code == 409


def test_keys_are_stored_hashed_and_listed_without_secrets(harness):
    c = harness.client
    created = c.post("/v1/keys", json={"name": "ops", "role": "pipeline"}, headers=harness.auth("admin")).get_json()
    listing = c.get("/v1/keys", headers=harness.auth("admin"))
    assert created["key"] not in listing.get_data(as_text=True)
    with harness.store.session() as session:
        hashes = set(session.scalars(select(ApiKey.key_hash)))
    assert hashlib.sha256(created["key"].encode()).hexdigest() in hashes
    assert created["key"] not in hashes
    bad = c.post("/v1/keys", json={"name": "x", "role": "superuser"}, headers=harness.auth("admin"))
    assert bad.status_code == 400 and "role" in bad.get_json()["detail"]


@pytest.fixture
def reuse_world(harness):
    """Sound S introduced by account A (c-orig), reused by B and C; sound T used by D only."""
    s = seed_sound(harness.store, "S")
    t = seed_sound(harness.store, "T")
    seed_upload(harness.store, "c-orig", "acct-A", {s: "original"}, minutes=0)
    seed_upload(harness.store, "c-b", "acct-B", {s: "reuse"}, minutes=10)
    seed_upload(harness.store, "c-c", "acct-C", {s: "reuse", t: "reuse"}, minutes=20)
    seed_upload(harness.store, "c-d", "acct-D", {t: "original"}, minutes=30)
    return harness, s, t


def test_removal_links_the_sound_and_feeds_events_for_other_live_uses(reuse_world):
    h, s, t = reuse_world
    c = h.client
    before = c.get("/v1/events", headers=h.auth("pipeline")).get_json()
    assert before["events"] == []

    r = c.post("/v1/removals", json={"content_id": "c-orig", "policy_label": "violent-extremism",
                                     "reason": "IS nasheed"}, headers=h.auth("pipeline"))
    assert r.status_code == 201
    out = r.get_json()
    assert out["sound_ids"] == [s]
    assert out["affected_live_uploads"] == 2  # c-b and c-c, not the removed upload itself
    assert out["removal"]["policy_label"] == "violent-extremism" and out["removal"]["active"]

    feed = c.get(f"/v1/events?cursor={out['events_cursor']}", headers=h.auth("pipeline")).get_json()
    assert [e["upload"]["content_id"] for e in feed["events"]] == ["c-b", "c-c"]
    assert {e["kind"] for e in feed["events"]} == {"sound_linked_to_removal"}
    # the cursor pages and stays put when nothing is new
    first = c.get(f"/v1/events?cursor={out['events_cursor']}&limit=1", headers=h.auth("pipeline")).get_json()
    second = c.get(f"/v1/events?cursor={first['next_cursor']}", headers=h.auth("pipeline")).get_json()
    assert [e["upload"]["content_id"] for e in first["events"] + second["events"]] == ["c-b", "c-c"]
    empty = c.get(f"/v1/events?cursor={second['next_cursor']}", headers=h.auth("pipeline")).get_json()
    assert empty["events"] == [] and empty["next_cursor"] == second["next_cursor"]

    sound = c.get(f"/v1/sounds/{s}", headers=h.auth("investigator")).get_json()
    assert sound["status"] == "linked_to_removed_content"
    assert [rm["content_id"] for rm in sound["linked_removals"]] == ["c-orig"]
    assert (sound["uses"], sound["live_uses"], sound["removed_uses"], sound["accounts"]) == (3, 2, 1, 3)
    assert sound["first_seen"].startswith("2024-05-01T12:00")
    assert c.get(f"/v1/sounds/{t}", headers=h.auth("investigator")).get_json()["status"] == "clear"

    again = c.post("/v1/removals", json={"content_id": "c-orig", "policy_label": "x"}, headers=h.auth("pipeline"))
    assert again.status_code == 409
    unknown = c.post("/v1/removals", json={"content_id": "nope", "policy_label": "x"}, headers=h.auth("pipeline"))
    assert unknown.status_code == 404


def test_reuse_history_filters_and_pages(reuse_world):
    h, s, _ = reuse_world
    c = h.client
    c.post("/v1/removals", json={"content_id": "c-b", "policy_label": "hate"}, headers=h.auth("pipeline"))
    page = c.get(f"/v1/sounds/{s}/uses", headers=h.auth("investigator")).get_json()
    assert [u["upload"]["content_id"] for u in page["uses"]] == ["c-orig", "c-b", "c-c"]
    assert page["next_cursor"] is None
    removed = page["uses"][1]
    assert removed["upload"]["state"] == "removed" and removed["removal"]["policy_label"] == "hate"
    assert removed["speed"] == 1.25 and removed["query_end"] == 10.0
    assert page["uses"][0]["kind"] == "original"

    live = c.get(f"/v1/sounds/{s}/uses?state=live", headers=h.auth("investigator")).get_json()
    assert [u["upload"]["account_id"] for u in live["uses"]] == ["acct-A", "acct-C"]
    by_acct = c.get(f"/v1/sounds/{s}/uses?account_id=acct-C", headers=h.auth("investigator")).get_json()
    assert [u["upload"]["content_id"] for u in by_acct["uses"]] == ["c-c"]
    window = c.get(f"/v1/sounds/{s}/uses?since=2024-05-01T12:05:00Z&until=2024-05-01T12:15:00Z",
                   headers=h.auth("investigator")).get_json()
    assert [u["upload"]["content_id"] for u in window["uses"]] == ["c-b"]

    p1 = c.get(f"/v1/sounds/{s}/uses?limit=2", headers=h.auth("investigator")).get_json()
    p2 = c.get(f"/v1/sounds/{s}/uses?limit=2&cursor={p1['next_cursor']}", headers=h.auth("investigator")).get_json()
    assert [u["upload"]["content_id"] for u in p1["uses"] + p2["uses"]] == ["c-orig", "c-b", "c-c"]
    assert p2["next_cursor"] is None

    assert c.get(f"/v1/sounds/{s}/uses?cursor=garbage", headers=h.auth("investigator")).status_code == 400
    events_cursor = c.get("/v1/events", headers=h.auth("pipeline")).get_json()["next_cursor"]
    assert c.get(f"/v1/sounds/{s}/uses?cursor={events_cursor}", headers=h.auth("investigator")).status_code == 400
    assert c.get(f"/v1/sounds/{s}/uses?limit=0", headers=h.auth("investigator")).status_code == 400
    assert c.get(f"/v1/sounds/{s}/uses?state=gone", headers=h.auth("investigator")).status_code == 400
    assert c.get(f"/v1/sounds/{s}/uses?since=yesterday", headers=h.auth("investigator")).status_code == 400
    assert c.get("/v1/sounds/999999/uses", headers=h.auth("investigator")).status_code == 404


def test_reversal_clears_the_link_and_only_reviewers_may_reverse(reuse_world):
    h, s, _ = reuse_world
    c = h.client
    removal = c.post("/v1/removals", json={"content_id": "c-orig", "policy_label": "p"},
                     headers=h.auth("pipeline")).get_json()["removal"]
    path = f"/v1/removals/{removal['id']}/reversal"
    assert c.post(path, json={"reason": "appeal"}, headers=h.auth("pipeline")).status_code == 403
    assert c.post(path, json={"reason": "appeal"}, headers=h.auth("investigator")).status_code == 403
    r = c.post(path, json={"reason": "appeal upheld"}, headers=h.auth("reviewer"))
    assert r.status_code == 200
    out = r.get_json()
    assert out["removal"]["active"] is False and out["removal"]["reversal_reason"] == "appeal upheld"
    assert out["affected_live_uploads"] == 2
    sound = c.get(f"/v1/sounds/{s}", headers=h.auth("investigator")).get_json()
    assert sound["status"] == "clear" and sound["linked_removals"] == []
    feed = c.get(f"/v1/events?cursor={out['events_cursor']}", headers=h.auth("pipeline")).get_json()
    assert {e["kind"] for e in feed["events"]} == {"removal_reversed"}
    assert c.post(path, headers=h.auth("reviewer")).status_code == 409
    assert c.post("/v1/removals/424242/reversal", headers=h.auth("reviewer")).status_code == 404
    shown = c.get(f"/v1/removals/{removal['id']}", headers=h.auth("investigator")).get_json()
    assert shown["reversed_at"] is not None
    # the upload is live again and can be removed anew
    again = c.post("/v1/removals", json={"content_id": "c-orig", "policy_label": "p2"}, headers=h.auth("pipeline"))
    assert again.status_code == 201


def test_a_disputed_use_stops_linking_but_stays_visible_and_is_audited(reuse_world):
    h, s, _ = reuse_world
    c = h.client
    c.post("/v1/removals", json={"content_id": "c-b", "policy_label": "p"}, headers=h.auth("pipeline"))
    assert c.get(f"/v1/sounds/{s}", headers=h.auth("investigator")).get_json()["status"] == "linked_to_removed_content"
    history = c.get(f"/v1/sounds/{s}/uses", headers=h.auth("investigator")).get_json()["uses"]
    use_b = next(u for u in history if u["upload"]["content_id"] == "c-b")
    original = next(u for u in history if u["kind"] == "original")

    assert c.post(f"/v1/uses/{use_b['id']}/dispute", json={"reason": "x"}, headers=h.auth("investigator")).status_code == 403
    r = c.post(f"/v1/uses/{use_b['id']}/dispute", json={"reason": "different chant"}, headers=h.auth("reviewer"))
    assert r.status_code == 200 and r.get_json()["disputed"] is True
    assert c.post(f"/v1/uses/{use_b['id']}/dispute", headers=h.auth("reviewer")).status_code == 409
    assert c.post(f"/v1/uses/{original['id']}/dispute", headers=h.auth("reviewer")).status_code == 409
    assert c.post("/v1/uses/987654/dispute", headers=h.auth("reviewer")).status_code == 404

    sound = c.get(f"/v1/sounds/{s}", headers=h.auth("investigator")).get_json()
    assert sound["status"] == "clear" and sound["disputed_uses"] == 1
    history = c.get(f"/v1/sounds/{s}/uses", headers=h.auth("investigator")).get_json()["uses"]
    disputed = next(u for u in history if u["id"] == use_b["id"])
    assert disputed["disputed"] is True and disputed["dispute_reason"] == "different chant"
    hidden = c.get(f"/v1/sounds/{s}/uses?include_disputed=false", headers=h.auth("investigator")).get_json()["uses"]
    assert use_b["id"] not in [u["id"] for u in hidden]

    audit = c.get("/v1/audit?action=use.dispute", headers=h.auth("admin")).get_json()["entries"]
    assert len(audit) == 1 and audit[0]["actor"] == "key:test-reviewer"
    assert audit[0]["target"] == f"use:{use_b['id']}" and audit[0]["detail"]["reason"] == "different chant"


def test_accounts_their_sounds_and_who_shares_flagged_sounds(reuse_world):
    h, s, t = reuse_world
    c = h.client
    sounds = c.get("/v1/accounts/acct-C/sounds", headers=h.auth("investigator")).get_json()["sounds"]
    assert {x["sound_id"] for x in sounds} == {s, t}
    assert not any(x["linked_to_removed_content"] for x in sounds)
    assert c.get("/v1/accounts/acct-A/shared-accounts", headers=h.auth("investigator")).get_json()["accounts"] == []

    c.post("/v1/removals", json={"content_id": "c-b", "policy_label": "p"}, headers=h.auth("pipeline"))
    sounds = c.get("/v1/accounts/acct-C/sounds", headers=h.auth("investigator")).get_json()["sounds"]
    assert {x["sound_id"]: x["linked_to_removed_content"] for x in sounds} == {s: True, t: False}
    shared = c.get("/v1/accounts/acct-C/shared-accounts", headers=h.auth("investigator")).get_json()["accounts"]
    assert [(a["account_id"], a["flagged_sound_ids"]) for a in shared] == [("acct-A", [s]), ("acct-B", [s])]
    assert c.get("/v1/accounts/nobody/sounds", headers=h.auth("investigator")).status_code == 404


def test_every_investigator_search_and_removal_is_audited(reuse_world):
    h, s, _ = reuse_world
    c = h.client
    c.get(f"/v1/sounds/{s}", headers=h.auth("investigator"))
    c.get(f"/v1/sounds/{s}/uses?state=live", headers=h.auth("investigator"))
    c.get("/v1/accounts/acct-B/sounds", headers=h.auth("investigator"))
    c.get("/v1/accounts/acct-B/shared-accounts", headers=h.auth("reviewer"))
    c.post("/v1/removals", json={"content_id": "c-b", "policy_label": "p", "reason": "r"}, headers=h.auth("pipeline"))
    entries = c.get("/v1/audit", headers=h.auth("admin")).get_json()["entries"]
    trail = [(e["actor"], e["action"], e["target"]) for e in entries if not e["action"].startswith("key.")]
    assert trail == [
        ("key:test-investigator", "sound.view", f"sound:{s}"),
        ("key:test-investigator", "sound.history", f"sound:{s}"),
        ("key:test-investigator", "account.sounds", "account:acct-B"),
        ("key:test-reviewer", "account.shared", "account:acct-B"),
        ("key:test-pipeline", "removal.create", "upload:c-b"),
    ]
    assert entries[-1]["detail"]["policy_label"] == "p" and entries[-1]["at"]


def test_request_shape_errors_are_problems_not_crashes(harness):
    c = harness.client
    pipe = harness.auth("pipeline")
    r = c.post("/v1/removals", data="content_id=x", content_type="application/x-www-form-urlencoded", headers=pipe)
    assert r.status_code == 415 and r.mimetype == "application/problem+json"
    r = c.post("/v1/removals", json={"content_id": "x"}, headers=pipe)
    assert r.status_code == 400 and "policy_label" in r.get_json()["detail"]
    r = c.post("/v1/removals", json=["not", "an", "object"], headers=pipe)
    assert r.status_code == 400
    r = c.post("/v1/uploads", json={"content_id": "x"}, headers=pipe)
    assert r.status_code == 415 and "multipart/form-data" in r.get_json()["detail"]
    r = c.post("/v1/uploads", data={"content_id": "x", "account_id": "a", "uploaded_at": "2024-05-01T00:00:00Z"},
               content_type="multipart/form-data", headers=pipe)
    assert r.status_code == 400 and "'file'" in r.get_json()["detail"]
    r = c.post("/v1/uploads", data={"file": (io.BytesIO(b"x"), "a.ogg"), "account_id": "a",
                                    "uploaded_at": "2024-05-01T00:00:00Z"}, headers=pipe)
    assert r.status_code == 400 and "content_id" in r.get_json()["detail"]
    r = c.post("/v1/uploads", data={"file": (io.BytesIO(b"x"), "a.ogg"), "content_id": "x", "account_id": "a",
                                    "uploaded_at": "2024-05-01 noon"}, headers=pipe)
    assert r.status_code == 400 and "uploaded_at" in r.get_json()["detail"]
    r = c.post("/v1/uploads", data={"file": (io.BytesIO(b"x"), "a.ogg"), "content_id": "x", "account_id": "a",
                                    "uploaded_at": "2024-05-01T00:00:00Z", "metadata": "[1]"}, headers=pipe)
    assert r.status_code == 400 and "metadata" in r.get_json()["detail"]
    assert c.get("/v1/events?limit=9999", headers=pipe).status_code == 400
    assert c.get("/v1/events?cursor=%%%", headers=pipe).status_code == 400
    raw = harness.client.client
    r = raw.get("/v1/nowhere")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    r = raw.put("/v1/uploads")
    assert r.status_code == 405 and r.mimetype == "application/problem+json" and "POST" in r.headers["Allow"]


def test_a_body_over_the_size_limit_is_413_before_decoding(store_url):
    h = make_harness(store_url, MAX_UPLOAD_BYTES=1000)
    try:
        r = h.client.post("/v1/uploads", data={"file": (io.BytesIO(b"\0" * 200_000), "big.wav"), "content_id": "x",
                                               "account_id": "a", "uploaded_at": "2024-05-01T00:00:00Z"},
                          headers=h.auth("pipeline"))
        assert r.status_code == 413 and r.get_json()["type"] == "/problems/too-large"
    finally:
        h.app.extensions["audiofp"].close()


def test_rate_limit_per_key_answers_429_with_retry_after(sqlite_url):
    h = make_harness(sqlite_url, RATE_LIMIT_PER_MINUTE=60, RATE_LIMIT_BURST=3)
    try:
        codes = [h.client.get("/v1/events", headers=h.auth("pipeline")).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = h.client.get("/v1/events", headers=h.auth("pipeline"))
        assert int(r.headers["Retry-After"]) >= 1
        # another key has its own bucket
        assert h.client.get("/v1/events", headers=h.auth("investigator")).status_code == 200
    finally:
        h.app.extensions["audiofp"].close()


def test_config_layers_defaults_file_environment_then_arguments(tmp_path):
    path = tmp_path / "api.toml"
    path.write_text('block_confidence = 0.97\nreview_confidence = 0.8\nmax_upload_bytes = 1000\n')
    env = {"AUDIOFP_API_CONFIG": str(path), "AUDIOFP_REVIEW_CONFIDENCE": "0.85", "AUDIOFP_DATABASE_URL": "sqlite:///x"}
    config = load_settings({"MAX_UPLOAD_BYTES": 5}, environ=env)
    assert config.moderation.block_confidence == 0.97  # file
    assert config.moderation.review_confidence == 0.85  # environment beats file
    assert config.limits.max_upload_bytes == 5  # argument beats everything
    assert config.database_url == "sqlite:///x"
    with pytest.raises(ParameterError):
        load_settings({"MAX_UPLOAD_BYTES": "lots"}, environ={})
    with pytest.raises(ParameterError):
        create_app({"BLOCK_CONFIDENCE": 0.5, "REVIEW_CONFIDENCE": 0.9, "DATABASE_URL": "sqlite:///x"})


def test_admin_reads_the_effective_configuration(harness):
    cfg = harness.client.get("/v1/config", headers=harness.auth("admin")).get_json()
    assert cfg["database_backend"] == harness.store.dialect
    assert "database_url" not in cfg
    assert harness.client.get("/v1/config", headers=harness.auth("pipeline")).status_code == 403


def test_oversized_fields_are_400_and_long_ids_404_on_every_backend(reuse_world):
    h, s, _ = reuse_world
    c = h.client
    r = c.post("/v1/removals", json={"content_id": "c-b", "policy_label": "p" * 300}, headers=h.auth("pipeline"))
    assert r.status_code == 400 and "255" in r.get_json()["detail"]
    assert c.get("/v1/accounts/" + "a" * 5000 + "/sounds", headers=h.auth("investigator")).status_code == 404
    r = c.post("/v1/removals", json={"content_id": "c" * 5000, "policy_label": "p"}, headers=h.auth("pipeline"))
    assert r.status_code == 404
    r = c.post("/v1/keys", json={"name": "k" * 300, "role": "pipeline"}, headers=h.auth("admin"))
    assert r.status_code == 400
    r = c.post("/v1/removals/1/reversal", json={"reason": 42}, headers=h.auth("reviewer"))
    assert r.status_code == 400
    assert c.get("/v1/sounds/99999999999999999999999", headers=h.auth("investigator")).status_code == 404
    assert c.delete("/v1/keys/3000000000", headers=h.auth("admin")).status_code == 404
    from audiofp.services import encode_cursor

    huge = encode_cursor("events", 10**30)
    assert c.get(f"/v1/events?cursor={huge}", headers=h.auth("pipeline")).status_code == 400


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=20), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["content_id", "policy_label", "reason", "name", "role", "x"]),
                            _json_values, max_size=4),
       path=st.sampled_from(["/v1/removals", "/v1/keys", "/v1/removals/1/reversal", "/v1/uses/1/dispute"]))
def test_arbitrary_json_bodies_never_produce_a_500(reuse_world, body, path):
    h, _, _ = reuse_world
    r = h.client.post(path, json=body, headers=h.auth("admin"))
    assert r.status_code < 500, r.get_json()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(["cursor", "limit", "state", "account_id", "since", "until",
                                              "include_disputed"]), st.text(max_size=40), max_size=4))
def test_arbitrary_history_queries_never_produce_a_500(reuse_world, query):
    h, s, _ = reuse_world
    r = h.client.get(f"/v1/sounds/{s}/uses", query_string=query, headers=h.auth("investigator"))
    assert r.status_code in (200, 400), r.get_json()


def test_nul_characters_are_refused_on_every_backend(reuse_world):
    h, s, _ = reuse_world
    c = h.client
    r = c.post("/v1/removals", json={"content_id": "c-b\x00", "policy_label": "p"}, headers=h.auth("pipeline"))
    assert r.status_code == 400 and "NUL" in r.get_json()["detail"]
    assert c.post("/v1/keys", json={"name": "a\x00", "role": "pipeline"}, headers=h.auth("admin")).status_code == 400
    assert c.get("/v1/accounts/a%00b/sounds", headers=h.auth("investigator")).status_code == 400
    assert c.get(f"/v1/sounds/{s}/uses?account_id=a%00", headers=h.auth("investigator")).status_code == 400
    r = c.post("/v1/uploads", data={"file": (io.BytesIO(b"RIFF"), "a.wav"), "content_id": "x\x00", "account_id": "a",
                                    "uploaded_at": "2024-05-01T00:00:00Z"}, headers=h.auth("pipeline"))
    assert r.status_code == 400


def _nested(depth: int) -> str:
    """A JSON value ``depth`` arrays and objects deep."""
    return '{"a": [' * (depth // 2) + ("[]" if depth % 2 else "1") + "]}" * (depth // 2)


@pytest.mark.parametrize("depth", [33, 500, 990, 5000, 60_000])
def test_json_nested_deeper_than_32_levels_is_400_not_a_500(reuse_world, depth):
    h, _, _ = reuse_world
    c = h.client
    for path in ("/v1/removals", "/v1/keys", "/v1/removals/1/reversal", "/v1/uses/1/dispute"):
        body = '{"content_id": "c-b", "policy_label": "p", "name": "k", "role": "pipeline", "reason": ' \
            + _nested(depth - 1) + "}"
        r = c.post(path, data=body, content_type="application/json", headers=h.auth("admin"))
        assert r.status_code == 400 and "nested" in r.get_json()["detail"], (path, r.get_json())
    r = c.post("/v1/uploads", data={"file": (io.BytesIO(b"not audio"), "a.ogg"), "content_id": "deep",
                                    "account_id": "a", "uploaded_at": "2024-05-01T00:00:00Z",
                                    "metadata": _nested(depth)}, headers=h.auth("pipeline"))
    assert r.status_code == 400 and "metadata" in r.get_json()["detail"] and "nested" in r.get_json()["detail"]
    # nothing was removed on the way
    assert c.get("/v1/sounds/1", headers=h.auth("investigator")).get_json()["removed_uses"] == 0


def test_json_nested_32_levels_deep_is_read_as_usual(reuse_world):
    h, _, _ = reuse_world
    body = '{"content_id": "c-b", "policy_label": "p", "reason": ' + _nested(31) + "}"
    r = h.client.post("/v1/removals", data=body, content_type="application/json", headers=h.auth("pipeline"))
    assert r.status_code == 400 and r.get_json()["detail"] == "'reason' must be a string"
    # brackets inside strings are text, not nesting
    r = h.client.post("/v1/removals", json={"content_id": "c-b", "policy_label": "p", "reason": "[{" * 100},
                      headers=h.auth("pipeline"))
    assert r.status_code == 201


def test_deep_json_is_refused_whatever_its_encoding(reuse_world):
    h, _, _ = reuse_world
    # U+2200 is the bytes 00 22 in UTF-16-LE: a scan of the raw bytes would see a quote there
    body = '{"content_id": "c-b", "policy_label": "\u2200", "reason": ' + _nested(2000) + "}"
    for encoding in ("utf-16-le", "utf-16", "utf-32-le"):
        r = h.client.post("/v1/removals", data=body.encode(encoding), content_type="application/json",
                          headers=h.auth("pipeline"))
        assert r.status_code == 400 and "nested" in r.get_json()["detail"], encoding


def _upload_at(h, when: str, content_id: str = "dated"):
    """Submit junk bytes dated ``when``: a time outside the window is refused before decoding."""
    return h.client.post("/v1/uploads", data={"file": (io.BytesIO(b"not audio"), "a.ogg"), "content_id": content_id,
                                              "account_id": "a", "uploaded_at": when}, headers=h.auth("pipeline"))


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z",
                                  "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "2999-01-01T00:00:00Z"])
def test_an_upload_time_outside_the_accepted_window_is_422(harness, when):
    r = _upload_at(harness, when)
    assert r.status_code == 422 and r.get_json()["type"] == "/problems/out-of-range", r.get_json()
    assert "uploaded_at" in r.get_json()["detail"]


def test_the_upload_time_window_is_configurable(store_url):
    from datetime import datetime, timedelta, timezone

    h = make_harness(store_url, EARLIEST_UPLOAD_YEAR=2024, MAX_UPLOAD_FUTURE_SECONDS=3600)
    try:
        now = datetime.now(timezone.utc)
        refused = ["2023-12-31T23:59:59Z", "2024-01-01T00:00:00+00:01", (now + timedelta(hours=2)).isoformat()]
        for when in refused:
            assert _upload_at(h, when).get_json()["type"] == "/problems/out-of-range", when
        # inside the window the time is fine and the junk file is what gets refused
        for when in ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00-14:00", (now + timedelta(minutes=30)).isoformat()]:
            assert _upload_at(h, when).get_json()["type"] == "/problems/bad-media", when
    finally:
        h.app.extensions["audiofp"].close()


#: Instants a stored upload time may hold that Python cannot represent (in UTC), per backend.
UNREPRESENTABLE_TIMES = {
    "postgresql": ["10000-01-01 13:59:59+00", "0001-12-31 10:00:00+00 BC", "infinity", "-infinity"],
    "sqlite": ["10000-01-01 13:59:59.000000", "0000-12-31 10:00:00.000000", "infinity", "garbage"],
}


@pytest.mark.parametrize("index", range(4))
def test_a_stored_upload_time_python_cannot_represent_does_not_break_any_read(reuse_world, index):
    from sqlalchemy import text

    h, s, t = reuse_world
    value = UNREPRESENTABLE_TIMES[h.store.dialect][index]
    with h.store.session() as session:  # as older code, or a hand edit, may have left it
        session.execute(text("UPDATE uploads SET uploaded_at = :v WHERE content_id IN ('c-b', 'c-c')"), {"v": value})
    c = h.client
    c.post("/v1/removals", json={"content_id": "c-b", "policy_label": "p"}, headers=h.auth("pipeline"))
    reads = [f"/v1/sounds/{s}", f"/v1/sounds/{s}/uses", f"/v1/sounds/{t}/uses?since=2024-01-01T00:00:00Z",
             "/v1/accounts/acct-B/sounds", "/v1/accounts/acct-C/sounds", "/v1/accounts/acct-C/shared-accounts",
             "/v1/events", "/v1/sounds/1/uses?until=9999-12-31T23:59:59-14:00"]
    for path in reads:
        r = c.get(path, headers=h.auth("admin"))
        assert r.status_code == 200, (path, r.get_json())
    uses = c.get(f"/v1/sounds/{s}/uses", headers=h.auth("investigator")).get_json()["uses"]
    shown = {u["upload"]["content_id"]: u["upload"]["uploaded_at"] for u in uses}
    far_future = value.startswith("1") or value == "infinity"
    assert shown["c-b"] == ("9999-12-31T23:59:59.999999+00:00" if far_future else "0001-01-01T00:00:00+00:00")
    assert shown["c-orig"] == "2024-05-01T12:00:00+00:00"
