"""Smoke of `make run` (scripts/run_dev.py) on embedded defaults: its own embedded PostgreSQL,
the filesystem broker, demo data, web + worker + beat, and a clean Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from costwatch.devtools import free_port
from tests.conftest import ROOT, wait_for

pytestmark = [pytest.mark.smoke, pytest.mark.django_db(False)]

STRIPPED = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL", "DJANGO_SETTINGS_MODULE",
            "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None, ""


def start_make_run(env, log_path):
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "scripts/run_dev.py"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_up(proc, base, log_path):
    wait_for(lambda: http_status(f"{base}/accounts/login/")[0] == 200 or proc.poll() is not None,
             timeout=150, interval=0.5, message="the login page")
    assert proc.poll() is None, log_path.read_text()[-4000:]


def ctrl_c(proc):
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def read_key_works(base, key):
    request = urllib.request.Request(f"{base}/api/v1/key", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return b'"project":"demo"' in response.read().replace(b" ", b"")


def test_make_run_serves_the_dashboard_with_demo_data_and_live_worker_and_beat(tmp_path):
    port = free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED}
    env.update({"COSTWATCH_DATA_DIR": str(data_dir), "PORT": str(port), "DEMO_EVENTS": "3000",
                "HEARTBEAT_INTERVAL_SECONDS": "1"})
    log_path = tmp_path / "run.log"
    proc = start_make_run(env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, base, log_path)
        # Beat -> filesystem broker -> worker -> database, in the worker's log under .data/logs;
        # the terminal shows only the worker's warnings, so the banner stays in view.
        worker_log = data_dir / "logs" / "worker.log"
        wait_for(lambda: worker_log.exists() and "heartbeat: worker alive" in worker_log.read_text(), timeout=60,
                 interval=0.5, message="a heartbeat round-trip in the worker's log")
        output = log_path.read_text()
        assert "heartbeat: worker alive" not in output and f"logs:       {data_dir / 'logs'}/" in output
        assert "No hostname was supplied" not in output
        password = re.search(r"login: admin / (\S+)", output).group(1)
        key = re.search(r"ingest key: (cw_\S+)", output).group(1)
        status, body = http_status(f"{base}/healthz")
        assert status == 200 and '"broker": "ok"' in body.replace("'", '"')
        assert read_key_works(base, key)
        access_log = data_dir / "logs" / "access.log"  # gunicorn writes the line after answering
        wait_for(lambda: "GET /api/v1/key" in access_log.read_text(), timeout=15, interval=0.2,
                 message="the read API call in the access log")
        assert password and "seeded" in output
        assert (data_dir / "pg" / "PG_VERSION").exists()
        assert (data_dir / "broker").is_dir()
        # The README's manage.py commands work beside it with no variables but the data folder.
        manage = subprocess.run([sys.executable, "manage.py", "issue_key", "--project", "demo", "--scope", "read"],
                                cwd=ROOT, env={k: v for k, v in env.items() if k != "PORT"}, capture_output=True,
                                text=True, timeout=120)
        assert manage.returncode == 0, manage.stderr
        assert "quickstart" in manage.stderr and "Traceback" not in manage.stderr
        assert read_key_works(base, re.search(r"cw_\S+", manage.stdout).group(0))
    finally:
        ctrl_c(proc)
    assert "stopping web, worker and beat" in log_path.read_text()

    # make stop-db, then make run again: the same data, the same login, no second seeding.
    make_env = {k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MFLAGS")}
    subprocess.run(["make", "--no-print-directory", "stop-db"], cwd=ROOT, env=make_env, check=True, timeout=120)
    assert not (data_dir / "pg" / "postmaster.pid").exists()
    proc = start_make_run(env, tmp_path / "run2.log")
    try:
        wait_until_up(proc, base, tmp_path / "run2.log")
        second = (tmp_path / "run2.log").read_text()
        assert f"login: admin / {password}" in second and "Traceback" not in second
        assert "nothing seeded" in second and not re.search(r"seeded \d+ events", second)
        assert read_key_works(base, key)
    finally:
        ctrl_c(proc)
        subprocess.run(["make", "--no-print-directory", "stop-db"], cwd=ROOT, env=make_env, timeout=120)


def test_make_run_stops_at_once_when_its_port_is_taken(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in STRIPPED}
        env.update({"COSTWATCH_DATA_DIR": str(tmp_path / "data"), "PORT": str(port)})
        result = subprocess.run([sys.executable, "scripts/run_dev.py"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"[costwatch] port {port} is in use by another program: run on another one, "
                                     f"e.g. PORT={port + 1} make run")
    assert not (tmp_path / "data").exists()  # nothing started
