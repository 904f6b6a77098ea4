"""Times come out of the store as aware UTC datetimes, whichever backend stored them.

SQLite keeps no zone (it hands back naive values); PostgreSQL hands back
aware values in the session's time zone, which a server or a pooler may set
to anything. Either way the wire must show the same instant the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from api_fixtures import seed_sound, seed_upload
from audiofp import store as db
from audiofp.store import utc

KATHMANDU = timezone(timedelta(hours=5, minutes=45))
UTC_NOON = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_utc_reads_naive_values_as_utc_and_converts_aware_ones():
    assert utc(None) is None
    assert utc(datetime(2024, 5, 1, 12, 0)) == UTC_NOON
    assert utc(datetime(2024, 5, 1, 12, 0)).utcoffset() == timedelta(0)
    converted = utc(datetime(2024, 5, 1, 17, 45, tzinfo=KATHMANDU))
    assert converted == UTC_NOON and converted.utcoffset() == timedelta(0)
    assert converted.isoformat() == "2024-05-01T12:00:00+00:00"


def _use_session_zone(session, zone: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL TIME ZONE '{zone}'"))


def test_records_are_utc_whatever_the_database_session_zone(store):
    sound = seed_sound(store, "S")
    upload_id = seed_upload(store, "c-1", "acct", {sound: "original"})
    with store.session() as session:
        removal_id = db.insert_removal(session, upload_id=upload_id, policy_label="p", reason=None, by=None)
        key = db.insert_api_key(session, name="k", role=db.Role.ADMIN, key_hash="0" * 64, prefix="afp_")
    with store.session(readonly=True) as session:
        _use_session_zone(session, "Asia/Kathmandu")
        upload = db.get_upload(session, upload_id)
        removal = db.get_removal(session, removal_id)
        keys = db.list_api_keys(session)
        sounds = db.get_sounds(session, [sound])
        (row,) = db.uses_of_sounds(session, [sound], include_disputed=True)
        span = db.use_span(session, sound)
    stamps = [upload.uploaded_at, upload.received_at, removal.removed_at, keys[0].created_at,
              sounds[sound].created_at, row.use.created_at, row.upload.uploaded_at, span.first_seen]
    assert all(s.utcoffset() == timedelta(0) for s in stamps), stamps
    assert upload.uploaded_at.isoformat() == "2024-05-01T12:00:00+00:00"
    assert key.created_at.utcoffset() == timedelta(0)


def test_an_upload_time_given_with_an_offset_is_kept_as_the_same_instant(store):
    sound = seed_sound(store, "S")
    with store.session() as session:
        upload_id = db.insert_upload(session, content_id="c-1", account_id="acct",
                                     uploaded_at=datetime(2024, 5, 1, 17, 45, tzinfo=KATHMANDU),
                                     metadata=None, duration_seconds=1.0, idempotency_key=None)
        db.insert_use(session, upload_id=upload_id, sound_id=sound, kind=db.UseKind.ORIGINAL,
                      evidence=_evidence())
    with store.session(readonly=True) as session:
        assert db.get_upload(session, upload_id).uploaded_at == UTC_NOON
        # Time filters given with an offset compare instants, not wall-clock digits.
        # 11:30 UTC, written as 13:30+02:00: the noon upload is after it.
        since = db.uses_of_sounds(session, [sound], include_disputed=True,
                                  since=datetime(2024, 5, 1, 13, 30, tzinfo=timezone(timedelta(hours=2))))
        # 11:59 UTC, written as 17:44+05:45: the noon upload is not before it.
        until = db.uses_of_sounds(session, [sound], include_disputed=True,
                                  until=datetime(2024, 5, 1, 17, 44, tzinfo=KATHMANDU))
    assert len(since) == 1 and len(until) == 0


def _evidence():
    from audiofp.engine.types import Evidence

    return Evidence(query_start=0.0, query_end=1.0, sound_start=0.0, sound_end=1.0, speed=1.0,
                    pitch_semitones=0.0, anchors=1, score=0.0, confidence=1.0)


def test_an_instant_a_postgresql_session_zone_puts_out_of_python_range_reads_as_the_nearest_bound(store):
    sound = seed_sound(store, "S")
    upload_id = seed_upload(store, "c-1", "acct", {sound: "original"})
    with store.session() as session:  # the first instant Python can hold, in UTC
        session.execute(text("UPDATE uploads SET uploaded_at = :v"), {"v": datetime(1, 1, 1, tzinfo=timezone.utc)})
    with store.session(readonly=True) as session:
        _use_session_zone(session, "America/New_York")  # where that instant is still year 0
        upload = db.get_upload(session, upload_id)
        span = db.use_span(session, sound)
    assert upload.uploaded_at == span.first_seen == datetime(1, 1, 1, tzinfo=timezone.utc)
