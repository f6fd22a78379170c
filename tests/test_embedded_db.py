"""The quickstart's embedded PostgreSQL survives a stop, a crash and a reboot, as root or not,
through the real commands: `scripts/services.py start-db` (what `make run` calls) and
`make stop-db` / `make clean-data`."""

import os
import signal
import subprocess
import sys

import psutil
import psycopg
import pytest

from tests.conftest import ROOT, wait_for

pytestmark = [pytest.mark.smoke, pytest.mark.django_db(False)]


def start_db(data_dir):
    result = subprocess.run([sys.executable, "scripts/services.py", "start-db", str(data_dir)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout.strip().splitlines()[-1]


def make(target, data_dir):
    result = subprocess.run(["make", "--no-print-directory", target, f"COSTWATCH_DATA_DIR={data_dir}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def server_pid(data_dir):
    pid_file = data_dir / "pg" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def notes(url):
    with psycopg.connect(url, autocommit=True) as conn:
        return [row[0] for row in conn.execute("SELECT body FROM notes ORDER BY body")]


def test_a_stopped_crashed_or_rebooted_database_starts_again_with_its_data(tmp_path):
    data_dir = tmp_path / "data"
    url = start_db(data_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('kept')")
    first_pid = server_pid(data_dir)
    try:
        assert "stopped (data kept" in make("stop-db", data_dir)
        assert not psutil.pid_exists(first_pid)
        assert "was not running" in make("stop-db", data_dir)  # a second stop neither starts nor fails
        assert server_pid(data_dir) is None

        # As earlier versions left it: a data directory others may enter, which PostgreSQL refuses.
        (data_dir / "pg").chmod(0o711)
        assert notes(start_db(data_dir)) == ["kept"]
        assert (data_dir / "pg").stat().st_mode & 0o077 == 0

        # A reboot: the server died without cleaning up, and its PID now belongs to another program.
        postmaster = psutil.Process(server_pid(data_dir))
        for proc in [postmaster, *postmaster.children(recursive=True)]:
            proc.kill()
        wait_for(lambda: not postmaster.is_running(), timeout=10, message="the killed server to exit")
        other_program = subprocess.Popen(["sleep", "120"])
        try:
            pid_file = data_dir / "pg" / "postmaster.pid"
            lines = pid_file.read_text().split("\n")
            pid_file.write_text("\n".join([str(other_program.pid), *lines[1:]]))
            assert notes(start_db(data_dir)) == ["kept"]
            assert server_pid(data_dir) != other_program.pid
        finally:
            other_program.kill()
            other_program.wait()
    finally:
        if server_pid(data_dir) and psutil.pid_exists(server_pid(data_dir)):
            os.kill(server_pid(data_dir), signal.SIGINT)
    make("clean-data", data_dir)
    assert not data_dir.exists()
    make("clean-data", data_dir)  # nothing left to stop or delete: still fine


def test_clean_data_stops_a_running_server_before_deleting(tmp_path):
    data_dir = tmp_path / "data"
    start_db(data_dir)
    pid = server_pid(data_dir)
    make("clean-data", data_dir)
    assert not data_dir.exists()
    assert not psutil.pid_exists(pid)
