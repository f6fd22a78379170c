"""`make run`: costwatch on embedded defaults, with demo data, in one command.

Starts the embedded PostgreSQL (data in .data/pg, kept between runs) unless DATABASE_URL
is set, migrates, creates an admin user and a demo project with an ingest key, seeds demo
events on first start, then runs gunicorn (web), a Celery worker and Celery beat together
(broker: Redis when CELERY_BROKER_URL is set, otherwise kombu's filesystem transport under
.data/broker). Ctrl-C stops all of them; a second run reuses the data.

PORT [8000] is where gunicorn listens. The terminal shows the web server's own log and the
worker's and beat's warnings and errors; their full logs and the access log are kept in
.data/logs/.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import log, start_postgres  # noqa: E402

DATA_DIR = Path(os.environ.get("COSTWATCH_DATA_DIR", ROOT / ".data")).resolve()
PORT = int(os.environ.get("PORT", "8000"))
DEMO_EVENTS = int(os.environ.get("DEMO_EVENTS", "120000"))
LOG_DIR = DATA_DIR / "logs"
LOUD = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")
# kombu's filesystem transport has no host and says so at every start: not news to a user.
HARMLESS = ("No hostname was supplied",)


def port_check(port: int) -> None:
    """Fail before anything starts when another program holds the port (gunicorn would retry it
    five times and the banner would name a port that is not ours)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            sys.exit(f"[costwatch] port {port} is in use by another program: run on another one, "
                     f"e.g. PORT={port + 1} make run")


def persistent_secret(name: str, factory) -> str:
    path = DATA_DIR / name
    if not path.exists():
        path.write_text(factory())
        path.chmod(0o600)
    return path.read_text().strip()


def base_env() -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "costwatch.settings", "COSTWATCH_DATA_DIR": str(DATA_DIR)}
    env.setdefault("DEBUG", "true")
    env.setdefault("SECRET_KEY", persistent_secret("secret_key", lambda: secrets.token_urlsafe(50)))
    env.setdefault("SITE_URL", f"http://127.0.0.1:{PORT}")
    (DATA_DIR / "site_url").write_text(env["SITE_URL"])  # for manage.py run by hand (costwatch/settings.py)
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    if "DATABASE_URL" not in env:
        _server, env["DATABASE_URL"] = start_postgres(DATA_DIR / "pg", keep_running=True)
        log(f"embedded PostgreSQL running (data in {DATA_DIR / 'pg'})")
    return env


def manage(env, *args, capture=False):
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, text=True,
                            capture_output=capture)
    if result.returncode != 0:
        if capture:
            sys.stderr.write(result.stdout + result.stderr)
        sys.exit(f"[costwatch] manage.py {' '.join(args)} failed (exit {result.returncode})")
    return result.stdout if capture else ""


def prepare(env) -> None:
    log("applying migrations")
    manage(env, "migrate", "--no-input", "-v", "0")
    password = persistent_secret("admin_password", lambda: secrets.token_urlsafe(12))
    # One argument with "=": a urlsafe password may start with "-", which argparse would take for an option.
    ingest_key = manage(env, "dev_bootstrap", f"--admin-password={password}",
                        "--key-file", str(DATA_DIR / "demo_ingest_key"), capture=True).strip().splitlines()[-1]
    manage(env, "seed_demo", "--project", "demo", "--events", str(DEMO_EVENTS), "--if-empty")
    url = env["SITE_URL"]
    print(f"""
  costwatch is starting on {url}
    dashboard:  {url}/p/demo/        login: admin / {password}
    admin:      {url}/admin/
    API docs:   {url}/api/docs/
    ingest key: {ingest_key}
    try:        curl -sS -X POST {url}/api/v1/events -H "Authorization: Bearer {ingest_key}" \\
                  -H "Content-Type: application/json" \\
                  -d '{{"events": [{{"event_id": "hello-1", "timestamp": "'$(date -u +%Y-%m-%dT%H:%M:%SZ)'", "feature": "hello", "model": "gemini-2.5-flash-lite", "input_tokens": 800, "output_tokens": 200, "max_output_tokens": 512}}]}}'
    logs:       {LOG_DIR}/ (web access, worker, beat; warnings and errors show here too)
  Ctrl-C stops web, worker and beat.
""", flush=True)


def pump(name: str, stream, echo_all: bool) -> None:
    """Every line to .data/logs/<name>.log; to the terminal all of them or only the loud ones, so
    the banner with the login and the key does not scroll away under routine INFO lines."""
    with open(LOG_DIR / f"{name}.log", "a", buffering=1) as log_file:
        for line in iter(stream.readline, ""):
            log_file.write(line)
            if echo_all or (LOUD.search(line) and not any(text in line for text in HARMLESS)):
                sys.stdout.write(f"{name:>6} | {line}")
                sys.stdout.flush()


def start(name: str, args, env, *, echo_all=False) -> subprocess.Popen:
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    threading.Thread(target=pump, args=(name, proc.stdout, echo_all), daemon=True).start()
    return proc


def serve(env) -> int:
    for folder in ("queue", "processed", "control"):
        (DATA_DIR / "broker" / folder).mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(exist_ok=True)
    bin_dir = Path(sys.executable).parent
    procs = {
        "web": start("web", [str(bin_dir / "gunicorn"), "costwatch.wsgi:application", "--bind",
                             f"127.0.0.1:{PORT}", "--workers", "2", "--threads", "4", "--access-logfile",
                             str(LOG_DIR / "access.log")],
                     env, echo_all=True),
        "worker": start("worker", [sys.executable, "-m", "celery", "-A", "costwatch", "worker", "--loglevel=INFO",
                                   "--concurrency", "2"], env),
        "beat": start("beat", [sys.executable, "-m", "celery", "-A", "costwatch", "beat", "--loglevel=INFO",
                               "--schedule", str(DATA_DIR / "celerybeat-schedule")], env),
    }
    stopping = threading.Event()

    def stop(*_):
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping.is_set():
        for name, proc in procs.items():
            if proc.poll() is not None:
                log(f"{name} exited with {proc.returncode}; stopping the others")
                exit_code = proc.returncode or 1
                stopping.set()
        stopping.wait(0.5)
    log("stopping web, worker and beat")
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()  # each main process stops its own children (gunicorn and Celery workers)
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return exit_code


def main() -> int:
    port_check(PORT)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    env = base_env()
    prepare(env)
    return serve(env)


if __name__ == "__main__":
    sys.exit(main())
