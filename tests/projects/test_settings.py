"""Settings come from the environment and fail loudly, naming the variable."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(False)


def run_django(env_overrides, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update({"DJANGO_SETTINGS_MODULE": "costwatch.settings", **env_overrides})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEBUG", "maybe"), ("INGEST_RATE_LIMIT", "fast"), ("DATABASE_URL", "nosuchdb://x"),
     ("SECRET_KEY", None), ("HEARTBEAT_INTERVAL_SECONDS", "often"), ("DELIVERY_BACKOFF_SECONDS", "60,soon")],
)
def test_it_refuses_to_start_on_a_bad_value_and_names_the_variable(name, value):
    env = {"DEBUG": "false", "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "costwatch.example.com"}
    if value is None:
        env.pop(name)
    else:
        env[name] = value
    result = run_django(env, "check")
    assert result.returncode != 0
    assert name in result.stderr


def test_deploy_check_passes_with_a_production_environment():
    env = {
        "DEBUG": "false",
        "SECRET_KEY": "a-long-random-production-secret-" + "k" * 40,
        "ALLOWED_HOSTS": "costwatch.example.com",
        "SITE_URL": "https://costwatch.example.com",
    }
    result = run_django(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_debug_mode_runs_with_embedded_defaults():
    result = run_django({"DEBUG": "true"}, "check")
    assert result.returncode == 0, result.stderr


def test_manage_py_without_an_environment_uses_the_quickstart_settings_and_says_so_once(tmp_path):
    (tmp_path / "secret_key").write_text("saved-by-make-run-" + "s" * 40)
    (tmp_path / "site_url").write_text("http://127.0.0.1:8123")
    code = "from django.conf import settings as s; print(s.DEBUG, s.SECRET_KEY, s.SITE_URL)"
    result = run_django({"COSTWATCH_DATA_DIR": str(tmp_path)}, "shell", "-v", "0", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "saved-by-make-run-" + "s" * 40, "http://127.0.0.1:8123"]
    assert result.stderr.strip().splitlines() == [
        f"[costwatch] DEBUG and SECRET_KEY not set: using the quickstart's settings saved in {tmp_path} (DEBUG on)"]


def test_an_environment_that_sets_debug_never_falls_back_to_the_quickstart(tmp_path):
    (tmp_path / "secret_key").write_text("saved-by-make-run")
    result = run_django({"COSTWATCH_DATA_DIR": str(tmp_path), "DEBUG": "false"}, "check")
    assert result.returncode != 0
    assert "quickstart" not in result.stderr


def test_a_missing_setting_is_one_line_not_a_traceback(tmp_path):
    result = run_django({"COSTWATCH_DATA_DIR": str(tmp_path / "nothing-here")}, "check")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "[costwatch] Environment variable SECRET_KEY is required when DEBUG is off "
        "(set it, or DEBUG=true for local development)"]


def test_a_bad_database_url_is_named_without_its_password():
    result = run_django({"DEBUG": "true", "DATABASE_URL": "postgres://app:hunter2-secret@db:port/costwatch"}, "check")
    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr and "app:***@db" in result.stderr
