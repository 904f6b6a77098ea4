"""Run the audiofp API as in production: nginx in front, gunicorn behind it on a unix socket.

    .venv/bin/python deploy/serve.py --listen 0.0.0.0:8080 --workers 8 --threads 2

Renders ``deploy/nginx.conf`` into the run directory (the request body limit
from the same settings the app reads, ``AUDIOFP_*``), starts gunicorn with the
project's config (``--config python:api.server``) bound to a unix socket there,
then nginx in the foreground, and supervises both: SIGTERM or SIGINT stops
both gracefully, and if either exits the other is stopped and this exits
non-zero. gunicorn's access log (one JSON line per request) goes to stdout,
both servers' errors to stderr, and nginx's own access log to
``RUN_DIR/nginx-access.log``. Arguments after ``--`` go to gunicorn.

Why nginx: see the comment at the top of ``deploy/nginx.conf``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "nginx.conf"
#: Characters allowed in a path written into nginx's config (no quoting needed).
_SAFE_PATH = re.compile(r"[A-Za-z0-9._/+-]+")
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")
#: Seconds gunicorn may take to listen on its socket.
BIND_TIMEOUT = 30.0
#: Seconds each server gets to stop gracefully before it is killed.
STOP_TIMEOUT = 20.0


def _default_run_dir() -> str:
    if os.geteuid() == 0:
        return "/run/audiofp"
    return os.path.join(tempfile.gettempdir(), f"audiofp-{os.getuid()}")


def find_nginx() -> str | None:
    """The nginx binary: on PATH, else where Debian puts it (/usr/sbin is not on every user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _nginx_version(nginx: str) -> tuple[int, ...]:
    out = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in match.groups()) if match else (0, 0, 0)


def render(template: str, values: dict[str, str]) -> str:
    """``template`` with its placeholders (``@LISTEN@``...) replaced outside comments; every one must be given."""
    lines = []
    for line in template.splitlines(keepends=True):
        if not line.lstrip().startswith("#"):
            line = _PLACEHOLDER.sub(lambda m: values.get(m.group()[1:-1], m.group()), line)
            if _PLACEHOLDER.search(line):
                raise ValueError(f"no value for {_PLACEHOLDER.search(line).group()} in {TEMPLATE}")  # type: ignore[union-attr]
        lines.append(line)
    return "".join(lines)


def nginx_values(listen: str, run_dir: Path, client_timeout: float) -> dict[str, str]:
    """The template's values: the body limit and timeouts from the app's own settings."""
    from api import max_request_body
    from api.server import timeout as gunicorn_timeout
    from audiofp.config import Settings

    settings = Settings.load()
    return {
        "LISTEN": listen,
        "RUN_DIR": str(run_dir),
        "UPSTREAM": f"unix:{run_dir / 'gunicorn.sock'}",
        "MAX_BODY": str(max_request_body(settings)),
        "CLIENT_TIMEOUT": f"{client_timeout:g}",
        "PROXY_READ_TIMEOUT": str(int(gunicorn_timeout) + 10),
    }


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run directory; nginx's workers must be able to reach the socket in it."""
    root = os.geteuid() == 0
    run_dir.mkdir(parents=True, exist_ok=True)
    # Private to this user; as root, nginx's workers run as an unprivileged
    # user that must traverse (not list) it to reach gunicorn's socket.
    run_dir.chmod(0o711 if root else 0o700)
    if root:
        for folder in [run_dir, *run_dir.parents]:
            if not folder.stat().st_mode & stat.S_IXOTH:
                raise SystemExit(f"serve.py: error: {folder} is not searchable by others, so nginx's workers "
                                 f"(an unprivileged user) cannot reach {run_dir}; choose another --run-dir")


def _control_socket(run_dir: Path) -> list[str]:
    """gunicorn's control socket (gunicorn 25.1 and later) in the run directory, not in $HOME."""
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket" for setting in KNOWN_SETTINGS):
        return ["--control-socket", str(run_dir / "gunicorn.ctl")]
    return []


