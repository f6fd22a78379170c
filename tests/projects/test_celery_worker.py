"""Tasks really run in a worker process through a real broker (never eager mode)."""

import datetime as dt
import os
import subprocess
import sys

import pytest
from django.utils import timezone

from costwatch.celery import app
from tests.conftest import ROOT, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_task_round_trips_through_redis_and_a_worker_process(start_worker):
    assert app.conf.broker_url.startswith("redis://")
    assert not app.conf.task_always_eager
    worker = start_worker()
    sent_at = timezone.now()
    result = app.send_task("costwatch.projects.tasks.heartbeat")
    answered = dt.datetime.fromisoformat(result.get(timeout=30))  # the database's clock, read by the worker
    assert answered >= sent_at - dt.timedelta(seconds=5)
    # The worker logs the success after it stores the result: wait for the line, not just the result.
    wait_for(lambda: f"Task costwatch.projects.tasks.heartbeat[{result.id}] succeeded" in worker.log(), timeout=30,
             message="the worker's success log line")


def test_the_heartbeat_task_reaches_the_database_from_the_worker(start_worker):
    worker = start_worker()
    app.send_task("costwatch.projects.tasks.heartbeat")
    wait_for(lambda: "heartbeat: worker alive, database time" in worker.log(), timeout=30,
             message="the heartbeat log line")


def test_the_embedded_filesystem_broker_of_make_run_round_trips(tmp_path):
    """The quickstart's broker (kombu filesystem transport) with a real worker and beat."""
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "COSTWATCH_DATA_DIR": str(data_dir),
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_RESULT_BACKEND": f"file://{tmp_path / 'results'}",
        "HEARTBEAT_INTERVAL_SECONDS": "1",
    }
    (tmp_path / "results").mkdir()
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "costwatch", "worker", "--beat", "--loglevel=INFO",
             "--pool=solo", "--schedule", str(tmp_path / "beat-schedule")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "heartbeat: worker alive" in log_path.read_text() or worker.poll() is not None,
                 timeout=150, message="a beat-scheduled heartbeat through the filesystem broker")
        assert worker.poll() is None, log_path.read_text()
        client = subprocess.run(
            [sys.executable, "-c",
             "import costwatch; from costwatch.celery import app;"
             "result = app.send_task('costwatch.projects.tasks.heartbeat');"
             "print(result.id, result.get(timeout=30))"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
        )
        task_id, db_time = client.stdout.split()[-2:]
        assert dt.datetime.fromisoformat(db_time).year >= 2026, client.stderr
        wait_for(lambda: f"heartbeat[{task_id}] succeeded" in log_path.read_text(), timeout=30,
                 message="the worker's log of that very task")
        assert any((data_dir / "broker" / "queue").parent.iterdir())
    finally:
        worker.terminate()
        worker.wait(timeout=20)
