"""Shared fixtures: users, projects, keys, API clients and a real Celery worker process."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from costwatch.devtools import database_url
from costwatch.projects.services import api_key_issue
from tests.factories import make_project, make_user

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def wait_for(condition, *, timeout=30.0, interval=0.05, message="condition"):
    """Poll `condition` until it returns something truthy; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@contextlib.contextmanager
def database_unreachable():
    """Inside the block the default connection points at a closed local port (2 s connect
    timeout), so every query fails to connect; afterwards it is back on the test database."""
    from django.db import connection

    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": "1", "OPTIONS": {"connect_timeout": 2}})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def user(db):
    return make_user("alice")


@pytest.fixture
def project(db, user):
    return make_project("Acme Support", owner=user)


def _key_client(project, *scopes):
    issued = api_key_issue(project=project, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    client.api_key = issued.api_key
    client.plaintext_key = issued.plaintext
    return client


@pytest.fixture
def key_client():
    """key_client(project, "ingest", "read") -> an APIClient sending that key."""
    return _key_client


@pytest.fixture
def ingest_client(project):
    return _key_client(project, "ingest")


@pytest.fixture
def read_client(project):
    return _key_client(project, "read")


@pytest.fixture
def manage_client(project):
    return _key_client(project, "manage", "read")


class WorkerProcess:
    """A real `celery worker` (optionally with `--beat`) on the test database and broker."""

    def __init__(self, *, beat=False, extra_env=None, log_path: Path):
        env = {**os.environ, "DATABASE_URL": database_url(), **(extra_env or {})}
        args = [sys.executable, "-m", "celery", "-A", "costwatch", "worker", "--loglevel=INFO", "--pool=solo",
                "--without-mingle", "--without-gossip", "-n", f"test-{os.getpid()}-{id(self)}@%h"]
        if beat:
            args += ["--beat", "--schedule", str(log_path.with_suffix(".schedule"))]
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        # Its own process group: `--beat` runs beat in a child process, which a SIGKILL of the
        # worker alone would leave running after the test (stop() ends the whole group).
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for(lambda: "ready." in self.log() or self.proc.poll() is not None, timeout=60,
                 message="the Celery worker to be ready")
        if self.proc.poll() is not None:
            raise RuntimeError(f"Celery worker exited early:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        try:  # whatever is left of its group, e.g. the beat child of a worker killed by a test
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()


@pytest.fixture
def start_worker(tmp_path):
    """start_worker(beat=False, extra_env={...}) -> a running WorkerProcess, stopped after the test.

    Use it from `transaction=True` tests so the worker sees committed data.
    """
    workers = []

    def start(*, beat=False, extra_env=None):
        worker = WorkerProcess(beat=beat, extra_env=extra_env, log_path=tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def run_coroutine(coroutine):
    """asyncio.run in a fresh thread: Playwright's sync API leaves an event loop running in the
    main thread for the rest of the session, where asyncio.run() refuses to start."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Playwright drives Debian's chromium (never `playwright install`, which downloads a browser)."""
    path = os.environ.get("CHROMIUM_PATH") or "/usr/lib/chromium/chromium"
    if not os.path.exists(path):
        pytest.fail(f"chromium not found at {path}: `make test` installs Debian's chromium package")
    return {**browser_type_launch_args, "executable_path": path, "args": CHROMIUM_ARGS}


def browser_login(page, base_url, user):
    """Log in through the login form; returns the list that collects console and page errors."""
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", user.raw_password)
    page.click("button[type=submit]")
    return errors
