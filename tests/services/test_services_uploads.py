"""Recording an upload under races: lost races are retried, a duplicate gets the first verdict.

The services see only audiofp's errors: ``RetryableError`` means record again
(matching again, but never decoding again), ``ConflictError`` on the content id
means another submission of the same upload won, whose verdict is the answer.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from audiofp import store as db
from audiofp.errors import RetryableError
from audiofp.services import Settings, submit_upload
from audiofp.services import catalogue, uploads

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
SETTINGS = Settings()


@pytest.fixture
def calls(monkeypatch):
    """How many times the upload service checked (decoded and fingerprinted) a file."""
    counts = {"check": 0}
    real_check = catalogue.analyse_source

    def check(*args, **kwargs):
        counts["check"] += 1
        return real_check(*args, **kwargs)

    monkeypatch.setattr(catalogue, "analyse_source", check)
    return counts


def _submit(store, content_id="c-1"):
    return submit_upload(store, (SAMPLES / "chant.ogg").read_bytes(), content_id=content_id, account_id="acct",
                         uploaded_at=NOW, settings=SETTINGS)


def _uses(store) -> int:
    """Uses recorded of the first sounds: one per recorded upload of the chant."""
    with store.session(readonly=True) as session:
        return len(db.uses_of_sounds(session, range(1, 10), include_disputed=True))


def test_a_lost_race_is_recorded_again_without_decoding_again(store, calls, monkeypatch):
    real_insert = db.insert_upload
    attempts = []

    def loses_twice(*args, **kwargs):
        attempts.append(1)
        if len(attempts) <= 2:
            raise RetryableError("deadlock detected")
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(db, "insert_upload", loses_twice)
    submission = _submit(store)
    assert submission.created and submission.verdict["recorded"]
    assert submission.verdict["original_sound_id"] is not None
    assert len(attempts) == 3
    assert calls == {"check": 1}
    assert _uses(store) == 1


def test_races_lost_every_time_give_up_after_the_attempts_and_record_nothing(store, calls, monkeypatch):
    attempts = []

    def always_loses(*args, **kwargs):
        attempts.append(1)
        raise RetryableError("deadlock detected")

    monkeypatch.setattr(db, "insert_upload", always_loses)
    with pytest.raises(RetryableError):
        _submit(store)
    assert len(attempts) == uploads.RECORD_ATTEMPTS
    assert calls["check"] == 1
    with store.session(readonly=True) as session:
        assert db.find_upload(session, content_id="c-1") is None
        assert db.get_sounds(session, range(1, 10)) == {}


def test_a_duplicate_recorded_while_this_one_decoded_answers_with_the_first_verdict(store, monkeypatch):
    real_check = catalogue.analyse_source
    first: dict = {}

    def check_while_a_retry_lands(*args, **kwargs):
        analysis = real_check(*args, **kwargs)
        if not first:  # the same upload, sent again by a retrying client, wins the race
            first["started"] = True  # this nested submission checks the file too: only once
            first["submission"] = _submit(store)
        return analysis

    monkeypatch.setattr(catalogue, "analyse_source", check_while_a_retry_lands)
    late = _submit(store)
    winner = first["submission"]
    assert winner.created and not late.created
    assert late.body == winner.body and late.verdict == json.loads(winner.body)
    assert _uses(store) == 1


def test_an_upload_recorded_before_digests_were_kept_still_replays_and_is_compared_on_its_ids(store_url):
    from sqlalchemy import text

    from audiofp.errors import IdempotencyMismatchError
    from audiofp.store import Store, upgrade
    from audiofp.store.database import create_store_engine

    upgrade(store_url, "0005_posting_layout_digest")
    engine = create_store_engine(store_url)
    try:
        with engine.begin() as connection:  # as audiofp at revision 0005 recorded it
            connection.execute(text(
                "INSERT INTO uploads (content_id, account_id, uploaded_at, received_at, state, duration_seconds,"
                " idempotency_key, verdict_json) VALUES ('old', 'acct', :t, :t, 'live', 1.0, 'old-key', '{\"old\": 1}')"
            ), {"t": NOW})
    finally:
        engine.dispose()
    with Store.open(store_url) as store:
        for key in ("old-key", None):
            replay = submit_upload(store, b"whatever bytes", content_id="old", account_id="acct", uploaded_at=NOW,
                                   settings=SETTINGS, idempotency_key=key)
            assert not replay.created and replay.body == '{"old": 1}'
        with pytest.raises(IdempotencyMismatchError, match="account id"):
            submit_upload(store, b"whatever bytes", content_id="old", account_id="other", uploaded_at=NOW,
                          settings=SETTINGS)
        with pytest.raises(IdempotencyMismatchError, match="content id"):
            submit_upload(store, b"whatever bytes", content_id="new", account_id="acct", uploaded_at=NOW,
                          settings=SETTINGS, idempotency_key="old-key")
