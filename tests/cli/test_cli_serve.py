"""The API's boot path: ``audiofp serve`` as an extension command, and a worker's warm-up.

The core command must not need the web layer (``serve`` comes from the API
package's entry point), and a worker whose code cannot serve the index must
fail at boot, loudly, rather than start and answer 503 for ever; a database
that is merely not up yet must not stop it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from click.testing import CliRunner

from api import create_app
from audiofp.cli import app as cli_app
from audiofp.cli import main
from audiofp.engine.params import FingerprintParams
from audiofp.errors import IndexMismatchError, ParameterError
from audiofp.store import Store

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE_URL = "postgresql+psycopg://nobody@127.0.0.1:1/audiofp"

#: Parameters other than the code's: an index built with them is one this code cannot serve.
OTHER_PARAMS = FingerprintParams(peak_floor_db=7.0)


def build_index_with_other_parameters(url: str) -> None:
    Store.open(url, params=OTHER_PARAMS).dispose()


# --- serve is the API's command ---------------------------------------------------------


def test_serve_is_an_audiofp_command_declared_by_the_api_package():
    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0 and "serve" in listing.output
    serve_help = runner.invoke(main, ["serve", "--help"])
    assert serve_help.exit_code == 0, serve_help.output
    assert "--workers" in serve_help.output and "gunicorn" in serve_help.output


def test_the_core_commands_run_without_importing_the_web_layer():
    code = (
        "import sys; from audiofp.cli import main\n"
        "main(['db', '--help'], standalone_mode=False)\n"
        "main(['ingest', '--help'], standalone_mode=False)\n"
        "print(sorted(m for m in ('api', 'flask', 'gunicorn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


def test_a_broken_extension_command_does_not_take_the_core_commands_down(monkeypatch):
    broken = EntryPoint(name="broken", value="no_such_module_anywhere:command", group="audiofp.commands")
    monkeypatch.setattr(cli_app, "extension_commands", lambda: {"broken": broken})
    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0 and "ingest" in listing.output
    assert "'broken' could not be loaded" in listing.stderr
    assert runner.invoke(main, ["broken"]).exit_code == 2  # no such command


def test_serve_refuses_an_index_built_with_other_parameters_before_starting(sqlite_url, monkeypatch):
    build_index_with_other_parameters(sqlite_url)

    class NoServer:  # were the check missed, fail here rather than serve for ever
        def __init__(self, *args, **kwargs):
            raise AssertionError("gunicorn was started on a mismatched index")

    monkeypatch.setattr("api.cli.BaseApplication", NoServer)
    result = CliRunner().invoke(main, ["--database-url", sqlite_url, "serve", "--port", "1"])
    assert result.exit_code == 4
    assert result.stderr.startswith("audiofp: error: ") and "digest" in result.stderr


# --- a worker's warm-up -----------------------------------------------------------------


def warm_up(url: str) -> bool:
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    try:
        return app.extensions["audiofp"].warm_up()
    finally:
        app.extensions["audiofp"].close()


def test_warm_up_opens_a_good_store(store_url):
    assert warm_up(store_url) is True


def test_warm_up_fails_on_an_index_built_with_other_parameters(store_url):
    build_index_with_other_parameters(store_url)
    with pytest.raises(IndexMismatchError):
        warm_up(store_url)


def test_warm_up_fails_on_an_unsupported_database_url():
    with pytest.raises(ParameterError):
        warm_up("mysql://db/audiofp")


def test_warm_up_stays_lazy_while_the_database_is_unreachable():
    app = create_app({"DATABASE_URL": UNREACHABLE_URL, "TESTING": True})
    assert app.extensions["audiofp"].warm_up() is False
    client = app.test_client()
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 503


@pytest.mark.slow
def test_a_gunicorn_worker_on_a_mismatched_index_fails_to_boot(sqlite_url, tmp_path):
    build_index_with_other_parameters(sqlite_url)
    env = {**os.environ, "AUDIOFP_DATABASE_URL": sqlite_url, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "gunicorn", "-w", "1", "-b", "127.0.0.1:0", "api.wsgi:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=60,
        )
    text = log.read_text()
    assert proc.returncode != 0, text
    assert "IndexMismatchError" in text
