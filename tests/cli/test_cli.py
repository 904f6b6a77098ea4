"""The audiofp command as an operator and an investigator use it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiofp.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOFP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def folder(tmp_path):
    """A folder tree of known sounds, with one broken file among them."""
    root = tmp_path / "archive"
    (root / "nested").mkdir(parents=True)
    shutil.copy(SAMPLES / "chant.ogg", root / "chant.ogg")
    shutil.copy(SAMPLES / "speech_en.ogg", root / "nested" / "speech_en.ogg")
    (root / "nested" / "broken.mp3").write_bytes(b"ID3" + b"\x00" * 500)
    (root / "notes.txt").write_text("not media, not picked up")
    return root


def test_ingest_folder_recursively_reports_failures_and_goes_on(run, folder):
    result = run("ingest", str(folder), "--label", "archive")
    assert result.exit_code == 1  # one file failed; the others were added
    assert "broken.mp3" in result.output
    assert "3 files: 2 added, 0 already known, 1 failed" in result.output
    listing = run("sounds")
    assert listing.exit_code == 0
    assert listing.output.count("archive") == 2


def test_ingest_again_skips_known_audio(run, folder):
    run("ingest", str(folder / "chant.ogg"))
    again = run("ingest", str(folder / "chant.ogg"))
    assert again.exit_code == 0
    assert "already known as sound 1" in again.output
    assert "1 files: 0 added, 1 already known, 0 failed" in again.output


def test_match_prints_matches_and_no_match(run):
    run("ingest", str(SAMPLES / "speech_over_chant.ogg"), str(SAMPLES / "chant.ogg"))
    result = run("match", str(SAMPLES / "queries" / "altered_reuse.m4a"), str(SAMPLES / "queries" / "voice_unrelated.ogg"))
    assert result.exit_code == 0
    first, second = result.output.split("voice_unrelated.ogg")
    assert "speed x1.1" in first and "confidence" in first
    assert "no match" in second


def test_match_json_gives_one_object_per_file(run):
    run("ingest", str(SAMPLES / "speech_over_chant.ogg"))
    result = run("match", "--json", str(SAMPLES / "queries" / "altered_reuse.m4a"), str(SAMPLES / "queries" / "voice_unrelated.ogg"))
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [Path(o["file"]).name for o in lines] == ["altered_reuse.m4a", "voice_unrelated.ogg"]
    hit = lines[0]["matches"][0]
    assert hit["label"] is None and hit["sound_id"] == 1
    assert {"query_start", "sound_start", "speed", "pitch_semitones", "landmarks", "score", "confidence"} <= hit.keys()
    assert lines[0]["seconds"] > 0
    assert lines[1]["matches"] == []


def test_bad_input_is_one_line_and_a_nonzero_exit(run, tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_text("nope")
    result = CliRunner().invoke(main, ["match", str(bad)])
    assert result.exit_code == 3
    assert result.output.strip().startswith("audiofp: error:")
    assert len(result.output.strip().splitlines()) == 1


def test_db_commands(run):
    up = run("db", "upgrade")
    assert up.exit_code == 0 and "schema at" in up.output
    run("ingest", str(SAMPLES / "chant.ogg"))
    stats = run("db", "stats")
    assert "1 sounds" in stats.output and "MB per hour" in stats.output


def test_index_snapshots_are_built_merged_and_reported(run, tmp_path, monkeypatch):
    first = run("ingest", str(SAMPLES / "chant.ogg"))
    assert "index snapshot rebuilt: 1 sounds" in first.output  # the store's first snapshot
    assert list((tmp_path / "xdg" / "audiofp" / "index").glob("*/gen-*/postings.npy"))
    assert "snapshot gen-" in run("index", "status").output

    run("ingest", str(SAMPLES / "speech_en.ogg"))
    status = run("index", "status")
    assert "1 sounds" in status.output and "recent sounds indexed in memory: 1" in status.output
    matched = run("match", str(SAMPLES / "queries" / "altered_reuse.m4a"))
    assert matched.exit_code == 0 and "sound 1:" in matched.output

    merged = run("index", "snapshot")
    assert merged.exit_code == 0 and "snapshot of 2 sounds" in merged.output and "merged into gen-" in merged.output
    full = run("index", "snapshot", "--full")
    assert full.exit_code == 0 and "snapshot of 2 sounds" in full.output and "derived from every sound" in full.output
    assert "recent sounds indexed in memory: 0" in run("index", "status").output

    monkeypatch.setenv("AUDIOFP_INDEX_REFRESH_POSTINGS", "500")  # the new sound alone is over it
    again = run("ingest", str(SAMPLES / "speech_ar.ogg"))
    assert "index snapshot rebuilt: 3 sounds" in again.output
    assert "recent sounds indexed in memory: 0" in run("index", "status").output

    # A snapshot folder that cannot be written: the ingest still succeeds, with a warning.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("AUDIOFP_INDEX_DIR", str(blocker / "index"))
    blocked = run("ingest", str(SAMPLES / "speech_over_chant.ogg"))
    assert blocked.exit_code == 0 and "1 added" in blocked.output and "was not rebuilt" in blocked.output

    monkeypatch.setenv("AUDIOFP_INDEX_DIR", "off")
    off = CliRunner().invoke(main, ["index", "snapshot"])
    assert off.exit_code != 0 and "turned off" in off.output
    in_memory = CliRunner().invoke(main, ["index", "status"])
    assert in_memory.exit_code == 0 and "indexed in memory: 4 sounds" in in_memory.output


def test_help_everywhere(run):
    for args in (["--help"], ["ingest", "--help"], ["match", "--help"], ["sounds", "--help"], ["db", "--help"],
                 ["demo", "--help"], ["keys", "--help"], ["link", "--help"], ["serve", "--help"],
                 ["index", "--help"]):
        result = run(*args)
        assert result.exit_code == 0 and "Usage:" in result.output


def test_demo_ingests_samples_and_finds_the_altered_reuse(run):
    result = run("demo")
    assert result.exit_code == 0
    assert "index snapshot: 4 sounds" in result.output  # the matches below come from it
    altered = result.output.split("match altered_reuse.m4a")[1].split("match voice_unrelated")[0]
    assert "speech_over_chant" in altered or "chant" in altered
    assert "speed x1.1" in altered
    assert result.output.rstrip().endswith("no match")


def test_ingest_can_seed_labels_and_a_removal_link_from_an_archive(run, folder):
    result = run("ingest", str(folder / "chant.ogg"), str(folder / "nested" / "speech_en.ogg"),
                 "--tag", "archive-2024", "--removal-label", "terrorism", "--removal-reason", "GIFCT bank")
    assert result.exit_code == 0, result.output
    assert "2 sounds labelled ['archive-2024'], linked to removed content (terrorism)" in result.output
    # Re-ingesting known audio still applies the seed to the known sounds.
    again = run("ingest", str(folder / "chant.ogg"), "--tag", "second-pass")
    assert "1 sounds labelled ['second-pass']" in again.output

    import os

    from audiofp.services import CLI_ACTOR, sound_details
    from audiofp.store import Store

    store = Store.open(os.environ["AUDIOFP_DATABASE_URL"])
    try:
        chant, speech = (sound_details(store, i, actor=CLI_ACTOR) for i in (1, 2))
    finally:
        store.dispose()
    assert chant.status == speech.status == "linked_to_removed_content"
    assert [r.policy_label for r in chant.linked_removals] == ["terrorism"]
    assert set(chant.tags) == {"archive-2024", "second-pass"} and speech.tags == ["archive-2024"]
