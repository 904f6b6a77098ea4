"""Every failure of the ``audiofp`` command is one line on stderr and a documented exit code.

Scripts branch on the exit code: 2 fix the command line, 3 fix (or skip) the
input, 4 fix the store. These tests drive the real command to each code, and
check the table itself for the error types a command rarely meets.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiofp import errors
from audiofp.cli import main
from audiofp.cli.errors import EXIT_CODES, exit_code
from audiofp.engine.params import FingerprintParams
from audiofp.store import Store
from crafted_media import UNDECODABLE_HEADERS, wav_bytes

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

#: A PostgreSQL URL nothing listens on (port 1 refuses at once).
UNREACHABLE_URL = "postgresql+psycopg://nobody@127.0.0.1:1/audiofp"


@pytest.fixture
def run(tmp_path, monkeypatch, sqlite_url):
    """Run ``audiofp`` on a fresh SQLite store, as a shell would (no exceptions escape)."""
    monkeypatch.setenv("AUDIOFP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    def invoke(*args: str):
        result = CliRunner().invoke(main, list(args))
        # Anything but SystemExit escaping the command is a traceback in a terminal.
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return invoke


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audiofp: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_a_blank_key_name_is_bad_input_not_a_store_problem(run):
    result = run("keys", "create", "--role", "pipeline", "--name", " ")
    assert_one_line_error(result, 3, "name")
    assert run("keys", "list").stdout == ""  # nothing was issued


def test_a_negative_after_id_is_a_usage_error_without_a_traceback(run):
    result = run("sounds", "--after", "-1")
    assert result.exit_code == 2
    assert "--after" in result.stderr and "Traceback" not in result.output


def test_revoking_an_unknown_or_revoked_key_is_bad_input(run):
    assert_one_line_error(run("keys", "revoke", "999"), 3, "999")
    assert run("keys", "create", "--role", "admin", "--name", "me").exit_code == 0
    assert run("keys", "revoke", "1").exit_code == 0
    assert_one_line_error(run("keys", "revoke", "1"), 3, "already revoked")


def test_linking_an_unknown_sound_is_bad_input(run):
    assert_one_line_error(run("link", "42", "--tag", "archive"), 3, "42")


def test_an_index_built_with_other_parameters_is_a_store_problem(run, sqlite_url):
    Store.open(sqlite_url, params=FingerprintParams(peak_floor_db=7.0)).dispose()
    for args in (["sounds"], ["db", "stats"], ["ingest", str(SAMPLES / "chant.ogg")], ["match", str(SAMPLES / "chant.ogg")]):
        assert_one_line_error(run(*args), 4, "digest")


def test_an_unreachable_database_is_a_store_problem(run):
    assert_one_line_error(run("--database-url", UNREACHABLE_URL, "sounds"), 4)
    assert_one_line_error(run("--database-url", UNREACHABLE_URL, "db", "current"), 4)


def test_an_unsupported_database_url_or_a_bad_setting_is_bad_input(run, monkeypatch):
    assert_one_line_error(run("--database-url", "mysql://db/audiofp", "sounds"), 3, "mysql")
    monkeypatch.setenv("AUDIOFP_MAX_UPLOAD_BYTES", "lots")
    assert_one_line_error(run("sounds"), 3, "max_upload_bytes")


def test_an_unknown_schema_revision_is_bad_input(run):
    assert_one_line_error(run("db", "upgrade", "--revision", "nonsense"), 3, "nonsense")


def test_a_bad_file_among_good_ones_fails_only_itself(run, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    partial = run("match", str(bad), str(SAMPLES / "chant.ogg"))
    assert partial.exit_code == 1 and "no match" in partial.stdout
    # The only file bad: its own code.
    assert_one_line_error(run("match", str(bad)), 3)


def test_a_wav_header_declaring_0_bits_per_sample_is_bad_input_not_a_traceback(run, tmp_path):
    crafted = tmp_path / "zero-bits.wav"
    crafted.write_bytes(UNDECODABLE_HEADERS["bits_per_sample_0"])
    assert_one_line_error(run("match", str(crafted)), 3, "zero-bits.wav", "cannot be decoded")
    # ingest reports it as the batch's failed file (exit 1), with no traceback either
    ingest = run("ingest", str(crafted))
    assert ingest.exit_code == 1 and "zero-bits.wav declares" in ingest.stderr and "1 failed" in ingest.output


def test_ingesting_audio_too_flat_to_fingerprint_adds_no_sound(run, tmp_path):
    flat = tmp_path / "dc.wav"
    flat.write_bytes(wav_bytes(struct.pack("<h", 16384) * 8000 * 3))  # 3 s of a DC offset: no spectral peak
    result = run("ingest", str(flat))
    assert result.exit_code == 1 and "too short or too flat to fingerprint" in result.stderr, result.output
    assert "1 failed" in result.output
    assert run("sounds").stderr.strip() == "no sounds"


@pytest.mark.parametrize("command", ["ingest", "match"])
def test_a_store_problem_stops_a_batch_at_once(run, monkeypatch, command):
    calls = []

    def store_down(*args, **kwargs):
        calls.append(args)
        raise errors.StoreUnavailableError("the database is unavailable (connection refused)")

    monkeypatch.setattr(f"audiofp.services.{'identify' if command == 'match' else 'ingest'}", store_down)
    result = run(command, str(SAMPLES / "chant.ogg"), str(SAMPLES / "speech_en.ogg"))
    assert result.exit_code == 4, result.output
    assert len(calls) == 1  # the second file was not tried against a store that is down
    assert result.stderr.strip().splitlines()[-1] == "audiofp: error: the database is unavailable (connection refused)"


@pytest.mark.parametrize(("error", "code"), [
    (errors.BadAudioError("not audio"), 3),
    (errors.SilentAudioError("silence"), 3),
    (errors.AudioTooLongError("long"), 3),
    (errors.InputTooLargeError("large"), 3),
    (errors.ParameterError("blank"), 3),
    (errors.NotFoundError("no key 9"), 3),
    (errors.ConflictError("already revoked"), 3),
    (errors.IndexMismatchError("digest"), 4),
    (errors.StoreUnavailableError("down"), 4),
    (errors.RetryableError("lost a race"), 4),
    (errors.AudioFPError("anything else of ours"), 4),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_the_exit_code_table(error, code):
    assert exit_code(error) == code


def test_an_error_that_is_not_ours_is_a_bug_and_keeps_its_traceback():
    with pytest.raises(TypeError):
        exit_code(KeyError("a bug"))
