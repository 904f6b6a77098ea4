"""The moderation domain without HTTP: thresholds, cursors, archive seeding, disputes, the CLI."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
import soundfile as sf
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from audiofp import services
from audiofp.errors import ConflictError, NotFoundError, ParameterError
from audiofp.services import (
    CLI_ACTOR,
    ModerationSettings,
    Settings,
    authenticate,
    decode_cursor,
    dispute_use,
    dry_run_match,
    encode_cursor,
    events_since,
    link_sounds_to_removal,
    record_removal,
    reverse_removal,
    sound_details,
    sound_history,
    submit_upload,
)
from audiofp.services.operations import seed_sounds

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def excerpt(name: str, start: float, seconds: float) -> bytes:
    y, sr = sf.read(SAMPLES / name, dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, y[int(start * sr): int((start + seconds) * sr)], sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_recommended_action_follows_the_configured_thresholds():
    s = ModerationSettings(block_confidence=0.99, review_confidence=0.9)
    assert s.action([]) == "allow"
    assert s.action([0.5]) == "allow"
    assert s.action([0.9]) == "review"
    assert s.action([0.95, 0.2]) == "review"
    assert s.action([0.99]) == "block"
    strict = ModerationSettings(block_confidence=1.0, review_confidence=0.0)
    assert strict.action([0.999]) == "review"
    with pytest.raises(ParameterError):
        ModerationSettings(block_confidence=0.5, review_confidence=0.9)
    with pytest.raises(ParameterError):
        ModerationSettings(min_use_confidence=1.5)


@given(st.sampled_from(["events", "history"]), st.integers(min_value=0, max_value=2**62))
def test_cursors_round_trip_and_belong_to_one_list(kind, last_id):
    cursor = encode_cursor(kind, last_id)
    assert decode_cursor(kind, cursor) == last_id
    other = "history" if kind == "events" else "events"
    with pytest.raises(ParameterError):
        decode_cursor(other, cursor)


@given(st.text(min_size=1, max_size=40))
def test_arbitrary_cursor_text_is_rejected_or_decoded_never_crashes(text):
    try:
        assert decode_cursor("events", text) >= 0
    except ParameterError:
        pass


def test_archive_seeding_links_a_sound_and_the_next_reuse_is_blocked(store):
    with store.session() as session:
        audio = services.decode(SAMPLES / "chant.ogg", limits=Settings().limits,
                               sample_rate=store.params.sample_rate)
        sound_id = services.add_sound_audio(session, store, audio, source_name="archive/chant.ogg").sound_id
    settings = Settings()
    assert dry_run_match(store, excerpt("chant.ogg", 4, 8), settings=settings)["action"] == "allow"

    affected = seed_sounds(store, [sound_id], tags=("archive-2023", "nasheed"), removal_label="terrorist-content",
                          removal_reason="GIFCT archive")
    assert affected == 0  # no uploads yet
    verdict = submit_upload(store, excerpt("chant.ogg", 4, 8), content_id="u1", account_id="a", uploaded_at=NOW,
                            settings=settings).verdict
    assert verdict["action"] == "block" and verdict["linked_to_removed_content"]
    assert verdict["sounds"][0]["labels"] == ["archive-2023", "nasheed"]
    assert verdict["removals"][0]["sound_id"] == sound_id and verdict["removals"][0]["content_id"] is None
    assert verdict["removals"][0]["policy_label"] == "terrorist-content"

    details = sound_details(store, sound_id, actor=CLI_ACTOR)
    assert details.status == "linked_to_removed_content" and details.tags == ["archive-2023", "nasheed"]
    # reversing the archive link clears it for the following uploads
    reverse_removal(store, details.linked_removals[0].id, reason="wrong archive entry", actor=CLI_ACTOR)
    assert dry_run_match(store, excerpt("chant.ogg", 10, 8), settings=settings)["action"] == "allow"
    with pytest.raises(NotFoundError):
        link_sounds_to_removal(store, [sound_id + 1000], policy_label="x", actor=CLI_ACTOR)


def test_a_disputed_reuse_no_longer_flags_later_uploads(store):
    settings = Settings()
    orig = submit_upload(store, (SAMPLES / "chant.ogg").read_bytes(), content_id="orig", account_id="a",
                         uploaded_at=NOW, settings=settings).verdict
    chant_id = orig["original_sound_id"]
    # a false match: a reuse whose upload is then removed for its own reasons
    reuse = submit_upload(store, excerpt("chant.ogg", 0, 10), content_id="reuse", account_id="b",
                          uploaded_at=NOW, settings=settings).verdict
    use_id = reuse["sounds"][0]["use_id"]
    record_removal(store, content_id="reuse", policy_label="spam", reason=None, actor=CLI_ACTOR)
    assert dry_run_match(store, excerpt("chant.ogg", 15, 8), settings=settings)["linked_to_removed_content"]

    disputed = dispute_use(store, use_id, reason="the removal was about the video, not the chant", actor=CLI_ACTOR)
    assert disputed.disputed and disputed.dispute_reason.startswith("the removal")
    verdict = dry_run_match(store, excerpt("chant.ogg", 15, 8), settings=settings)
    assert verdict["sounds"][0]["sound_id"] == chant_id and not verdict["linked_to_removed_content"]
    history = sound_history(store, chant_id, actor=CLI_ACTOR)
    assert [(i.row.upload.content_id, i.row.use.disputed) for i in history.items] == [("orig", False), ("reuse", True)]
    with pytest.raises(ConflictError):
        dispute_use(store, use_id, reason=None, actor=CLI_ACTOR)


def test_submit_rejects_bad_fields_before_decoding(store):
    settings = Settings()
    for bad in ({"content_id": ""}, {"account_id": " "}, {"uploaded_at": datetime(2024, 5, 1)},
                {"content_id": "x" * 300}):
        kwargs = {"content_id": "c", "account_id": "a", "uploaded_at": NOW, **bad}
        with pytest.raises(ParameterError):
            submit_upload(store, b"not even audio", settings=settings, **kwargs)
    assert events_since(store, None).events == []


# --- the CLI ------------------------------------------------------------------


@pytest.fixture
def cli():
    from audiofp.cli import main

    return main


def test_cli_keys_create_list_revoke(cli, sqlite_url):
    runner = CliRunner()
    out = runner.invoke(cli, ["--database-url", sqlite_url, "keys", "create", "--role", "reviewer", "--name", "ana",
                              "--json"])
    assert out.exit_code == 0, out.output
    issued = json.loads(out.stdout)
    from audiofp.store import Store

    with Store.open(sqlite_url) as store:
        assert authenticate(store, issued["key"]).role == "reviewer"
    listing = runner.invoke(cli, ["--database-url", sqlite_url, "keys", "list"])
    assert "reviewer\tana" in listing.stdout and issued["key"] not in listing.stdout
    assert runner.invoke(cli, ["--database-url", sqlite_url, "keys", "revoke", str(issued["id"])]).exit_code == 0
    with Store.open(sqlite_url) as store:
        assert authenticate(store, issued["key"]) is None
    bad = runner.invoke(cli, ["--database-url", sqlite_url, "keys", "create", "--role", "god", "--name", "x"])
    assert bad.exit_code == 2
    missing = runner.invoke(cli, ["--database-url", sqlite_url, "keys", "revoke", "999"])
    assert missing.exit_code != 0 and "999" in missing.stderr


def test_cli_link_seeds_labels_and_removal_links(cli, sqlite_url):
    runner = CliRunner()
    ingested = runner.invoke(cli, ["--database-url", sqlite_url, "ingest", "--json", str(SAMPLES / "chant.ogg")])
    assert ingested.exit_code == 0, ingested.output
    sound_id = json.loads(ingested.stdout.splitlines()[0])["sound_id"]
    out = runner.invoke(cli, ["--database-url", sqlite_url, "link", str(sound_id), "--tag", "archive",
                              "--removal-label", "violent-extremism"])
    assert out.exit_code == 0, out.output
    from audiofp.store import Store

    with Store.open(sqlite_url) as store:
        details = sound_details(store, sound_id, actor=CLI_ACTOR)
    assert details.status == "linked_to_removed_content" and details.tags == ["archive"]
    assert runner.invoke(cli, ["--database-url", sqlite_url, "link", str(sound_id)]).exit_code == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_cli_serve_starts_the_api_on_sqlite(sqlite_url, tmp_path):
    port = _free_port()
    code = "import sys; from audiofp.cli import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--database-url", sqlite_url, "serve", "--port", str(port), "--workers", "1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("w"), start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)
                if r.status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "audiofp serve did not become ready in 30 s"
            time.sleep(0.2)
        assert requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).json()["openapi"] == "3.1.0"
        too_long = requests.get(f"http://127.0.0.1:{port}/v1/events?cursor={'a' * 100_000}", timeout=10)
        assert too_long.status_code == 414 and too_long.headers["Content-Type"] == "application/problem+json"
        assert too_long.json()["status"] == 414 and too_long.json()["type"] == "/problems/request-uri-too-long"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def test_migration_0002_and_the_moderation_models_describe_the_same_schema(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from audiofp.store.models import Base
    from audiofp.store.models import Upload

    tables = {t.name for t in Base.metadata.sorted_tables if t.name not in ("sounds", "fingerprints", "index_meta")}
    assert Upload.__tablename__ in tables and "audit_log" in tables
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == [], diffs