def _socket_accepts(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(1.0)
            probe.connect(str(path))
        return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="deploy/serve.py", description=__doc__.split("\n\n")[0],
        epilog="Arguments after -- are passed to gunicorn.")
    parser.add_argument("--listen", default="127.0.0.1:8080",
                        help="address:port nginx listens on (default %(default)s; 0.0.0.0:8080 for all interfaces)")
    parser.add_argument("--run-dir", default=_default_run_dir(),
                        help="directory for the socket, pid file, temporary bodies and nginx's access log "
                             "(default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes, about 2 per core")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    parser.add_argument("--client-timeout", type=float, default=10.0,
                        help="seconds a client may stay silent while sending headers or body, or while being "
                             "sent the answer (default %(default)s)")
    parser.add_argument("--nginx", default=None, help="the nginx binary (default: found on PATH or in /usr/sbin)")
    own, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    return parser.parse_args(own), extra


def main(argv: list[str] | None = None) -> int:
    args, gunicorn_args = parse_args(sys.argv[1:] if argv is None else argv)
    nginx = args.nginx or find_nginx()
    if not nginx:
        print("serve.py: error: nginx is not installed (apt-get install nginx)", file=sys.stderr)
        return 3
    run_dir = Path(args.run_dir).resolve()
    if not _SAFE_PATH.fullmatch(str(run_dir)):
        print(f"serve.py: error: --run-dir {run_dir} may only hold letters, digits and ._/+-", file=sys.stderr)
        return 2
    prepare_run_dir(run_dir)
    sock = run_dir / "gunicorn.sock"
    sock.unlink(missing_ok=True)
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    # gunicorn boots (imports the engine, opens the store) while nginx's config is prepared.
    gunicorn = subprocess.Popen([
        sys.executable, "-m", "gunicorn", "--config", "python:api.server", "--bind", f"unix:{sock}",
        *_control_socket(run_dir), "--workers", str(args.workers), "--threads", str(args.threads),
        *gunicorn_args, "api.wsgi:app",
    ])
    procs = [gunicorn]
    try:
        try:
            values = nginx_values(args.listen, run_dir, args.client_timeout)
        except Exception as exc:  # an invalid AUDIOFP_* setting: the CLI's exit code for bad input
            print(f"serve.py: error: {exc}", file=sys.stderr)
            return 3
        config = run_dir / "nginx.conf"
        config.write_text(render(TEMPLATE.read_text(), values))
        nginx_cmd = [nginx, "-p", f"{run_dir}/", "-c", str(config)]
        if _nginx_version(nginx) >= (1, 19, 5):
            nginx_cmd += ["-e", "stderr"]  # not the compiled-in /var/log/nginx/error.log, before the config is read
        if subprocess.run([*nginx_cmd, "-t", "-q"], check=False).returncode != 0:
            print(f"serve.py: error: nginx refused {config}", file=sys.stderr)
            return 3

        deadline = time.monotonic() + BIND_TIMEOUT
        while not _socket_accepts(sock):
            if gunicorn.poll() is not None or stopping:
                return 1 if not stopping else 0
            if time.monotonic() > deadline:
                print(f"serve.py: error: gunicorn did not listen on {sock} within {BIND_TIMEOUT:.0f} s",
                      file=sys.stderr)
                return 1
            time.sleep(0.1)
        proxy = subprocess.Popen(nginx_cmd)
        procs.append(proxy)
        print(f"serve.py: serving on http://{args.listen} (nginx, pid {proxy.pid}) -> {sock} "
              f"(gunicorn, pid {gunicorn.pid}, {args.workers} worker(s) x {args.threads} thread(s))",
              file=sys.stderr, flush=True)
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.2)
        if stopping:
            return 0
        for p in procs:
            if p.poll() is not None:
                name = "gunicorn" if p is gunicorn else "nginx"
                print(f"serve.py: error: {name} exited ({p.returncode}); stopping", file=sys.stderr)
        return 1
    finally:
        # nginx first (SIGQUIT: finish the requests in flight), then gunicorn (SIGTERM: graceful).
        for p in reversed(procs):
            _stop(p, signal.SIGQUIT if p is not gunicorn else signal.SIGTERM)
            _wait(p, STOP_TIMEOUT)


if __name__ == "__main__":
    sys.exit(main())
