"""`make bench` / `make soak`: benchmarks on their own embedded PostgreSQL (.data/bench-pg).

make bench runs bench_ingest, bench_dashboard and bench_rules one after another and prints
their figures; `make bench ARGS="bench_dashboard --events 1000000"` runs one with options.
make soak runs the soak command (sustained ingest + refresh + rule cycles, then checks).
Set DATABASE_URL to benchmark against another PostgreSQL.
"""

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import log, start_postgres  # noqa: E402

BENCHES = ["bench_ingest", "bench_dashboard", "bench_rules"]


def main(argv: list[str]) -> int:
    data_dir = Path(os.environ.get("COSTWATCH_BENCH_DIR", ROOT / ".data" / "bench")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Production-like settings (DEBUG off: no query log, no debug toolbar costs), served over plain
    # HTTP on loopback, so no TLS redirect or secure-only cookies.
    env = {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
           "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
           "INGEST_RATE_LIMIT": "0", **os.environ,
           "DJANGO_SETTINGS_MODULE": "costwatch.settings", "COSTWATCH_DATA_DIR": str(data_dir)}
    if "DATABASE_URL" not in env:
        _server, env["DATABASE_URL"] = start_postgres(data_dir / "pg", database="costwatch_bench")
        log(f"benchmark PostgreSQL in {data_dir / 'pg'}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    if argv and argv[0] == "--soak":
        runs = [["soak", *argv[1:]]]
    elif argv:
        runs = [argv]
    else:
        runs = [[name] for name in BENCHES]
    # Ctrl-C reaches the command too (same process group); wait for it to clean up and exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worst = 0
    for args in runs:
        log(f"manage.py {' '.join(args)}")
        worst = max(worst, subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env).returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
