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
