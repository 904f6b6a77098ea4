"""One set of settings for every door: the README's table, the precedence, the old names.

An operator reads the README's table to configure the CLI and the API alike;
these tests keep that table equal to the settings the code reads, and check
that both doors end up with the same limits from the same environment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from api import create_app
from audiofp.cli import main
from audiofp.config import Settings, settings_table
from audiofp.errors import ParameterError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def readme_table() -> dict[str, str]:
    """Variable -> default cell of the README's "Configuration (environment)" table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Configuration (environment)", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(AUDIOFP_[A-Z0-9_]+)` \| ([^|]*) \|", section, flags=re.MULTILINE)
    assert rows, "the README has no configuration table"
    return dict((name, default.strip()) for name, default in rows)


def test_the_readme_table_lists_exactly_the_settings_the_code_reads():
    documented = readme_table()
    assert sorted(documented) == sorted(name for name, _, _ in settings_table())


@pytest.mark.parametrize(("variable", "default"),
                         [(name, default) for name, default, _ in settings_table() if default != ""])
def test_the_readme_table_gives_the_real_defaults(variable, default):
    cell = readme_table()[variable].split()[0]
    if isinstance(default, bool):
        assert cell == str(default).lower()
    else:
        assert float(cell) == float(default), f"README says {cell}, the code {default}"


def test_precedence_is_defaults_then_file_then_environment_then_overrides(tmp_path):
    file = tmp_path / "audiofp.toml"
    file.write_text("max_audio_seconds = 100\nblock_confidence = 0.99\n")
    assert Settings.load(environ={}).limits.max_audio_seconds == 3600.0
    with_file = {"AUDIOFP_CONFIG_FILE": str(file)}
    assert Settings.load(environ=with_file).limits.max_audio_seconds == 100.0
    with_env = {**with_file, "AUDIOFP_MAX_AUDIO_SECONDS": "200"}
    loaded = Settings.load(environ=with_env)
    assert loaded.limits.max_audio_seconds == 200.0
    assert loaded.moderation.block_confidence == 0.99  # the file still counts for what the environment leaves
    assert Settings.load({"MAX_AUDIO_SECONDS": 300}, environ=with_env).limits.max_audio_seconds == 300.0


def test_a_json_settings_file_and_the_old_file_variable_are_read(tmp_path):
    file = tmp_path / "audiofp.json"
    file.write_text(json.dumps({"rate_limit_burst": 7}))
    assert Settings.load(environ={"AUDIOFP_API_CONFIG": str(file)}).server.rate_limit_burst == 7


def test_deprecated_variable_names_are_still_read_and_the_new_name_wins():
    old = {"AUDIOFP_MAX_INPUT_BYTES": "1000", "AUDIOFP_MAX_DURATION_SECONDS": "5"}
    limits = Settings.load(environ=old).limits
    assert (limits.max_upload_bytes, limits.max_audio_seconds) == (1000, 5.0)
    both = {**old, "AUDIOFP_MAX_UPLOAD_BYTES": "2000", "AUDIOFP_MAX_AUDIO_SECONDS": "6"}
    limits = Settings.load(environ=both).limits
    assert (limits.max_upload_bytes, limits.max_audio_seconds) == (2000, 6.0)


@pytest.mark.parametrize("environ", [
    {"AUDIOFP_MAX_UPLOAD_BYTES": "lots"},
    {"AUDIOFP_MAX_AUDIO_SECONDS": "-1"},
    {"AUDIOFP_MIGRATE": "perhaps"},
    {"AUDIOFP_MIN_ANCHORS": "2.5"},
    {"AUDIOFP_REVIEW_CONFIDENCE": "0.9999"},  # above block_confidence
    {"AUDIOFP_CONFIG_FILE": "/nonexistent/audiofp.toml"},
], ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_a_bad_value_is_a_parameter_error(environ):
    with pytest.raises(ParameterError):
        Settings.load(environ=environ)


def test_an_unknown_name_in_a_file_or_the_overrides_is_a_parameter_error(tmp_path):
    file = tmp_path / "typo.toml"
    file.write_text("max_upload_byte = 10\n")
    with pytest.raises(ParameterError, match="max_upload_byte"):
        Settings.load(environ={"AUDIOFP_CONFIG_FILE": str(file)})
    with pytest.raises(ParameterError, match="max_upload_byte"):
        Settings.load({"max_upload_byte": 10}, environ={})


LIMITS_ENV = {
    "AUDIOFP_MAX_UPLOAD_BYTES": "5000000",
    "AUDIOFP_MAX_AUDIO_SECONDS": "10",
    "AUDIOFP_DECODE_TIMEOUT_SECONDS": "30",
}


def test_the_cli_and_the_api_load_the_same_limits(monkeypatch, sqlite_url):
    for name, value in LIMITS_ENV.items():
        monkeypatch.setenv(name, value)
    app = create_app({"DATABASE_URL": sqlite_url, "TESTING": True})
    expected = Settings.load().limits
    assert expected.max_audio_seconds == 10.0  # the environment was read, not the defaults
    assert app.config["AUDIOFP_SETTINGS"].limits == expected


def test_the_cli_and_the_api_refuse_the_same_too_long_audio(monkeypatch, sqlite_url):
    """The 30 s sample is past a 10 s limit at both doors: exit code 3 and HTTP 413."""
    for name, value in LIMITS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AUDIOFP_DATABASE_URL", sqlite_url)
    cli = CliRunner().invoke(main, ["match", str(SAMPLES / "chant.ogg")])
    assert cli.exit_code == 3, cli.output
    assert "the limit is 10 s" in cli.output or "the limit of 10 s" in cli.output

    from audiofp.services import create_key

    app = create_app({"TESTING": True, "RATE_LIMIT_PER_MINUTE": 0})
    try:
        key = create_key(app.extensions["audiofp"].store, name="limits", role="pipeline").secret
        with (SAMPLES / "chant.ogg").open("rb") as audio:
            r = app.test_client().post("/v1/match", data={"file": (audio, "chant.ogg")},
                                       headers={"Authorization": f"Bearer {key}"})
    finally:
        app.extensions["audiofp"].close()
    assert r.status_code == 413
    assert r.get_json()["type"].endswith("/audio-too-long")
